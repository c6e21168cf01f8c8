// tests/plan: the cost model's contracts — the pipeline makespan's affine extension equals the whole
// schedule table, the in-flight closed forms equal the table's peaks, the activation terms equal the
// trainer's own memory model, the branch-and-bound lower bound is below the table, and the terms behave
// as documented (recompute, tp, dp, ZeRO).
#include <doctest/doctest.h>

#include <cmath>

#include "tessera/plan/cost_model.hpp"
#include "tessera/train/memory_model.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/trainer.hpp"
#include "tessera/plan/search.hpp"

namespace ts = tessera;

namespace {
constexpr ts::schedule_kind all_kinds[] = {ts::schedule_kind::gpipe,       ts::schedule_kind::one_f_one_b, ts::schedule_kind::interleaved,
                                           ts::schedule_kind::chimera,     ts::schedule_kind::zb_h1,       ts::schedule_kind::zbv,
                                           ts::schedule_kind::dualpipe_v};
const ts::schedule_costs cost_sets[] = {{1, 1, 1, 3}, {1, 2, 1, 4}, {1, 1.3, 0.9, 3.2}, {2, 2.5, 1.2, 5.7}, {1, 0.7, 1.4, 3.1}, {1, 3, 0.2, 4.2}};

double table_makespan(ts::schedule_kind k, int P, int M, int V, const ts::schedule_costs& c) {
  return ts::simulate_timeline(ts::make_dynamic_schedule({k, P, M, V}), c).makespan;
}

ts::cost_context gpu_context(const ts::model_desc& m) {
  return {m, {ts::hw::a100_80g::desc, 8, 4}, ts::sw::tessera_cuda};
}
ts::model_desc gpt(int layers, int hidden, int heads, int seq = 2048, int vocab = 51200) {
  return ts::resolve(ts::model_family::gpt, ts::gpt_config{.vocab = vocab, .seq = seq, .layers = layers, .hidden = hidden, .heads = heads});
}
}  // namespace

TEST_CASE("pipeline_makespan: the affine extension equals the whole table for every kind, P, M and cost") {
  int checked = 0;
  for (auto k : all_kinds)
    for (int P : {2, 3, 4, 6, 8})
      for (int V : {2, 3})
        for (int M = 1; M <= 7 * P; ++M) {
          if (k != ts::schedule_kind::interleaved && V != 2) continue;
          if (ts::validate({k, P, M, V}) != ts::schedule_error::none) continue;
          for (const auto& c : cost_sets) {
            const double full = table_makespan(k, P, M, V, c), fast = ts::pipeline_makespan(k, P, M, V, c);
            INFO(ts::schedule_kind_name(k), " P=", P, " M=", M, " V=", V, " f=", c.f, " b=", c.b, " w=", c.w);
            CHECK(fast == doctest::Approx(full).epsilon(1e-9));
            ++checked;
          }
        }
  CHECK(checked > 1000);
}

TEST_CASE("pipeline_makespan: one rank is gradient accumulation") {
  CHECK(ts::pipeline_makespan(ts::schedule_kind::zbv, 1, 8, 2, {1, 2, 3, 9}) == doctest::Approx(8 * 6.0));
}

TEST_CASE("inflight_activations: the closed forms equal the table's peak over ranks") {
  for (auto k : all_kinds)
    for (int P : {2, 3, 4, 6, 8})
      for (int V : {2, 3, 4})
        for (int M = 1; M <= 4 * P; ++M) {
          if (k != ts::schedule_kind::interleaved && V != 2) continue;
          if (ts::validate({k, P, M, V}) != ts::schedule_error::none) continue;
          const auto s = ts::make_dynamic_schedule({k, P, M, V});
          int peak = 0;
          for (int r = 0; r < P; ++r) peak = std::max(peak, ts::peak_activations(s, r));
          ts::plan_point p;
          p.pp = P, p.microbatches = M, p.schedule = k, p.chunks = k == ts::schedule_kind::interleaved ? V : 1;
          INFO(ts::schedule_kind_name(k), " P=", P, " M=", M, " V=", V);
          CHECK(ts::inflight_activations(p) == peak);
        }
}

TEST_CASE("fill_lower_bound: never above the table's makespan (branch and bound stays exact)") {
  for (auto k : all_kinds)
    for (int P : {2, 4, 6, 8})
      for (int M : {P, 2 * P, 4 * P}) {
        if (ts::validate({k, P, M, 2}) != ts::schedule_error::none) continue;
        for (const auto& c : cost_sets) {
          ts::plan_point p;
          p.pp = P, p.microbatches = M, p.schedule = k, p.chunks = k == ts::schedule_kind::interleaved ? 2 : 1;
          const double bound = ts::search_detail::busy_of(p, c) + ts::search_detail::fill_lower_bound(p, c);
          INFO(ts::schedule_kind_name(k), " P=", P, " M=", M);
          CHECK(bound <= table_makespan(k, P, M, 2, c) * (1 + 1e-12));
        }
      }
}

namespace {
template <class Plan>
void check_activations_match_trainer(int batch, bool last) {
  constexpr ts::plan_desc pd = Plan::desc;
  const ts::chunk_dims d = ts::chunk_dims_of(pd, Plan::model::head_dim, batch, 0);
  const bool bf16 = pd.policy.precision == ts::precision_kind::bf16;
  const ts::element_bytes e{bf16 ? 2.0 : 4.0, 4.0, bf16};
  ts::plan_point p;
  p.tp = pd.tp, p.pp = pd.pp, p.dp = pd.dp, p.microbatches = pd.schedule.microbatches;
  p.microbatch_size = batch / (pd.dp * p.microbatches), p.schedule = pd.schedule.kind, p.chunks = pd.schedule.chunks;
  p.recompute = pd.policy.recompute, p.sequence_parallel = pd.policy.sequence_parallel, p.bf16 = bf16;
  const ts::cost_context c{pd.model, {ts::hw::host::desc, 8, 1}, ts::sw::tessera_host};
  const int stage = last ? pd.model_stages - 1 : 0;
  CHECK(ts::stage_activation_bytes(c, p, last) == doctest::Approx(ts::chunk_state_bytes(pd, d, stage, e)));
}
using small_gpt = ts::gpt<ts::gpt_config{.vocab = 250, .seq = 32, .layers = 4, .hidden = 64, .heads = 4}>;
using small_llama = ts::llama<ts::llama_config{.vocab = 250, .seq = 32, .layers = 4, .hidden = 64, .heads = 4, .kv_heads = 2}>;
}  // namespace

TEST_CASE("stage_activation_bytes: the trainer's own memory model (chunk_state_bytes)") {
  check_activations_match_trainer<ts::plan<small_gpt, ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>>>(16, false);
  check_activations_match_trainer<ts::plan<small_gpt, ts::mesh<ts::dp<2>, ts::pp<2>, ts::tp<2>>, ts::one_f_one_b<4>>>(16, true);
  check_activations_match_trainer<ts::plan<small_llama, ts::mesh<ts::pp<2>, ts::tp<2>>, ts::zbv<4>, ts::precision<ts::bf16>,
                                           ts::recompute<ts::full>, ts::sequence_parallel>>(8, true);
  check_activations_match_trainer<ts::plan<small_llama, ts::mesh<ts::pp<2>, ts::tp<2>>, ts::interleaved_1f1b<2, 2>,
                                           ts::recompute<ts::selective>>>(4, false);
  check_activations_match_trainer<ts::plan<small_gpt, ts::mesh<ts::tp<4>>, ts::gpipe<2>, ts::recompute<ts::full>>>(4, true);
}

TEST_CASE("layer_costs: recompute, tensor parallelism and the GEMM model") {
  const ts::cost_context c = gpu_context(gpt(24, 2048, 16));
  ts::plan_point p;
  const ts::action_costs none = ts::layer_costs(c, p);
  p.recompute = ts::recompute_kind::full;
  const ts::action_costs full = ts::layer_costs(c, p);
  CHECK(full.f == none.f);
  CHECK(full.i == doctest::Approx(none.i + none.f));
  CHECK(full.w == none.w);
  p.recompute = ts::recompute_kind::selective;
  const ts::action_costs sel = ts::layer_costs(c, p);
  CHECK(sel.i > none.i);
  CHECK(sel.i < full.i);
  // the weight gradient is the layer's GEMMs: 2·T·(params of the matrices) FLOPs at no more than peak
  const double T = 2048, C = 2048, flops = 2 * T * (3 * C * C + C * C + 8 * C * C);
  CHECK(none.w > flops / c.cluster.device.peak_bf16);
  CHECK(none.w < flops / (c.cluster.device.peak_bf16 * 0.5 * c.cluster.device.gemm_efficiency));
  // tp = 2 halves the GEMMs and adds the all-reduces
  ts::plan_point t2;
  t2.tp = 2;
  CHECK(ts::layer_costs(c, t2).w < none.w * 0.55);
  CHECK(ts::layer_tp_comm_s(c, t2) > 0);
  CHECK(ts::layer_tp_comm_s(c, p) == 0);
}

TEST_CASE("dp communication: none without dp; ZeRO 1 moves fewer bytes than 0, and 2, 3 more than 1") {
  const ts::cost_context c = gpu_context(gpt(24, 2048, 16));
  ts::plan_point p;
  p.microbatches = 4;
  CHECK(ts::dp_comm_s(c, p) == 0);
  p.dp = 8;
  double t[4];
  for (int z = 0; z < 4; ++z) {
    p.zero = z;
    t[z] = ts::dp_comm_s(c, p);
  }
  CHECK(t[1] < t[0]);
  CHECK(t[1] < t[2]);
  CHECK(t[2] < t[3]);
  // memory falls with each stage
  double mem_prev = 1e300;
  for (int z = 0; z < 4; ++z) {
    p.zero = z;
    const double mem = ts::memory_bytes(c, p);
    CHECK(mem < mem_prev);
    mem_prev = mem;
  }
}

TEST_CASE("predict: MFU, tokens/s and the parts of an iteration agree") {
  const ts::cost_context c = gpu_context(gpt(24, 2048, 16));
  ts::plan_point p;
  p.tp = 2, p.pp = 2, p.dp = 8, p.microbatches = 8, p.microbatch_size = 2, p.schedule = ts::schedule_kind::one_f_one_b;
  const ts::prediction x = ts::predict(c, p);
  const double tokens = 8.0 * 8 * 2 * 2048;
  CHECK(x.tokens_per_s == doctest::Approx(tokens / x.iteration_s));
  CHECK(x.mfu == doctest::Approx(ts::flops_per_token(c.model) * tokens / (x.iteration_s * 32 * c.cluster.device.peak_bf16)));
  CHECK(x.iteration_s >= x.pipeline_s + x.optimizer_s);
  CHECK(x.bubble_s > 0);
  CHECK(x.fits);
  CHECK(x.memory_bytes == doctest::Approx(x.state_bytes + x.activation_bytes + c.cluster.device.reserved_bytes));
  // 1F1B's bubble is (P − 1)(F + B) for any costs: the table and the closed form agree
  const ts::action_costs a = ts::stage_costs(c, p);
  CHECK(x.bubble_s == doctest::Approx((p.pp - 1) * (a.f + a.i + a.w)));
}
