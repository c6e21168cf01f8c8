// tessera/train/run_log.hpp — what a training run reports: the JSON log (--log-json, one object per
// line, written by rank 0; a resumed run appends) and the progress lines on stderr.
//
//   start  {"event":"start", plan, params, world, batch, data, peak_flops_per_rank, flops_per_token,
//           state bytes measured and predicted, predicted_activation_bytes, start_step, the machine,
//           backend, communicator}
//   step   {"step", "loss", "grad_norm", "lr", "tokens", "step_ms", "tokens_per_s", "mfu", memory,
//           communication: comm_ms, comm_wait_ms, comm_wait_max_ms}
//   other events: "eval", "checkpoint", "profile", "sample", "retry" (a step whose gradient was not
//           finite, run again), "restart" (training again after a failure: reason, downtime_s, steps_redone)
//
// MFU = flops_per_token × tokens_per_s / (peak_flops_per_rank × world) (docs/training.md).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tessera/core/error.hpp"

namespace tessera {

class run_log {
 public:
  /// Rank 0 opens `path` (empty: no JSON log), making its directory if need be; `append` for a resumed run.
  /// Throws usage_error if it cannot.
  run_log(int rank, const std::string& path, bool append, bool quiet) : rank_(rank), quiet_(quiet) {
    if (rank != 0 || path.empty()) return;
    std::error_code ec;  // the log's directory is made if need be (as --save's is)
    if (const auto dir = std::filesystem::path(path).parent_path(); !dir.empty()) std::filesystem::create_directories(dir, ec);
    file_.open(path, append ? std::ios::app : std::ios::trunc);
    if (!file_) throw usage_error(cat("--log-json ", path, ": cannot open for writing"));
  }
  void emit(const nlohmann::json& j) {
    if (file_) file_ << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n' << std::flush;
  }
  /// A note on stderr (rank 0, unless --quiet).
  template <class... A>
  void note(const char* fmt, A... a) {
    if (rank_ != 0 || quiet_) return;
    std::fprintf(stderr, fmt, a...);
  }
  bool rank0() const { return rank_ == 0; }
  bool quiet() const { return quiet_; }

 private:
  int rank_ = 0;
  bool quiet_ = false;
  std::ofstream file_;
};

/// What one step reports.
struct step_report {
  int step = 0, steps = 0;
  double loss = 0, grad_norm = 0, lr = 0, ms = 0, tokens_per_s = 0, mfu = 0;
  std::int64_t tokens = 0, state_bytes = 0, peak_activation_bytes = 0, peak_rss_bytes = 0;
  bool skipped = false;
  int slowest_rank = -1;         ///< a rank whose own work lagged this step (train/stragglers.hpp), or -1
  double slowest_lag_s = 0;      ///< by how much
  int restarts = 0;              ///< restarts of the job so far (scripts/tessera-run)
  double fault_downtime_s = 0;   ///< time the job was down because of them
  /// Communication, mean over the ranks: operations from start to completion, summed (negative: not
  /// recorded), and the time blocked in them (blocking calls, waits; waits for pipeline peers included);
  /// the largest rank's blocked time.
  double comm_ms = -1, comm_wait_ms = 0, comm_wait_max_ms = 0;

  nlohmann::json json() const {
    nlohmann::json j{{"step", step}, {"loss", loss}, {"grad_norm", grad_norm}, {"lr", lr}, {"tokens", tokens},
                     {"step_ms", ms}, {"tokens_per_s", tokens_per_s}, {"mfu", mfu},
                     {"state_bytes_per_rank", state_bytes}, {"peak_activation_bytes", peak_activation_bytes},
                     {"peak_rss_bytes", peak_rss_bytes}};
    if (skipped) j["skipped"] = "non-finite gradient";
    if (slowest_rank >= 0) j["slowest_rank"] = slowest_rank, j["slowest_lag_s"] = slowest_lag_s;
    if (restarts > 0) j["restarts"] = restarts, j["fault_downtime_s"] = fault_downtime_s;
    if (comm_ms >= 0) j["comm_ms"] = comm_ms;
    j["comm_wait_ms"] = comm_wait_ms;
    j["comm_wait_max_ms"] = comm_wait_max_ms;
    return j;
  }
  /// The progress line; eta_s: the time the remaining steps should take.
  void print(double eta_s) const {
    char slowest[64] = "", faults[96] = "";
    if (slowest_rank >= 0) std::snprintf(slowest, sizeof slowest, " | slowest: rank %d +%.2f s", slowest_rank, slowest_lag_s);
    if (restarts > 0)
      std::snprintf(faults, sizeof faults, " | faults: %d restart%s, %.1f s down", restarts, restarts > 1 ? "s" : "",
                    fault_downtime_s);
    std::fprintf(stderr, "step %5d/%d | loss %.6f | grad_norm %.4f | lr %.3e | %.0f tok/s | MFU %.1f%% | ETA %.0fs%s%s%s\n",
                 step + 1, steps, loss, grad_norm, lr, tokens_per_s, 100.0 * mfu, eta_s,
                 skipped ? " | skipped: non-finite gradient" : "", slowest, faults);
  }
};

}  // namespace tessera
