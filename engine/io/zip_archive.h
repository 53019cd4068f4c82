// The zip container of torch.save checkpoints, read from untrusted bytes and
// written the way PyTorch's writer (miniz) does: stored records only, each
// record's data 64-byte aligned, ZIP64 where an offset or size needs it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace la::io {

// The data of one record: a byte range of the archive's file.
struct ZipSpan {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t crc32 = 0;  // as the central directory states it; not verified on open
};

// Standard zip CRC-32 (reflected, polynomial 0xEDB88320). Start with crc = 0
// and pass the previous result to continue over more bytes.
uint32_t crc32_update(uint32_t crc, const void* data, size_t size);

// Attacker-controlled text made safe to quote in an error message: control and
// non-ASCII bytes become \xNN, and long text is cut at `max_len`.
std::string escape_for_message(std::string_view text, size_t max_len = 120);

class ZipArchive {
 public:
  // Parses and bounds-checks the whole central directory and every local
  // header. `data` must outlive the archive. Throws CheckpointError naming
  // `file` on anything malformed.
  ZipArchive(const uint8_t* data, size_t size, std::string file);

  // The data span of record `name`, or nullopt if there is none. Throws
  // CheckpointError if the record is compressed or encrypted.
  std::optional<ZipSpan> find(std::string_view name) const;

  // Record names in central-directory order.
  std::vector<std::string> names() const;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& file() const { return file_; }

 private:
  struct Entry {
    std::string name;
    uint16_t flags = 0;
    uint16_t method = 0;
    uint32_t crc32 = 0;
    uint64_t compressed_size = 0;
    uint64_t size = 0;
    uint64_t local_offset = 0;
    uint64_t data_offset = 0;
  };
  struct CentralDirectory {
    uint64_t entries, size, offset;
    uint64_t limit;  // the directory must end by here (where the end records start)
  };
  void parse();
  CentralDirectory locate_central_directory() const;
  Entry read_central_entry(uint64_t& cur, uint64_t cd_end, uint64_t index) const;
  void read_local_header(Entry& e, uint64_t central_dir_offset) const;
  void check_no_overlap() const;

  const uint8_t* data_;
  size_t size_;
  std::string file_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

class ZipWriter {
 public:
  // Writes to `out` as records are added; `file` names the destination in
  // errors. The stream must stay valid until finish().
  ZipWriter(std::ostream& out, std::string file);

  // Appends a stored record whose data starts at a multiple of 64 bytes of the
  // output, so a memory-mapped reader gets aligned tensors. Returns its CRC-32.
  uint32_t add(std::string_view name, const void* bytes, uint64_t size);

  // Writes the central directory and the end records. Call exactly once.
  void finish();

  uint64_t bytes_written() const { return pos_; }

  // Values >= this threshold are stored in ZIP64 fields. It is 0xFFFFFFFF as
  // in miniz; tests lower it to exercise the ZIP64 paths without 4 GiB files.
  void set_zip64_threshold_for_testing(uint64_t threshold) { zip64_threshold_ = threshold; }

 private:
  struct Record {
    std::string name;
    uint32_t crc32;
    uint64_t size;
    uint64_t local_offset;
  };
  void write(const void* bytes, uint64_t size);
  std::string zip64_extra(const Record& r, bool local) const;

  std::ostream& out_;
  std::string file_;
  uint64_t pos_ = 0;
  uint64_t zip64_threshold_ = 0xFFFFFFFFu;
  bool finished_ = false;
  std::vector<Record> records_;
};

}  // namespace la::io
