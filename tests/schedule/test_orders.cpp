// Schedule orders: the P = 4 reference file reproduced exactly, structural properties for many P, M, V,
// validity rules, and the verifiers catching broken schedules.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "tessera/schedule/schedule.hpp"

namespace ts = tessera;
using ts::op;
using ts::schedule_kind;
using ts::schedule_shape;

namespace {

ts::dynamic_schedule make(schedule_kind k, int P, int M, int V = 2) {
  return ts::make_dynamic_schedule(schedule_shape{k, P, M, V});
}

// All checks of the schedule types' static_asserts, at run time.
void require_executable(const ts::dynamic_schedule& s) {
  const auto cov = ts::check_coverage(s);
  INFO("coverage code " << int(cov.code) << " rank " << cov.rank << " index " << cov.index);
  REQUIRE(cov.ok());
  const auto ex = ts::simulate_compute(s);
  INFO("execution code " << int(ex.code) << " rank " << ex.rank << " index " << ex.index);
  REQUIRE(ex.ok());
  const auto comm = ts::derive_comm<ts::dynamic_storage>(s);
  const auto ce = ts::check_comm(comm, s.total());
  INFO("comm code " << int(ce.code) << " rank " << ce.rank << " index " << ce.index);
  REQUIRE(ce.ok());
}

// The actions of rank r restricted to one op kind, as (stage, mb) pairs, in order.
std::vector<std::pair<int, int>> only(const ts::dynamic_schedule& s, int r, op o) {
  std::vector<std::pair<int, int>> out;
  for (int i = 0; i < s.size(r); ++i)
    for (int p = 0; p < ts::num_parts(s.at(r, i)); ++p) {
      const ts::action x = ts::part(s.at(r, i), p);
      if (x.kind == o) out.emplace_back(x.stage, x.mb);
    }
  return out;
}

int count_before_first(const ts::dynamic_schedule& s, int r, op first, op counted) {
  int n = 0;
  for (int i = 0; i < s.size(r); ++i) {
    if (s.at(r, i).kind == first) return n;
    if (s.at(r, i).kind == counted) ++n;
  }
  return n;
}

const std::vector<int> ranks_to_test{2, 4, 6, 8};

}  // namespace

namespace {
/// Compares every order of the reference file `name` (in tests/schedule/data/, keys
/// <kind>_p<P>[_v<V>]_m<M>, values rank -> actions) with the generator's; returns how many were compared.
int compare_with_reference(const std::string& name) {
  const std::string path = std::string(TESSERA_SCHEDULE_DATA) + "/" + name;
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  const nlohmann::json ref = nlohmann::json::parse(in);
  const std::regex key_re("(.*)_p(\\d+)(?:_v(\\d+))?_m(\\d+)");
  int compared = 0;
  for (const auto& [key, ranks] : ref.items()) {
    if (key == "_about") continue;
    std::smatch m;
    REQUIRE(std::regex_match(key, m, key_re));
    schedule_kind kind{};
    REQUIRE(ts::parse_schedule_kind(m[1].str(), kind));
    const int P = std::stoi(m[2].str()), V = m[3].matched ? std::stoi(m[3].str()) : 1, M = std::stoi(m[4].str());
    const auto s = make(kind, P, M, V);
    REQUIRE(s.ranks() == static_cast<int>(ranks.size()));
    for (int r = 0; r < P; ++r) {
      std::vector<std::string> got;
      for (int i = 0; i < s.size(r); ++i) got.push_back(ts::to_string(s.at(r, i)));
      const auto want = ranks.at(std::to_string(r)).get<std::vector<std::string>>();
      INFO(name << ": " << key << " rank " << r);
      CHECK(got == want);
    }
    require_executable(s);
    ++compared;
  }
  return compared;
}
}  // namespace

TEST_CASE("reference orders at P = 4 (pipeline-orders.json, the project's reference file) are reproduced exactly") {
  CHECK(compare_with_reference("pipeline-orders.json") == 8);
}

TEST_CASE("Chimera at P in {2..16}, M in {P, 2P} (and 4P to P = 8) as Li & Hoefler's generator (chimera-orders.json, README-chimera.md)") {
  CHECK(compare_with_reference("chimera-orders.json") == 20);
}

TEST_CASE("ZB-V and DualPipeV at odd P (v-orders-odd.json: torch's generators run, README-v-odd.md) exactly") {
  CHECK(compare_with_reference("v-orders-odd.json") == 8);
}

TEST_CASE("stage -> rank maps and stage counts") {
  for (int P : ranks_to_test) {
    for (int s = 0; s < P; ++s) {
      CHECK(ts::stage_rank({schedule_kind::gpipe, P, P, 1}, s) == s);
      CHECK(ts::stage_rank({schedule_kind::zbv, P, 2 * P, 2}, s) == s);
      CHECK(ts::stage_rank({schedule_kind::zbv, P, 2 * P, 2}, 2 * P - 1 - s) == s);
      CHECK(ts::stage_rank({schedule_kind::dualpipe_v, P, 2 * P, 2}, P + s) == P - 1 - s);
      CHECK(ts::stage_rank({schedule_kind::chimera, P, P, 2}, P + s) == P - 1 - s);
      for (int c = 0; c < 3; ++c) CHECK(ts::stage_rank({schedule_kind::interleaved, P, P, 3}, c * P + s) == s);
    }
    CHECK(ts::num_stages({schedule_kind::interleaved, P, P, 3}) == 3 * P);
    CHECK(ts::num_stages({schedule_kind::chimera, P, P, 2}) == 2 * P);
    CHECK(ts::microbatches_per_stage({schedule_kind::chimera, P, 2 * P, 2}) == P);
    CHECK(ts::parameter_copies({schedule_kind::chimera, P, P, 2}) == 2);
    CHECK(ts::parameter_copies({schedule_kind::dualpipe_v, P, 2 * P, 2}) == 1);
    CHECK(ts::stages_per_rank({schedule_kind::dualpipe_v, P, 2 * P, 2}) == 2);
  }
}

TEST_CASE("gpipe and 1f1b: structure for P in {2,3,4,6,8}, M in 1..3P") {
  for (int P : {2, 3, 4, 6, 8})
    for (int M = 1; M <= 3 * P; ++M) {
      CAPTURE(P);
      CAPTURE(M);
      const auto g = make(schedule_kind::gpipe, P, M);
      const auto f = make(schedule_kind::one_f_one_b, P, M);
      require_executable(g);
      require_executable(f);
      for (int r = 0; r < P; ++r) {
        CHECK(count_before_first(g, r, op::B, op::F) == M);
        CHECK(ts::peak_activations(g, r) == M);
        // PipeDream-Flush: min(P−1−r, M) warmup forwards, then the first F/B pair.
        CHECK(count_before_first(f, r, op::B, op::F) == std::min(P - r, M));
        CHECK(ts::peak_activations(f, r) == std::min(P - r, M));
        // Forwards and backwards each in microbatch order, all on stage r; F/B alternate after warmup.
        const auto fs = only(f, r, op::F), bs = only(f, r, op::B);
        for (int m = 0; m < M; ++m) CHECK((fs[m] == std::pair{r, m} && bs[m] == std::pair{r, m}));
        const int w = std::min(P - 1 - r, M);
        for (int i = 0; i < M - w; ++i) {
          CHECK(f.at(r, w + 2 * i).kind == op::F);
          CHECK(f.at(r, w + 2 * i + 1).kind == op::B);
        }
      }
    }
}

TEST_CASE("zb_h1: 1F1B with split backward, W delayed by r; structure for many P, M") {
  for (int P : {2, 3, 4, 6, 8})
    for (int M = 1; M <= 3 * P; ++M) {
      CAPTURE(P);
      CAPTURE(M);
      const auto z = make(schedule_kind::zb_h1, P, M);
      const auto f = make(schedule_kind::one_f_one_b, P, M);
      require_executable(z);
      for (int r = 0; r < P; ++r) {
        // Removing W and renaming I → B gives exactly the 1F1B order.
        std::vector<ts::action> stripped;
        for (int i = 0; i < z.size(r); ++i) {
          ts::action a = z.at(r, i);
          if (a.kind == op::W) continue;
          if (a.kind == op::I) a.kind = op::B;
          stripped.push_back(a);
        }
        REQUIRE(static_cast<int>(stripped.size()) == f.size(r));
        for (int i = 0; i < f.size(r); ++i) CHECK(stripped[i] == f.at(r, i));
        // Rank r issues min(r + 1, M) input gradients before its first W, and W's in microbatch order.
        CHECK(count_before_first(z, r, op::W, op::I) == std::min(r + 1, M));
        const auto ws = only(z, r, op::W);
        for (int m = 0; m < M; ++m) CHECK(ws[m] == std::pair{r, m});
        CHECK(ts::peak_activations(z, r) == std::min(P - r, M));
      }
    }
}

TEST_CASE("interleaved: Megatron order for P in {2,4,6,8}, V in {2,3,4}, M = k*P") {
  for (int P : ranks_to_test)
    for (int V : {2, 3, 4})
      for (int k : {1, 2, 3, 4}) {
        const int M = k * P;
        CAPTURE(P);
        CAPTURE(V);
        CAPTURE(M);
        const auto s = make(schedule_kind::interleaved, P, M, V);
        require_executable(s);
        for (int r = 0; r < P; ++r) {
          // Forward k runs chunk (k mod PV)/P on microbatch (k / PV)·P + k mod P; backward k the mirrored chunk.
          const auto fs = only(s, r, op::F), bs = only(s, r, op::B);
          REQUIRE(static_cast<int>(fs.size()) == M * V);
          for (int q = 0; q < M * V; ++q) {
            const int chunk = (q % (P * V)) / P, mb = (q / (P * V)) * P + q % P;
            CHECK(fs[q] == std::pair{chunk * P + r, mb});
            CHECK(bs[q] == std::pair{(V - 1 - chunk) * P + r, mb});
          }
          const int warmup = std::min(2 * (P - 1 - r) + (V - 1) * P, M * V);
          CHECK(count_before_first(s, r, op::B, op::F) == std::min(warmup + 1, M * V));
          CHECK(ts::peak_activations(s, r) == std::min(warmup + 1, M * V));
        }
      }
}

TEST_CASE("zbv and dualpipe_v: V-shape structure for even P, M >= 2P") {
  for (int P : ranks_to_test)
    for (int M = 2 * P; M <= 4 * P + 1; ++M) {
      CAPTURE(P);
      CAPTURE(M);
      const auto z = make(schedule_kind::zbv, P, M);
      const auto d = make(schedule_kind::dualpipe_v, P, M);
      require_executable(z);
      require_executable(d);
      for (int r = 0; r < P; ++r) {
        // Each rank runs stage r and stage 2P−1−r; ZB-V only F/I/W, 3 per (stage, microbatch).
        CHECK(z.size(r) == 6 * M);
        for (const auto& [st, mb] : only(z, r, op::F)) CHECK((st == r || st == 2 * P - 1 - r));
        CHECK(only(z, r, op::B).empty());
        CHECK(ts::peak_activations(z, r) == 2 * P);
        // ZB-V warmup: 2(P−r)−1 chunk-0 forwards before anything else.
        for (int i = 0; i < 2 * (P - r) - 1; ++i) CHECK(z.at(r, i) == ts::make_action(op::F, r, i));
        // DualPipeV: overlapped slots pair a forward of one chunk with a full backward of the other.
        int overlapped = 0;
        for (int i = 0; i < d.size(r); ++i) {
          const ts::action& a = d.at(r, i);
          if (a.kind != op::FB) continue;
          ++overlapped;
          CHECK(a.stage != a.stage2);
          CHECK((a.stage == r || a.stage == 2 * P - 1 - r));
          CHECK((a.stage2 == r || a.stage2 == 2 * P - 1 - r));
        }
        // Step 4 has 2(M−2P+r+1) slots (one not overlapped on the last rank), step 5 P−r−1 more.
        const int expect = 2 * (M - 2 * P + r + 1) + (P - r - 1) - (r == P - 1 ? 1 : 0);
        CHECK(overlapped == expect);
      }
    }
}

TEST_CASE("chimera: two opposite pipelines, per-pipeline 1F1B, for P in {2,4,6,8}, M = k*P") {
  for (int P : ranks_to_test)
    for (int k : {1, 2, 3, 4}) {
      const int M = k * P;
      CAPTURE(P);
      CAPTURE(M);
      const auto s = make(schedule_kind::chimera, P, M);
      require_executable(s);
      for (int r = 0; r < P; ++r) {
        CHECK(s.size(r) == 2 * M);  // F and B of M/2 microbatches on each of two stages
        for (const auto& [st, mb] : only(s, r, op::F)) {
          CHECK((st == r || st == 2 * P - 1 - r));
          CHECK((mb >= 0 && mb < M / 2));
        }
        // Per stage, forwards and backwards in microbatch order.
        for (int st : {r, 2 * P - 1 - r}) {
          int nf = 0, nb = 0;
          for (int i = 0; i < s.size(r); ++i) {
            const ts::action& a = s.at(r, i);
            if (a.stage != st) continue;
            if (a.kind == op::F) CHECK(a.mb == nf++);
            if (a.kind == op::B) CHECK(a.mb == nb++);
          }
          CHECK((nf == M / 2 && nb == M / 2));
        }
        // Symmetry of the two directions: rank r's down pipeline mirrors rank P−1−r's up pipeline.
        const auto down = [&](int rr) {
          std::vector<std::pair<int, int>> v;
          for (int i = 0; i < s.size(rr); ++i)
            if (s.at(rr, i).stage < P) v.emplace_back(int(s.at(rr, i).kind), s.at(rr, i).mb);
          return v;
        };
        const auto up = [&](int rr) {
          std::vector<std::pair<int, int>> v;
          for (int i = 0; i < s.size(rr); ++i)
            if (s.at(rr, i).stage >= P) v.emplace_back(int(s.at(rr, i).kind), s.at(rr, i).mb);
          return v;
        };
        CHECK(down(r) == up(P - 1 - r));
      }
    }
}

TEST_CASE("P = 1: every kind is plain gradient accumulation") {
  for (int k = 0; k < ts::num_schedule_kinds; ++k)
    for (int M : {1, 2, 5}) {
      const auto s = make(static_cast<schedule_kind>(k), 1, M, 2);
      REQUIRE(s.size(0) == 2 * M);
      for (int m = 0; m < M; ++m) {
        CHECK(s.at(0, 2 * m) == ts::make_action(op::F, 0, m));
        CHECK(s.at(0, 2 * m + 1) == ts::make_action(op::B, 0, m));
      }
      require_executable(s);
    }
}

TEST_CASE("validity rules and their messages") {
  using E = ts::schedule_error;
  auto v = [](schedule_kind k, int P, int M, int V = 2) { return ts::validate({k, P, M, V}); };
  CHECK(v(schedule_kind::gpipe, 4, 1) == E::none);
  CHECK(v(schedule_kind::one_f_one_b, 8, 3) == E::none);
  CHECK(v(schedule_kind::zb_h1, 3, 1) == E::none);
  CHECK(v(schedule_kind::gpipe, 0, 4) == E::ranks_below_1);
  CHECK(v(schedule_kind::gpipe, 4, 0) == E::microbatches_below_1);
  CHECK(v(schedule_kind::interleaved, 4, 8, 1) == E::chunks_below_2);
  CHECK(v(schedule_kind::interleaved, 4, 6, 2) == E::microbatches_not_multiple_of_ranks);
  CHECK(v(schedule_kind::interleaved, 3, 6, 2) == E::none);
  CHECK(v(schedule_kind::chimera, 3, 6) == E::odd_ranks);
  CHECK(v(schedule_kind::chimera, 4, 6) == E::microbatches_not_multiple_of_ranks);
  CHECK(v(schedule_kind::chimera, 4, 12) == E::none);
  CHECK(v(schedule_kind::zbv, 4, 7) == E::microbatches_below_twice_ranks);
  CHECK(v(schedule_kind::zbv, 3, 12) == E::none);  // odd P, as torch
  CHECK(v(schedule_kind::zbv, 3, 5) == E::microbatches_below_twice_ranks);
  CHECK(v(schedule_kind::zbv, 4, 8) == E::none);
  CHECK(v(schedule_kind::dualpipe_v, 4, 3) == E::microbatches_below_twice_ranks);
  CHECK(v(schedule_kind::dualpipe_v, 5, 20) == E::none);
  CHECK(v(schedule_kind::dualpipe_v, 5, 9) == E::microbatches_below_twice_ranks);
  CHECK(v(schedule_kind::dualpipe_v, 1, 1) == E::none);  // pp<1>: gradient accumulation
  CHECK_THROWS_AS(ts::check_schedule_shape({schedule_kind::zbv, 4, 3, 2}), ts::usage_error);
  try {
    ts::check_schedule_shape({schedule_kind::zbv, 4, 3, 2});
  } catch (const ts::usage_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("zbv") != std::string::npos);
    CHECK(msg.find("M = 3") != std::string::npos);
    CHECK(msg.find("P = 4") != std::string::npos);
  }
  CHECK_THROWS_AS(ts::make_dynamic_schedule({schedule_kind::chimera, 3, 6, 2}), std::invalid_argument);
}

TEST_CASE("the verifiers catch broken schedules") {
  const auto good = make(schedule_kind::one_f_one_b, 4, 8);
  require_executable(good);
  auto edit = [&](auto&& f) {
    auto s = good;
    f(s);
    return s;
  };
  SUBCASE("a duplicated forward") {
    const auto s = edit([](auto& s) { s.actions[s.begin[1] + 1] = ts::make_action(op::F, 1, 0); });
    CHECK(ts::check_coverage(s).code == ts::verify_result::duplicate);
  }
  SUBCASE("an action on the wrong rank") {
    const auto s = edit([](auto& s) { s.actions[s.begin[2]].stage = 1; });
    CHECK(ts::check_coverage(s).code == ts::verify_result::wrong_rank);
  }
  SUBCASE("a backward before its forward on the last rank deadlocks") {
    const auto s = edit([](auto& s) { std::swap(s.actions[s.begin[3]], s.actions[s.begin[3] + 1]); });
    CHECK(ts::check_coverage(s).ok());
    CHECK(ts::simulate_compute(s).code == ts::verify_result::deadlock);
    const auto c = ts::derive_comm<ts::dynamic_storage>(s);
    CHECK_FALSE(ts::check_comm(c, s.total()).ok());
  }
  SUBCASE("a cycle across ranks deadlocks") {
    // Rank 2 starts with B(2,0): it needs B(3,0), which needs F(3,0), which needs F(2,0) — later on rank 2.
    const auto s = edit([](auto& s) {
      auto* a = &s.actions[s.begin[2]];
      int first_b = 0;
      while (a[first_b].kind != op::B) ++first_b;
      std::rotate(a, a + first_b, a + first_b + 1);
    });
    CHECK(ts::check_coverage(s).ok());
    CHECK(ts::simulate_compute(s).code == ts::verify_result::deadlock);
  }
  SUBCASE("a tampered communication program: swapped send/recv order deadlocks under rendezvous") {
    auto c = ts::derive_comm<ts::dynamic_storage>(good);
    REQUIRE(ts::check_comm(c, good.total()).ok());
    // Rank 1 sends its first activation before receiving the one it is computed from.
    const int b = c.begin[1], e = c.begin[2];
    int recv = -1, send = -1;
    for (int i = b; i < e; ++i) {
      if (recv < 0 && c.actions[i].kind == op::recv_f) recv = i;
      if (send < 0 && c.actions[i].kind == op::send_f) send = i;
    }
    REQUIRE((recv >= 0 && send > recv));
    std::swap(c.actions[recv], c.actions[send]);
    CHECK_FALSE(ts::check_comm(c, good.total()).ok());
  }
  SUBCASE("a missing receive") {
    auto c = ts::derive_comm<ts::dynamic_storage>(good);
    for (int i = c.begin[2]; i < c.begin[3]; ++i)
      if (c.actions[i].kind == op::recv_f) {
        c.actions[i] = c.actions[i + 1];  // the compute action twice, no receive
        break;
      }
    CHECK_FALSE(ts::check_comm(c, good.total()).ok());
  }
}

TEST_CASE("derived communication: sends follow their compute action, every send has one matching receive") {
  for (int k = 0; k < ts::num_schedule_kinds; ++k) {
    const auto kind = static_cast<schedule_kind>(k);
    const int P = 4, M = 8;
    const auto s = make(kind, P, M);
    const auto c = ts::derive_comm<ts::dynamic_storage>(s);
    std::map<std::tuple<int, int, int, int>, int> sends, recvs;  // (dir, sending stage, mb, from-rank)
    for (int r = 0; r < P; ++r)
      for (int i = 0; i < c.size(r); ++i) {
        const ts::action& a = c.at(r, i);
        if (a.kind == op::send_f || a.kind == op::send_b) {
          // The nearest compute action before it produced the sent tensor.
          int j = i - 1;
          while (j >= 0 && !ts::is_compute(c.at(r, j).kind)) --j;
          REQUIRE(j >= 0);
          bool produced = false;
          for (int p = 0; p < ts::num_parts(c.at(r, j)); ++p) {
            const ts::action x = ts::part(c.at(r, j), p);
            const bool fwd = x.kind == op::F;
            produced = produced || (x.stage == a.stage && x.mb == a.mb && fwd == (a.kind == op::send_f));
          }
          CHECK(produced);
          ++sends[{a.kind == op::send_f, a.stage, a.mb, r}];
          CHECK(c.rank_of(a.stage) == r);
        }
        if (a.kind == op::recv_f) ++recvs[{1, a.stage - 1, a.mb, a.peer}];
        if (a.kind == op::recv_b) ++recvs[{0, a.stage + 1, a.mb, a.peer}];
      }
    CHECK(sends == recvs);
    for (const auto& [key, n] : sends) CHECK(n == 1);
    // Exactly one transfer per stage boundary that crosses ranks, per microbatch and direction.
    int crossings = 0;
    for (int st = 0; st + 1 < s.stages(); ++st)
      if (!ts::is_last_stage(s.shape, st) && s.rank_of(st) != s.rank_of(st + 1)) ++crossings;
    CHECK(static_cast<int>(sends.size()) == 2 * crossings * ts::microbatches_per_stage(s.shape));
  }
}
