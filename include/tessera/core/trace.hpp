// tessera/core/trace.hpp — a timeline of one step (`--trace FILE` of ts::train): spans on tracks.
//
// Three tracks per rank: "compute" (the operators' prof::scope spans, nested), "communication" (every
// operation of a recording communicator, from its start to its completion: a non-blocking all-reduce of a
// gradient bucket spans the backward it overlaps) and "pipeline" (the schedule's actions). On a device,
// two more, timed by the device itself: "compute stream (device)" (what the compute stream ran for each
// scope) and "communication stream (device)" (each collective on the communicator's stream) — a
// device_timeline, installed by the device's system while tracing, turns marks on the streams into spans
// (core/cuda_timeline.hpp). The recorder is off by default (a span then costs one branch);
// train/trace_file.hpp writes what it holds as a Chrome/Perfetto trace. One recorder per process:
// trace::process(). Thread-safe.
#pragma once
#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tessera::trace {

enum class track : int { compute = 0, communication = 1, pipeline = 2, device_compute = 3, device_communication = 4 };
inline constexpr const char* track_names[] = {"compute", "communication", "pipeline", "compute stream (device)",
                                              "communication stream (device)"};
inline constexpr int num_tracks = 5;

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

/// Time on a device's streams, for the trace (implemented by a device backend: core/cuda_timeline.hpp).
/// Marks are timed points in a stream's work; spans between marks become events when collected.
class device_timeline {
 public:
  virtual ~device_timeline() = default;
  /// Starts a timeline (the device idle, a reference point recorded). @post no marks, no spans.
  virtual void start() = 0;
  /// A timed point after the work issued so far on the compute stream (the one of the system value whose
  /// timeline() installed it).
  virtual int mark() = 0;
  /// The device ran `name` between marks `from` and `to` (made on the stream `on` stands for).
  virtual void span(int from, int to, track on, std::string name) = 0;
  /// Waits for the device; the spans in seconds of now_s()'s clock. @post no marks, no spans.
  virtual std::vector<event> collect() = 0;
};

class recorder {
 public:
  /// The device timeline compute spans also mark while recording (null: none; set between steps).
  void set_device(device_timeline* d) { device_ = d; }
  device_timeline* device() const { return on_ ? device_ : nullptr; }
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
  device_timeline* device_ = nullptr;
};

inline recorder& process() {
  static recorder r;
  return r;
}

/// One operator's device work, for the trace only (device operators: their host side is only the
/// issuing): the issuing on "compute", and — with a device timeline — what the compute stream ran for it.
class device_span {
 public:
  explicit device_span(const char* name) : dev_(process().device()) {
    if (!process().enabled()) return;
    name_ = name;
    begin_s_ = now_s();
    if (dev_) from_ = dev_->mark();
  }
  ~device_span() {
    if (name_.empty()) return;
    if (dev_) dev_->span(from_, dev_->mark(), track::device_compute, name_);
    process().add({name_, track::compute, begin_s_, now_s()});
  }
  device_span(const device_span&) = delete;
  device_span& operator=(const device_span&) = delete;

 private:
  device_timeline* dev_;
  std::string name_;
  double begin_s_ = 0;
  int from_ = 0;
};

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
