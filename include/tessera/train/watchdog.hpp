// tessera/train/watchdog.hpp — hang detection: a thread per rank that ends the job, with a report, when
// the rank has made no progress for too long (--hang-timeout).
//
// Progress is what the flight recorder (comm/flight_recorder.hpp) sees: a communication operation
// starting or finishing, or a mark (a step beginning). When the rank has been idle for the timeout, its
// watchdog writes one line — the rank, its step, the operation it is in — into a directory the ranks of
// this node share (under /dev/shm), waits a grace period for the other ranks' lines, and exits the process
// with exit_code (so mpirun ends the job: nothing spins forever). The lowest rank that reported prints
// the job's one message — which ranks fell behind (those that did not report: stopped, dead, or stuck
// outside communication; or at an earlier step than the others) and the operation every reporting rank
// is in — and exits first; the others wait a little longer, so that mpirun, which ends the job when a
// rank exits, has forwarded the message. The timeout is --hang-timeout S; by default it is generous
// until the first step is done (start-up, loading a checkpoint) and then max(60 s, 20 × the slowest step
// so far).
#pragma once
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/consensus.hpp"
#include "tessera/comm/flight_recorder.hpp"
#include "tessera/core/error.hpp"

namespace tessera {

class watchdog {
 public:
  static constexpr int exit_code = 124;                  ///< what a hung job exits with (as timeout(1))
  static constexpr double first_step_timeout_s = 600;    ///< automatic timeout before the first step is done
  static constexpr double grace_s = 1.0;                 ///< how long a watchdog waits for the others' reports

  /// Collective over `world`. timeout_s > 0: fixed; 0: automatic; < 0: off (no thread).
  template <communicator C>
  watchdog(C& world, double timeout_s)
      : rank_(world.rank()), world_(world.size()), fixed_(timeout_s > 0), off_(timeout_s < 0) {
    if (off_) return;
    timeout_s_ = fixed_ ? timeout_s : first_step_timeout_s;
    std::string dir;
    if (rank_ == 0) {
      const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
      remove_stale(base);
      dir = (base / cat("tessera-watchdog-", ::getpid(), "-",
                        std::chrono::steady_clock::now().time_since_epoch().count())).string();
    }
    dir_ = broadcast_string(world, dir, 0);
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    flight_recorder::process().enable(true);
    flight_recorder::process().mark("start-up");
    thread_ = std::thread([this] { loop(); });
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    if (off_) return;
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    std::error_code ec;
    std::filesystem::remove(report_path(rank_), ec);
    if (rank_ == 0) std::filesystem::remove_all(dir_, ec);
  }

  /// Step k begins (progress; the step is named in a report).
  void step_begins(int k) {
    step_.store(k, std::memory_order_relaxed);
    flight_recorder::process().mark(cat("step ", k));
  }
  /// Step took `seconds`: the automatic timeout follows the slowest step.
  void step_done(double seconds) {
    slowest_s_ = std::max(slowest_s_, seconds);
    if (!fixed_) timeout_s_.store(std::max(60.0, 20.0 * slowest_s_), std::memory_order_relaxed);
    flight_recorder::process().mark(cat("after step ", step_.load()));
  }
  /// Until the scope ends, the automatic first-step timeout applies (a checkpoint being written or read).
  void long_phase(const std::string& what) {
    flight_recorder::process().mark(what);
    if (!fixed_) timeout_s_.store(std::max(timeout_s_.load(), first_step_timeout_s), std::memory_order_relaxed);
  }
  double timeout_s() const { return timeout_s_.load(std::memory_order_relaxed); }
  const std::string& report_dir() const { return dir_; }

 private:
  /// Report directories of jobs whose rank 0 is gone (a job ended by a fault leaves its directory).
  static void remove_stale(const std::filesystem::path& base) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(base, ec)) {
      const std::string name = e.path().filename().string();
      const std::string prefix = "tessera-watchdog-";
      if (name.rfind(prefix, 0) != 0) continue;
      const std::string pid = name.substr(prefix.size(), name.find('-', prefix.size()) - prefix.size());
      if (!pid.empty() && !std::filesystem::exists("/proc/" + pid)) std::filesystem::remove_all(e.path(), ec);
    }
  }
  std::string report_path(int r) const { return (std::filesystem::path(dir_) / cat("rank", r)).string(); }

  void loop() {
    std::unique_lock<std::mutex> lock(m_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(250));
      if (stop_) return;
      const double idle = flight_recorder::process().idle_s();
      if (idle > timeout_s()) report_and_exit(idle);
    }
  }

  /// This rank's line: "rank|step|idle|where|operation".
  std::string my_line(double idle) const {
    const auto& fr = flight_recorder::process();
    return cat(rank_, "|", step_.load(), "|", idle, "|", fr.where(), "|", flight_recorder::describe(fr.current(), fr.now_s()));
  }

  [[noreturn]] void report_and_exit(double idle) {
    {
      std::ofstream(report_path(rank_)) << my_line(idle) << '\n';
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(grace_s));
    std::map<int, std::string> lines;  // rank → line
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("rank", 0) != 0) continue;
      std::ifstream in(e.path());
      std::string line;
      if (std::getline(in, line)) lines[std::atoi(name.c_str() + 4)] = line;
    }
    const bool printer = !lines.empty() && lines.begin()->first == rank_;
    if (printer) {
      std::fputs(message(lines, idle).c_str(), stderr);
      std::fflush(stderr);
    } else {  // the printer exits first: mpirun ends the job when the first rank exits, its message sent
      std::this_thread::sleep_for(std::chrono::duration<double>(2 * grace_s));
    }
    std::_Exit(exit_code);
  }

  std::string message(const std::map<int, std::string>& lines, double idle) const {
    int max_step = -1;
    struct rank_state {
      int step;
      std::string where, op;
    };
    std::map<int, rank_state> st;
    for (const auto& [r, line] : lines) {
      std::string f[5];
      std::size_t at = 0;
      for (int i = 0; i < 5; ++i) {
        const std::size_t bar = i < 4 ? line.find('|', at) : std::string::npos;
        f[i] = line.substr(at, bar == std::string::npos ? std::string::npos : bar - at);
        at = bar == std::string::npos ? line.size() : bar + 1;
      }
      st[r] = {std::atoi(f[1].c_str()), f[3], f[4]};
      max_step = std::max(max_step, st[r].step);
    }
    std::string silent, behind;
    for (int r = 0; r < world_; ++r)
      if (!st.count(r)) silent += cat(silent.empty() ? "" : ", ", r);
    for (const auto& [r, s] : st)
      if (s.step < max_step) behind += cat(behind.empty() ? "" : ", ", r, " (step ", s.step, ")");
    std::string m = cat("tessera: hang: no progress for ", static_cast<int>(idle), " s (hang timeout ",
                        static_cast<int>(timeout_s()), " s); ending the job\n");
    if (!silent.empty())
      m += cat("tessera: hang: fell behind: rank(s) ", silent,
               " did not report (stopped, dead, or stuck outside communication)\n");
    if (!behind.empty()) m += cat("tessera: hang: fell behind: rank(s) ", behind, " at an earlier step than the others\n");
    for (const auto& [r, s] : st) m += cat("tessera: hang: rank ", r, " at ", s.where, ": ", s.op, "\n");
    return m;
  }

  int rank_ = 0, world_ = 0;
  bool fixed_ = false, off_ = false;
  std::atomic<double> timeout_s_{0};
  double slowest_s_ = 0;
  std::atomic<int> step_{-1};
  std::string dir_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tessera
