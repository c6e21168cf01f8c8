// tessera/train/training_run.hpp — one run of a ts::train program, as its flags ask: initialise (from the
// seed, --init-from HF weights, or --resume a checkpoint), evaluate (--eval-only) or train --steps with
// checkpoints (--save, --save-every, --stop-after), then --export and --sample. The trainer does the
// work; this is the order of things and what is reported (run_log.hpp).
//
// Checkpoints: the data loader's state is the next batch index (batches are a function of it, the batch
// size and the window order); parameters are initialised from the seed alone and nothing else draws
// random numbers during training, so the seed is the whole RNG state.
#pragma once
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/consensus.hpp"
#include "tessera/comm/flight_recorder.hpp"
#include "tessera/comm/mesh_comms.hpp"
#include "tessera/core/engine_choice.hpp"
#include "tessera/core/rss.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/gemm_bench.hpp"
#include "tessera/train/background_checkpoint.hpp"
#include "tessera/train/checkpoint.hpp"
#include "tessera/train/data.hpp"
#include "tessera/train/faults.hpp"
#include "tessera/train/hf_io.hpp"
#include "tessera/train/machine.hpp"
#include "tessera/train/options.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/profile_report.hpp"
#include "tessera/train/run_log.hpp"
#include "tessera/train/snapshot.hpp"
#include "tessera/train/stragglers.hpp"
#include "tessera/train/trace_file.hpp"
#include "tessera/train/trainer.hpp"
#include "tessera/train/watchdog.hpp"

extern "C" int openblas_get_parallel(void);  // 0 sequential, 1 pthreads, 2 OpenMP

namespace tessera {

/// System: where the trainer's buffers live and its operators run (host_system, or cuda_system for
/// --backend cuda); everything else of a run (data, logs, checkpoints, snapshots) is on the host.
template <class T, int D, communicator Comm, class System = host_system>
class training_run {
 public:
  /// Collective over `job`, whose size is the mesh's. program: this pipeline rank's actions.
  training_run(const plan_desc& pd, const train_options& o, const Comm& job, std::vector<action> (*program_of)(int))
      : pd_(pd), o_(o), mc_(job, pd.mesh), everyone_(mc_.world()), rank_(everyone_.rank()),
        watchdog_(everyone_, o.hang_timeout), faults_(o.inject_faults, rank_, everyone_.size()),
        restart_(restart_of_environment()), data_(o.data, pd.model.vocab, pd.model.seq), order_{o.shuffle, o.seed},
        tr_(pd, program_of(mc_.coord(axis::pp)), o, mc_, data_), plan_(plan_to_json(pd)) {
    if (order_.shuffle) data_.shuffle(order_.seed);
    if (!o.init_from.empty()) load_hf(o.init_from, pd.model, tr_.tensors(), tr_.store());
    if (o.snapshot_every > 0) start_snapshots();
    if (!resume_from_snapshot()) {
      if (!o.resume_dir.empty()) {
        watchdog_.long_phase("loading a checkpoint");
        resume();
      }
      tr_.shard_optimizer_state();  // ZeRO: from the final initial (or loaded) parameters and moments
    }
    std::string err;  // rank 0 opens the log (and checks --trace's file); every rank learns whether it could
    try {
      if (rank_ == 0 && !o.trace.empty()) check_trace_path(o.trace);
      log_.emplace(rank_, o.log_json, !resumed_from_.empty(), o.quiet);
    } catch (const usage_error& e) {
      err = e.what();
    }
    if (const std::string first = first_error(everyone_, err); !first.empty()) throw usage_error(first);
  }

  int run() {
    start_line();
    if (o_.eval_only) {
      const double l = tr_.evaluate(0, o_.eval_batches);
      if (rank_ == 0) {
        std::printf("eval_loss %.6f\n", l);
        std::fflush(stdout);
      }
      log_->emit({{"event", "eval"}, {"eval_loss", l}, {"batches", o_.eval_batches}});
      export_weights();
      return 0;
    }
    const int k_end = o_.stop_after > 0 ? std::min(o_.steps, o_.stop_after) : o_.steps;
    train_steps(k_end);
    if (snaps_) {  // a finished run needs no snapshot (and a later job must not find this one's)
      snaps_->flush();
      snaps_->remove_mine();
    }
    if (k_end < o_.steps) log_->note("tessera: stopped after step %d of %d (--stop-after)\n", std::max(k0_, k_end), o_.steps);
    // a resumed run that trained nothing still writes its state under its own layout: a resharded copy
    const int done = std::max(k0_, k_end);
    if (!o_.save_dir.empty() && done > 0 && last_saved_ != done) save(done);
    publish_checkpoint(true);
    export_weights();
    if (o_.sample > 0) sample();
    return 0;
  }

 private:
  struct data_order {
    bool shuffle = false;
    std::uint64_t seed = 0;
  };

  /// --resume: the newest complete checkpoint; the data loader continues where it left off (batch k0,
  /// in the saved order).
  void resume() {
    const checkpoint_info ck = load_checkpoint(o_.resume_dir, tr_, plan_, everyone_);
    k0_ = ck.step;
    resumed_from_ = ck.path;
    last_saved_ = o_.save_dir != o_.resume_dir ? -1 : k0_;
    if (ck.order) {
      const bool sh = ck.order->shuffle;
      const std::uint64_t seed = ck.order->seed;
      if (rank_ == 0 && (sh != o_.shuffle || (sh && seed != o_.seed)))
        std::fprintf(stderr, "tessera: --resume: the data order of the checkpoint (%s) is kept\n",
                     sh ? cat("shuffled with seed ", seed).c_str() : "in file order");
      order_ = {sh, seed};
      if (sh) data_.shuffle(seed);
      else data_.unshuffle();
    }
    if (rank_ == 0 && !o_.quiet)
      std::fprintf(stderr, "tessera: resumed from %s (step %d, saved by %s)\n", ck.path.c_str(), ck.step,
                   ck.saved_by.c_str());
  }

  // ---- in-memory snapshots (snapshot.hpp) ---------------------------------------------------------------
  void start_snapshots() {
    const std::string key = !o_.save_dir.empty() ? std::filesystem::absolute(o_.save_dir).string()
                                                 : cat("cwd:", std::filesystem::current_path().string());
    const std::string dir = !o_.snapshot_dir.empty() ? o_.snapshot_dir
                                                     : cat("/dev/shm/tessera-snapshots-", init_detail::name_hash(key) % 1000000007ull);
    layout_ = init_detail::name_hash(cat(plan_.dump(), "/world ", everyone_.size()));
    int per_node = 1;
    if constexpr (requires { everyone_.split_by_node(); }) per_node = everyone_.split_by_node().size();
    snaps_ = std::make_unique<snapshotter<Comm>>(everyone_, dir, layout_, per_node);
    if (restart_.count == 0) snaps_->remove_mine();  // a new job: an older job's snapshots are not its own
  }
  /// A restarted job: the newest snapshot every rank has, when it is at least as new as the newest disk
  /// checkpoint of --resume. Collective; true when the state came from it (and is sharded).
  bool resume_from_snapshot() {
    if (!snaps_ || restart_.count == 0) return false;
    watchdog_.long_phase("reading snapshots");
    snapshot_choice c = fetch_snapshot(everyone_, *snaps_, layout_);
    if (c.step < 0 || c.step < newest_disk_step()) return false;
    tr_.shard_optimizer_state();
    const bool fits = tr_.restore_state(c.payload.data(), c.payload.size(), c.adam_step);
    check(all_reduce_value(everyone_, fits ? 1 : 0, reduce_op::min) == 1,
          "tessera internal: a snapshot of this layout does not fit its state");
    k0_ = c.step;
    resumed_from_ = cat(snaps_->dir(), " (in-memory snapshot)");
    if (rank_ == 0 && !o_.quiet) std::fprintf(stderr, "tessera: resumed from the in-memory snapshot of step %d\n", k0_);
    return true;
  }
  /// The step of the newest complete checkpoint under --resume (-1 without one); the same on every rank.
  int newest_disk_step() {
    int step = -1;
    if (rank_ == 0 && !o_.resume_dir.empty()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(o_.resume_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (is_step_dir_name(name) && std::filesystem::exists(e.path() / "manifest.json"))
          step = std::max(step, std::atoi(name.c_str() + 5));
      }
    }
    everyone_.broadcast(&step, 1, 0);
    return step;
  }
  /// The snapshot after `steps` steps; logs how long the step waited for it (the largest rank's).
  void take_snapshot(int steps) {
    const double blocked = snaps_->take(steps, tr_.adam_step(), tr_.snapshot_bytes(),
                                        [&](unsigned char* dst) { tr_.copy_state_to(dst); });
    const double worst = all_reduce_value(everyone_, blocked, reduce_op::max);
    log_->emit({{"event", "snapshot"}, {"step", steps}, {"block_ms", worst * 1e3},
                {"bytes", static_cast<std::int64_t>(tr_.snapshot_bytes())}});
    if (faults_.take_corrupt(steps)) {  // an injected fault: this rank's snapshot is damaged once written
      snaps_->flush();
      damage_file(snaps_->own_path(rank_));
    }
  }
  static void damage_file(const std::string& path) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto mid = f.tellg() / 2;
    char c = 0;
    f.seekg(mid);
    f.get(c);
    f.seekp(mid);
    f.put(static_cast<char>(~c));
  }

  /// The machine header and the log's start line (collective: peak FLOP/s, memory predictions).
  void start_line() {
    peak_flops_ = o_.peak_tflops > 0 ? o_.peak_tflops * 1e12 : (rank_ == 0 ? ops::host::measure_peak_flops<T>() : 0.0);
    everyone_.broadcast(&peak_flops_, 1, 0);
    const int blas = openblas_get_parallel();
    state_bytes_ = tr_.state_bytes();
    // the largest over the ranks, as the step lines log
    const double predicted_act = all_reduce_value(everyone_, tr_.predicted_activation_bytes(), reduce_op::max);
    const train_detail::machine_info machine = train_detail::describe_machine(everyone_, omp_get_max_threads());
    log_->note("%s\n", machine.header().c_str());
    if (!machine.threads_warning.empty()) log_->note("tessera: warning: %s\n", machine.threads_warning.c_str());
    if (!machine.openblas_warning.empty()) log_->note("tessera: warning: %s\n", machine.openblas_warning.c_str());
    nlohmann::json start{{"event", "start"}, {"plan", plan_}, {"params", pd_.model.num_params()},
        {"world", everyone_.size()}, {"blas_threading", blas == 2 ? "openmp" : blas == 1 ? "pthreads" : "sequential"},
        {"batch", tr_.global_batch()}, {"tokens_per_step", tokens_per_step()}, {"steps", o_.steps},
        {"data", {{"file", o_.data}, {"format", data_.format()}, {"tokens", data_.tokens()},
                  {"windows", data_.windows()}, {"shuffle", order_.shuffle}}},
        {"peak_flops_per_rank", peak_flops_}, {"flops_per_token", flops_per_token(pd_.model)},
        {"state_bytes_per_rank", state_bytes_}, {"predicted_state_bytes_per_rank", tr_.predicted_state_bytes()},
        {"predicted_activation_bytes", predicted_act}, {"start_step", k0_},
        {"backend", System::name}, {"communicator", Comm::name()}};
    start.update(machine.json());
    if (!resumed_from_.empty()) start["resumed_from"] = resumed_from_;
    log_->emit(start);
  }

  /// Steps [k0, k_end): each timed between barriers, logged, checkpointed when due; --profile profiles
  /// the steps after the first.
  void train_steps(int k_end) {
    reset_peak_rss();
    const auto t_start = std::chrono::steady_clock::now();
    int profiled = 0;
    double profiled_ms = 0;
    for (int k = k0_; k < k_end; ++k) {
      if (o_.profile && (k == k0_ + 1 || k_end - k0_ == 1)) {  // after one warm-up step (unless there is one)
        prof::reset();
        prof::enabled() = true;
      }
      watchdog_.step_begins(k);
      if (k == k0_) report_restart();
      if (snaps_) snaps_->finish_exchange();  // the last snapshot's replica has arrived: written at once
      if (background_.pending()) publish_checkpoint(false);
      if (traced(k, k_end)) start_trace();
      everyone_.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      const double t0_s = trace::now_s();
      const double blocked0 = flight_recorder::process().blocked_s(), comm0 = flight_recorder::process().comm_s();
      faults_.before_step(k);
      if (faults_.take_poison(k)) tr_.poison_gradient_norm();
      auto r = tr_.step(k);
      if (r.skipped) {  // a transient fault (or an injected one) passes; a real overflow is skipped below
        log_->note("tessera: step %d: the gradient norm is not finite; retrying the step once\n", k + 1);
        log_->emit({{"event", "retry"}, {"step", k}, {"reason", "non-finite gradient"}});
        r = tr_.step(k);
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const double blocked_s = flight_recorder::process().blocked_s() - blocked0;  // before the trace's gather
      const double comm_s = flight_recorder::process().comm_s() - comm0;
      if (traced(k, k_end)) finish_trace(k, t0_s);
      const double work_s = ms / 1000.0 - blocked_s;
      watchdog_.step_done(ms / 1000.0);
      const bool recorded = flight_recorder::process().enabled();
      const straggler_monitor::report slow = stragglers_.slowest(everyone_, work_s, ms / 1000.0, blocked_s, recorded ? comm_s : -1);
      if (prof::enabled()) {
        ++profiled;
        profiled_ms += ms;
      }
      const double tokens_per_s = tokens_per_step() / (ms / 1000.0);
      step_report rep{.step = k, .steps = o_.steps, .loss = r.loss, .grad_norm = r.grad_norm, .lr = r.lr, .ms = ms,
                      .tokens_per_s = tokens_per_s, .mfu = mfu(tokens_per_s), .tokens = tokens_per_step() * (k + 1),
                      .skipped = r.skipped};
      rep.state_bytes = state_bytes_;
      rep.peak_activation_bytes = all_reduce_value(everyone_, tr_.peak_activation_bytes(), reduce_op::max);
      rep.peak_rss_bytes = all_reduce_value(everyone_, peak_rss_bytes(), reduce_op::max);  // largest rank's
      rep.slowest_rank = slow.rank;
      rep.slowest_lag_s = slow.lag_s;
      rep.restarts = restart_.count;
      rep.fault_downtime_s = restart_.downtime_s;
      rep.comm_ms = slow.comm_mean_s < 0 ? -1 : 1e3 * slow.comm_mean_s;
      rep.comm_wait_ms = 1e3 * slow.wait_mean_s;
      rep.comm_wait_max_ms = 1e3 * slow.wait_max_s;
      report_engine_choices(k);
      log_->emit(rep.json());
      if (rank_ == 0 && !o_.quiet && (k % o_.log_every == 0 || k + 1 == k_end)) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        rep.print(el / (k + 1 - k0_) * (o_.steps - k - 1));
      }
      if (!o_.save_dir.empty() && ((o_.save_every > 0 && (k + 1) % o_.save_every == 0) || k + 1 == k_end)) save(k + 1);
      if (snaps_ && (k + 1) % o_.snapshot_every == 0) take_snapshot(k + 1);
    }
    if (o_.profile && profiled > 0) {
      prof::enabled() = false;
      if (rank_ == 0) log_->emit(profile_report(profiled, profiled_ms / profiled, true));
    }
  }

  /// The operators' run-time engine choices made during step k that were not reported before (rank 0's: every
  /// rank runs the same shapes): a note each, and one JSON event {"event": "engines", "step", "choices"}.
  void report_engine_choices(int k) {
    const std::vector<engine_choice::choice> fresh = engine_choice::process().take_new();
    if (fresh.empty()) return;
    nlohmann::json list = nlohmann::json::array();
    for (const engine_choice::choice& c : fresh) {
      log_->note("tessera: %s: %s\n", c.op.c_str(), c.engine.c_str());
      list.push_back({{"op", c.op}, {"engine", c.engine}});
    }
    log_->emit({{"event", "engines"}, {"step", k}, {"choices", list}});
  }

  /// --trace: the last step of the run (warm when it is not the first) is recorded on every rank.
  bool traced(int k, int k_end) const { return !o_.trace.empty() && k + 1 == k_end; }
  void start_trace() {
    flight_recorder::process().enable(true);  // its operations are the trace's communication spans
    trace::process().take();
    if (trace::device_timeline* d = tr_.compute_system().timeline()) {  // a device's own times of its streams' work
      d->start();
      trace::process().set_device(d);
    }
    trace::process().enable(true);
  }
  /// Collective: gathers the step's events to rank 0, which writes --trace's file.
  void finish_trace(int k, double t0_s) {
    trace::process().enable(false);
    std::vector<trace::event> events = trace::process().take();
    if (trace::device_timeline* d = tr_.compute_system().timeline()) {
      for (trace::event& e : d->collect()) events.push_back(std::move(e));
      trace::process().set_device(nullptr);
    }
    const std::string name = cat("rank ", rank_, ": dp ", mc_.coord(axis::dp), ", pp ", mc_.coord(axis::pp), ", tp ",
                                 mc_.coord(axis::tp));
    write_trace(everyone_, o_.trace, events, name, t0_s,
                {{"step", k + 1}, {"plan", plan_}, {"clock", "microseconds from the barrier that starts the step, per rank"}});
    log_->note("tessera: step %d of every rank traced to %s (chrome://tracing, ui.perfetto.dev)\n", k + 1, o_.trace.c_str());
  }

  /// A checkpoint of the state after `step` steps (collective).
  void save(int step) {
    const auto t0 = std::chrono::steady_clock::now();
    const nlohmann::json extra{
        {"data", {{"file", o_.data}, {"format", data_.format()}, {"tokens", data_.tokens()}, {"windows", data_.windows()},
                  {"seq", pd_.model.seq}, {"batch", tr_.global_batch()}, {"next_batch", step},
                  {"shuffle", order_.shuffle}, {"shuffle_seed", order_.seed}}},
        {"rng", {{"seed", o_.seed}, {"init", "counter-based (seed, tensor, element): layout independent"}}},
        {"optimizer", {{"kind", "adamw"}, {"lr", o_.lr}, {"min_lr", o_.min_lr}, {"warmup", o_.warmup}, {"steps", o_.steps},
                       {"weight_decay", o_.weight_decay}, {"beta1", o_.beta1}, {"beta2", o_.beta2}, {"eps", o_.eps},
                       {"grad_clip", o_.grad_clip}}}};
    if (snaps_) {  // with snapshots, checkpoints are written in the background from the same moment's state
      publish_checkpoint(true);
      background_block_ms_ = 1e3 * background_.start(o_.save_dir, step, tr_, plan_, extra, everyone_);
      last_saved_ = step;
      return;
    }
    watchdog_.long_phase(cat("writing the checkpoint of step ", step));
    const std::string where = save_checkpoint(o_.save_dir, step, tr_, plan_, extra, everyone_);
    last_saved_ = step;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    log_->emit({{"event", "checkpoint"}, {"step", step}, {"path", where}, {"save_ms", ms}});
    log_->note("tessera: saved %s (%.0f ms)\n", where.c_str(), ms);
  }

  /// Publishes the checkpoint written in the background once every rank's file is (or, with `wait`, when
  /// it is). Collective.
  void publish_checkpoint(bool wait) {
    if (!background_.pending()) return;
    if (wait) watchdog_.long_phase("finishing a checkpoint");
    const auto [where, seconds] = background_.finish(everyone_, tr_.tensors(), wait);
    if (where.empty()) return;
    log_->emit({{"event", "checkpoint"}, {"step", background_.step()}, {"path", where}, {"save_ms", seconds * 1e3},
                {"block_ms", background_block_ms_}, {"background", true}});
    log_->note("tessera: saved %s (in the background: %.0f ms, the step waited %.1f ms)\n", where.c_str(),
               seconds * 1e3, background_block_ms_);
  }

  /// --export: HF-named weights, from the fp32 masters where there are some (collective).
  void export_weights() {
    if (o_.export_to.empty()) return;
    tr_.gather_state();  // ZeRO: whole masters on dp rank 0 (the exporting owners); ZeRO-3: whole parameters
    std::vector<const ops::grad_t<T>*> masters;
    for (std::size_t i = 0; i < tr_.store().slots.size(); ++i) masters.push_back(tr_.slot_state(i).master);
    export_hf(o_.export_to, o_.export_dtype == "bf16" ? st_dtype::bf16 : st_dtype::f32, pd_.model, tr_.tensors(),
              tr_.store(), tr_.owners(), everyone_, masters);
    tr_.release_gathered_state();
  }

  /// --sample N: N tokens after --prompt, printed (bytes as text) and logged.
  void sample() {
    std::vector<std::int32_t> prompt;
    for (unsigned char c : o_.prompt) {
      if (c >= pd_.model.vocab)
        throw usage_error(cat("--prompt: byte ", int(c), " is outside the model's vocabulary (", pd_.model.vocab, ")"));
      prompt.push_back(c);
    }
    if (prompt.empty()) prompt.push_back(0);
    const auto out = tr_.generate(prompt, o_.sample, o_.temperature, o_.seed);
    if (rank_ != 0) return;
    std::string text;
    const bool bytes = data_.format() == "bytes";
    for (std::size_t i = prompt.size(); i < out.size(); ++i)
      text += bytes ? std::string(1, static_cast<char>(out[i])) : cat(i > prompt.size() ? " " : "", out[i]);
    std::printf("--- sample (%d tokens, temperature %g) ---\n%s%s\n", o_.sample, o_.temperature, o_.prompt.c_str(),
                text.c_str());
    std::fflush(stdout);
    log_->emit({{"event", "sample"}, {"prompt", o_.prompt},
                {"tokens", std::vector<std::int32_t>(out.begin() + static_cast<std::ptrdiff_t>(prompt.size()), out.end())},
                {"text", bytes ? text : std::string()}});
  }

  /// What scripts/tessera-run says about the failures before this launch (TESSERA_RESTART, JSON):
  /// {"restart": n, "reason": …, "failed_at": unix seconds, "downtime_s": the earlier restarts' total,
  /// "last_step": the last step the failed run logged (-1: unknown)}.
  struct restart_info {
    int count = 0;
    std::string reason;
    double failed_at = 0, downtime_s = 0;
    int last_step = -1;
  };
  static restart_info restart_of_environment() {
    restart_info r;
    const char* env = std::getenv("TESSERA_RESTART");
    if (!env || !*env) return r;
    const nlohmann::json j = nlohmann::json::parse(env, nullptr, false);
    if (!j.is_object()) return r;
    r.count = j.value("restart", 0);
    r.reason = j.value("reason", std::string("unknown"));
    r.failed_at = j.value("failed_at", 0.0);
    r.downtime_s = j.value("downtime_s", 0.0);
    r.last_step = j.value("last_step", -1);
    return r;
  }
  /// The restart event, as training starts again: how long the job was down since the failure, and how
  /// many steps it does again (those after the checkpoint it resumed from).
  void report_restart() {
    if (restart_.count == 0) return;
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const double down = restart_.failed_at > 0 ? now - restart_.failed_at : 0.0;
    restart_.downtime_s += down;
    nlohmann::json e{{"event", "restart"}, {"restart", restart_.count}, {"reason", restart_.reason}, {"step", k0_},
                     {"world", everyone_.size()},
                     {"downtime_s", down}, {"total_downtime_s", restart_.downtime_s}};
    if (restart_.last_step >= 0) e["steps_redone"] = std::max(0, restart_.last_step + 1 - k0_);
    log_->emit(e);
    log_->note("tessera: restart %d (%s): training again at step %d, %.1f s after the failure\n", restart_.count,
               restart_.reason.c_str(), k0_ + 1, down);
  }

  /// MFU = flops_per_token × tokens_per_s / (peak_flops_per_rank × world)
  double mfu(double tokens_per_s) const {
    return peak_flops_ > 0 ? flops_per_token(pd_.model) * tokens_per_s / (peak_flops_ * everyone_.size()) : 0.0;
  }
  std::int64_t tokens_per_step() const { return static_cast<std::int64_t>(tr_.global_batch()) * pd_.model.seq; }

  plan_desc pd_;
  train_options o_;
  mesh_comms<Comm> mc_;
  Comm& everyone_;
  int rank_ = 0;
  watchdog watchdog_;
  fault_injector faults_;
  straggler_monitor stragglers_;
  std::unique_ptr<snapshotter<Comm>> snaps_;
  background_checkpoint<Comm> background_;
  double background_block_ms_ = 0;
  std::uint64_t layout_ = 0;
  restart_info restart_;
  token_data data_;
  data_order order_;
  trainer<T, D, Comm, System> tr_;
  nlohmann::json plan_;
  std::optional<run_log> log_;
  int k0_ = 0, last_saved_ = -1;
  std::string resumed_from_;
  double peak_flops_ = 0;
  std::int64_t state_bytes_ = 0;
};

}  // namespace tessera
