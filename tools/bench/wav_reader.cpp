#include "tools/bench/wav_reader.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace la::tools {
namespace {

uint32_t le32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

std::vector<float> read_wav_16k_mono(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const auto* d = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 12 || std::memcmp(d, "RIFF", 4) != 0 || std::memcmp(d + 8, "WAVE", 4) != 0)
    throw std::runtime_error(path + ": not a RIFF/WAVE file");
  uint16_t format = 0, channels = 0, bits = 0;
  uint32_t rate = 0;
  size_t pos = 12;
  while (pos + 8 <= bytes.size()) {
    const uint32_t size = le32(d + pos + 4);
    const size_t body = pos + 8;
    if (size > bytes.size() - body) throw std::runtime_error(path + ": chunk runs past the end of the file");
    if (std::memcmp(d + pos, "fmt ", 4) == 0 && size >= 16) {
      format = le16(d + body);
      channels = le16(d + body + 2);
      rate = le32(d + body + 4);
      bits = le16(d + body + 14);
    } else if (std::memcmp(d + pos, "data", 4) == 0) {
      if (channels != 1 || rate != 16000)
        throw std::runtime_error(path + ": need mono 16 kHz audio, got " + std::to_string(channels) + " channel(s) at " +
                                 std::to_string(rate) + " Hz");
      std::vector<float> out;
      if (format == 1 && bits == 16) {
        for (size_t i = 0; i + 1 < size; i += 2) out.push_back(static_cast<int16_t>(le16(d + body + i)) / 32768.0f);
      } else if (format == 3 && bits == 32) {
        out.resize(size / 4);
        std::memcpy(out.data(), d + body, out.size() * 4);
      } else {
        throw std::runtime_error(path + ": need PCM 16-bit or float 32-bit samples");
      }
      return out;
    }
    pos = body + size + (size & 1);
  }
  throw std::runtime_error(path + ": no fmt/data chunk");
}

}  // namespace la::tools
