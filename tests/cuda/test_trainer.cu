// The trainer on cuda_system: the host trainer's code (chunk, parameter store, ZeRO state, executor) with
// the system as a type — device buffers, the CUDA operators, host mirrors for the loss, the logits and
// checkpoints — trains a small GPT (fp32) and LLaMA (bf16) on one GPU as it trains them on the host: the
// same losses and gradient norms up to the operators' rounding (the GPU sums in other orders; the
// embedding gradient's atomics are not even deterministic). Skipped without a CUDA device.
#include <cmath>
#include <vector>

#include "tessera/tessera.hpp"
#include "one_rank_trainer.hpp"
#include <doctest/doctest.h>

namespace ts = tessera;

namespace {
using gpt = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 32, .layers = 2, .hidden = 64, .heads = 2}>;
using llama = ts::llama<ts::llama_config{.vocab = 256, .seq = 32, .layers = 2, .hidden = 128, .heads = 4, .kv_heads = 2,
                                         .ffn = 256}>;
using gpt_plan = ts::plan<gpt, ts::mesh<>, ts::one_f_one_b<2>>;
using llama_plan = ts::plan<llama, ts::mesh<>, ts::one_f_one_b<2>, ts::precision<ts::bf16>,
                            ts::recompute<ts::selective>>;

template <class T, class Plan>
void same_training(double tol) {
  ts::loopback_comm host_world, gpu_world;
  const auto host = tessera_test::one_rank_trainer<T, Plan, ts::loopback_comm>(host_world, 4).train_evaluate_sample(4);
  const auto gpu =
      tessera_test::one_rank_trainer<T, Plan, ts::loopback_comm, ts::cuda_system>(gpu_world, 4).train_evaluate_sample(4);
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
