#include "engine/io/pth_archive.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string_view>

#include "engine/io/checkpoint_error.h"

namespace la::io {
namespace {

std::string_view record_text(const ZipArchive& zip, const ZipSpan& span) {
  return {reinterpret_cast<const char*>(zip.data() + span.offset), static_cast<size_t>(span.size)};
}

// torch.save names the archive directory after the file: "model.pth" -> "model".
std::string archive_name_for(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = base.find_last_of('.');
  if (dot != std::string::npos) base.resize(dot);
  return base.empty() ? "archive" : base;
}

// ".data/serialization_id" is 40 decimal digits: 20 from a hash of the record
// contents and 20 from a hash of the record names. torch computes it from its
// own hash functions; the value only identifies the file, so the format
// matters, not the exact digits.
std::string serialization_id(uint64_t content_hash, const std::vector<std::string>& names) {
  uint64_t name_hash = 0xcbf29ce484222325u;  // FNV-1a
  for (const auto& n : names)
    for (const char c : n) name_hash = (name_hash ^ static_cast<unsigned char>(c)) * 0x100000001b3u;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%020llu%020llu", static_cast<unsigned long long>(content_hash),
                static_cast<unsigned long long>(name_hash));
  return buf;
}

}  // namespace

PthContents parse_pth(const uint8_t* data, size_t size, const std::string& file) {
  const ZipArchive zip(data, size, file);
  const std::vector<std::string> names = zip.names();
  PthContents out;
  // Like torch, take the archive directory from the first record.
  const size_t slash = names.empty() ? std::string::npos : names.front().find('/');
  if (slash == std::string::npos || slash == 0)
    throw CheckpointError(file,
                          "zip does not start with a '<archive>/...' record; not a torch.save checkpoint");
  out.prefix = names.front().substr(0, slash);
  const std::string dir = out.prefix + "/";

  const auto pickle = zip.find(dir + "data.pkl");
  if (!pickle)
    throw CheckpointError(
        file, "zip has no record '" + escape_for_message(dir) + "data.pkl'; not a torch.save checkpoint");
  if (const auto bo = zip.find(dir + "byteorder")) {
    const std::string_view order = record_text(zip, *bo);
    if (order != "little")
      throw CheckpointError(file, "byte order is '" + escape_for_message(order) +
                                      "'; only little-endian checkpoints are supported");
  }

  PickledStateDict dict = unpickle_state_dict(data + pickle->offset, static_cast<size_t>(pickle->size), file);
  for (const PickledTensor& t : dict.tensors) {
    if (out.storages.count(t.storage_key) != 0) continue;  // shared, and checked alike by the unpickler
    const std::string record = dir + "data/" + t.storage_key;
    const auto span = zip.find(record);
    if (!span)
      throw CheckpointError(file, t.name,
                            "zip has no record for storage '" + escape_for_message(t.storage_key) + "' ('" +
                                escape_for_message(record) + "')");
    // No overflow: the unpickler bounds every storage to 2^62 bytes.
    const uint64_t want = static_cast<uint64_t>(t.storage_numel) * dtype_size(t.dtype);
    if (span->size != want)
      throw CheckpointError(
          file, t.name,
          "storage '" + escape_for_message(t.storage_key) + "' holds " + std::to_string(span->size) +
              " bytes but the pickle describes " + std::to_string(t.storage_numel) + " elements of " +
              std::string(dtype_safetensors_name(t.dtype)) + " (" + std::to_string(want) + " bytes)");
    out.storages.emplace(t.storage_key, *span);
  }
  out.tensors = std::move(dict.tensors);
  out.skipped = std::move(dict.skipped);
  return out;
}

void write_pth(std::ostream& out, const std::string& archive_name, const std::vector<PthTensorBytes>& tensors,
               const std::string& file) {
  std::vector<PickledTensor> pickled;
  std::vector<uint64_t> sizes;
  pickled.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const PthTensorBytes& src = tensors[i];
    PickledTensor t;
    t.name = src.name;
    t.dtype = src.dtype;
    t.storage_key = std::to_string(i);
    t.shape = src.shape;
    t.strides.assign(src.shape.size(), 1);
    if (src.shape.size() > 16) throw CheckpointError(file, src.name, "rank exceeds 16");
    const auto bytes = checked_byte_size(src.dtype, src.shape.data(), src.shape.size(), uint64_t{1} << 62);
    if (!bytes) throw CheckpointError(file, src.name, "invalid or too large shape");
    // Contiguous strides as torch computes them: a zero-size dim counts as 1.
    for (size_t d = src.shape.size(); d-- > 1;) {
      if (__builtin_mul_overflow(t.strides[d], std::max<int64_t>(src.shape[d], 1), &t.strides[d - 1]))
        throw CheckpointError(file, src.name, "shape overflows 64-bit strides");
    }
    t.storage_numel = static_cast<int64_t>(*bytes / dtype_size(src.dtype));
    if (*bytes > 0 && src.data == nullptr) throw CheckpointError(file, src.name, "no data");
    sizes.push_back(*bytes);
    pickled.push_back(std::move(t));
  }
  const std::string pkl = pickle_state_dict(pickled);

  // Record order and contents as torch 2.11's torch.save writes them.
  ZipWriter zip(out, file);
  const std::string dir = archive_name + "/";
  std::vector<std::string> names;
  uint64_t content_hash = 0;
  auto add = [&](const std::string& name, const void* bytes, uint64_t size) {
    content_hash = content_hash * 31 + zip.add(dir + name, bytes, size);
    names.push_back(dir + name);
  };
  add("data.pkl", pkl.data(), pkl.size());
  add(".format_version", "1", 1);
  add(".storage_alignment", "64", 2);
  add("byteorder", "little", 6);
  for (size_t i = 0; i < tensors.size(); ++i) add("data/" + std::to_string(i), tensors[i].data, sizes[i]);
  add("version", "3\n", 2);
  const std::string id = serialization_id(content_hash, names);
  zip.add(dir + ".data/serialization_id", id.data(), id.size());
  zip.finish();
}

void write_pth(const std::string& path, const std::vector<PthTensorBytes>& tensors) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw CheckpointError(path, "cannot open for writing");
  try {
    write_pth(out, archive_name_for(path), tensors, path);
    out.close();
    if (!out) throw CheckpointError(path, "write failed");
  } catch (...) {
    out.close();
    std::remove(path.c_str());  // no half-written checkpoint left behind
    throw;
  }
}

}  // namespace la::io
