// tessera/model/chunk_state.hpp — the sizes a rank's chunks share (chunk_dims) and what one
// (chunk, microbatch) keeps between its forward and its backward (mb_state, one layer_cache per layer),
// in buffers of the system S that runs the chunk.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "tessera/core/host_system.hpp"
#include "tessera/model/config.hpp"
#include "tessera/ops/host.hpp"

namespace tessera {

/// Sizes every chunk of a rank shares.
struct chunk_dims {
  std::int64_t seqs = 1;        ///< sequences per microbatch (per dp rank)
  std::int64_t seq_len = 1;     ///< tokens per sequence
  std::int64_t rows = 1;        ///< rows (tokens) per microbatch = seqs · seq_len
  std::int64_t local_rows = 1;  ///< rows held between parallel regions (rows / tp with sequence parallelism)
  std::int64_t hidden = 0, head_dim = 0;
  std::int64_t q_heads = 0, kv_heads = 0, ffn = 0;  ///< this tp rank's heads and ffn width (÷ tp)
  std::int64_t vocab_rows = 0, vocab_begin = 0;     ///< this tp rank's rows of the (padded) vocabulary, its first
  std::int64_t vocab = 0;                           ///< the true vocabulary (without padding)
  std::int64_t qkv_cols = 0;  ///< width of this rank's q|k|v projection: (q_heads + 2 kv_heads) · head_dim
  std::int64_t up_cols = 0;   ///< width of this rank's up projection: ffn, or 2 ffn with SwiGLU's gate
  int tp = 1, tp_rank = 0;
  bool sp = false;
  recompute_kind recompute = recompute_kind::none;
};

/// What one (chunk, microbatch) keeps between its forward and its backward.
template <class T, class S = host_system>
struct layer_cache {
  using A = ops::acc_t<T>;
  buffer_of<S, T> h1, g1, qkv, att, x_mid, h2, g2, up, act;
  buffer_of<S, A> mean1, rstd1, lse, mean2, rstd2;
  buffer_of<S, T> d_down, d_up, d_proj, dqkv;  // kept for a deferred weight-gradient pass (W)
  /// Bytes held (capacity) — what the activation accounting counts.
  std::int64_t bytes() const {
    std::int64_t n = 0;
    for (const auto* v : {&h1, &g1, &qkv, &att, &x_mid, &h2, &g2, &up, &act, &d_down, &d_up, &d_proj, &dqkv})
      n += static_cast<std::int64_t>(v->capacity() * sizeof(T));
    for (const auto* v : {&mean1, &rstd1, &lse, &mean2, &rstd2}) n += static_cast<std::int64_t>(v->capacity() * sizeof(A));
    return n;
  }
};
template <class T, class S = host_system>
struct mb_state {
  using A = ops::acc_t<T>;
  std::vector<buffer_of<S, T>> xs;  ///< residual stream at each layer boundary (xs[0] = chunk input)
  std::vector<layer_cache<T, S>> layers;
  buffer_of<S, T> hf, gf, logits;   ///< head
  buffer_of<S, A> meanf, rstdf, lse, loss;
  buffer_of<S, T> dx;               ///< gradient of the chunk input (to send back)
  buffer_of<S, T> dy;               ///< gradient of the chunk output (received)
  std::vector<std::function<void()>> deferred;  ///< weight-gradient work of a split backward
  bool backward_follows = false;  ///< set by the executor: a backward of this microbatch will run
  bool logits_hold_grad = false;  ///< the head's forward left the logits' gradient (scale 1) in `logits`
  std::int64_t bytes() const {
    std::int64_t n = 0;
    for (const auto& x : xs) n += static_cast<std::int64_t>(x.capacity() * sizeof(T));
    for (const auto& l : layers) n += l.bytes();
    for (const auto* v : {&hf, &gf, &logits, &dx, &dy}) n += static_cast<std::int64_t>(v->capacity() * sizeof(T));
    for (const auto* v : {&meanf, &rstdf, &lse, &loss}) n += static_cast<std::int64_t>(v->capacity() * sizeof(A));
    return n;
  }
  const std::int32_t* tokens = nullptr;   ///< in S's memory
  const std::int32_t* targets = nullptr;  ///< in S's memory
  double* loss_out = nullptr;  ///< where a last stage's forward writes the summed token loss (S's memory)
};

}  // namespace tessera
