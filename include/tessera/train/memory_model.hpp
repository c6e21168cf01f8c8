// tessera/train/memory_model.hpp — what a rank's memory should hold, predicted from the plan alone; the
// trainer logs each prediction beside its measurement (state_bytes.py and activation_bytes.py test both).
//
//   predicted_state_bytes       parameters, gradients, AdamW moments and fp32 masters under ZeRO 0–3
//   chunk_state_bytes           one microbatch state of a chunk (what the backward keeps)
//   predicted_activation_bytes  the most states the rank's pipeline program keeps at once × their bytes
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "tessera/model/transformer.hpp"
#include "tessera/train/pipeline_executor.hpp"
#include "tessera/train/plan.hpp"

namespace tessera {

/// Bytes of one kind of element: values/activations (T) and accumulators/optimizer state (fp32).
struct element_bytes {
  double value = 4;  ///< sizeof(T)
  double acc = 4;    ///< sizeof(ops::acc_t<T>) = sizeof(ops::grad_t<T>)
  bool masters = false;  ///< fp32 master copies beside bf16 values
};

/// The ZeRO formula: per parameter, moments + fp32 masters (divided over dp at stage >= 1), gradients
/// (at stage >= 2) and values (at stage 3); parameters shared by several pipeline ranks are never divided.
/// numel[i], shared[i]: slot i's elements and whether pipeline ranks share it. `zero`: the stage in effect
/// (0 when dp == 1 or nothing can be sharded).
inline double predicted_state_bytes(const std::vector<std::int64_t>& numel, const std::vector<bool>& shared, int dp,
                                    int zero, element_bytes e) {
  const double value = e.value, grad = e.acc, state = 2.0 * e.acc + (e.masters ? e.acc : 0);
  double b = 0;
  for (std::size_t i = 0; i < numel.size(); ++i) {
    const double n = static_cast<double>(numel[i]);
    const double split = shared[i] ? 1.0 : dp;
    b += n * (value / (zero >= 3 ? split : 1.0) + grad / (zero >= 2 ? split : 1.0) + state / (zero >= 1 ? split : 1.0));
  }
  return b;
}

/// Bytes one microbatch state of a chunk of model stage `ms` holds: the residual stream at each layer
/// boundary, each layer's saved tensors (Korthikanti et al. 2022's terms for this implementation: norm
/// outputs, q|k|v, attention output and log-sum-exp, the residual after attention, MLP input and
/// activation; sequence parallelism's gathered copies; none of them kept under full recompute, and not
/// the attention under selective), the head's logits, and the gradients received and sent.
inline double chunk_state_bytes(const plan_desc& pd, const chunk_dims& d, int ms, element_bytes e) {
  const double t = e.value, a = e.acc;
  const double R = static_cast<double>(d.rows), Rl = static_cast<double>(d.local_rows), C = static_cast<double>(d.hidden);
  const bool ln = pd.model.norm == norm::layernorm;
  const schedule_kind k = pd.schedule.kind;
  const bool split = k == schedule_kind::zb_h1 || k == schedule_kind::zbv || k == schedule_kind::dualpipe_v;
  // a layer's cache: saved tensors, attention, and the output gradients its backward leaves in it
  const double kept = t * (Rl * C * 3 + (d.sp ? 2 * R * C : 0) + R * static_cast<double>(d.qkv_cols + d.up_cols + d.ffn)) +
                      a * (Rl * (ln ? 4 : 2));
  const double attention = t * R * static_cast<double>(d.q_heads * d.head_dim) + a * static_cast<double>(d.seqs * d.q_heads * d.seq_len);
  const double grads = t * R * (2 * C + static_cast<double>(d.up_cols + d.qkv_cols));
  const double whole = kept + attention + grads;
  // with recompute, a layer's cache is rebuilt for its backward and freed right after it (a transient
  // not counted here, nor in the measurement between actions) — unless a split backward keeps it for
  // the deferred weight pass, so the layers of such a microbatch become whole again
  double layer = whole;
  if (d.recompute != recompute_kind::none && !split) layer = d.recompute == recompute_kind::selective ? kept : 0.0;
  const double nl = pd.layer_begin[ms + 1] - pd.layer_begin[ms];
  double b = t * (nl + 1) * Rl * C + nl * layer + 2 * t * Rl * C;  // xs, layers, dx and dy
  if (ms == pd.model_stages - 1)
    b += t * (Rl * C + (d.sp ? R * C : 0) + R * static_cast<double>(d.vocab_rows)) + a * (Rl * (ln ? 2 : 1) + 2 * R);
  return b;
}

/// Replays the program: which (stage, microbatch) states exist after each action (each from its first
/// action to its last, weight-gradient passes included, then pooled for reuse), and the most bytes held
/// at once. chunk_of_stage[g]: index of stage g's chunk on this rank (-1 elsewhere).
inline double predicted_activation_bytes(const plan_desc& pd, const chunk_dims& d, const pipeline_program& p,
                                         const std::vector<int>& chunk_of_stage, element_bytes e) {
  std::vector<double> per_chunk;
  for (std::size_t g = 0; g < chunk_of_stage.size(); ++g)
    if (chunk_of_stage[g] >= 0) per_chunk.push_back(chunk_state_bytes(pd, d, pd.model_stage(static_cast<int>(g)), e));
  std::map<std::pair<int, int>, int> live;
  double peak = 0, cur = 0;
  std::size_t pooled = 0;
  double pooled_bytes = 0;
  auto bytes_of = [&](int c) { return per_chunk[static_cast<std::size_t>(c)]; };
  for (std::size_t idx = 0; idx < p.actions.size(); ++idx) {
    const action& x = p.actions[idx];
    auto touch = [&](int g, int j) {
      if (live.count({g, j})) return;
      const int c = chunk_of_stage[static_cast<std::size_t>(g)];
      live[{g, j}] = c;
      cur += bytes_of(c);
      if (pooled > 0) {  // a pooled state is reused (its buffers count once)
        --pooled;
        pooled_bytes -= bytes_of(c);
      }
    };
    for (int pi = 0; pi < num_parts(x); ++pi) {
      const action y = part(x, pi);
      touch(y.stage, y.mb);
      const bool next_here = !is_last_stage(pd.schedule, y.stage) &&
                             chunk_of_stage[static_cast<std::size_t>(y.stage) + 1] >= 0;
      if (y.kind == op::F && next_here) touch(y.stage + 1, y.mb);
    }
    if (is_comm(x.kind)) touch(x.stage, x.mb);
    peak = std::max(peak, cur + std::max(0.0, pooled_bytes));
    for (auto [g, j] : p.release_after[idx]) {
      auto it = live.find({g, j});
      if (it == live.end()) continue;
      cur -= bytes_of(it->second);
      ++pooled;
      pooled_bytes += bytes_of(it->second);
      live.erase(it);
    }
  }
  return peak;
}

}  // namespace tessera
