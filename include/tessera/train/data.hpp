// tessera/train/data.hpp — token files and the batch rules of contract §2.
//
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

namespace tessera {

inline constexpr std::int32_t llmc_magic = 20240520;

class token_data {
 public:
  token_data() = default;
  /// Reads `path`; every token must be < vocab; windows of `seq` tokens.
  token_data(const std::string& path, int vocab, int seq) : path_(path), seq_(seq) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw usage_error(cat("data file ", path, ": cannot open"));
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::int32_t head[3] = {0, 0, 0};
    if (bytes.size() >= sizeof head) std::memcpy(head, bytes.data(), sizeof head);
    if (bytes.size() >= 1024 && head[0] == llmc_magic) {
      format_ = "llm.c";
      if (head[1] != 1)
        throw usage_error(cat("data file ", path, ": llm.c token shard version ", head[1], " (expected 1)"));
      const std::int64_t n = head[2];
      const std::int64_t expect = 1024 + 2 * n;
      if (n < 0 || static_cast<std::int64_t>(bytes.size()) != expect)
        throw usage_error(cat("data file ", path, ": llm.c header says ", n, " tokens (", expect,
                              " bytes) but the file has ", bytes.size(), " bytes"));
      tokens_.resize(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t t;
        std::memcpy(&t, bytes.data() + 1024 + 2 * i, 2);
        tokens_[static_cast<std::size_t>(i)] = t;
      }
    } else {
      format_ = "bytes";
      tokens_.assign(bytes.begin(), bytes.end());
    }
    for (std::size_t i = 0; i < tokens_.size(); ++i)
      if (tokens_[i] >= vocab)
        throw usage_error(cat("data file ", path, ": token ", tokens_[i], " at token offset ", i,
                              " is outside the model's vocabulary (", vocab, ")"));
    const std::int64_t n = static_cast<std::int64_t>(tokens_.size());
    windows_ = n >= 1 ? (n - 1) / seq : 0;
    if (windows_ < 1)
      throw usage_error(cat("data file ", path, ": ", n, " tokens is shorter than one window of seq + 1 = ", seq + 1,
                            " tokens"));
  }

  std::int64_t windows() const { return windows_; }
  std::int64_t tokens() const { return static_cast<std::int64_t>(tokens_.size()); }
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
      const std::int32_t* src = tokens_.data() + w * seq_;
      std::copy(src, src + seq_, inputs + i * seq_);
      std::copy(src + 1, src + seq_ + 1, targets + i * seq_);
    }
  }

 private:
  std::string path_, format_;
  int seq_ = 1;
  std::vector<std::int32_t> tokens_;
  std::vector<std::int64_t> perm_;
  std::int64_t windows_ = 0;
};

}  // namespace tessera
