// The trainer's components in one process: sampling, the optimizer's rules, gradient buckets, slot
// sharing, the memory model, pipeline programs — and the whole trainer on the loopback communicator,
// which must train exactly as on MPI (the same bits, step by step).
#include <doctest/doctest.h>
#include <mpi.h>

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

#include "one_rank_trainer.hpp"
#include "tessera/comm/loopback.hpp"
#include "tessera/comm/mpi.hpp"
#include "tessera/tessera.hpp"

namespace ts = tessera;

namespace {
using small_gpt = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 16, .layers = 4, .hidden = 32, .heads = 2}>;
using plan_1f1b = ts::plan<small_gpt, ts::mesh<>, ts::one_f_one_b<2>>;
using plan_chimera = ts::plan<small_gpt, ts::mesh<ts::pp<2>>, ts::chimera<4>>;
using plan_zero = ts::plan<small_gpt, ts::mesh<ts::dp<2>, ts::pp<2>>, ts::one_f_one_b<2>, ts::zero<2>>;
}  // namespace

TEST_CASE("sampling: greedy takes the first largest logit of the real vocabulary, never a padding column") {
  std::uint64_t rng = ts::sampling_state(1);
  const std::vector<float> logits{0.5f, 2.0f, 2.0f, 1.0f, 9.0f};  // column 4 pads the vocabulary
  CHECK(ts::pick_token(logits, 4, 0.0, rng) == 1);
  CHECK(rng == ts::sampling_state(1));  // greedy draws nothing
  CHECK_THROWS_AS(ts::pick_token(logits, 6, 0.0, rng), std::runtime_error);
}

TEST_CASE("sampling: draws follow softmax(logits / temperature), the same for the same seed") {
  const std::vector<float> logits{0.0f, 1.0f, 2.0f, -30.0f};
  const double temperature = 0.7;
  std::vector<double> p(3);
  double z = 0;
  for (int j = 0; j < 3; ++j) z += p[static_cast<std::size_t>(j)] = std::exp(logits[static_cast<std::size_t>(j)] / temperature);
  std::vector<int> count(4, 0);
  std::uint64_t rng = ts::sampling_state(42), again = ts::sampling_state(42);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    const int t = ts::pick_token(logits, 4, temperature, rng);
    CHECK(t == ts::pick_token(logits, 4, temperature, again));
    ++count[static_cast<std::size_t>(t)];
  }
  for (int j = 0; j < 3; ++j) {
    const double want = p[static_cast<std::size_t>(j)] / z, sd = std::sqrt(want * (1 - want) / n);
    CHECK(std::abs(count[static_cast<std::size_t>(j)] / double(n) - want) < 5 * sd);
  }
  CHECK(count[3] < 3);  // e^-43: practically never
}

TEST_CASE("optimizer rules: warmup then cosine, clipping factor, sum of squares") {
  ts::adamw_config c;
  c.lr = 1.0;
  c.min_lr = 0.1;
  c.warmup = 4;
  c.steps = 14;
  CHECK(ts::learning_rate(c, 0) == doctest::Approx(0.25));
  CHECK(ts::learning_rate(c, 3) == doctest::Approx(1.0));
  CHECK(ts::learning_rate(c, 4) == doctest::Approx(1.0));
  CHECK(ts::learning_rate(c, 9) == doctest::Approx(0.55));
  CHECK(ts::learning_rate(c, 14) == doctest::Approx(0.1));
  CHECK(ts::clip_scale(10.0, 0.0) == 1.0);
  CHECK(ts::clip_scale(0.5, 1.0) == 1.0);
  CHECK(ts::clip_scale(4.0, 1.0) == doctest::Approx(0.25));
  std::vector<float> g(1001);
  double want = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i] = 0.001f * static_cast<float>(i) - 0.3f;
    want += static_cast<double>(g[i]) * g[i];
  }
  CHECK(ts::ops::sum_of_squares(ts::host_system{}, g.data(), static_cast<std::int64_t>(g.size())) == doctest::Approx(want).epsilon(1e-12));
  // several pieces per thread, partial sums per piece and a tail: the same sum to double rounding
  std::vector<float> big(3 * 32768 + 45);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + static_cast<float>(i % 7));
  for (std::int64_t n : {std::int64_t(big.size()), std::int64_t(32768), std::int64_t(33), std::int64_t(0)}) {
    double want_n = 0;
    for (std::int64_t i = 0; i < n; ++i) want_n += static_cast<double>(big[static_cast<std::size_t>(i)]) * big[static_cast<std::size_t>(i)];
    CHECK(ts::ops::sum_of_squares(ts::host_system{}, big.data(), n) == doctest::Approx(want_n).epsilon(1e-13));
  }
  const auto p = ts::step_params(c, 0.5, 7, 0.25);
  CHECK(p.lr == 0.5f);
  CHECK(p.step == 7);
  CHECK(p.grad_scale == 0.25f);
}

TEST_CASE("slot sharing: Chimera places every model stage on two pipeline ranks; 1F1B on one") {
  constexpr ts::plan_desc chimera = plan_chimera::desc;
  for (int ms = 0; ms < chimera.model_stages; ++ms) CHECK(ts::stage_holders(chimera, ms).size() == 2);
  CHECK(ts::slot_holders(chimera, "embed") == std::vector<int>{0, 1});
  CHECK(ts::sharing_groups(chimera).size() == 1);
  constexpr ts::plan_desc plain = ts::plan<small_gpt, ts::mesh<ts::pp<2>>, ts::one_f_one_b<2>>::desc;
  CHECK(ts::slot_holders(plain, "layers.0.attn.qkv.weight") == std::vector<int>{0});
  CHECK(ts::slot_holders(plain, "layers.3.attn.qkv.weight") == std::vector<int>{1});
  CHECK(ts::slot_holders(plain, "head") == std::vector<int>{1});  // (a head slot, were the embedding untied)
  CHECK(ts::slot_holders(plain, "embed") == std::vector<int>{0, 1});  // tied embedding: first and last stage
  CHECK(ts::slot_holders(plain, "final_norm.weight") == std::vector<int>{1});
}

TEST_CASE("pipeline programs: every (stage, microbatch) state is released once, after its last use") {
  constexpr ts::plan_desc pd = plan_chimera::desc;
  for (int rank = 0; rank < 2; ++rank) {
    const ts::pipeline_program p(ts::program_of_rank<plan_chimera>(rank));
    std::map<std::pair<int, int>, std::size_t> last;
    for (std::size_t i = 0; i < p.actions.size(); ++i) {
      for (int k = 0; k < ts::num_parts(p.actions[i]); ++k) last[{ts::part(p.actions[i], k).stage, ts::part(p.actions[i], k).mb}] = i;
      if (ts::is_comm(p.actions[i].kind)) last[{p.actions[i].stage, p.actions[i].mb}] = i;
    }
    std::size_t released = 0;
    for (std::size_t i = 0; i < p.release_after.size(); ++i)
      for (auto key : p.release_after[i]) {
        CHECK(last.at(key) == i);
        ++released;
      }
    CHECK(released == last.size());
    // forward only: each microbatch through this rank's stages of the first pipeline, in order
    const ts::pipeline_program f = ts::forward_only_program(pd, rank, 3);
    int forwards = 0;
    for (const ts::action& a : f.actions) {
      if (a.kind == ts::op::F) ++forwards;
      if (a.kind == ts::op::recv_f) CHECK(a.peer == 0);
      if (a.kind == ts::op::send_f) CHECK(a.peer == 1);
    }
    CHECK(forwards == 3);
  }
}

TEST_CASE("memory model: ZeRO divides state over dp, never for slots shared by pipeline ranks") {
  const std::vector<std::int64_t> numel{100, 10};
  const std::vector<bool> shared{false, true};
  const ts::element_bytes fp32{4, 4, false}, bf16{2, 4, true};
  CHECK(ts::predicted_state_bytes(numel, shared, 4, 0, fp32) == 110 * (4 + 4 + 8));
  CHECK(ts::predicted_state_bytes(numel, shared, 4, 1, fp32) == 100 * (4 + 4 + 8 / 4.0) + 10 * 16);
  CHECK(ts::predicted_state_bytes(numel, shared, 4, 3, fp32) == 100 * 16 / 4.0 + 10 * 16);
  CHECK(ts::predicted_state_bytes(numel, shared, 2, 2, bf16) == 100 * (2 + 4 / 2.0 + 12 / 2.0) + 10 * 18);
}


TEST_CASE("the trainer on the loopback communicator trains exactly as on MPI, in one process") {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) return;  // one process's test; the other ranks of an MPI run have nothing to do
  ts::mpi_comm self(MPI_COMM_SELF);
  ts::loopback_comm loopback;
  const std::vector<double> on_mpi = tessera_test::one_rank_trainer<float, plan_1f1b, ts::mpi_comm>(self, 4).train_evaluate_sample(4);
  const std::vector<double> on_loopback = tessera_test::one_rank_trainer<float, plan_1f1b, ts::loopback_comm>(loopback, 4).train_evaluate_sample(4);
  REQUIRE(on_mpi.size() == on_loopback.size());
  for (std::size_t i = 0; i < on_mpi.size(); ++i) CHECK(on_mpi[i] == on_loopback[i]);  // bit for bit
  CHECK(on_loopback[6] < on_loopback[0]);  // and it learns: the loss falls over 4 steps
  CHECK(std::isfinite(on_loopback[8]));    // evaluation
}

TEST_CASE("zero_state below dp 2 shards nothing, whatever the plan asks") {
  constexpr ts::plan_desc pd = plan_zero::desc;
  static_assert(pd.policy.zero == 2);
  ts::param_store<float> store;
  ts::slot_layout l;
  l.name = "layers.0.x";
  l.rows = 4;
  l.cols = 4;
  store.get_or_add(l);
  store.finalise({0});
  std::vector<bool> shared{false};
  auto buckets = ts::make_buckets(store, shared, true, 1, 1);
  ts::loopback_comm c;
  ts::zero_state<float, ts::loopback_comm> z(pd.policy.zero, store, buckets, shared, c, c, false);
  CHECK(z.stage() == 0);
  CHECK(!z.optimizer_sharded());
}

TEST_CASE("gradient buckets: unshared slots in arena order, cut by size or by unit, each rank's block") {
  ts::param_store<float> store;
  for (auto [name, n] : std::vector<std::pair<std::string, int>>{
           {"embed", 10}, {"layers.0.a", 6}, {"layers.0.b", 4}, {"layers.1.a", 6}, {"final_norm.weight", 3}}) {
    ts::slot_layout l;
    l.name = name;
    l.rows = n;
    store.get_or_add(l);
  }
  store.finalise({4, 1, 2, 3, 0});  // final norm first in the arena, the shared slot last (as the trainer does)
  const std::vector<bool> shared{true, false, false, false, false};  // the embedding is shared
  const auto by_unit = ts::make_buckets(store, shared, true, 1, 3);
  REQUIRE(by_unit.size() == 3);  // out, layers.0, layers.1
  CHECK(by_unit[0].slots == std::vector<std::size_t>{4});
  CHECK(by_unit[1].slots == std::vector<std::size_t>{1, 2});
  CHECK(by_unit[1].count == 10);
  CHECK(by_unit[1].part.counts == std::vector<int>{4, 3, 3});
  const auto by_size = ts::make_buckets(store, shared, false, 8, 2);
  REQUIRE(by_size.size() == 2);  // [norm 3, layers.0.a 6] reaches 8; [layers.0.b, layers.1.a]
  CHECK(by_size[0].count == 9);
  CHECK(by_size[1].offset == 9);
  CHECK(by_size[1].count == 10);
  std::set<std::size_t> covered;
  for (const auto& b : by_size)
    for (std::size_t i : b.slots) CHECK(covered.insert(i).second);
  CHECK(covered == std::set<std::size_t>{1, 2, 3, 4});
  const auto of = ts::bucket_of_slots(by_size, 5);
  CHECK(of == std::vector<int>{-1, 0, 1, 1, 0});
  CHECK(ts::unit_of_slot("layers.12.mlp.up.weight") == ts::slot_unit{ts::slot_unit::part::layer, 12, false});
  CHECK(ts::unit_of_slot("pos") == ts::unit_of_slot("embed"));  // one unit: the input
  CHECK(ts::unit_of_slot("embed").token_embedding);
  CHECK(!ts::unit_of_slot("pos").token_embedding);
  CHECK(ts::unit_of_slot("head") == ts::unit_of_slot("final_norm.weight"));
  CHECK(!(ts::unit_of_slot("layers.1.x") == ts::unit_of_slot("layers.10.x")));
}

TEST_CASE("checkpoint step directories: \"step_\" and exactly 8 digits") {
  CHECK(ts::is_step_dir_name(ts::step_dir_name(42)));
  CHECK(ts::step_dir_name(42) == "step_00000042");
  CHECK(!ts::is_step_dir_name("step_0000004"));
  CHECK(!ts::is_step_dir_name("step_000000042"));
  CHECK(!ts::is_step_dir_name("step_0000004x"));
  CHECK(!ts::is_step_dir_name(".step_00000042.tmp"));
  CHECK(!ts::is_step_dir_name("stop_00000042"));
}

TEST_CASE("a run of a slot's elements as global rectangles: exactly its elements, once (every run of a small slot)") {
  // a slot of 3 stacked boxes (a fused q|k|v-like slot): rows 2, 3 and 1 of 4 columns, at various global places
  ts::slot_layout s;
  s.cols = 4;
  s.rows = 6;
  s.boxes = {ts::box{0, 10, 0, 2, 4, 0, 0}, ts::box{1, 0, 0, 3, 4, 2, 0}, ts::box{2, 5, 0, 1, 4, 5, 0}};
  const std::int64_t total = s.rows * s.cols;
  for (std::int64_t begin = 0; begin < total; ++begin)
    for (std::int64_t n = 0; begin + n <= total; ++n) {
      std::vector<int> seen(static_cast<std::size_t>(total), 0);
      for (const auto& [bi, range] : ts::local_ckpt::ranges_of(s, begin, n))
        ts::for_each_element(s.boxes[bi], s.cols, range, [&](std::int64_t, std::int64_t, std::size_t at) { ++seen[at]; });
      for (std::int64_t j = 0; j < total; ++j) {
        const int want = j >= begin && j < begin + n ? 1 : 0;
        if (seen[static_cast<std::size_t>(j)] != want) FAIL("run [", begin, ", +", n, "): element ", j, " seen ", seen[static_cast<std::size_t>(j)], " times");
      }
    }
}
