// NCCL on device memory: the same suites as the host backend (every collective on every group
// communicator, every redistribution), run with device buffers. Skips cleanly without a GPU.
#include <doctest/doctest.h>

#include "collective_cases.hpp"
#include "cuda_harness.hpp"
#include "redistribute_cases.hpp"

namespace ts = tessera;
using namespace tessera::testing;

/// NCCL refuses two ranks on one device: with fewer devices than ranks the test main skips (exit 77).
extern "C" const bool tessera_test_one_device_per_rank = true;

TEST_CASE_TEMPLATE("nccl: every collective on every group communicator", T, float, ts::bf16) {
  long bad = 0;
  for_every_mesh<cuda_harness>([&](ts::nccl_comm& c, const ts::mesh_desc& m) { bad += run_collectives<cuda_harness, T>(c, m); });
  CHECK(bad == 0);
}

TEST_CASE_TEMPLATE("nccl: every single-axis redistribution on every mesh", T, float, ts::bf16) {
  suite_stats st;
  for_every_mesh<cuda_harness>([&](ts::nccl_comm& c, const ts::mesh_desc& m) { run_single_steps<cuda_harness, T>(c, m, st); });
  CHECK(st.mismatches == 0);
  CHECK(st.steps > 0);
}
