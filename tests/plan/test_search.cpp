// tests/plan: the search — branch and bound equals brute force, the compile-time search (pruned, ranked by
// the estimate) finds plans as fast as the exact search, fixed choices are honoured, the published runs
// are reproduced (5% mean, 10% worst), and ts::auto_plan is a ts::plan chosen at compile time.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "tessera/plan/auto_plan.hpp"
#include "tessera/plan/describe.hpp"
#include "tessera/plan/published.hpp"

namespace ts = tessera;

namespace {
ts::plan_request request(const ts::model_desc& m, const ts::device_desc& d, int gpn, int nodes, int batch) {
  ts::plan_request r;
  r.costs = {m, {d, gpn, nodes}, ts::sw::tessera_cuda};
  r.global_batch = batch;
  return r;
}
ts::model_desc gpt(int layers, int hidden, int heads, int seq = 2048, int vocab = 51200) {
  return ts::resolve(ts::model_family::gpt, ts::gpt_config{.vocab = vocab, .seq = seq, .layers = layers, .hidden = hidden, .heads = heads});
}
ts::model_desc llama(int layers, int hidden, int heads, int kv, int ffn, int seq = 4096, int vocab = 128256) {
  return ts::resolve(ts::model_family::llama, ts::llama_config{.vocab = vocab, .seq = seq, .layers = layers, .hidden = hidden,
                                                               .heads = heads, .kv_heads = kv, .ffn = ffn});
}
}  // namespace

TEST_CASE("rank_plans: branch and bound returns brute force's best plans in order") {
  const ts::plan_request cases[] = {request(gpt(24, 2048, 16), ts::hw::a100_80g::desc, 8, 2, 64),
                                    request(gpt(32, 4096, 32), ts::hw::h100_sxm::desc, 8, 4, 128),
                                    request(llama(16, 2048, 32, 8, 8192, 2048, 32000), ts::hw::h200::desc, 4, 2, 32)};
  for (const auto& r : cases) {
    std::vector<ts::ranked_plan> all;
    ts::search_detail::for_each_plan(r, [&](const ts::plan_point& p) {
      const ts::prediction x = ts::predict(r.costs, p);
      if (x.fits) all.push_back({p, x});
    });
    REQUIRE(all.size() > 20);
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return ts::search_detail::better(a.pred, b.pred); });
    const auto top = ts::rank_plans(r, 5);
    REQUIRE(top.size() == 5);
    for (std::size_t i = 0; i < top.size(); ++i) CHECK(top[i].pred.iteration_s == doctest::Approx(all[i].pred.iteration_s).epsilon(1e-12));
  }
}

TEST_CASE("best_plan (the compile-time search) is within 2% of the exact search's best") {
  const ts::plan_request cases[] = {
      request(gpt(96, 12288, 96), ts::hw::a100_80g::desc, 8, 128, 1536),
      request(gpt(24, 2048, 16), ts::hw::a100_80g::desc, 8, 2, 64),
      request(gpt(32, 4096, 32), ts::hw::h100_sxm::desc, 8, 4, 128),
      request(gpt(48, 8192, 64), ts::hw::h100_sxm::desc, 8, 32, 512),
      request(llama(80, 8192, 64, 8, 28672), ts::hw::h200::desc, 8, 16, 256),
      request(llama(32, 4096, 32, 8, 14336), ts::hw::h200::desc, 8, 8, 512),
      request(llama(16, 2048, 32, 8, 8192, 2048, 32000), ts::hw::a100_80g::desc, 4, 2, 32),
  };
  for (const auto& r : cases) {
    const auto exact = ts::rank_plans(r, 1);
    const auto fast = ts::best_plan<1>(r);
    REQUIRE(exact.size() == 1);
    REQUIRE(fast.found);
    INFO(ts::plan_cpp(r.costs.model, fast.best.point), "exact best: ", ts::plan_cpp(r.costs.model, exact[0].point));
    CHECK(fast.best.pred.iteration_s <= exact[0].pred.iteration_s * 1.02);
    CHECK(fast.best.pred.iteration_s >= exact[0].pred.iteration_s * (1 - 1e-12));
    CHECK(fast.best.pred.fits);
  }
}

TEST_CASE("fixed choices are honoured; all fixed evaluates exactly that plan") {
  ts::plan_request r = request(gpt(24, 2048, 16), ts::hw::a100_80g::desc, 8, 4, 256);
  r.fixed.tp = 2;
  r.fixed.schedules = 1 << static_cast<int>(ts::schedule_kind::zb_h1);
  r.fixed.recompute = 1;
  for (const auto& x : ts::rank_plans(r, 20)) {
    CHECK(x.point.tp == 2);
    CHECK((x.point.pp == 1 || x.point.schedule == ts::schedule_kind::zb_h1));
    CHECK(x.point.recompute == ts::recompute_kind::selective);
    CHECK(x.point.global_batch() == 256);
  }
  r.fixed.pp = 4, r.fixed.dp = 4, r.fixed.microbatch_size = 2, r.fixed.zero = 1, r.fixed.sequence_parallel = 1;
  const auto one = ts::rank_plans(r, 10);
  REQUIRE(one.size() == 1);
  CHECK(one[0].point.microbatches == 32);
  CHECK(ts::why_no_layout(r).empty());
  r.fixed.tp = 3;
  CHECK(ts::why_no_layout(r) == "heads (16) not divisible by tp (3)");
  r.fixed.tp = 2, r.fixed.pp = 5, r.fixed.dp = 0;
  CHECK(ts::why_no_layout(r) == "gpus (32) not divisible by tp × pp (2 × 5)");
}

TEST_CASE("published Megatron-LM runs: iteration time within 10% on every row, 5% on average") {
  double sum = 0, worst = 0;
  for (const auto& run : ts::published_runs) {
    const ts::device_desc d = std::string(run.gpu) == "a100-80g" ? ts::hw::a100_80g::desc : ts::hw::h100_sxm::desc;
    const ts::published_check c = ts::check_published(run, d);
    INFO(run.source, " ", run.params_b, "B: published ", run.iteration_s(), " s");
    REQUIRE(c.found);
    CHECK(std::fabs(c.error()) <= 0.10);
    std::printf("  %-26s %7.1fB  published %8.3f s  predicted %8.3f s  %+5.1f%%\n", run.source, run.params_b,
                run.iteration_s(), c.plan.pred.iteration_s, 100 * c.error());
    sum += std::fabs(c.error());
    worst = std::max(worst, std::fabs(c.error()));
  }
  const double mean = sum / ts::published_runs.size();
  std::printf("  mean |error| %.1f%%, worst %.1f%%\n", 100 * mean, 100 * worst);
  CHECK(mean <= 0.05);
}

namespace {
using gpt_small = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 64, .layers = 4, .hidden = 64, .heads = 4}>;
using host4 = ts::cluster<ts::hw::host, 4, 1>;
using chosen = ts::auto_plan<gpt_small, host4, 16>;
using chosen_bf16_z1 = ts::auto_plan<gpt_small, host4, 16, ts::precision<ts::bf16>, ts::recompute<ts::full>>;
}  // namespace

TEST_CASE("auto_plan: a ts::plan on the cluster's devices, the exact search's best, the policies given") {
  static_assert(ts::is_plan_v<chosen>);
  static_assert(chosen::desc.mesh.world() == 4);
  static_assert(chosen::desc.policy.batch == 16);
  static_assert(chosen::desc.policy.precision == ts::precision_kind::fp32);  // the host backend's default
  static_assert(chosen_bf16_z1::desc.policy.precision == ts::precision_kind::bf16);
  static_assert(chosen_bf16_z1::desc.policy.recompute == ts::recompute_kind::full);
  constexpr auto result = ts::auto_plan_prediction<gpt_small, host4, 16>;
  static_assert(result.found);
  ts::plan_request r;
  r.costs = {gpt_small::desc, host4::desc, ts::sw::tessera_host};
  r.global_batch = 16;
  r.fixed.bf16 = false;
  r.fixed.max_table_actions = ts::max_auto_plan_table_actions;
  const auto exact = ts::rank_plans(r, 1);
  REQUIRE(exact.size() == 1);
  CHECK(result.best.pred.iteration_s <= exact[0].pred.iteration_s * 1.02);
  CHECK(chosen::desc.dp == result.best.point.dp);
  CHECK(chosen::desc.pp == result.best.point.pp);
  CHECK(chosen::desc.tp == result.best.point.tp);
  CHECK(chosen::desc.schedule.microbatches == result.best.point.microbatches);
}
