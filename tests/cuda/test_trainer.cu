// The trainer on cuda_system: the host trainer's code (chunk, parameter store, ZeRO state, executor) with
// the system as a type — device buffers, the CUDA operators, host mirrors for the loss, the logits and
// checkpoints — trains a small GPT (fp32) and LLaMA (bf16) on one GPU as it trains them on the host: the
// same losses and gradient norms up to the operators' rounding (the GPU sums in other orders: GEMMs,
// reductions). Then several ranks on the GPU(s): every layout
// of tests/support/staged_layouts.hpp through the staged communicator against the host trainer on MPI,
// and — when every rank of a node has a GPU of its own — through NCCL (as `--comm nccl` does). Skipped
// without a CUDA device.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/tessera.hpp"
#include "one_rank_trainer.hpp"
#include "staged_layouts.hpp"
#include <doctest/doctest.h>

namespace ts = tessera;

namespace {
// the layouts' models (head size 32): the one-rank and the multi-rank tests share their instantiations
using gpt_plan = ts::plan<tessera_test::staged_gpt, ts::mesh<>, ts::one_f_one_b<2>>;
using llama_plan = ts::plan<tessera_test::staged_llama, ts::mesh<>, ts::one_f_one_b<2>, ts::precision<ts::bf16>,
                            ts::recompute<ts::selective>>;
using staged = ts::staged_comm<ts::mpi_comm, ts::cuda_system>;
static_assert(ts::communicator<staged>);

/// 20 steps (the parity suite's length) on the GPU and on the host: every step's loss and gradient norm and
/// the evaluation within `tol` of the host's.
template <class T, class Plan>
void same_training(double tol) {
  constexpr int steps = 20;
  ts::mpi_comm host_world = ts::mpi_comm::split(MPI_COMM_SELF, 0, 0);
  staged gpu_world(ts::mpi_comm::split(MPI_COMM_SELF, 0, 0));
  const auto host = tessera_test::one_rank_trainer<T, Plan, ts::mpi_comm>(host_world, 4).train_evaluate_sample(steps);
  const auto gpu =
      tessera_test::one_rank_trainer<T, Plan, staged, ts::cuda_system>(gpu_world, 4).train_evaluate_sample(steps);
  REQUIRE(host.size() == gpu.size());
  for (std::size_t i = 0; i < 2 * steps + 1; ++i) {  // steps × (loss, grad_norm), the evaluation; not the samples
    CAPTURE(i);
    CHECK(std::isfinite(gpu[i]));
    CHECK(std::abs(gpu[i] - host[i]) <= tol * std::abs(host[i]));
  }
}
}  // namespace

TEST_CASE("trainer<cuda_system>: GPT in fp32 trains 20 steps on the GPU as on the host") {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) same_training<float, gpt_plan>(1e-4);
}

TEST_CASE("trainer<cuda_system>: LLaMA in bf16 with selective recompute trains 20 steps on the GPU as on the host") {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) same_training<ts::bf16, llama_plan>(2e-2);
}

namespace {
/// The GPU's results within the parity tolerances of the host's.
void within_parity(bool fp32, const std::vector<double>& host, const std::vector<double>& gpu) {
  const double tol = fp32 ? 1e-4 : 2e-2;
  REQUIRE(host.size() == gpu.size());
  for (std::size_t i = 0; i < host.size(); ++i) {
    CAPTURE(i);
    CHECK(std::isfinite(gpu[i]));
    CHECK(std::abs(gpu[i] - host[i]) <= tol * std::abs(host[i]));
  }
}
}  // namespace

TEST_CASE("several ranks on the GPU(s) through the staged communicator: every layout trains as on the host") {
  CHECK(tessera_test::compare_layouts_with_host<staged, ts::cuda_system>(3, within_parity) > 0);
}

TEST_CASE("several ranks, a GPU each, through NCCL: every layout trains as on the host") {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_ranks = 0, devices = ts::cuda_device_count(), enough = 0;
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  const int mine = devices >= local_ranks ? 1 : 0;
  MPI_Allreduce(&mine, &enough, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!enough) {
    MESSAGE("skipped: ", local_ranks, " ranks on a node with ", devices, " GPU(s); NCCL needs a GPU per rank");
    return;
  }
  CHECK(tessera_test::compare_layouts_with_host<ts::nccl_comm, ts::cuda_system>(3, within_parity) > 0);
}

TEST_CASE("--trace on the GPU: the device's compute stream is a track of its own, timed by CUDA events") {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) return;
  const auto dir = std::filesystem::temp_directory_path() / "tessera_gpu_trace";
  std::filesystem::create_directories(dir);
  ts::train_options o;
  o.data = TESSERA_CORPUS;
  o.steps = 2;
  o.batch = 4;
  o.quiet = true;
  o.hang_timeout = -1;
  o.log_json = (dir / "log.json").string();
  o.trace = (dir / "trace.json").string();
  const staged job(ts::mpi_comm::split(MPI_COMM_SELF, 0, 0));
  ts::training_run<float, tessera_test::staged_gpt::head_dim, staged, ts::cuda_system>(gpt_plan::desc, o, job,
                                                                                       &ts::program_of_rank<gpt_plan>)
      .run();
  std::ifstream f(o.trace);
  const nlohmann::json doc = nlohmann::json::parse(f);
  std::map<int, std::string> tracks;
  std::map<int, std::vector<std::pair<double, double>>> spans;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") tracks[e["tid"].get<int>()] = e["args"]["name"].get<std::string>();
    if (e["ph"] == "X") spans[e["tid"].get<int>()].emplace_back(e["ts"].get<double>(), e["dur"].get<double>());
  }
  REQUIRE(tracks.count(3) == 1);
  CHECK(tracks[3] == "compute stream (device)");
  CHECK(spans[3].size() == spans[0].size());  // a device span for every operator issued
  double device_busy = 0;
  for (const auto& [ts_us, dur_us] : spans[3]) {
    CHECK(dur_us >= 0);
    CHECK(ts_us >= -1e3);  // on the host's clock, from the barrier that starts the step
    device_busy += dur_us;
  }
  CHECK(device_busy > 0);
}
