// The trainer on cuda_system: the host trainer's code (chunk, parameter store, ZeRO state, executor) with
// the system as a type — device buffers, the CUDA operators, host mirrors for the loss, the logits and
// checkpoints — trains a small GPT (fp32) and LLaMA (bf16) on one GPU as it trains them on the host: the
// same losses and gradient norms up to the operators' rounding (the GPU sums in other orders; the
// embedding gradient's atomics are not even deterministic). Then several ranks on the GPU(s): every layout
// of tests/support/staged_layouts.hpp through the staged communicator against the host trainer on MPI.
// The GPU trainer always communicates through staged_comm (as `--backend cuda` does). Skipped without a
// CUDA device.
#include <cmath>
#include <string>
#include <type_traits>
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

template <class T, class Plan>
void same_training(double tol) {
  ts::mpi_comm host_world = ts::mpi_comm::split(MPI_COMM_SELF, 0, 0);
  staged gpu_world(ts::mpi_comm::split(MPI_COMM_SELF, 0, 0));
  const auto host = tessera_test::one_rank_trainer<T, Plan, ts::mpi_comm>(host_world, 4).train_evaluate_sample(4);
  const auto gpu = tessera_test::one_rank_trainer<T, Plan, staged, ts::cuda_system>(gpu_world, 4).train_evaluate_sample(4);
  REQUIRE(host.size() == gpu.size());
  for (std::size_t i = 0; i < 9; ++i) {  // 4 × (loss, grad_norm), the evaluation; not the sampled tokens
    CAPTURE(i);
    CHECK(std::isfinite(gpu[i]));
    CHECK(std::abs(gpu[i] - host[i]) <= tol * std::abs(host[i]));
  }
}
}  // namespace

TEST_CASE("trainer<cuda_system>: GPT in fp32 trains on the GPU as on the host") {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) same_training<float, gpt_plan>(1e-4);
}

TEST_CASE("trainer<cuda_system>: LLaMA in bf16 with selective recompute trains on the GPU as on the host") {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) same_training<ts::bf16, llama_plan>(2e-2);
}

TEST_CASE("several ranks on the GPU(s) through the staged communicator: every layout trains as on the host") {
  const int layouts = tessera_test::compare_layouts_with_host<staged, ts::cuda_system>(
      3, [](bool fp32, const std::vector<double>& host, const std::vector<double>& gpu) {
        const double tol = fp32 ? 1e-4 : 2e-2;  // the parity tolerances
        REQUIRE(host.size() == gpu.size());
        for (std::size_t i = 0; i < host.size(); ++i) {
          CAPTURE(i);
          CHECK(std::isfinite(gpu[i]));
          CHECK(std::abs(gpu[i] - host[i]) <= tol * std::abs(host[i]));
        }
      });
  CHECK(layouts > 0);
}
