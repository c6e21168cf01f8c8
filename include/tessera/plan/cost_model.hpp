// tessera/plan/cost_model.hpp — what a plan costs before it runs: time per iteration and memory per
// device, from the model's shapes, the plan's choices and the machine (all constexpr, also at run time).
//
// Every term, with its source, is in docs/planner.md. In short, for one microbatch of b sequences of
// length s (T = b·s tokens) through one layer on one device of a tp group:
//   GEMMs          2·m·n·k FLOPs at peak · gemm_efficiency · Π over m, n, k of x/(x + gemm_half_size);
//                  forward (F), input gradient (I) and weight gradient (W) each one pass
//   attention      4·T·s·(heads/tp)·head_dim FLOPs forward (half with fused causal attention), twice that
//                  in I, at peak · attention_efficiency; unfused: scores moved at memory bandwidth too
//   memory-bound   norms, residuals, activations: bytes at memory_bw · memory_efficiency (I: twice F)
//   tp             Megatron's 2 all-reduces of T·hidden values in F and 2 in I (sequence parallel: the
//                  same ring volume as all-gather + reduce-scatter), NVLink inside a node
//   recompute      full: I repeats F; selective: I repeats the attention core
//   pp             one activation (T·hidden/tp values) sent per stage boundary with F and with I
// A pipeline action on a stage of n layers costs n times that (plus its p2p); the pipeline's makespan is
// the schedule's own table run by simulate_timeline under those costs (pipeline_makespan), plus the head
// on the last stage. Then data-parallel gradient reduction (or ZeRO's collectives), the exposed part of
// it, and the optimizer pass.
//
// With a measured host (cost_context::measured, a tessera_calibrate profile; run time only) GEMMs take the
// measured sgemm rate of their shape, attention the host kernel's measured rate, memory-bound passes the
// measured activation-sized rate, each divided among the ranks sharing a core (measured_rates below), and
// pipeline bubbles pass at the unshared rate; communication is the profile's α–β links as for any device.
#pragma once
#include <cstdint>
#include <type_traits>

#include "tessera/model/config.hpp"
#include "tessera/plan/hardware.hpp"
#include "tessera/schedule/generators.hpp"
#include "tessera/schedule/metrics.hpp"

namespace tessera {

/// Every choice a plan makes, as plain values.
struct plan_point {
  int tp = 1, pp = 1, dp = 1;
  int microbatch_size = 1;  ///< sequences per microbatch
  int microbatches = 1;     ///< M: microbatches per step per data-parallel replica
  schedule_kind schedule = schedule_kind::one_f_one_b;
  int chunks = 1;           ///< V for interleaved 1F1B; 1 for the others
  int zero = 0;
  recompute_kind recompute = recompute_kind::none;
  bool sequence_parallel = false;
  bool bf16 = true;

  constexpr schedule_shape shape() const { return {schedule, pp, microbatches, schedule == schedule_kind::interleaved ? chunks : 2}; }
  constexpr int global_batch() const { return dp * microbatches * microbatch_size; }
  constexpr int gpus() const { return tp * pp * dp; }
  /// Pipeline stages of the schedule and layers per stage ("chunk").
  constexpr int stages() const { return pp == 1 ? 1 : num_stages(shape()); }
  constexpr int model_stages() const { return schedule == schedule_kind::chimera && pp > 1 ? pp : stages(); }
};

/// Seconds one microbatch takes through one action of one stage, per part.
struct action_costs {
  double f = 0, i = 0, w = 0;
};

/// The prediction for one plan.
struct prediction {
  double iteration_s = 0;      ///< one optimizer step
  double tokens_per_s = 0;
  double mfu = 0;              ///< model FLOPs (no recompute) / (iteration · devices · peak)
  double memory_bytes = 0;     ///< on the fullest device
  double state_bytes = 0;      ///< parameters, gradients, optimizer state
  double activation_bytes = 0;
  double pipeline_s = 0;       ///< the pipeline's makespan (with the head)
  double bubble_s = 0;         ///< pipeline_s − the busiest device's compute
  double exposed_comm_s = 0;   ///< communication not hidden behind compute (tp, pp, dp)
  double optimizer_s = 0;
  bool fits = false;           ///< memory_bytes ≤ the device's memory
};

namespace cost_detail {
constexpr double saturation(double x, double half) { return x / (x + half); }
constexpr double ring_allreduce_s(double bytes, int n, double bw, double latency) {
  return n <= 1 ? 0.0 : 2.0 * (n - 1) / n * bytes / bw + 2.0 * (n - 1) * latency;
}
constexpr double ring_half_s(double bytes, int n, double bw, double latency) {  // reduce-scatter or all-gather
  return n <= 1 ? 0.0 : 1.0 * (n - 1) / n * bytes / bw + 1.0 * (n - 1) * latency;
}
}  // namespace cost_detail

/// Rates measured on the machine itself (a host profile, tessera/plan/host_profile.hpp), read at run time
/// instead of the device_desc's formulas. Constant evaluation never sees them (no GPU device has one).
///   gemm_flops            the sgemm rate of that shape on one rank, measured with all ranks running:
///                         the host's GEMMs are OpenBLAS calls, whose rate depends on the shape in ways
///                         (blocking, packing, small-size overhead) the saturation formula does not follow
///   attention_flops_per_s the host attention kernel's forward and backward rates at a head size, in
///                         the cost model's FLOPs (4·T·s·heads·D forward, twice that backward): a tiled
///                         kernel of small GEMMs plus an exp per score, far below the GEMM rate
///   memory_bound_bytes_per_s  memory-bound passes over activation-sized arrays (mostly cache-resident)
///   cpu_share             the fraction of a core each rank gets while all ranks compute at once (ranks
///                         sustaining a GEMM together, against one call's burst rate): below 1 when the
///                         ranks outnumber the free cores, which the short calls above do not see
struct measured_rates {
  virtual ~measured_rates() = default;
  virtual double gemm_flops(double m, double n, double k) const = 0;
  virtual double attention_flops_per_s(double head_dim, bool backward) const = 0;
  virtual double memory_bound_bytes_per_s() const = 0;
  virtual double cpu_share() const = 0;
};

/// Everything the cost functions need, bound together.
struct cost_context {
  model_desc model{};
  cluster_desc cluster{};
  software_desc software{};
  const measured_rates* measured = nullptr;  ///< run time only; null: the device_desc's formulas

  /// The measured rates, when there are some and this is not a constant evaluation.
  constexpr const measured_rates* rates() const { return std::is_constant_evaluated() ? nullptr : measured; }

  constexpr double peak(const plan_point& p) const { return p.bf16 ? cluster.device.peak_bf16 : cluster.device.peak_fp32; }
  constexpr double value_bytes(const plan_point& p) const { return p.bf16 ? 2.0 : 4.0; }
  constexpr double gemm_s(const plan_point& p, double m, double n, double k) const {
    if (const measured_rates* r = rates()) return 2.0 * m * n * k / (r->gemm_flops(m, n, k) * r->cpu_share());
    const device_desc& d = cluster.device;
    const double eff = d.gemm_efficiency * cost_detail::saturation(m, d.gemm_half_size) *
                       cost_detail::saturation(n, d.gemm_half_size) * cost_detail::saturation(k, d.gemm_half_size);
    return 2.0 * m * n * k / (peak(p) * eff);
  }
  constexpr double memory_s(double bytes) const {
    if (const measured_rates* r = rates()) return bytes / (r->memory_bound_bytes_per_s() * r->cpu_share());
    return bytes / (cluster.device.memory_bw * cluster.device.memory_efficiency);
  }
  /// The attention core of one microbatch on one device, forward (or backward): `flops` of the forward.
  constexpr double attention_s(const plan_point& p, double flops, bool backward) const {
    if (const measured_rates* r = rates())
      return (backward ? 2.0 : 1.0) * flops / (r->attention_flops_per_s(model.head_dim, backward) * r->cpu_share());
    return (backward ? 2.0 : 1.0) * flops / (peak(p) * cluster.device.attention_efficiency);
  }
  /// Link between ranks `stride` apart in a group of n: NVLink when the whole group fits in a node.
  constexpr bool intra_node(int span) const { return span <= cluster.gpus_per_node; }
  constexpr double allreduce_s(double bytes, int n, int span) const {
    const device_desc& d = cluster.device;
    return intra_node(span) ? cost_detail::ring_allreduce_s(bytes, n, d.intra_bw, d.intra_latency)
                            : cost_detail::ring_allreduce_s(bytes, n, d.inter_bw, d.inter_latency);
  }
};

/// One layer, one microbatch, one device: forward, input-gradient and weight-gradient seconds
/// (tensor-parallel communication and recompute included).
constexpr action_costs layer_costs(const cost_context& c, const plan_point& p) {
  const model_desc& m = c.model;
  const double t = p.tp, T = 1.0 * p.microbatch_size * m.seq, C = m.hidden, D = m.head_dim;
  const double e = c.value_bytes(p);
  const double qkv = (m.heads + 2.0 * m.kv_heads) * D / t, att = m.heads * D / t;
  const double up = m.ffn * (m.mlp == mlp::swiglu ? 2.0 : 1.0) / t, ffn = m.ffn / t;
  const double gemms = c.gemm_s(p, T, qkv, C) + c.gemm_s(p, T, C, att) + c.gemm_s(p, T, up, C) + c.gemm_s(p, T, C, ffn);
  const software_desc& sw = c.software;
  // measured: the host kernel's own rates (tiled, so no scores in memory; the causal half is in its rate)
  const bool measured = c.rates() != nullptr, fused = sw.fused_attention && !measured;
  const double att_flops = 4.0 * T * m.seq * (m.heads / t) * D * (fused ? 0.5 : 1.0);
  double attention = c.attention_s(p, att_flops, false), attention_i = c.attention_s(p, att_flops, true);
  if (!sw.fused_attention && !measured) {
    attention += c.memory_s(sw.score_bytes * p.microbatch_size * (m.heads / t) * m.seq * m.seq);
    attention_i = 2.0 * attention;
  }
  const double rows = p.sequence_parallel ? T / t : T;
  const double elementwise = c.memory_s(e * (sw.elementwise_passes * rows * C + (m.mlp == mlp::swiglu ? 3.0 : 2.0) * T * ffn));
  const double tp_comm = p.tp > 1 ? 2.0 * c.allreduce_s(e * T * C, p.tp, p.tp) * (1.0 - sw.tp_overlap) : 0.0;
  action_costs a;
  a.f = gemms + attention + elementwise + tp_comm;
  a.i = gemms + attention_i + 2.0 * elementwise + tp_comm;
  a.w = gemms;
  if (p.recompute == recompute_kind::full) a.i += a.f;
  if (p.recompute == recompute_kind::selective) a.i += attention;  // the forward's attention again
  return a;
}

/// Tensor-parallel communication in one layer's F + I (for the exposed-communication column).
constexpr double layer_tp_comm_s(const cost_context& c, const plan_point& p) {
  if (p.tp <= 1) return 0.0;
  const double T = 1.0 * p.microbatch_size * c.model.seq;
  const double one = c.allreduce_s(c.value_bytes(p) * T * c.model.hidden, p.tp, p.tp) * (1.0 - c.software.tp_overlap);
  return (p.recompute == recompute_kind::full ? 6.0 : 4.0) * one;
}

/// One pipeline send (activation or its gradient) of one microbatch between neighbouring stages.
constexpr double p2p_s(const cost_context& c, const plan_point& p) {
  if (p.pp <= 1) return 0.0;
  const double bytes = c.value_bytes(p) * p.microbatch_size * c.model.seq * c.model.hidden / p.tp;
  const device_desc& d = c.cluster.device;
  const bool intra = c.intra_node(p.tp * p.pp);
  const double s = intra ? bytes / d.intra_bw + d.intra_latency : bytes / d.inter_bw + d.inter_latency;
  return s * (1.0 - c.software.pp_overlap);
}

/// The head (final norm, logits GEMM, cross-entropy) of one microbatch: forward plus backward.
constexpr double head_s(const cost_context& c, const plan_point& p) {
  const model_desc& m = c.model;
  const double T = 1.0 * p.microbatch_size * m.seq, vocab = (m.vocab + p.tp - 1) / p.tp;
  const double gemm = c.gemm_s(p, T, vocab, m.hidden);
  return 3.0 * gemm + c.memory_s(4.0 * T * vocab * 4.0);
}

/// Layers of each pipeline stage (even split).
constexpr int layers_per_stage(const model_desc& m, const plan_point& p) { return m.layers / p.model_stages(); }

/// F, I, W of one action on one stage (a chunk of layers), its sends included.
constexpr action_costs stage_costs(const cost_context& c, const plan_point& p) {
  const action_costs l = layer_costs(c, p);
  const double n = layers_per_stage(c.model, p), send = p2p_s(c, p);
  return {n * l.f + send, n * l.i + send, n * l.w};
}

namespace cost_detail {
constexpr double simulate(schedule_kind k, int P, int M, int V, const schedule_costs& sc) {
  return simulate_timeline(make_schedule<dynamic_storage>(schedule_shape{k, P, M, V}), sc).makespan;
}
}  // namespace cost_detail

/// From how many microbatches on the makespan of `kind` at P ranks is affine in M, and its period:
/// gpipe, 1f1b 1; zb_h1, interleaved, chimera P; zbv, dualpipe_v 2P (their least M). Interleaved and
/// Chimera move in steps of P microbatches, the others in steps of 1.
constexpr int affine_from(schedule_kind k, int P) {
  switch (k) {
    case schedule_kind::gpipe:
    case schedule_kind::one_f_one_b: return 1;
    case schedule_kind::zbv:
    case schedule_kind::dualpipe_v: return 2 * P;
    default: return P;
  }
}
constexpr int affine_step(schedule_kind k, int P) {
  return k == schedule_kind::interleaved || k == schedule_kind::chimera ? P : 1;
}

/// Makespan of the schedule's own table under per-action costs. Past affine_from(kind, P) + its step the
/// table is run at those two sizes and extended affinely: each schedule here repeats a fixed pattern
/// after its warm-up (tests/plan check the extension against the whole table for every kind, P and M).
constexpr double pipeline_makespan(schedule_kind k, int P, int M, int V, const schedule_costs& sc) {
  if (P <= 1) return M * (sc.f + sc.b + sc.w);
  const int m0 = affine_from(k, P), step = affine_step(k, P);
  if (M <= m0 + step) return cost_detail::simulate(k, P, M, V, sc);
  const double t0 = cost_detail::simulate(k, P, m0, V, sc), t1 = cost_detail::simulate(k, P, m0 + step, V, sc);
  return t0 + (M - m0) / static_cast<double>(step) * (t1 - t0);
}

/// The most chunk activations any rank of the schedule holds at once (tests/plan check each form
/// against peak_activations over the schedule's table): gpipe M; 1f1b, zb_h1 min(P, M); interleaved
/// min(2(P−1) + (V−1)P + 1, V·M); chimera P (P > 2) or 2; zbv 2P; dualpipe_v 2P + 1.
constexpr int inflight_activations(const plan_point& p) {
  const int P = p.pp, M = p.microbatches, V = p.chunks;
  if (P <= 1) return 1;
  switch (p.schedule) {
    case schedule_kind::gpipe: return M;
    case schedule_kind::one_f_one_b:
    case schedule_kind::zb_h1: return P < M ? P : M;
    case schedule_kind::interleaved: {
      const int w = 2 * (P - 1) + (V - 1) * P + 1;
      return w < V * M ? w : V * M;
    }
    case schedule_kind::chimera: return P > 2 ? P : 2;
    case schedule_kind::zbv: return 2 * P;
    case schedule_kind::dualpipe_v: return 2 * P + 1;
  }
  return M;
}

/// Parameters of one transformer layer on one device of a tp group (norms counted once).
constexpr double layer_params(const model_desc& m, int tp) {
  const double C = m.hidden, D = m.head_dim, F = m.ffn, t = tp;
  const double qkv = C * (m.heads + 2.0 * m.kv_heads) * D / t, proj = m.heads * D * C / t;
  const double mlp = ((m.mlp == mlp::swiglu ? 2.0 : 1.0) + 1.0) * C * F / t;
  const double bias = m.bias ? ((m.heads + 2.0 * m.kv_heads) * D + (m.mlp == mlp::swiglu ? 2.0 : 1.0) * F) / t + 2 * C : 0.0;
  return qkv + proj + mlp + bias + (m.norm == norm::layernorm ? 4.0 : 2.0) * C;
}

/// Parameters on the fullest device: its stages' layers plus the embedding (first stage) and the head
/// (last stage), whichever side is larger; both when one rank holds both ends.
constexpr double device_params(const model_desc& m, const plan_point& p) {
  const double per_rank_layers = 1.0 * m.layers / p.pp * (p.schedule == schedule_kind::chimera && p.pp > 1 ? 2 : 1);
  const double vocab = 1.0 * m.vocab * m.hidden / p.tp;
  const double embed = vocab + (m.position == position::learned ? 1.0 * m.seq * m.hidden : 0.0);
  const double head = vocab;  // untied: the head's matrix; tied and pp > 1: the last stage's copy
  const bool both_ends = p.pp == 1 || p.schedule == schedule_kind::zbv || p.schedule == schedule_kind::dualpipe_v ||
                         p.schedule == schedule_kind::chimera;
  double ends = both_ends ? embed + (m.tied_embeddings && p.pp == 1 ? 0.0 : head) : (embed > head ? embed : head);
  return per_rank_layers * layer_params(m, p.tp) + ends;
}

/// Bytes of parameters, gradients and AdamW state on the fullest device under ZeRO (values, fp32
/// gradients, fp32 moments, fp32 masters with bf16).
/// `params`: device_params(c.model, p), when the caller has it already.
constexpr double state_bytes(const cost_context& c, const plan_point& p, double params = -1) {
  const double n = params >= 0 ? params : device_params(c.model, p), e = c.value_bytes(p), d = p.dp;
  const double state = 8.0 + (p.bf16 ? 4.0 : 0.0);
  return n * (e / (p.zero >= 3 ? d : 1.0) + 4.0 / (p.zero >= 2 ? d : 1.0) + state / (p.zero >= 1 ? d : 1.0));
}

/// Bytes one microbatch state of a stage keeps for its backward — the terms of the trainer's own memory
/// model (train/memory_model.hpp: chunk_state_bytes; tests/plan compare the two): per layer the saved
/// tensors, the attention output and log-sum-exp and the gradients in flight, nothing under full
/// recompute, no attention under selective (both only when the backward is not split); the residual
/// stream at each layer boundary; on the last stage the head's logits.
constexpr double megatron_stage_activation_bytes(const cost_context& c, const plan_point& p, bool last_stage);

constexpr double stage_activation_bytes(const cost_context& c, const plan_point& p, bool last_stage) {
  if (c.software.megatron_activations) return megatron_stage_activation_bytes(c, p, last_stage);
  const model_desc& m = c.model;
  const double t = c.value_bytes(p), a = 4.0, tp = p.tp;
  const double R = 1.0 * p.microbatch_size * m.seq, Rl = p.sequence_parallel ? R / tp : R, C = m.hidden;
  const double qkv = (m.heads + 2.0 * m.kv_heads) * m.head_dim / tp, ffn = m.ffn / tp;
  const double up = ffn * (m.mlp == mlp::swiglu ? 2.0 : 1.0), qh = m.heads / tp;
  const bool ln = m.norm == norm::layernorm;
  const bool split = p.schedule == schedule_kind::zb_h1 || p.schedule == schedule_kind::zbv ||
                     p.schedule == schedule_kind::dualpipe_v;
  const double kept = t * (Rl * C * 3 + (p.sequence_parallel ? 2 * R * C : 0) + R * (qkv + up + ffn)) + a * Rl * (ln ? 4 : 2);
  const double attention = t * R * qh * m.head_dim + a * p.microbatch_size * qh * m.seq;
  const double grads = t * R * (2 * C + up + qkv);
  double layer = kept + attention + grads;
  if (p.recompute != recompute_kind::none && !split) layer = p.recompute == recompute_kind::selective ? kept : 0.0;
  const double nl = layers_per_stage(m, p);
  double b = t * (nl + 1) * Rl * C + nl * layer + 2 * t * Rl * C;
  if (last_stage) {
    const double vocab_rows = (m.vocab + p.tp - 1) / p.tp;
    b += t * (Rl * C + (p.sequence_parallel ? R * C : 0) + R * vocab_rows) + a * (Rl * (ln ? 2 : 1) + 2 * R);
  }
  return b;
}

/// Megatron-LM's accounting (Korthikanti et al. 2022, Table 2, 2-byte values) of a stage's microbatch:
/// per layer s·b·h·(10 + 24/t) without sequence parallelism, 34/t with it, plus 5·a·s/(h·t) for unfused
/// attention scores; selective recompute drops the scores; full recompute keeps 2·s·b·h (÷t with sequence
/// parallelism) per layer; the last stage adds fp32 logits.
constexpr double megatron_stage_activation_bytes(const cost_context& c, const plan_point& p, bool last_stage) {
  const model_desc& m = c.model;
  const double s = m.seq, b = p.microbatch_size, h = m.hidden, a = m.heads, t = p.tp, e = c.value_bytes(p) / 2.0;
  const double sbh = s * b * h * e;
  double layer = p.sequence_parallel ? sbh * 34.0 / t : sbh * (10.0 + 24.0 / t);
  if (!c.software.fused_attention && p.recompute == recompute_kind::none) layer += sbh * 5.0 * a * s / (h * t);
  if (p.recompute == recompute_kind::full) layer = 2.0 * sbh / (p.sequence_parallel ? t : 1.0);
  double bytes = layers_per_stage(m, p) * layer;
  if (last_stage) bytes += 4.0 * s * b * (m.vocab / t);
  return bytes;
}

/// Seconds of the data-parallel reduction of one step (or ZeRO's collectives) and the part of it that
/// may hide behind the backward. ZeRO 0: all-reduce of the gradients; 1: reduce-scatter of the gradients
/// and all-gather of the values; 2: a reduce-scatter per microbatch; 3: also two all-gathers of the values
/// per microbatch (before its forward and its backward), as the trainer does (train/zero_state.hpp).
/// Inside a node NVLink, across nodes each GPU's own NIC (hierarchical: k members of the group per node).
constexpr double dp_comm_s(const cost_context& c, const plan_point& p, double params = -1) {
  if (p.dp <= 1) return 0.0;
  const device_desc& d = c.cluster.device;
  const double n = params >= 0 ? params : device_params(c.model, p), g = n * c.software.grad_reduce_bytes, v = n * c.value_bytes(p);
  int k = c.cluster.gpus_per_node / (p.tp * p.pp);
  if (k < 1) k = 1;
  if (k > p.dp) k = p.dp;
  const int nodes = p.dp / k;
  auto half = [&](double bytes) {  // one reduce-scatter or all-gather of `bytes`
    return cost_detail::ring_half_s(bytes, k, d.intra_bw, d.intra_latency) +
           cost_detail::ring_half_s(bytes / k, nodes, d.inter_bw, d.inter_latency);
  };
  const double M = p.microbatches;
  switch (p.zero) {
    case 0: return 2.0 * half(g);
    case 1: return half(g) + half(v);
    case 2: return M * half(g) + half(v);
    default: return M * half(g) + 2.0 * M * half(v);
  }
}

/// AdamW over the device's shard of the state, and the gradient norm: memory-bound passes.
constexpr double optimizer_s(const cost_context& c, const plan_point& p, double params = -1) {
  const double n = (params >= 0 ? params : device_params(c.model, p)) / (p.zero >= 1 ? p.dp : 1);
  const double e = c.value_bytes(p), masters = p.bf16 ? 4.0 : 0.0;
  return c.memory_s(n * (2.0 * (e + 4.0 + 8.0 + masters) + 4.0));
}

/// Memory on the fullest device: state + the schedule's in-flight activations (+ the head's on the last
/// stage) + ZeRO-3's gathered values of two layers + what the device reserves.
constexpr double memory_bytes(const cost_context& c, const plan_point& p, double params = -1) {
  const bool head_with_first = p.pp == 1 || p.schedule == schedule_kind::zbv || p.schedule == schedule_kind::dualpipe_v;
  const double with_head = stage_activation_bytes(c, p, true);
  const double acts = head_with_first ? inflight_activations(p) * with_head
                                      : inflight_activations(p) * stage_activation_bytes(c, p, false) +
                                            (with_head - stage_activation_bytes(c, p, false));
  // ZeRO-3 gathers one layer's values while it runs and prefetches the next (train/zero_state.hpp)
  const double gathered = p.zero >= 3 ? 2.0 * layer_params(c.model, p.tp) * c.value_bytes(p) : 0.0;
  return state_bytes(c, p, params) + acts + gathered + c.cluster.device.reserved_bytes;
}

/// The compute of the busiest pipeline rank: its stages' F, I, W for every microbatch of their pipeline
/// (Chimera: each of a rank's two stages sees half the microbatches).
constexpr double pipeline_busy(const plan_point& p, const schedule_costs& c) {
  const int per_rank = p.pp > 1 ? p.stages() / p.pp : 1;
  return p.microbatches * (c.f + c.b + c.w) * per_rank * (p.schedule == schedule_kind::chimera && p.pp > 1 ? 0.5 : 1.0);
}

/// The time of one iteration (every field of `prediction` but memory). `makespan_of` computes the
/// pipeline's makespan from its per-action costs (pipeline_makespan, or an estimate while searching).
template <class Makespan>
constexpr prediction predict_time(const cost_context& c, const plan_point& p, Makespan&& makespan_of, double params) {
  prediction r;
  const action_costs a = stage_costs(c, p);
  const schedule_costs sc{a.f, a.i, a.w, a.f + a.i + a.w};
  const bool chimera = p.schedule == schedule_kind::chimera && p.pp > 1;
  const double head = (chimera ? p.microbatches / 2 : p.microbatches) * head_s(c, p);
  double pipe = makespan_of(p, sc);
  const int stages_per_rank = p.pp > 1 ? p.stages() / p.pp : 1;
  const double busy = pipeline_busy(p, sc);
  // host ranks sharing cores (measured_rates::cpu_share < 1): a rank waiting in a bubble blocks in MPI and
  // leaves its part of the cores to the ranks that compute, so the bubble passes at the unshared rate
  if (const measured_rates* m = c.rates(); m && pipe > busy) pipe = busy + m->cpu_share() * (pipe - busy);
  r.pipeline_s = pipe + head;
  r.bubble_s = pipe - busy;
  const double dp = dp_comm_s(c, p, params);
  // the backward window the reduction can hide in: the whole pipeline when ZeRO 2/3 reduce per microbatch
  const double window = p.zero >= 2 ? r.pipeline_s : r.pipeline_s * 0.5;
  double dp_exposed = dp * (1.0 - c.software.dp_overlap);
  if (dp - window > dp_exposed) dp_exposed = dp - window;
  r.optimizer_s = optimizer_s(c, p, params);
  r.iteration_s = r.pipeline_s + dp_exposed + r.optimizer_s;
  const double sends = p.pp > 1 ? 2.0 * p2p_s(c, p) * p.microbatches * stages_per_rank : 0.0;
  r.exposed_comm_s = dp_exposed + sends + layer_tp_comm_s(c, p) * layers_per_stage(c.model, p) * stages_per_rank * p.microbatches;
  const double tokens = 1.0 * p.global_batch() * c.model.seq;
  r.tokens_per_s = tokens / r.iteration_s;
  r.mfu = flops_per_token(c.model) * tokens / (r.iteration_s * p.gpus() * c.peak(p));
  return r;
}

/// The full prediction for one plan (time as predict_time, and memory).
template <class Makespan>
constexpr prediction predict_with(const cost_context& c, const plan_point& p, Makespan&& makespan_of) {
  const double params = device_params(c.model, p);
  prediction r = predict_time(c, p, makespan_of, params);
  r.state_bytes = state_bytes(c, p, params);
  r.memory_bytes = memory_bytes(c, p, params);
  r.activation_bytes = r.memory_bytes - r.state_bytes - c.cluster.device.reserved_bytes;
  r.fits = r.memory_bytes <= c.cluster.device.memory_bytes;
  return r;
}

/// The prediction with the schedule's table simulated (pipeline_makespan).
constexpr prediction predict(const cost_context& c, const plan_point& p) {
  return predict_with(c, p, [](const plan_point& q, const schedule_costs& sc) {
    return pipeline_makespan(q.schedule, q.pp, q.microbatches, q.schedule == schedule_kind::interleaved ? q.chunks : 2, sc);
  });
}

}  // namespace tessera
