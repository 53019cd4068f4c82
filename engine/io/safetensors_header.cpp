#include "engine/io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_depth.h"

namespace la::io {
namespace {

using nlohmann::json;

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

SafetensorsEntry parse_entry(const std::string& name, const json& v, uint64_t data_size,
                             const std::string& file) {
  if (!v.is_object()) throw CheckpointError(file, name, "header entry is not a JSON object");
  const auto dt = v.find("dtype");
  const auto sh = v.find("shape");
  const auto off = v.find("data_offsets");
  if (dt == v.end() || !dt->is_string() || sh == v.end() || !sh->is_array() ||
      off == v.end() || !off->is_array())
    throw CheckpointError(file, name, "header entry needs string 'dtype', array 'shape' and array 'data_offsets'");

  SafetensorsEntry e;
  e.name = name;
  const auto dtype = dtype_from_safetensors_name(dt->get<std::string>());
  if (!dtype) throw CheckpointError(file, name, "unsupported dtype '" + dt->get<std::string>() + "'");
  e.dtype = *dtype;

  if (sh->size() > kMaxTensorRank)
    throw CheckpointError(file, name, "rank " + std::to_string(sh->size()) + " exceeds " +
                                          std::to_string(kMaxTensorRank));
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw CheckpointError(file, name, "shape holds a value that is not a non-negative integer");
    e.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }

  if (off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
    throw CheckpointError(file, name, "data_offsets must be two non-negative integers");
  const uint64_t b = (*off)[0].get<uint64_t>(), en = (*off)[1].get<uint64_t>();
  if (b > en || en > data_size)
    throw CheckpointError(file, name, "data_offsets [" + std::to_string(b) + "," +
                                          std::to_string(en) + ") outside the data section of " +
                                          std::to_string(data_size) + " bytes");
  const auto bytes = checked_byte_size(e.dtype, e.shape.data(), e.shape.size(), data_size);
  if (!bytes || *bytes != en - b)
    throw CheckpointError(file, name, "dtype " + std::string(dtype_safetensors_name(e.dtype)) +
                                          " x shape " + shape_str(e.shape) + " does not match its " +
                                          std::to_string(en - b) + " data bytes");
  e.begin = b;
  e.end = en;
  return e;
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t file_size,
                                           const std::string& file) {
  if (file_size < 8) throw CheckpointError(file, "too short for a safetensors header (" +
                                                     std::to_string(file_size) + " bytes)");
  // PyTorch's .pth files (the VAE, umT5) are ZIP archives: say so rather than read "PK\3\4..." as a length.
  if (data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4)
    throw CheckpointError(file, "is a ZIP archive (a PyTorch .pth file?), not a safetensors file");
  const uint64_t n = read_le64(data);
  if (n > kMaxSafetensorsHeaderBytes)
    throw CheckpointError(file, "header length " + std::to_string(n) +
                                    " exceeds the 100 MB limit: not a safetensors file, or a damaged one");
  if (n > file_size - 8)
    throw CheckpointError(file, "header length " + std::to_string(n) + " runs past the end of the " +
                                    std::to_string(file_size) + "-byte file (truncated?)");
  const std::string_view text(reinterpret_cast<const char*>(data + 8), n);
  if (!json_depth_within(text, 8)) throw CheckpointError(file, "header JSON nests too deeply");

  json root;
  bool duplicate = false;
  std::string duplicate_key;
  std::vector<std::string> top_keys;
  // nlohmann keeps the last of two equal keys; a header naming a tensor twice
  // is ambiguous, so the callback records top-level keys to find repeats.
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1) top_keys.push_back(parsed.get<std::string>());
    return true;
  };
  try {
    root = json::parse(text, on_event);
  } catch (const json::exception& ex) {
    throw CheckpointError(file, std::string("header is not valid JSON: ") + ex.what());
  }
  if (!root.is_object()) throw CheckpointError(file, "header is not a JSON object");
  std::sort(top_keys.begin(), top_keys.end());
  for (size_t i = 1; i < top_keys.size() && !duplicate; ++i)
    if (top_keys[i] == top_keys[i - 1]) duplicate = true, duplicate_key = top_keys[i];
  if (duplicate) throw CheckpointError(file, duplicate_key, "named twice in the header");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw CheckpointError(file, "__metadata__ is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) throw CheckpointError(file, "__metadata__ value '" + mk + "' is not a string");
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(key, value, data_size, file));
  }

  std::sort(h.entries.begin(), h.entries.end(),
            [](const auto& a, const auto& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  for (size_t i = 1; i < h.entries.size(); ++i) {
    const auto& prev = h.entries[i - 1];
    const auto& cur = h.entries[i];
    // Zero-byte tensors may share an offset; anything else must not overlap.
    if (cur.begin < prev.end && cur.begin != cur.end)
      throw CheckpointError(file, cur.name, "data overlaps tensor " + prev.name);
  }
  for (auto& e : h.entries) {
    e.begin += h.data_start;
    e.end += h.data_start;
  }
  return h;
}

}  // namespace la::io
