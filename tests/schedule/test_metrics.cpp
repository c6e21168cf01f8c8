// Schedule metrics against their closed forms (simulated timelines), and the compile-time schedule
// types: static tables equal to the run-time generators, constexpr metrics, a sizeable case (P = 8,
// M = 32) verified at compile time.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tessera/schedule/schedule.hpp"

namespace ts = tessera;
using ts::schedule_kind;

namespace {
ts::dynamic_schedule make(schedule_kind k, int P, int M, int V = 2) {
  return ts::make_dynamic_schedule(ts::schedule_shape{k, P, M, V});
}
ts::basic_timeline<ts::dynamic_storage> timeline(const ts::dynamic_schedule& s, ts::schedule_costs c) {
  auto t = ts::simulate_timeline(s, c);
  REQUIRE(t.complete);
  return t;
}
const std::vector<ts::schedule_costs> general_costs{
    {1, 1, 1, 3}, {1, 2, 1, 4}, {2, 1, 1, 4}, {1, 1, 0.5, 2.5}, {1.5, 1, 1, 3.5}, {1, 0.5, 0.5, 2}};
}  // namespace

// ---- compile time: the contract's types, bound to P ----
using t_1f1b = ts::schedule_table<ts::one_f_one_b<8>, 4>;
static_assert(t_1f1b::stages == 4 && t_1f1b::ranks == 4 && t_1f1b::actions_of(0) == 16);
static_assert(t_1f1b::action_at(0, 4) == ts::make_action(ts::op::B, 0, 0));  // 0F0 0F1 0F2 0F3 0B0
static_assert(t_1f1b::peak_activations(0) == 4 && t_1f1b::peak_activations(3) == 1);
static_assert(t_1f1b::bubble_fraction_of_ideal(ts::schedule_costs{1, 1, 1, 3}) == 3.0 / 8.0);
static_assert(t_1f1b::parameter_copies == 1);
using t_chimera = decltype(ts::chimera<8>::table<4>());
static_assert(t_chimera::parameter_copies == 2 && t_chimera::stages == 8 && t_chimera::microbatches_per_stage == 4);
static_assert(t_chimera::stage_to_rank(7) == 0 && t_chimera::stage_to_rank(4) == 3);
static_assert(t_chimera::bubble_fraction_of_total(ts::schedule_costs{1, 1, 0, 2}) == 2.0 / 18.0);
using t_dpv = ts::schedule_table<ts::dualpipe_v<8>, 4>;
static_assert(t_dpv::action_at(0, 17) == ts::make_overlap(0, 7, 7, 3));  // (0F7;7B3)OVERLAP_F_B
static_assert(t_dpv::stages_per_rank == 2 && t_dpv::parameter_copies == 1);
using t_int = ts::schedule_table<ts::interleaved_1f1b<8, 2>, 4>;
static_assert(t_int::stages == 8 && t_int::stage_to_rank(5) == 1);
static_assert(t_int::comm_execution.ok() && t_int::comm.total() > t_int::schedule.total());
using t_zbh1 = ts::schedule_table<ts::zb_h1<8>, 4>;
static_assert(t_zbh1::bubble(ts::schedule_costs{1, 1, 1, 3}) == 3.0);  // (P−1)(F+B−W)
using t_pp1 = ts::schedule_table<ts::zbv<3>, 1>;                        // pp<1>: gradient accumulation
static_assert(t_pp1::stages == 1 && t_pp1::actions_of(0) == 6 && t_pp1::bubble() == 0.0);
using t_gpipe = ts::schedule_table<ts::gpipe<5>, 3>;
static_assert(t_gpipe::peak_activations(1) == 5);

// A sizeable case, every kind, all static verification (coverage, deadlock, comm program).
static_assert(ts::schedule_table<ts::gpipe<32>, 8>::execution.ok());
static_assert(ts::schedule_table<ts::one_f_one_b<32>, 8>::peak_activations(0) == 8);
static_assert(ts::schedule_table<ts::interleaved_1f1b<32, 2>, 8>::comm_execution.ok());
static_assert(ts::schedule_table<ts::chimera<32>, 8>::comm_execution.ok());
static_assert(ts::schedule_table<ts::zb_h1<32>, 8>::comm_execution.ok());
static_assert(ts::schedule_table<ts::zbv<32>, 8>::comm_execution.ok());
static_assert(ts::schedule_table<ts::dualpipe_v<32>, 8>::comm_execution.ok());
static_assert(ts::schedule_table<ts::zbv<10>, 5>::comm_execution.ok());  // odd P (as torch)
static_assert(ts::schedule_table<ts::dualpipe_v<6>, 3>::comm_execution.ok());

template <class T>
void check_table_equals_runtime() {
  const auto d = ts::make_dynamic_schedule(T::shape);
  REQUIRE(d.total() == T::schedule.total());
  for (int r = 0; r < T::ranks; ++r) {
    REQUIRE(d.size(r) == T::actions_of(r));
    for (int i = 0; i < d.size(r); ++i) CHECK(d.at(r, i) == T::action_at(r, i));
  }
  const auto c = ts::derive_comm<ts::dynamic_storage>(d);
  REQUIRE(c.total() == T::comm.total());
  for (int k = 0; k < c.total(); ++k) CHECK(c.actions[k] == T::comm.actions[k]);
}

TEST_CASE("compile-time tables equal the run-time generators") {
  check_table_equals_runtime<ts::schedule_table<ts::gpipe<8>, 4>>();
  check_table_equals_runtime<t_1f1b>();
  check_table_equals_runtime<t_int>();
  check_table_equals_runtime<t_chimera>();
  check_table_equals_runtime<t_zbh1>();
  check_table_equals_runtime<ts::schedule_table<ts::zbv<10>, 4>>();
  check_table_equals_runtime<t_dpv>();
  check_table_equals_runtime<ts::schedule_table<ts::dualpipe_v<32>, 8>>();
  check_table_equals_runtime<ts::schedule_table<ts::zbv<6>, 3>>();
  check_table_equals_runtime<ts::schedule_table<ts::dualpipe_v<10>, 5>>();
  check_table_equals_runtime<ts::schedule_table<ts::chimera<32>, 8>>();
}

TEST_CASE("gpipe and 1f1b: bubble = (P-1)/M of the ideal, any costs") {
  for (const auto& c : general_costs)
    for (int P : {2, 3, 4, 6, 8})
      for (int M : {1, 2, 3, 5, 8, 16, 17}) {
        CAPTURE(P);
        CAPTURE(M);
        for (auto k : {schedule_kind::gpipe, schedule_kind::one_f_one_b}) {
          const auto t = timeline(make(k, P, M), c);
          CHECK(t.busy_max == doctest::Approx(M * (c.f + c.full_b())));
          CHECK(t.bubble_fraction_of_ideal() == doctest::Approx(double(P - 1) / M));
        }
      }
}

TEST_CASE("interleaved: bubble = (P-1)/(V*M) of the ideal, any costs") {
  for (const auto& c : general_costs)
    for (int P : {2, 4, 6, 8})
      for (int V : {2, 3, 4})
        for (int k : {1, 2, 3}) {
          const int M = k * P;
          CAPTURE(P);
          CAPTURE(V);
          CAPTURE(M);
          const auto t = timeline(make(schedule_kind::interleaved, P, M, V), c);
          CHECK(t.bubble_fraction_of_ideal() == doctest::Approx(double(P - 1) / (V * M)));
        }
}

TEST_CASE("zb_h1: bubble = (P-1)(F + B - W), B = input-gradient part, W <= F and W <= B") {
  const std::vector<ts::schedule_costs> zb_costs{{1, 1, 1, 3}, {1, 2, 1, 4}, {2, 1, 1, 4}, {1, 1, 0.5, 2.5},
                                                 {1.5, 1, 1, 3.5}, {2, 2, 1, 5}};
  for (const auto& c : zb_costs)
    for (int P : {2, 3, 4, 6, 8})
      for (int M : {P, P + 1, 2 * P, 3 * P}) {
        CAPTURE(P);
        CAPTURE(M);
        CAPTURE(c.f);
        CAPTURE(c.b);
        CAPTURE(c.w);
        const auto t = timeline(make(schedule_kind::zb_h1, P, M), c);
        CHECK(t.busy_max == doctest::Approx(M * (c.f + c.b + c.w)));
        CHECK(t.bubble() == doctest::Approx((P - 1) * (c.f + c.b - c.w)));
        // ... which is below 1F1B's (P−1)(F + B + W).
        const auto t1 = timeline(make(schedule_kind::one_f_one_b, P, M), c);
        CHECK(t.bubble() < t1.bubble());
      }
}

TEST_CASE("chimera: bubble = (P-2)/(2M+P-2) of the total, F = B (full) costs equal") {
  // The authors' order is their unit-time grid: unit u of each pipeline starts 2P·u steps after unit 0,
  // the basic unit spans 3P − 2 steps, so M = kP microbatches span 2M + P − 2 steps of which each rank is
  // busy 2M. Exact at every even P and every M = kP (with F = full B; the grid is the timeline then).
  for (double f : {1.0, 2.0}) {
    const ts::schedule_costs c{f, f, 0.0, 2 * f};
    for (int P : {2, 4, 6, 8, 10, 16})
      for (int k : {1, 2, 3, 4}) {
        const int M = k * P;
        CAPTURE(P);
        CAPTURE(M);
        const auto t = timeline(make(schedule_kind::chimera, P, M), c);
        CHECK(t.bubble_fraction_of_total() == doctest::Approx(double(P - 2) / (2 * M + P - 2)));
        CHECK(t.makespan == doctest::Approx((2 * M + P - 2) * f));
      }
  }
  // Chimera has a smaller bubble than 1F1B at the same P, M and costs.
  const ts::schedule_costs c{1, 1, 0, 2};
  CHECK(timeline(make(schedule_kind::chimera, 8, 8), c).bubble() <
        timeline(make(schedule_kind::one_f_one_b, 8, 8), c).bubble());
}

TEST_CASE("dualpipe_v: bubble = (P-1)(F&B + B - 3W), B full backward; F = I, W <= F, F&B slot = F + B") {
  // DeepSeek's (PP/2−1)(F&B + B − 3W) with PP = 2P stages. Exact in this timeline when the forward and the
  // input-gradient part cost the same, W <= F, and an F&B slot costs F + B (no overlap gain). Outside that
  // (e.g. F = 2, I = W = 1, or I = 2F) the measured bubble differs from the formula in both directions.
  const std::vector<ts::schedule_costs> base{{1, 1, 1, 0}, {1, 1, 0.5, 0}, {2, 2, 2, 0}, {2, 2, 1, 0}, {1, 1, 0.25, 0}};
  for (auto c : base) {
    c.fb = c.f + c.full_b();
    for (int P : {2, 3, 4, 5, 6, 8})  // odd P too (as torch)
      for (int M : {2 * P, 2 * P + 1, 3 * P, 4 * P}) {
        CAPTURE(P);
        CAPTURE(M);
        CAPTURE(c.f);
        CAPTURE(c.b);
        CAPTURE(c.w);
        const auto t = timeline(make(schedule_kind::dualpipe_v, P, M), c);
        CHECK(t.bubble() == doctest::Approx((P - 1) * (c.fb + c.full_b() - 3 * c.w)));
      }
  }
}

TEST_CASE("zbv: measured bubble at F = I = W, and peak activations 2P chunks on every rank") {
  for (int P : {2, 3, 4, 5, 6, 8})  // odd P too (as torch)
    for (int M : {2 * P, 3 * P}) {
      const auto s = make(schedule_kind::zbv, P, M);
      const auto t = timeline(s, {1, 1, 1, 3});
      // Zero bubble in the steady state; only the fill of the V's first pass remains: (P−1)·F.
      CHECK(t.bubble() == doctest::Approx(P - 1));
      // Below 1F1B on the same ranks (a ZB-V chunk is half a 1F1B stage: 1F1B costs doubled).
      const auto t1 = timeline(make(schedule_kind::one_f_one_b, P, M), {2, 2, 2, 6});
      CHECK(t.bubble() < t1.bubble());
      for (int r = 0; r < P; ++r) CHECK(ts::peak_activations(s, r) == 2 * P);  // = 1F1B's P stages
    }
}
