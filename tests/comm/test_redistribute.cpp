// Redistribution over MPI on host memory: every mesh up to the world size, every transition.
#include <doctest/doctest.h>
#include <mpi.h>

#include <vector>

#include "host_harness.hpp"
#include "redistribute_cases.hpp"
#include "tessera/comm/mpi.hpp"

namespace ts = tessera;
using namespace tessera::testing;


TEST_CASE_TEMPLATE("redistribute: every single-axis transition on every mesh", T, float, ts::bf16) {
  suite_stats st;
  for_every_mesh<host_harness>([&](host_harness::comm& c, const ts::mesh_desc& m) {
    run_single_steps<host_harness, T>(c, m, st);
  });
  CHECK(st.mismatches == 0);
  CHECK(st.steps > 0);
  MESSAGE("single-axis redistributions: ", st.steps, " steps, ", st.compares, " elements compared");
}

TEST_CASE_TEMPLATE("redistribute: any placements to any unsummed placements", T, float, ts::bf16) {
  suite_stats st;
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  for_every_mesh<host_harness>([&](host_harness::comm& c, const ts::mesh_desc& m) {
    if (m.world() == world) run_full_redistributions<host_harness, T>(c, m, st);
  });
  CHECK(st.mismatches == 0);
  CHECK(st.steps > 0);
}

TEST_CASE("redistribution planner: a dimension split by two axes is gathered inner axis first") {
  const auto m = ts::mesh_desc::make({{ts::axis::dp, 2}, {ts::axis::tp, 2}});
  const ts::sharding both = ts::sharding{}.with(ts::axis::dp, ts::placement::make_shard(0)).with(ts::axis::tp, ts::placement::make_shard(0));
  const auto plan = ts::plan_redistribution(m, both, ts::sharding{});
  REQUIRE(plan.ok);
  REQUIRE(plan.steps.size() == 2);
  CHECK(plan.steps[0].ax == ts::axis::tp);
  CHECK(plan.steps[1].ax == ts::axis::dp);
  CHECK(plan.steps[0].op == ts::collective::all_gather);
}
