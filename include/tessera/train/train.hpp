// tessera/train/train.hpp — ts::train<plan>(argc, argv): the training program of contract §2.
#pragma once
#include <malloc.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tessera/comm/mpi.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/train/checkpoint.hpp"
#include "tessera/train/data.hpp"
#include "tessera/train/hf_io.hpp"
#include "tessera/train/machine.hpp"
#include "tessera/train/options.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/trainer.hpp"

extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_parallel(void);  // 0 sequential, 1 pthreads, 2 OpenMP

namespace tessera {

namespace train_detail {
/// Peak FLOP/s of one rank, measured with an OpenBLAS GEMM (rank 0's value is used everywhere).
/// The GEMM rate the MFU is measured against: an n = 768 square GEMM in the step's precision (bf16 inputs run
/// on the engine bf16 GEMMs get here: AVX512-BF16 through oneDNN where available).
template <class T = float>
inline double measure_peak_flops() {
  const int n = 768;
  std::vector<T> a(static_cast<std::size_t>(n) * n, T(0.5f)), b(a);
  std::vector<float> c(a.size());
  double best = 1e30;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    ops::host::gemm(ops::host::trans::no, ops::host::trans::no, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * n * n / best;
}
/// Peak resident memory of this process (VmHWM) in bytes, 0 where unknown.
inline std::int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}
/// Restarts the peak at the current resident size (Linux: /proc/self/clear_refs, "5"), so that the peak
/// measured is that of training, not of set-up (which may hold whole buffers before ZeRO shards them).
inline void reset_peak_rss() {
  ::malloc_trim(0);  // whole buffers freed by ZeRO's sharding go back to the system first
  std::ofstream f("/proc/self/clear_refs");
  if (f) f << "5";
}
/// Whether a profile row is a GEMM: "sgemm …" (fp32, OpenBLAS) or "bf16gemm …" (bf16 inputs).
inline bool is_gemm_row(const std::string& name) {
  return name.rfind("sgemm ", 0) == 0 || name.rfind("bf16gemm ", 0) == 0;
}
/// A GEMM shape of the profile ("sgemm NT 256x768x2304", "bf16gemm NN …") run alone on fresh buffers:
/// best GFLOP/s of 6 after a warm-up (the best, because other work on a shared machine only slows a run);
/// with sustain_s > 0 instead the mean GFLOP/s of back-to-back calls for that long (what the cores keep up
/// under a continuous load, as in a training step, rather than in a short burst).
inline double isolated_gemm_gflops(const std::string& name, double sustain_s = 0) {
  char kind[16] = {}, ta = 'N', tb = 'N';
  long long m = 0, n = 0, k = 0;
  if (std::sscanf(name.c_str(), "%15s %c%c %lldx%lldx%lld", kind, &ta, &tb, &m, &n, &k) != 6 || m <= 0 || n <= 0 ||
      k <= 0 || !is_gemm_row(name))
    return 0;
  using ops::host::trans;
  const trans a_t = ta == 'T' ? trans::yes : trans::no, b_t = tb == 'T' ? trans::yes : trans::no;
  const long long lda = a_t == trans::yes ? m : k, ldb = b_t == trans::yes ? k : n;
  std::vector<float> C(static_cast<std::size_t>(m * n), 0.0f);
  auto run = [&](auto zero) {
    using E = decltype(zero);
    std::vector<E> A(static_cast<std::size_t>(m * k), E(0.01f)), B(static_cast<std::size_t>(k * n), E(0.02f));
    double best = 1e30;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      ops::host::gemm(a_t, b_t, m, n, k, 1.0f, A.data(), lda, B.data(), ldb, 1.0f, C.data(), n);
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rep > 0) best = std::min(best, dt);
    }
    if (sustain_s > 0) {
      const auto t0 = std::chrono::steady_clock::now();
      int calls = 0;
      double dt = 0;
      do {
        ops::host::gemm(a_t, b_t, m, n, k, 1.0f, A.data(), lda, B.data(), ldb, 1.0f, C.data(), n);
        ++calls;
        dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      } while (dt < sustain_s);
      return dt / calls;
    }
    return best;
  };
  const double best = std::string_view(kind) == "bf16gemm" ? run(bf16(0.0f)) : run(0.0f);
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / best / 1e9;
}
/// Rank 0's operator profile per step: a table on stderr and a JSON object for the log.
inline nlohmann::json profile_report(int steps, double step_ms, bool print) {
  const auto rows = prof::sorted();
  nlohmann::json ops = nlohmann::json::array();
  double total = 0, gemm_s = 0, gemm_flops = 0, peak = 0, sustained = 0;
  std::vector<double> alone(rows.size(), 0.0);
  {
    const bool was = prof::enabled();
    prof::enabled() = false;  // the isolated runs are not part of the profile
    std::size_t fastest = rows.size();
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (is_gemm_row(rows[i].first)) {
        alone[i] = isolated_gemm_gflops(rows[i].first);
        if (alone[i] > peak) peak = alone[i], fastest = i;
      }
    if (fastest < rows.size()) sustained = isolated_gemm_gflops(rows[fastest].first, 2.0);
    prof::enabled() = was;
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& [name, e] = rows[i];
    total += e.seconds;
    const bool gemm = is_gemm_row(name);
    if (gemm) {
      gemm_s += e.seconds;
      gemm_flops += e.flops;
    }
    nlohmann::json o{{"op", name}, {"calls_per_step", static_cast<double>(e.calls) / steps},
                     {"ms_per_step", 1e3 * e.seconds / steps}, {"share", e.seconds / steps / (step_ms / 1e3)}};
    if (e.flops > 0) o["gflops"] = e.flops / e.seconds / 1e9;
    if (alone[i] > 0) o["alone_gflops"] = alone[i];
    ops.push_back(std::move(o));
  }
  const double gemm_rate = gemm_s > 0 ? gemm_flops / gemm_s / 1e9 : 0;
  nlohmann::json j{{"event", "profile"}, {"steps", steps}, {"step_ms", step_ms}, {"ops", ops},
                   {"profiled_ms_per_step", 1e3 * total / steps},
                   {"gemm", {{"ms_per_step", 1e3 * gemm_s / steps}, {"gflops", gemm_rate}, {"peak_gflops", peak},
                             {"sustained_gflops", sustained},
                             {"fraction_of_peak", peak > 0 ? gemm_rate / peak : 0.0},
                             {"share_of_step", gemm_s / steps / (step_ms / 1e3)}}}};
  if (print) {
    std::fprintf(stderr, "profile (rank 0, %d step%s after one warm-up, per step; a scope's time excludes those inside it)\n",
                 steps, steps == 1 ? "" : "s");
    std::fprintf(stderr, "  %-44s %7s %10s %7s %9s %9s\n", "operator", "calls", "ms", "share", "GFLOP/s", "alone");
    for (const auto& o : ops)
      std::fprintf(stderr, "  %-44s %7.0f %10.2f %6.1f%% %9s %9s\n", o["op"].get<std::string>().c_str(),
                   o["calls_per_step"].get<double>(), o["ms_per_step"].get<double>(), 100 * o["share"].get<double>(),
                   o.contains("gflops") ? cat(static_cast<int>(o["gflops"].get<double>())).c_str() : "",
                   o.contains("alone_gflops") ? cat(static_cast<int>(o["alone_gflops"].get<double>())).c_str() : "");
    std::fprintf(stderr, "  operators %.1f ms of a %.1f ms step (%.1f%%); GEMMs %.1f ms at %.1f GFLOP/s = %.1f%% of the "
                         "measured GEMM peak %.1f GFLOP/s (the fastest of the step's shapes run alone; %.1f GFLOP/s "
                         "when it runs back to back for 2 s)\n",
                 1e3 * total / steps, step_ms, 100 * total / steps / (step_ms / 1e3), 1e3 * gemm_s / steps, gemm_rate,
                 peak > 0 ? 100 * gemm_rate / peak : 0.0, peak, sustained);
  }
  return j;
}
}  // namespace train_detail

template <class Plan, class T, int D, communicator Comm>
int run_training(const plan_desc& pd, const train_options& o, const Comm& job) {
  mesh_comms<Comm> mc(job, pd.mesh);
  Comm& everyone = mc.world();
  const int rank = everyone.rank(), world = everyone.size();
  const int pp_rank = mc.coord(axis::pp);
  using table = typename Plan::table;
  std::vector<action> program;
  for (int i = 0; i < table::comm.size(pp_rank); ++i) program.push_back(table::comm.at(pp_rank, i));

  token_data data(o.data, pd.model.vocab, pd.model.seq);
  bool shuffle = o.shuffle;
  std::uint64_t shuffle_seed = o.seed;
  if (shuffle) data.shuffle(shuffle_seed);
  trainer<T, D, Comm> tr(pd, std::move(program), o, mc, data);
  if (!o.init_from.empty()) load_hf(o.init_from, pd.model, tr.tensors(), tr.store());
  const nlohmann::json plan = plan_to_json(pd);
  int k0 = 0;
  std::string resumed_from;
  if (!o.resume_dir.empty()) {
    const checkpoint_info ck = load_checkpoint(o.resume_dir, tr, plan, everyone);
    k0 = ck.step;
    resumed_from = ck.path;
    // the data loader continues where the checkpoint left it: batch k0, in the saved order
    if (ck.order) {
      const bool sh = ck.order->shuffle;
      const std::uint64_t seed = ck.order->seed;
      if (rank == 0 && (sh != o.shuffle || (sh && seed != o.seed)))
        std::fprintf(stderr, "tessera: --resume: the data order of the checkpoint (%s) is kept\n",
                     sh ? cat("shuffled with seed ", seed).c_str() : "in file order");
      shuffle = sh;
      shuffle_seed = seed;
      if (sh) data.shuffle(seed);
      else data.unshuffle();
    }
    if (rank == 0 && !o.quiet)
      std::fprintf(stderr, "tessera: resumed from %s (step %d, saved by %s)\n", ck.path.c_str(), ck.step,
                   ck.saved_by.c_str());
  }
  tr.shard_optimizer_state();  // ZeRO: from the final initial (or loaded) parameters and moments
  auto do_export = [&] {
    if (o.export_to.empty()) return;
    tr.gather_state();  // ZeRO: whole masters on dp rank 0 (the exporting owners); ZeRO-3: whole parameters
    std::vector<const ops::grad_t<T>*> masters;
    for (std::size_t i = 0; i < tr.store().slots.size(); ++i) masters.push_back(tr.slot_state(i).master);
    export_hf(o.export_to, o.export_dtype == "bf16" ? st_dtype::bf16 : st_dtype::f32, pd.model, tr.tensors(),
              tr.store(), tr.owners(), everyone, masters);
    tr.release_gathered_state();
  };

  std::ofstream log;
  if (rank == 0 && !o.log_json.empty()) {  // a resumed run appends to its log
    log.open(o.log_json, resumed_from.empty() ? std::ios::trunc : std::ios::app);
    if (!log) throw usage_error(cat("--log-json ", o.log_json, ": cannot open for writing"));
  }
  auto emit = [&](const nlohmann::json& j) {
    if (log) log << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n' << std::flush;
  };
  double peak = o.peak_tflops > 0 ? o.peak_tflops * 1e12 : (rank == 0 ? train_detail::measure_peak_flops<T>() : 0.0);
  everyone.broadcast(&peak, 1, 0);
  const double fpt = flops_per_token(pd.model);
  const std::int64_t tokens_per_step = static_cast<std::int64_t>(tr.global_batch()) * pd.model.seq;
  const int blas = openblas_get_parallel();
  const std::int64_t state_bytes = tr.state_bytes();
  // the largest over the ranks, as the step lines log
  const double predicted_act = all_reduce_value(everyone, tr.predicted_activation_bytes(), reduce_op::max);
  const train_detail::machine_info machine = train_detail::describe_machine(everyone, omp_get_max_threads());
  if (rank == 0 && !o.quiet) {
    std::fprintf(stderr, "%s\n", machine.header().c_str());
    if (!machine.threads_warning.empty())
      std::fprintf(stderr, "tessera: warning: %s\n", machine.threads_warning.c_str());
    if (!machine.openblas_warning.empty())
      std::fprintf(stderr, "tessera: warning: %s\n", machine.openblas_warning.c_str());
  }
  nlohmann::json start{{"event", "start"}, {"plan", plan}, {"params", pd.model.num_params()},
        {"world", world}, {"blas_threading", blas == 2 ? "openmp" : blas == 1 ? "pthreads" : "sequential"},
        {"batch", tr.global_batch()}, {"tokens_per_step", tokens_per_step}, {"steps", o.steps},
        {"data", {{"file", o.data}, {"format", data.format()}, {"tokens", data.tokens()}, {"windows", data.windows()},
                  {"shuffle", shuffle}}},
        {"peak_flops_per_rank", peak}, {"flops_per_token", fpt}, {"state_bytes_per_rank", state_bytes},
        {"predicted_state_bytes_per_rank", tr.predicted_state_bytes()},
        {"predicted_activation_bytes", predicted_act}, {"start_step", k0}};
  start.update(machine.json());
  if (!resumed_from.empty()) start["resumed_from"] = resumed_from;
  emit(start);

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
  // checkpoints: the loader's state is the next batch index (batches are a function of it, the batch
  // size and the window order); parameters are initialised from the seed alone and nothing else draws
  // random numbers during training, so the seed is the whole RNG state
  int last_saved = resumed_from.empty() || o.save_dir != o.resume_dir ? -1 : k0;
  auto save = [&](int step) {
    const auto t0 = std::chrono::steady_clock::now();
    const nlohmann::json extra{
        {"data", {{"file", o.data}, {"format", data.format()}, {"tokens", data.tokens()}, {"windows", data.windows()},
                  {"seq", pd.model.seq}, {"batch", tr.global_batch()}, {"next_batch", step}, {"shuffle", shuffle},
                  {"shuffle_seed", shuffle_seed}}},
        {"rng", {{"seed", o.seed}, {"init", "counter-based (seed, tensor, element): layout independent"}}},
        {"optimizer", {{"kind", "adamw"}, {"lr", o.lr}, {"min_lr", o.min_lr}, {"warmup", o.warmup}, {"steps", o.steps},
                       {"weight_decay", o.weight_decay}, {"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps},
                       {"grad_clip", o.grad_clip}}}};
    const std::string where = save_checkpoint(o.save_dir, step, tr, plan, extra, everyone);
    last_saved = step;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    emit({{"event", "checkpoint"}, {"step", step}, {"path", where}, {"save_ms", ms}});
    if (rank == 0 && !o.quiet) std::fprintf(stderr, "tessera: saved %s (%.0f ms)\n", where.c_str(), ms);
  };
  train_detail::reset_peak_rss();
  const auto t_start = std::chrono::steady_clock::now();
  const int k_end = o.stop_after > 0 ? std::min(o.steps, o.stop_after) : o.steps;
  int profiled = 0;
  double profiled_ms = 0;
  for (int k = k0; k < k_end; ++k) {
    if (o.profile && (k == k0 + 1 || k_end - k0 == 1)) {  // after one warm-up step (unless there is one step)
      prof::reset();
      prof::enabled() = true;
    }
    everyone.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = tr.step(k);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double tps = tokens_per_step / (ms / 1000.0);
    if (prof::enabled()) {
      ++profiled;
      profiled_ms += ms;
    }
    const std::int64_t peak_act = all_reduce_value(everyone, tr.peak_activation_bytes(), reduce_op::max);
    // since training started, the largest rank's
    const std::int64_t peak_rss = all_reduce_value(everyone, train_detail::peak_rss_bytes(), reduce_op::max);
    const double mfu = peak > 0 ? fpt * tps / (peak * world) : 0.0;
    nlohmann::json j{{"step", k}, {"loss", r.loss}, {"grad_norm", r.grad_norm}, {"lr", r.lr},
                     {"tokens", tokens_per_step * (k + 1)}, {"step_ms", ms}, {"tokens_per_s", tps}, {"mfu", mfu},
                     {"state_bytes_per_rank", state_bytes}, {"peak_activation_bytes", peak_act},
                     {"peak_rss_bytes", peak_rss}};
    if (r.skipped) j["skipped"] = "non-finite gradient";
    emit(j);
    if (rank == 0 && !o.quiet && (k % o.log_every == 0 || k + 1 == k_end)) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      const double eta = el / (k + 1 - k0) * (o.steps - k - 1);
      std::fprintf(stderr, "step %5d/%d | loss %.6f | grad_norm %.4f | lr %.3e | %.0f tok/s | MFU %.1f%% | ETA %.0fs%s\n",
                   k + 1, o.steps, r.loss, r.grad_norm, r.lr, tps, 100.0 * mfu, eta,
                   r.skipped ? " | skipped: non-finite gradient" : "");
    }
    if (!o.save_dir.empty() && ((o.save_every > 0 && (k + 1) % o.save_every == 0) || k + 1 == k_end)) save(k + 1);
  }
  if (o.profile && profiled > 0) {
    prof::enabled() = false;
    if (rank == 0) emit(train_detail::profile_report(profiled, profiled_ms / profiled, true));
  }
  if (k_end < o.steps && rank == 0 && !o.quiet)
    std::fprintf(stderr, "tessera: stopped after step %d of %d (--stop-after)\n", std::max(k0, k_end), o.steps);
  // a resumed run that trained nothing still writes its state under its own layout: a resharded copy
  if (!o.save_dir.empty() && std::max(k0, k_end) > 0 && last_saved != std::max(k0, k_end)) save(std::max(k0, k_end));
  do_export();
  if (o.sample > 0) {
    std::vector<std::int32_t> prompt;
    for (unsigned char c : o.prompt) {
      if (c >= pd.model.vocab)
        throw usage_error(cat("--prompt: byte ", int(c), " is outside the model's vocabulary (", pd.model.vocab, ")"));
      prompt.push_back(c);
    }
    if (prompt.empty()) prompt.push_back(0);
    const auto out = tr.generate(prompt, o.sample, o.temperature, o.seed);
    if (rank == 0) {
      std::string text;
      const bool bytes = data.format() == "bytes";
      for (std::size_t i = prompt.size(); i < out.size(); ++i)
        text += bytes ? std::string(1, static_cast<char>(out[i])) : cat(i > prompt.size() ? " " : "", out[i]);
      std::printf("--- sample (%d tokens, temperature %g) ---\n%s%s\n", o.sample, o.temperature, o.prompt.c_str(),
                  text.c_str());
      std::fflush(stdout);
      emit({{"event", "sample"}, {"prompt", o.prompt}, {"tokens", std::vector<std::int32_t>(out.begin() + prompt.size(), out.end())},
            {"text", bytes ? text : std::string()}});
    }
  }
  return 0;
}

/// The training program: parses contract §2's flags, checks the world against the mesh, trains.
template <class Plan>
int train(int argc, char** argv) {
  static_assert(is_plan_v<Plan>, "tessera::train<P>: P must be a ts::plan<...>");
  ops::host::openblas::restart_with_cpu_kernels();  // before MPI: OpenBLAS's generic kernels on a new CPU
  mpi_environment env(argc, argv);
  constexpr plan_desc pd = Plan::desc;
  const int rank = env.rank();
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
    const mpi_comm job = mpi_comm::world();
    const int threads = o.threads > 0 ? o.threads : train_detail::default_threads(job.split_by_node().size());
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    if (rank == 0 && threads > 1 && openblas_get_parallel() == 1)
      std::fprintf(stderr, "tessera: note: OpenBLAS is its pthreads build, whose threads compete with OpenMP's; the "
                           "OpenMP build (Debian: libopenblas0-openmp, scripts/deps.sh selects it) is faster\n");
    // Policies the host trainer does not carry out yet are refused, never silently ignored.
    if constexpr (pd.policy.precision == precision_kind::bf16) {
      return run_training<Plan, bf16, Plan::model::head_dim>(pd, o, job);
    } else {
      return run_training<Plan, float, Plan::model::head_dim>(pd, o, job);
    }
  } catch (const usage_error& e) {
    std::fprintf(stderr, "tessera: %s (rank %d)\n", e.what(), rank);
    return usage_exit_code;
  }
}

}  // namespace tessera
