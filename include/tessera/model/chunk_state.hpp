// tessera/model/chunk_state.hpp — the sizes a rank's chunks share (chunk_dims) and what one
// (chunk, microbatch) keeps between its forward and its backward (mb_state, one layer_cache per layer).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "tessera/model/config.hpp"
#include "tessera/ops/host.hpp"

namespace tessera {

/// Sizes every chunk of a rank shares.
struct chunk_dims {
  std::int64_t b = 1;      ///< sequences per microbatch (per dp rank)
  std::int64_t T = 1;      ///< sequence length
  std::int64_t R = 1;      ///< rows per microbatch = b·T
  std::int64_t Rl = 1;     ///< rows held between parallel regions (R/tp with sequence parallelism)
  std::int64_t C = 0, D = 0, Hq = 0, Hkv = 0, F = 0;  ///< local heads / ffn (÷ tp)
  std::int64_t V = 0, v0 = 0, vocab = 0;              ///< local vocab rows, first row, true vocab
  std::int64_t QKV = 0, U = 0;                        ///< local q|k|v width, local up(|gate) width
  int tp = 1, tp_rank = 0;
  bool sp = false;
  recompute_kind recompute = recompute_kind::none;
};

/// What one (chunk, microbatch) keeps between its forward and its backward.
template <class T>
struct layer_cache {
  using A = ops::acc_t<T>;
  std::vector<T> h1, g1, qkv, att, x_mid, h2, g2, up, act;
  std::vector<A> mean1, rstd1, lse, mean2, rstd2;
  std::vector<T> d_down, d_up, d_proj, dqkv;  // kept for a deferred weight-gradient pass (W)
  /// Bytes held (capacity) — what the activation accounting counts.
  std::int64_t bytes() const {
    std::int64_t n = 0;
    for (const auto* v : {&h1, &g1, &qkv, &att, &x_mid, &h2, &g2, &up, &act, &d_down, &d_up, &d_proj, &dqkv})
      n += static_cast<std::int64_t>(v->capacity() * sizeof(T));
    for (const auto* v : {&mean1, &rstd1, &lse, &mean2, &rstd2}) n += static_cast<std::int64_t>(v->capacity() * sizeof(A));
    return n;
  }
};
template <class T>
struct mb_state {
  using A = ops::acc_t<T>;
  std::vector<std::vector<T>> xs;  ///< residual stream at each layer boundary (xs[0] = chunk input)
  std::vector<layer_cache<T>> layers;
  std::vector<T> hf, gf, logits;   ///< head
  std::vector<A> meanf, rstdf, lse, loss;
  std::vector<T> dx;               ///< gradient of the chunk input (to send back)
  std::vector<T> dy;               ///< gradient of the chunk output (received)
  std::vector<std::function<void()>> deferred;  ///< weight-gradient work of a split backward
  std::int64_t bytes() const {
    std::int64_t n = 0;
    for (const auto& x : xs) n += static_cast<std::int64_t>(x.capacity() * sizeof(T));
    for (const auto& l : layers) n += l.bytes();
    for (const auto* v : {&hf, &gf, &logits, &dx, &dy}) n += static_cast<std::int64_t>(v->capacity() * sizeof(T));
    for (const auto* v : {&meanf, &rstdf, &lse, &loss}) n += static_cast<std::int64_t>(v->capacity() * sizeof(A));
    return n;
  }
  const std::int32_t* tokens = nullptr;
  const std::int32_t* targets = nullptr;
  double loss_sum = 0;
};

template <class T> inline void resize(std::vector<T>& v, std::int64_t n) {
  if (static_cast<std::int64_t>(v.size()) != n) v.assign(static_cast<std::size_t>(n), T{});
}

}  // namespace tessera
