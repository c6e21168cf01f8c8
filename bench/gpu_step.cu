// bench_gpu_step — one GPU, bf16: a GPT training step (forward, backward, AdamW) with tessera's trainer on
// cuda_system, timed after warm-up steps; tokens/s and MFU against the peak a cuBLASLt bf16 GEMM reaches
// on this GPU. bench/gpu_step_torch.py runs the same model in PyTorch; scripts/bench.sh gpu-step runs both,
// alternating, and prints the ratio (docs/gpu.md).
//
//   bench_gpu_step --model gpt2|gpt1.3b [--batch B] [--steps N] [--warmup W] [--data FILE]
//
// Prints one JSON line: {"system":"tessera","model":..,"tokens_per_s":..,"step_ms":..,"mfu":..,
// "peak_tflops":..,"loss":..}. Without a CUDA device: a message and exit 77 (skipped).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tessera/tessera.hpp"

namespace ts = tessera;

namespace {

using gpt2 = ts::gpt<ts::gpt_config{.vocab = 50257, .seq = 1024, .layers = 12, .hidden = 768, .heads = 12}>;
using gpt13 = ts::gpt<ts::gpt_config{.vocab = 50257, .seq = 1024, .layers = 24, .hidden = 2048, .heads = 16}>;

/// The bf16 tensor-core peak this GPU reaches: a cuBLASLt 8192³ bf16 GEMM with fp32 accumulation, best of 10.
double measured_peak_flops() {
  const std::int64_t n = 8192;
  ts::device_buffer<ts::bf16> a, b;
  ts::device_buffer<float> c;
  a.resize(n * n);
  b.resize(n * n);
  c.resize(n * n);
  const ts::cuda_system::context ctx;
  const ts::cuda_system sys = ctx.system();
  sys.fill(a.data(), n * n, ts::bf16(0.01f));
  sys.fill(b.data(), n * n, ts::bf16(0.02f));
  cudaEvent_t e0, e1;
  ts::cuda_check(cudaEventCreate(&e0), "cudaEventCreate");
  ts::cuda_check(cudaEventCreate(&e1), "cudaEventCreate");
  float best = 1e30f;
  for (int rep = 0; rep < 13; ++rep) {
    ts::cuda_check(cudaEventRecord(e0, sys.stream()), "cudaEventRecord");
    ts::ops::gemm(sys, ts::ops::host::trans::no, ts::ops::host::trans::no, n, n, n, 1.0f, a.data(), n,
                  b.data(), n, 0.0f, c.data(), n);
    ts::cuda_check(cudaEventRecord(e1, sys.stream()), "cudaEventRecord");
    ts::cuda_check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    ts::cuda_check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    if (rep >= 3 && ms < best) best = ms;  // three warm-ups
  }
  return 2.0 * n * n * n / (best * 1e-3);
}

template <class Model>
int run(const std::string& name, const std::string& data_file, int batch, int steps, int warmup) {
  using plan = ts::plan<Model, ts::mesh<>, ts::one_f_one_b<1>, ts::precision<ts::bf16>>;
  constexpr ts::plan_desc pd = plan::desc;
  ts::train_options o;
  o.batch = batch;
  o.steps = steps + warmup;
  o.lr = 3e-4;
  o.warmup = 1;
  ts::loopback_comm world;
  ts::mesh_comms<ts::loopback_comm> mc(world, pd.mesh);
  ts::token_data data(data_file, pd.model.vocab, pd.model.seq);
  ts::trainer<ts::bf16, Model::head_dim, ts::loopback_comm, ts::cuda_system> tr(pd, ts::program_of_rank<plan>(0), o, mc,
                                                                                data);
  tr.shard_optimizer_state();
  double loss = 0;
  for (int k = 0; k < warmup; ++k) loss = tr.step(k).loss;
  ts::cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = warmup; k < warmup + steps; ++k) loss = tr.step(k).loss;  // each step returns its loss: synchronised
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
  const double tokens = static_cast<double>(batch) * pd.model.seq;
  const double peak = measured_peak_flops();
  const double mfu = ts::flops_per_token(pd.model) * tokens / s / peak;
  std::string attention;  // which engine the attention operators chose (cuDNN, or tessera's kernel and why)
  for (const auto& c : ts::engine_choice::process().choices())
    if (c.op.rfind("attention", 0) == 0) attention += (attention.empty() ? "" : "; ") + c.op + ": " + c.engine;
  std::printf("{\"system\":\"tessera\",\"model\":\"%s\",\"batch\":%d,\"seq\":%d,\"params\":%lld,\"tokens_per_s\":%.1f,"
              "\"step_ms\":%.3f,\"mfu\":%.4f,\"peak_tflops\":%.1f,\"loss\":%.4f,\"attention\":%s}\n",
              name.c_str(), batch, pd.model.seq, static_cast<long long>(pd.model.num_params()), tokens / s, 1e3 * s, mfu,
              peak / 1e12, loss, nlohmann::json(attention).dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_gpu_step: a bf16 GPT training step on one GPU (tessera's trainer on cuda_system)"};
  std::string model = "gpt2", data = "data/corpus.txt";
  int batch = 8, steps = 10, warmup = 3;
  app.add_option("--model", model, "gpt2 (124M) | gpt1.3b")->check(CLI::IsMember({"gpt2", "gpt1.3b"}));
  app.add_option("--batch", batch, "sequences per step")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  app.add_option("--data", data, "token file (bytes or an llm.c shard)");
  CLI11_PARSE(app, argc, argv);
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 77;
  }
  try {
    return model == "gpt2" ? run<gpt2>(model, data, batch, steps, warmup) : run<gpt13>(model, data, batch, steps, warmup);
  } catch (const ts::usage_error& x) {
    std::fprintf(stderr, "bench_gpu_step: error: %s\n", x.what());
    return ts::usage_exit_code;
  }
}
