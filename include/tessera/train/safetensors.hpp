// tessera/train/safetensors.hpp — the Hugging Face safetensors format: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}}, then the raw data.
//
// Reading validates everything against the file before any byte is used (header length, JSON, every
// tensor's offsets and size against its dtype × shape and the file size) and names the file, the tensor
// and the offsets in its errors. Writing goes to FILE.tmp, is fsynced, then renamed over FILE.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tessera/core/bf16.hpp"
#include "tessera/core/checked.hpp"
#include "tessera/core/crc32.hpp"
#include "tessera/core/error.hpp"
#include "tessera/train/json_in.hpp"

namespace tessera {

enum class st_dtype : std::uint8_t { f32, bf16, f16, f64 };

inline int st_size(st_dtype d) {
  switch (d) {
    case st_dtype::f32: return 4;
    case st_dtype::bf16: case st_dtype::f16: return 2;
    case st_dtype::f64: return 8;
  }
  return 0;
}
inline const char* st_name(st_dtype d) {
  switch (d) {
    case st_dtype::f32: return "F32";
    case st_dtype::bf16: return "BF16";
    case st_dtype::f16: return "F16";
    case st_dtype::f64: return "F64";
  }
  return "?";
}

struct st_tensor {
  st_dtype dtype = st_dtype::f32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  ///< absolute file offsets of the data
  /// Elements (validated by the reader: the product of the extents fits, and matches the data's bytes).
  std::int64_t numel() const { return checked_numel(shape).value_or(-1); }
};

namespace st_detail {
inline float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else {
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) { man <<= 1; --exp; }
      bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace st_detail

/// A safetensors file opened for reading: the header parsed and validated, data read on demand.
class safetensors_reader {
 public:
  explicit safetensors_reader(const std::string& path) : path_(path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) throw usage_error(cat("safetensors file ", path, ": cannot open"));
    file_size_ = static_cast<std::uint64_t>(f.tellg());
    if (file_size_ < 8) throw usage_error(cat("safetensors file ", path, ": ", file_size_, " bytes, shorter than the 8-byte header length"));
    f.seekg(0);
    std::uint64_t n = 0;
    unsigned char b[8];
    f.read(reinterpret_cast<char*>(b), 8);
    for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
    if (n > file_size_ - 8)
      throw usage_error(cat("safetensors file ", path, ": header length ", n, " at offset 0 runs past the end of the file (",
                            file_size_, " bytes)"));
    std::string header(n, '\0');
    f.read(header.data(), static_cast<std::streamsize>(n));
    if (!f) throw usage_error(cat("safetensors file ", path, ": reading the header (bytes 8..", 8 + n, ") failed"));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(header);
    } catch (const std::exception& e) {
      throw usage_error(cat("safetensors file ", path, ": header (bytes 8..", 8 + n, ") is not valid JSON: ", e.what()));
    }
    const json_in top(j, cat("safetensors file ", path), "header");
    if (!top.is_object()) top.fail(cat("is ", top.shown(), ", expected an object of tensors"));
    top.members([&](const std::string& name, const json_in& entry) {
      if (name == "__metadata__") {
        entry.members([&](const std::string& key, const json_in& value) { metadata_[key] = value.text(); });
        return;
      }
      tensors_[name] = parse_entry(name, entry, 8 + n);
    });
  }

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const st_tensor& at(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw usage_error(cat("safetensors file ", path_, ": no tensor named ", name));
    return it->second;
  }
  const std::map<std::string, st_tensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The whole tensor as doubles (exact for every supported dtype).
  std::vector<double> read(const std::string& name) const {
    const st_tensor& t = at(name);
    std::ifstream f(path_, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(t.begin));
    std::vector<unsigned char> raw(t.end - t.begin);
    f.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    if (!f) throw usage_error(cat("safetensors file ", path_, ": reading tensor ", name, " at offset ", t.begin, " failed"));
    std::vector<double> out(static_cast<std::size_t>(t.numel()));
    for (std::size_t i = 0; i < out.size(); ++i) {
      switch (t.dtype) {
        case st_dtype::f32: { float v; std::memcpy(&v, raw.data() + 4 * i, 4); out[i] = v; break; }
        case st_dtype::f64: { double v; std::memcpy(&v, raw.data() + 8 * i, 8); out[i] = v; break; }
        case st_dtype::bf16: { std::uint16_t v; std::memcpy(&v, raw.data() + 2 * i, 2); out[i] = bf16::to_float(v); break; }
        case st_dtype::f16: { std::uint16_t v; std::memcpy(&v, raw.data() + 2 * i, 2); out[i] = st_detail::f16_to_float(v); break; }
      }
    }
    return out;
  }

 private:
  /// One tensor's header entry, validated against the file: dtype known, shape of non-negative extents
  /// whose byte count does not overflow, data_offsets [begin, end] inside the data and end − begin equal
  /// to that byte count.
  st_tensor parse_entry(const std::string& name, const json_in& e, std::uint64_t data0) const {
    const std::string where = cat("safetensors file ", path_, ": tensor ", name);
    st_tensor t;
    const std::string dt = e.at("dtype").text();
    if (dt == "F32") t.dtype = st_dtype::f32;
    else if (dt == "BF16") t.dtype = st_dtype::bf16;
    else if (dt == "F16") t.dtype = st_dtype::f16;
    else if (dt == "F64") t.dtype = st_dtype::f64;
    else throw usage_error(cat(where, " has dtype ", dt, " (F32, BF16, F16 or F64 expected)"));
    t.shape = e.at("shape").integers(json_in::any_length, 0, std::numeric_limits<std::int64_t>::max());
    const auto numel = checked_numel(t.shape);
    const auto bytes = numel ? checked_mul(*numel, st_size(t.dtype)) : std::nullopt;
    if (!bytes)
      throw usage_error(cat(where, " has shape ", e.at("shape").shown(), ": its size overflows 64 bits"));
    const json_in offsets = e.at("data_offsets");
    if (offsets.size() != 2) offsets.fail(cat("is ", offsets.shown(), ", expected [begin, end]"));
    const std::uint64_t begin = offsets.at(std::size_t{0}).unsigned_integer();
    const std::uint64_t end = offsets.at(std::size_t{1}).unsigned_integer();
    const std::uint64_t data_bytes = file_size_ - data0;
    if (begin > end) offsets.fail(cat("is ", offsets.shown(), ": begin after end"));
    if (end > data_bytes)
      throw usage_error(cat(where, " data_offsets ", offsets.shown(), " run past the end of the data (", data_bytes,
                            " bytes after the header; the file has ", file_size_, "): truncated?"));
    t.begin = data0 + begin;
    t.end = data0 + end;
    if (static_cast<std::uint64_t>(*bytes) != end - begin)
      throw usage_error(cat(where, " holds ", end - begin, " bytes but ", dt, " x shape ", e.at("shape").shown(), " needs ",
                            *bytes));
    return t;
  }

  std::string path_;
  std::uint64_t file_size_ = 0;
  std::map<std::string, st_tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// Writes tensors (already in their byte form) atomically: FILE.tmp, fsync, rename.
struct st_entry {
  std::string name;
  st_dtype dtype = st_dtype::f32;
  std::vector<std::int64_t> shape;
  std::vector<unsigned char> bytes;
};
inline void fsync_path(const std::string& path, bool directory = false) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
/// What was written: the file's size and its CRC-32 (checkpoint manifests record both).
struct st_written {
  std::uint64_t bytes = 0;
  std::uint32_t crc32 = 0;
};
inline st_written write_safetensors(const std::string& path, const std::vector<st_entry>& entries,
                                    const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::uint64_t off = 0;
  for (const auto& e : entries) {
    h[e.name] = {{"dtype", st_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {off, off + e.bytes.size()}}};
    off += e.bytes.size();
  }
  std::string header = h.dump();
  while ((8 + header.size()) % 8 != 0) header.push_back(' ');  // data aligned to 8 bytes, as HF writes it
  const std::string tmp = path + ".tmp";
  st_written w;
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw usage_error(cat("safetensors file ", tmp, ": cannot open for writing"));
    unsigned char b[8];
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    f.write(reinterpret_cast<const char*>(b), 8);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    w.crc32 = crc32(header.data(), header.size(), crc32(b, 8));
    w.bytes = 8 + header.size();
    for (const auto& e : entries) {
      f.write(reinterpret_cast<const char*>(e.bytes.data()), static_cast<std::streamsize>(e.bytes.size()));
      w.crc32 = crc32(e.bytes.data(), e.bytes.size(), w.crc32);
      w.bytes += e.bytes.size();
    }
    f.flush();
    if (!f) throw usage_error(cat("safetensors file ", tmp, ": write failed (disk full?)"));
  }
  fsync_path(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw usage_error(cat("safetensors file ", path, ": cannot rename ", tmp, " onto it"));
  const auto slash = path.find_last_of('/');
  fsync_path(slash == std::string::npos ? "." : path.substr(0, slash), true);
  return w;
}

}  // namespace tessera
