// tessera/train/train.hpp — ts::train<plan>(argc, argv): the training program of contract §2.
#pragma once
#include <mpi.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tessera/comm/mpi.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/train/data.hpp"
#include "tessera/train/hf_io.hpp"
#include "tessera/train/options.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/trainer.hpp"

extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_parallel(void);  // 0 sequential, 1 pthreads, 2 OpenMP

namespace tessera {

namespace train_detail {
inline int default_threads() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local = 1;
  MPI_Comm_size(node, &local);
  MPI_Comm_free(&node);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / local);
}
/// Peak FLOP/s of one rank, measured with an OpenBLAS GEMM (rank 0's value is used everywhere).
inline double measure_peak_flops() {
  const int n = 768;
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a), c(a.size());
  double best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    ops::host::gemm(ops::host::trans::no, ops::host::trans::no, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * n / best;
}
inline nlohmann::json plan_json(const plan_desc& pd) {
  const model_desc& m = pd.model;
  nlohmann::json j;
  j["model"] = {{"family", m.family_name()}, {"vocab", m.vocab}, {"seq", m.seq}, {"layers", m.layers},
                {"hidden", m.hidden}, {"heads", m.heads}, {"kv_heads", m.kv_heads}, {"ffn", m.ffn},
                {"norm", m.norm == norm::layernorm ? "layernorm" : "rmsnorm"},
                {"mlp", m.mlp == mlp::gelu ? "gelu" : "swiglu"},
                {"position", m.position == position::learned ? "learned" : "rope"},
                {"tied_embeddings", m.tied_embeddings}, {"bias", m.bias}, {"norm_eps", m.norm_eps},
                {"rope_theta", m.rope_theta}};
  j["mesh"] = {{"dp", pd.dp}, {"pp", pd.pp}, {"tp", pd.tp}};
  j["schedule"] = {{"kind", std::string(schedule_kind_name(pd.schedule.kind))},
                   {"microbatches", pd.schedule.microbatches}, {"chunks", pd.schedule.chunks}};
  std::vector<int> split;
  for (int s = 0; s < pd.model_stages; ++s) split.push_back(pd.layers_of(s));
  j["stage_layers"] = split;
  j["zero"] = pd.policy.zero;
  j["precision"] = pd.policy.precision == precision_kind::bf16 ? "bf16" : "fp32";
  j["recompute"] = pd.policy.recompute == recompute_kind::full ? "full"
                   : pd.policy.recompute == recompute_kind::selective ? "selective" : "none";
  j["sequence_parallel"] = pd.policy.sequence_parallel;
  return j;
}
}  // namespace train_detail

template <class Plan, class T, int D>
int run_training(const plan_desc& pd, const train_options& o) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  mesh_comms<mpi_comm> mc(mpi_comm::world(), pd.mesh);
  const int pp_rank = mc.coord(axis::pp);
  using table = typename Plan::table;
  std::vector<action> program;
  for (int i = 0; i < table::comm.size(pp_rank); ++i) program.push_back(table::comm.at(pp_rank, i));

  token_data data(o.data, pd.model.vocab, pd.model.seq);
  if (o.shuffle) data.shuffle(o.seed);
  trainer<T, D> tr(pd, std::move(program), o, mc, data);
  if (!o.init_from.empty()) load_hf(o.init_from, pd.model, tr.tensors(), tr.store());
  tr.shard_optimizer_state();  // ZeRO: from the final initial parameters
  auto do_export = [&] {
    if (!o.export_to.empty())
      export_hf(o.export_to, o.export_dtype == "bf16" ? st_dtype::bf16 : st_dtype::f32, pd.model, tr.tensors(),
                tr.store(), tr.owners(), MPI_COMM_WORLD);
  };

  std::ofstream log;
  if (rank == 0 && !o.log_json.empty()) {
    log.open(o.log_json);
    if (!log) throw usage_error(cat("--log-json ", o.log_json, ": cannot open for writing"));
  }
  auto emit = [&](const nlohmann::json& j) {
    if (log) log << j.dump() << '\n' << std::flush;
  };
  double peak = o.peak_tflops > 0 ? o.peak_tflops * 1e12 : (rank == 0 ? train_detail::measure_peak_flops() : 0.0);
  MPI_Bcast(&peak, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  const double fpt = flops_per_token(pd.model);
  const std::int64_t tokens_per_step = static_cast<std::int64_t>(tr.global_batch()) * pd.model.seq;
  const int blas = openblas_get_parallel();
  std::int64_t state_bytes = tr.state_bytes(), max_state = 0;
  MPI_Allreduce(&state_bytes, &max_state, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  emit({{"event", "start"}, {"plan", train_detail::plan_json(pd)}, {"params", pd.model.num_params()},
        {"world", world}, {"threads", omp_get_max_threads()},
        {"blas_threading", blas == 2 ? "openmp" : blas == 1 ? "pthreads" : "sequential"},
        {"batch", tr.global_batch()}, {"tokens_per_step", tokens_per_step},
        {"data", {{"file", o.data}, {"format", data.format()}, {"tokens", data.tokens()}, {"windows", data.windows()}}},
        {"peak_flops_per_rank", peak}, {"flops_per_token", fpt}, {"state_bytes_per_rank", state_bytes},
        {"predicted_state_bytes_per_rank", tr.predicted_state_bytes()}});

  if (o.eval_only) {
    const double l = tr.evaluate(0, o.eval_batches);
    if (rank == 0) {
      std::printf("eval_loss %.6f\n", l);
      std::fflush(stdout);
    }
    emit({{"event", "eval"}, {"eval_loss", l}, {"batches", o.eval_batches}});
    do_export();
    return 0;
  }
  const auto t_start = std::chrono::steady_clock::now();
  for (int k = 0; k < o.steps; ++k) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = tr.step(k);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double tps = tokens_per_step / (ms / 1000.0);
    std::int64_t peak_act = tr.peak_activation_bytes();  // the largest over the ranks
    MPI_Allreduce(MPI_IN_PLACE, &peak_act, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    const double mfu = peak > 0 ? fpt * tps / (peak * world) : 0.0;
    nlohmann::json j{{"step", k}, {"loss", r.loss}, {"grad_norm", r.grad_norm}, {"lr", r.lr},
                     {"tokens", tokens_per_step * (k + 1)}, {"step_ms", ms}, {"tokens_per_s", tps}, {"mfu", mfu},
                     {"state_bytes_per_rank", state_bytes}, {"peak_activation_bytes", peak_act}};
    if (r.skipped) j["skipped"] = "non-finite gradient";
    emit(j);
    if (rank == 0 && !o.quiet && (k % o.log_every == 0 || k + 1 == o.steps)) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      const double eta = el / (k + 1) * (o.steps - k - 1);
      std::fprintf(stderr, "step %5d/%d | loss %.6f | grad_norm %.4f | lr %.3e | %.0f tok/s | MFU %.1f%% | ETA %.0fs%s\n",
                   k + 1, o.steps, r.loss, r.grad_norm, r.lr, tps, 100.0 * mfu, eta,
                   r.skipped ? " | skipped: non-finite gradient" : "");
    }
  }
  do_export();
  return 0;
}

/// The training program: parses contract §2's flags, checks the world against the mesh, trains.
template <class Plan>
int train(int argc, char** argv) {
  static_assert(is_plan_v<Plan>, "tessera::train<P>: P must be a ts::plan<...>");
  mpi_environment env(argc, argv);
  constexpr plan_desc pd = Plan::desc;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  CLI::App app{"tessera training program (" + std::string(pd.model.family_name()) + ")"};
  train_options o;
  add_train_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (rank == 0 || e.get_exit_code() != 0) {
      if (rank == 0) app.exit(e);
    }
    return e.get_exit_code() == 0 ? 0 : usage_exit_code;
  }
  require_world_size(pd.mesh.world());
  try {
    if (!o.backend.empty() && o.backend == "cuda")
      throw usage_error("--backend cuda: the trainer runs on the host backend only in this version (the CUDA "
                        "operators and NCCL communicator exist, the CUDA trainer does not yet); use --backend host");
    const int threads = o.threads > 0 ? o.threads : train_detail::default_threads();
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    if (rank == 0 && threads > 1 && openblas_get_parallel() == 1)
      std::fprintf(stderr, "tessera: note: OpenBLAS is its pthreads build, whose threads compete with OpenMP's; the "
                           "OpenMP build (Debian: libopenblas0-openmp, scripts/deps.sh selects it) is faster\n");
    // Policies the host trainer does not carry out yet are refused, never silently ignored.
    if constexpr (pd.policy.zero >= 2) {
      throw usage_error(cat("ts::zero<", pd.policy.zero, ">: ZeRO stages 2 and 3 are not available in this version "
                            "of the trainer; use ts::zero<1> (optimizer state sharded) or ts::zero<0>"));
    } else if constexpr (pd.policy.precision == precision_kind::bf16) {
      return run_training<Plan, bf16, Plan::model::head_dim>(pd, o);
    } else {
      return run_training<Plan, float, Plan::model::head_dim>(pd, o);
    }
  } catch (const usage_error& e) {
    std::fprintf(stderr, "tessera: %s (rank %d)\n", e.what(), rank);
    return usage_exit_code;
  }
}

}  // namespace tessera
