// tessera/train/faults.hpp — injected faults, for testing that jobs survive them (--inject-fault).
//
//   --inject-fault KIND@STEP[:RANK]   (repeatable; RANK defaults to 0)
//     kill       the rank SIGKILLs itself as step STEP begins (a node or process lost)
//     hang       the rank SIGSTOPs itself as step STEP begins (stops responding: the watchdog's case)
//     exception  the rank throws as step STEP begins (a software error on one rank)
//     nan        the gradient of step STEP on the rank is poisoned (not finite): the step is retried
//     slow       the rank sleeps 2 s as step STEP begins (a straggler)
//     corrupt    the rank's in-memory snapshot taken after STEP steps is damaged (a byte flipped): the
//                restore must notice and use the replica
//
// Each fault fires once per *job*, not once per process: a supervisor (scripts/tessera-run) that restarts
// the program after the fault names a file in TESSERA_FAULT_LOG, where every fault is recorded (and
// fsync'd) just before it fires; a fault found there is not fired again after the restart. The record also
// holds the wall-clock time the fault fired, from which the restarted run measures its downtime.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tessera/core/error.hpp"

namespace tessera {

enum class fault_kind : std::uint8_t { kill, hang, exception, nan, slow, corrupt };

struct fault {
  fault_kind kind = fault_kind::kill;
  int step = 0;
  int rank = 0;
  friend bool operator==(const fault&, const fault&) = default;
};

inline const char* fault_kind_name(fault_kind k) {
  switch (k) {
    case fault_kind::kill: return "kill";
    case fault_kind::hang: return "hang";
    case fault_kind::exception: return "exception";
    case fault_kind::nan: return "nan";
    case fault_kind::slow: return "slow";
    case fault_kind::corrupt: return "corrupt";
  }
  return "?";
}
/// "kill@5:3"
inline std::string to_string(const fault& f) { return cat(fault_kind_name(f.kind), "@", f.step, ":", f.rank); }

/// Parses KIND@STEP[:RANK]; throws usage_error naming what is wrong.
inline fault parse_fault(const std::string& spec, int world) {
  const auto bad = [&](const std::string& why) {
    return usage_error(cat("--inject-fault ", spec, ": ", why, " (expected KIND@STEP[:RANK], KIND one of kill, hang, "
                           "exception, nan, slow, corrupt)"));
  };
  const auto at = spec.find('@');
  if (at == std::string::npos) throw bad("no '@'");
  const std::string kind = spec.substr(0, at);
  fault f;
  if (kind == "kill") f.kind = fault_kind::kill;
  else if (kind == "hang") f.kind = fault_kind::hang;
  else if (kind == "exception") f.kind = fault_kind::exception;
  else if (kind == "nan") f.kind = fault_kind::nan;
  else if (kind == "slow") f.kind = fault_kind::slow;
  else if (kind == "corrupt") f.kind = fault_kind::corrupt;
  else throw bad(cat("unknown kind '", kind, "'"));
  const std::string rest = spec.substr(at + 1);
  const auto colon = rest.find(':');
  const auto number = [&](const std::string& s, const char* what) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9)
      throw bad(cat(what, " '", s, "' is not a non-negative integer"));
    return std::stoi(s);
  };
  f.step = number(rest.substr(0, colon), "step");
  if (colon != std::string::npos) f.rank = number(rest.substr(colon + 1), "rank");
  if (f.rank >= world) throw bad(cat("rank ", f.rank, " is outside the job's ", world, " ranks"));
  return f;
}

/// The faults of this run on this rank: fires each when due, unless TESSERA_FAULT_LOG says it already has.
class fault_injector {
 public:
  fault_injector() = default;
  fault_injector(const std::vector<std::string>& specs, int rank, int world) : rank_(rank) {
    if (const char* p = std::getenv("TESSERA_FAULT_LOG")) log_ = p;
    const std::vector<std::string> fired = fired_faults(log_);
    for (const auto& s : specs) {
      const fault f = parse_fault(s, world);
      if (f.rank != rank) continue;
      bool done = false;
      for (const auto& line : fired) done = done || line.rfind(to_string(f) + " ", 0) == 0;
      if (!done) pending_.push_back(f);
    }
  }
  /// As step k begins: kill, hang, exception and slow faults due now.
  void before_step(int k) {
    for (const fault& f : due(k, false)) {
      if (f.kind == fault_kind::nan) {
        poison_ = true;
        continue;
      }
      record(f);
      switch (f.kind) {
        case fault_kind::kill: ::kill(::getpid(), SIGKILL); break;
        case fault_kind::hang: ::kill(::getpid(), SIGSTOP); break;
        case fault_kind::exception:
          throw std::runtime_error(cat("injected fault ", to_string(f), ": an exception on rank ", rank_));
        case fault_kind::slow: std::this_thread::sleep_for(std::chrono::seconds(2)); break;
        case fault_kind::nan:
        case fault_kind::corrupt: break;
      }
    }
  }
  /// Whether this step's gradient is to be poisoned (once: the call consumes it, recording the fault).
  bool take_poison(int k) {
    if (!poison_) return false;
    poison_ = false;
    record({fault_kind::nan, k, rank_});
    return true;
  }

  /// Whether the snapshot taken after `steps` steps is to be damaged (once; recorded).
  bool take_corrupt(int steps) {
    const auto d = due(steps, true);
    for (const fault& f : d) record(f);
    return !d.empty();
  }

  /// The lines of a fault log ("kill@5:3 <unix seconds>"), none when there is no log.
  static std::vector<std::string> fired_faults(const std::string& path) {
    std::vector<std::string> out;
    if (path.empty()) return out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(line);
    return out;
  }

 private:
  /// The faults due at k: the corrupt ones (corrupt) or all others.
  std::vector<fault> due(int k, bool corrupt) {
    std::vector<fault> now, later;
    for (const fault& f : pending_) (f.step == k && (f.kind == fault_kind::corrupt) == corrupt ? now : later).push_back(f);
    pending_ = std::move(later);
    return now;
  }
  /// Appends the fault and the time to the log and makes it durable before the fault fires.
  void record(const fault& f) {
    if (log_.empty()) return;
    const double t = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string line = cat(to_string(f), " ", std::to_string(t), "\n");
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    const ssize_t w = ::write(fd, line.data(), line.size());
    (void)w;
    ::fsync(fd);
    ::close(fd);
  }

  int rank_ = 0;
  std::string log_;
  std::vector<fault> pending_;
  bool poison_ = false;
};

}  // namespace tessera
