// tessera/core/trace.hpp — a timeline of one step (`--trace FILE` of ts::train): spans on tracks.
//
// Three tracks per rank: "compute" (the operators' prof::scope spans, nested), "communication" (every
// operation of a recording communicator, from its start to its completion: a non-blocking all-reduce of a
// gradient bucket spans the backward it overlaps) and "pipeline" (the schedule's actions). The recorder is
// off by default (a span then costs one branch); train/trace_file.hpp writes what it holds as a
// Chrome/Perfetto trace. One recorder per process: trace::process(). Thread-safe.
#pragma once
#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tessera::trace {

enum class track : int { compute = 0, communication = 1, pipeline = 2 };
inline constexpr const char* track_names[] = {"compute", "communication", "pipeline"};

/// One span: [begin_s, end_s] in seconds of the process's steady clock.
struct event {
  std::string name;
  track on = track::compute;
  double begin_s = 0, end_s = 0;
};

/// Seconds of the steady clock (the time base of every event).
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class recorder {
 public:
  void enable(bool on) {
    std::lock_guard<std::mutex> lock(m_);
    on_ = on;
  }
  bool enabled() const { return on_; }  // read without the lock: set between steps, by the step's thread
  void add(event e) {
    std::lock_guard<std::mutex> lock(m_);
    if (on_) events_.push_back(std::move(e));
  }
  /// The events recorded so far, in the order they ended; clears them.
  std::vector<event> take() {
    std::lock_guard<std::mutex> lock(m_);
    return std::exchange(events_, {});
  }

 private:
  mutable std::mutex m_;
  bool on_ = false;
  std::vector<event> events_;
};

inline recorder& process() {
  static recorder r;
  return r;
}

/// Records [construction, destruction] as a span on `on` when the recorder is on.
class span {
 public:
  span(track on, std::string name) : on_(process().enabled()) {
    if (!on_) return;
    e_.name = std::move(name);
    e_.on = on;
    e_.begin_s = now_s();
  }
  ~span() {
    if (!on_) return;
    e_.end_s = now_s();
    process().add(std::move(e_));
  }
  span(const span&) = delete;
  span& operator=(const span&) = delete;

 private:
  bool on_;
  event e_;
};

}  // namespace tessera::trace
