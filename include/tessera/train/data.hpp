// tessera/train/data.hpp — token files and the batch rules (docs/training.md, "Data, logs and MFU").
//
// The file is memory-mapped, not read: the ranks of a node share its pages.
// A file is an llm.c token shard when it starts with the magic 20240520 (256 int32 header: magic,
// version 1, token count; then uint16 tokens), otherwise raw bytes (token = byte). With T = seq,
// window w is tokens [w·T, w·T + T] (inputs the first T, targets shifted by one); W = ⌊(n − 1)/T⌋.
// Batch k holds windows (k·B + i) mod W, i = 0…B−1 (through a seeded permutation with --shuffle).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/model/params.hpp"
#include "tessera/train/mapped_file.hpp"

namespace tessera {

inline constexpr std::int32_t llmc_magic = 20240520;

class token_data {
 public:
  token_data() = default;
  token_data(const token_data&) = delete;
  token_data& operator=(const token_data&) = delete;
  /// Maps `path` read-only (the ranks of a node share its pages; nothing is copied: each dp rank touches
  /// only the windows of its own slice of each batch); every token must be < vocab; windows of `seq`.
  /// The mapping is owned by a member, so a file rejected here is unmapped again.
  token_data(const std::string& path, int vocab, int seq) : path_(path), seq_(seq) {
    check(seq >= 1, "data file ", path, ": seq ", seq, " must be at least 1");
    file_ = mapped_file(path, cat("data file ", path));
    map_bytes_ = file_.size();
    const unsigned char* bytes = file_.data();
    std::int32_t head[3] = {0, 0, 0};
    if (map_bytes_ >= sizeof head) std::memcpy(head, bytes, sizeof head);
    if (map_bytes_ >= 1024 && head[0] == llmc_magic) {
      format_ = "llm.c";
      if (head[1] != 1)
        throw usage_error(cat("data file ", path, ": llm.c token shard version ", head[1], " (expected 1)"));
      const std::int64_t n = head[2];
      const std::int64_t expect = 1024 + 2 * n;
      if (n < 0 || static_cast<std::int64_t>(map_bytes_) != expect)
        throw usage_error(cat("data file ", path, ": llm.c header says ", n, " tokens (", expect,
                              " bytes) but the file has ", map_bytes_, " bytes"));
      n_ = n;
      base_ = bytes + 1024;
      width_ = 2;
    } else {
      format_ = "bytes";
      n_ = static_cast<std::int64_t>(map_bytes_);
      base_ = bytes;
      width_ = 1;
    }
    if (!(width_ == 1 && vocab >= 256) && !(width_ == 2 && vocab >= 65536))  // else every token fits
      for (std::int64_t i = 0; i < n_; ++i)
        if (token(i) >= vocab)
          throw usage_error(cat("data file ", path, ": token ", token(i), " at token offset ", i,
                                " is outside the model's vocabulary (", vocab, ")"));
    windows_ = n_ >= 1 ? (n_ - 1) / seq : 0;
    if (windows_ < 1)
      throw usage_error(cat("data file ", path, ": ", n_, " tokens is shorter than one window of seq + 1 = ", seq + 1,
                            " tokens"));
  }

  std::int64_t windows() const { return windows_; }
  std::int64_t tokens() const { return n_; }
  /// Token i of the file.
  std::int32_t token(std::int64_t i) const {
    if (width_ == 1) return base_[i];
    std::uint16_t t;
    std::memcpy(&t, base_ + 2 * i, 2);
    return t;
  }
  const std::string& format() const { return format_; }

  /// Seeded permutation of the windows (Fisher–Yates over splitmix64).
  void shuffle(std::uint64_t seed) {
    perm_.resize(static_cast<std::size_t>(windows_));
    std::iota(perm_.begin(), perm_.end(), 0);
    std::uint64_t s = seed ^ 0x5eedda7aull;
    for (std::int64_t i = windows_ - 1; i > 0; --i) {
      s = init_detail::splitmix64(s);
      const std::int64_t j = static_cast<std::int64_t>(s % static_cast<std::uint64_t>(i + 1));
      std::swap(perm_[static_cast<std::size_t>(i)], perm_[static_cast<std::size_t>(j)]);
    }
  }
  /// Back to file order.
  void unshuffle() { perm_.clear(); }
  bool shuffled() const { return !perm_.empty(); }
  /// Window of batch k, item i (global), for batch size B.
  std::int64_t window(std::int64_t k, std::int64_t B, std::int64_t i) const {
    const std::int64_t w = (k * B + i) % windows_;
    return perm_.empty() ? w : perm_[static_cast<std::size_t>(w)];
  }
  /// Inputs and targets of items [i0, i0 + count) of batch k: count·seq tokens each.
  void fill(std::int64_t k, std::int64_t B, std::int64_t i0, std::int64_t count, std::int32_t* inputs,
            std::int32_t* targets) const {
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t w = window(k, B, i0 + i);
      for (std::int64_t t = 0; t < seq_; ++t) {
        inputs[i * seq_ + t] = token(w * seq_ + t);
        targets[i * seq_ + t] = token(w * seq_ + t + 1);
      }
    }
  }

 private:
  std::string path_, format_;
  int seq_ = 1;
  mapped_file file_;
  std::size_t map_bytes_ = 0;
  const unsigned char* base_ = nullptr;
  int width_ = 1;  ///< bytes per token
  std::int64_t n_ = 0;
  std::vector<std::int64_t> perm_;
  std::int64_t windows_ = 0;
};

}  // namespace tessera
