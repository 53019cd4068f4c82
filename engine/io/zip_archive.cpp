#include "engine/io/zip_archive.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "engine/io/checkpoint_error.h"

namespace la::io {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kEocd64Sig = 0x06064b50;
constexpr uint32_t kEocd64LocatorSig = 0x07064b50;
constexpr uint32_t kDataDescriptorSig = 0x08074b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kPaddingExtraId = 0x4246;  // "FB": PyTorch's alignment padding

constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kEocd64Size = 56;
constexpr uint64_t kEocd64LocatorSize = 20;
constexpr uint64_t kMaxCommentSize = 0xFFFF;
constexpr uint64_t kAlignment = 64;

// Bits 3 (sizes in a data descriptor after the data) and 11 (UTF-8 names), as
// miniz sets them for PyTorch; an empty record has no descriptor and no bit 3.
constexpr uint16_t kUtf8Flag = 0x0800;
constexpr uint16_t kDescriptorFlag = 0x0008;
uint16_t writer_flags(uint64_t size) { return size > 0 ? kUtf8Flag | kDescriptorFlag : kUtf8Flag; }
constexpr uint16_t kEncryptedFlag = 0x0001;

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) { return rd16(p) | (static_cast<uint32_t>(rd16(p + 2)) << 16); }
uint64_t rd64(const uint8_t* p) { return rd32(p) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

void put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v & 0xFFFF));
  put16(s, static_cast<uint16_t>(v >> 16));
}
void put64(std::string& s, uint64_t v) {
  put32(s, static_cast<uint32_t>(v & 0xFFFFFFFFu));
  put32(s, static_cast<uint32_t>(v >> 32));
}

// a + b <= limit, without overflow.
bool fits(uint64_t a, uint64_t b, uint64_t limit) { return a <= limit && b <= limit - a; }

std::string quoted(std::string_view name) { return "'" + escape_for_message(name) + "'"; }

// Slicing-by-8 tables: tensor records are gigabytes, so the CRC must be fast.
struct CrcTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
      t[0][i] = c;
    }
    for (size_t s = 1; s < 8; ++s)
      for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, size_t size) {
  static const CrcTables tables;
  const auto& t = tables.t;
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (size >= 8) {
    const uint32_t lo = c ^ rd32(p);
    const uint32_t hi = rd32(p + 4);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return ~c;
}

std::string escape_for_message(std::string_view text, size_t max_len) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

// ---------------------------------------------------------------- reading --

ZipArchive::ZipArchive(const uint8_t* data, size_t size, std::string file)
    : data_(data), size_(size), file_(std::move(file)) {
  parse();
}

// Finds the end-of-central-directory record (and the ZIP64 one PyTorch always
// adds) and returns where the central directory is.
ZipArchive::CentralDirectory ZipArchive::locate_central_directory() const {
  const uint64_t size = size_;
  if (size < kEocdSize)
    throw CheckpointError(file_, "not a zip archive: too short for an end-of-central-directory record");

  // The EOCD record ends the file, followed only by its comment (<= 64 KiB).
  // Requiring the comment to reach exactly to the end rejects signatures that
  // merely occur inside a comment or inside data.
  const uint64_t lowest = size > kEocdSize + kMaxCommentSize ? size - kEocdSize - kMaxCommentSize : 0;
  uint64_t eocd = UINT64_MAX;
  for (uint64_t pos = size - kEocdSize + 1; pos-- > lowest;) {
    if (rd32(data_ + pos) == kEocdSig && pos + kEocdSize + rd16(data_ + pos + 20) == size) {
      eocd = pos;
      break;
    }
  }
  if (eocd == UINT64_MAX)
    throw CheckpointError(file_, "not a zip archive: no end-of-central-directory record");

  const uint8_t* e = data_ + eocd;
  const auto disk16 = [](uint16_t d) { return d == 0 || d == 0xFFFF; };
  if (!disk16(rd16(e + 4)) || !disk16(rd16(e + 6)))
    throw CheckpointError(file_, "multi-disk zip archives are not supported");
  CentralDirectory cd{rd16(e + 10), rd32(e + 12), rd32(e + 16), eocd};

  // ZIP64 locator right before the EOCD: its record's values take precedence.
  if (eocd >= kEocd64LocatorSize && rd32(e - kEocd64LocatorSize) == kEocd64LocatorSig) {
    const uint8_t* loc = e - kEocd64LocatorSize;
    const uint64_t rec = rd64(loc + 8);
    if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
      throw CheckpointError(file_, "multi-disk zip archives are not supported");
    if (!fits(rec, kEocd64Size, eocd - kEocd64LocatorSize))
      throw CheckpointError(file_,
                            "ZIP64 end record offset " + std::to_string(rec) + " lies outside the file");
    const uint8_t* r = data_ + rec;
    if (rd32(r) != kEocd64Sig) throw CheckpointError(file_, "ZIP64 end record has a bad signature");
    if (rd32(r + 16) != 0 || rd32(r + 20) != 0)
      throw CheckpointError(file_, "multi-disk zip archives are not supported");
    cd = CentralDirectory{rd64(r + 32), rd64(r + 40), rd64(r + 48), rec};
  }

  if (!fits(cd.offset, cd.size, cd.limit))
    throw CheckpointError(file_, "central directory (offset " + std::to_string(cd.offset) + ", size " +
                                     std::to_string(cd.size) + ") lies outside the file");
  if (cd.entries > cd.size / kCentralHeaderSize)
    throw CheckpointError(file_, "zip claims " + std::to_string(cd.entries) +
                                     " records, more than its central directory can hold");
  return cd;
}

void ZipArchive::parse() {
  const CentralDirectory cd = locate_central_directory();
  const uint64_t cd_end = cd.offset + cd.size;
  uint64_t cur = cd.offset;
  entries_.reserve(static_cast<size_t>(cd.entries));
  for (uint64_t i = 0; i < cd.entries; ++i) {
    Entry e = read_central_entry(cur, cd_end, i);
    read_local_header(e, cd.offset);
    if (!by_name_.emplace(e.name, entries_.size()).second)
      throw CheckpointError(file_, "record name " + quoted(e.name) + " occurs twice");
    entries_.push_back(std::move(e));
  }
  check_no_overlap();
}

// Reads the central directory header at `cur` (< cd_end) and advances `cur`.
ZipArchive::Entry ZipArchive::read_central_entry(uint64_t& cur, uint64_t cd_end, uint64_t index) const {
  const std::string where = "central directory entry " + std::to_string(index);
  if (!fits(cur, kCentralHeaderSize, cd_end) || rd32(data_ + cur) != kCentralHeaderSig)
    throw CheckpointError(file_, where + " is truncated or has a bad signature");
  const uint8_t* h = data_ + cur;
  const uint64_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
  const uint64_t var_len = name_len + extra_len + comment_len;
  if (!fits(cur + kCentralHeaderSize, var_len, cd_end))
    throw CheckpointError(file_, where + " runs past the central directory");
  cur += kCentralHeaderSize + var_len;

  Entry e;
  e.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
  e.flags = rd16(h + 8);
  e.method = rd16(h + 10);
  e.crc32 = rd32(h + 16);
  e.compressed_size = rd32(h + 20);
  e.size = rd32(h + 24);
  e.local_offset = rd32(h + 42);
  const std::string rec = "record " + quoted(e.name);
  if (rd16(h + 34) != 0 && rd16(h + 34) != 0xFFFF)
    throw CheckpointError(file_, rec + " lies on another disk");

  // ZIP64 extra field: 8-byte values for exactly those fields saturated above,
  // in the order size, compressed size, local header offset.
  const uint8_t* x = h + kCentralHeaderSize + name_len;
  const uint8_t* x_end = x + extra_len;
  while (x_end - x >= 4) {
    const uint16_t id = rd16(x), len = rd16(x + 2);
    if (len > x_end - x - 4) throw CheckpointError(file_, rec + ": extra field runs past its header");
    if (id == kZip64ExtraId) {
      const uint8_t* v = x + 4;
      const uint8_t* v_end = v + len;
      for (uint64_t* field : {&e.size, &e.compressed_size, &e.local_offset}) {
        if (*field != 0xFFFFFFFFu) continue;
        if (v_end - v < 8) throw CheckpointError(file_, rec + ": ZIP64 extra field is too short");
        *field = rd64(v);
        v += 8;
      }
    }
    x += 4 + len;
  }
  if (e.method == 0 && e.compressed_size != e.size)
    throw CheckpointError(file_, "stored " + rec + " has compressed size " +
                                     std::to_string(e.compressed_size) + " but size " +
                                     std::to_string(e.size));
  return e;
}

// The data starts after the local header, whose name and extra lengths may
// differ from the central directory's (PyTorch's padding lives only here).
void ZipArchive::read_local_header(Entry& e, uint64_t central_dir_offset) const {
  const std::string rec = "record " + quoted(e.name);
  if (!fits(e.local_offset, kLocalHeaderSize, central_dir_offset))
    throw CheckpointError(file_, rec + ": local header offset " + std::to_string(e.local_offset) +
                                     " lies outside the file's data area");
  const uint8_t* h = data_ + e.local_offset;
  if (rd32(h) != kLocalHeaderSig) throw CheckpointError(file_, rec + ": bad local header signature");
  const uint64_t name_len = rd16(h + 26), extra_len = rd16(h + 28);
  const uint64_t name_at = e.local_offset + kLocalHeaderSize;
  if (!fits(name_at, name_len + extra_len, central_dir_offset))
    throw CheckpointError(file_, rec + ": local header runs past the data area");
  if (name_len != e.name.size() || std::memcmp(data_ + name_at, e.name.data(), name_len) != 0)
    throw CheckpointError(file_, rec + ": local header names a different record");
  e.data_offset = name_at + name_len + extra_len;
  if (!fits(e.data_offset, e.compressed_size, central_dir_offset))
    throw CheckpointError(file_, rec + ": data (offset " + std::to_string(e.data_offset) + ", size " +
                                     std::to_string(e.compressed_size) + ") runs past the data area");
}

void ZipArchive::check_no_overlap() const {
  std::vector<const Entry*> sorted;
  sorted.reserve(entries_.size());
  for (const auto& e : entries_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](const Entry* a, const Entry* b) { return a->local_offset < b->local_offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const Entry& prev = *sorted[i - 1];
    if (prev.data_offset + prev.compressed_size > sorted[i]->local_offset)
      throw CheckpointError(file_,
                            "records " + quoted(prev.name) + " and " + quoted(sorted[i]->name) + " overlap");
  }
}

std::optional<ZipSpan> ZipArchive::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  const Entry& e = entries_[it->second];
  if (e.flags & kEncryptedFlag)
    throw CheckpointError(file_, "record " + quoted(e.name) + " is encrypted, which is not supported");
  if (e.method != 0)
    throw CheckpointError(file_, "record " + quoted(e.name) + " is compressed (method " +
                                     std::to_string(e.method) +
                                     "); only stored records, as torch.save writes them, are supported");
  return ZipSpan{e.data_offset, e.size, e.crc32};
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

// ---------------------------------------------------------------- writing --

ZipWriter::ZipWriter(std::ostream& out, std::string file) : out_(out), file_(std::move(file)) {}

void ZipWriter::write(const void* bytes, uint64_t size) {
  // Chunked so no single write exceeds what std::streamsize surely holds.
  const auto* p = static_cast<const char*>(bytes);
  while (size > 0) {
    const uint64_t n = std::min<uint64_t>(size, uint64_t{1} << 30);
    out_.write(p, static_cast<std::streamsize>(n));
    if (!out_) throw CheckpointError(file_, "write failed");
    p += n;
    size -= n;
    pos_ += n;
  }
}

// The ZIP64 extra field of a record, or "" if it needs none. miniz writes the
// local header's copy before it knows the compressed size, leaving it 0 there
// (readers take sizes from the central directory); we match its bytes.
std::string ZipWriter::zip64_extra(const Record& r, bool local) const {
  const bool big_size = r.size >= zip64_threshold_;
  const bool big_offset = r.local_offset >= zip64_threshold_;
  if (!big_size && !big_offset) return {};
  std::string x;
  put16(x, kZip64ExtraId);
  put16(x, static_cast<uint16_t>((big_size ? 16 : 0) + (big_offset ? 8 : 0)));
  if (big_size) {
    put64(x, r.size);              // uncompressed
    put64(x, local ? 0 : r.size);  // compressed (stored)
  }
  if (big_offset) put64(x, r.local_offset);
  return x;
}

uint32_t ZipWriter::add(std::string_view name, const void* bytes, uint64_t size) {
  if (finished_) throw CheckpointError(file_, "zip record added after finish()");
  if (name.empty() || name.size() > 0xFFFF)
    throw CheckpointError(file_, "zip record name " + quoted(name) + " has an unsupported length");
  Record r{std::string(name), crc32_update(0, bytes, static_cast<size_t>(size)), size, pos_};
  const std::string zip64 = zip64_extra(r, true);

  // Pad with a "FB" extra field so the data lands on a 64-byte boundary; the
  // field is written even when no padding is needed, like PyTorch does.
  const uint64_t unpadded = pos_ + kLocalHeaderSize + name.size() + zip64.size() + 4;
  const uint64_t pad = (kAlignment - unpadded % kAlignment) % kAlignment;

  std::string h;
  put32(h, kLocalHeaderSig);
  put16(h, 0);  // version needed (miniz writes 0 for stored records)
  put16(h, writer_flags(size));
  put16(h, 0);  // method: stored
  put32(h, 0);  // time, date
  put32(h, 0);  // crc, sizes: in the data descriptor (flag bit 3)
  put32(h, 0);
  put32(h, 0);
  put16(h, static_cast<uint16_t>(name.size()));
  put16(h, static_cast<uint16_t>(zip64.size() + 4 + pad));
  h.append(name);
  h += zip64;
  put16(h, kPaddingExtraId);
  put16(h, static_cast<uint16_t>(pad));
  h.append(pad, 'Z');
  write(h.data(), h.size());
  write(bytes, size);
  if (size == 0) {
    records_.push_back(std::move(r));
    return records_.back().crc32;
  }

  std::string d;
  put32(d, kDataDescriptorSig);
  put32(d, r.crc32);
  if (zip64.empty()) {
    put32(d, static_cast<uint32_t>(size));
    put32(d, static_cast<uint32_t>(size));
  } else {
    put64(d, size);
    put64(d, size);
  }
  write(d.data(), d.size());
  records_.push_back(std::move(r));
  return records_.back().crc32;
}

void ZipWriter::finish() {
  if (finished_) throw CheckpointError(file_, "zip finished twice");
  finished_ = true;
  const uint64_t cd_offset = pos_;
  auto sat32 = [&](uint64_t v) { return v >= zip64_threshold_ ? 0xFFFFFFFFu : static_cast<uint32_t>(v); };
  for (const Record& r : records_) {
    const std::string zip64 = zip64_extra(r, false);
    std::string h;
    put32(h, kCentralHeaderSig);
    put16(h, 0);  // version made by
    put16(h, 0);  // version needed
    put16(h, writer_flags(r.size));
    put16(h, 0);  // stored
    put32(h, 0);  // time, date
    put32(h, r.crc32);
    put32(h, sat32(r.size));
    put32(h, sat32(r.size));
    put16(h, static_cast<uint16_t>(r.name.size()));
    put16(h, static_cast<uint16_t>(zip64.size()));
    put16(h, 0);  // comment length
    put16(h, 0);  // disk
    put16(h, 0);  // internal attributes
    put32(h, 0);  // external attributes
    put32(h, sat32(r.local_offset));
    h += r.name;
    h += zip64;
    write(h.data(), h.size());
  }
  const uint64_t cd_size = pos_ - cd_offset;
  const uint64_t n = records_.size();

  // ZIP64 end record and locator, always present as in PyTorch's files.
  const uint64_t eocd64_offset = pos_;
  std::string t;
  put32(t, kEocd64Sig);
  put64(t, kEocd64Size - 12);  // size of the rest of this record
  put16(t, 0x031E);            // made by: Unix, 3.0 (miniz's values)
  put16(t, 0x002D);            // needed: 4.5 (ZIP64)
  put32(t, 0);                 // this disk
  put32(t, 0);                 // disk with the central directory
  put64(t, n);
  put64(t, n);
  put64(t, cd_size);
  put64(t, cd_offset);
  put32(t, kEocd64LocatorSig);
  put32(t, 0);
  put64(t, eocd64_offset);
  put32(t, 1);  // total disks

  put32(t, kEocdSig);
  put16(t, 0);
  put16(t, 0);
  put16(t, static_cast<uint16_t>(std::min<uint64_t>(n, 0xFFFF)));
  put16(t, static_cast<uint16_t>(std::min<uint64_t>(n, 0xFFFF)));
  put32(t, sat32(cd_size));
  put32(t, sat32(cd_offset));
  put16(t, 0);  // comment length
  write(t.data(), t.size());
  out_.flush();
  if (!out_) throw CheckpointError(file_, "write failed");
}

}  // namespace la::io
