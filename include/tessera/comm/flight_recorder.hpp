// tessera/comm/flight_recorder.hpp — the last communication operations of this process, for hang reports.
//
// Every operation of a recording communicator (mpi_comm) is a record: a sequence number, the
// communicator's label (the mesh axes it spans: "dp", "pp", "tp", "dp+tp", "world", …), the operation,
// its bytes and peer, and whether it is still in progress. The recorder keeps the newest `capacity`
// records and the time of the last progress (an operation starting or finishing, or a mark such as a
// step boundary). The watchdog (train/watchdog.hpp) reads it from its own thread: every member is
// thread-safe. One recorder per process: flight_recorder::process(). While the trace recorder is on
// (`--trace`, core/trace.hpp), each completed operation is also a span on the "communication" track.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "tessera/core/trace.hpp"

namespace tessera {

struct flight_record {
  std::uint64_t seq = 0;
  std::string label;  ///< communicator (mesh axes)
  const char* op = "";
  std::size_t bytes = 0;
  int peer = -1;       ///< point-to-point peer (rank on the communicator), -1 for collectives
  bool done = false;
  double started_s = 0;  ///< seconds since the recorder started
  double traced_from_s = -1;  ///< trace::now_s() at the start while tracing, else -1
};

class flight_recorder {
 public:
  static constexpr std::size_t capacity = 64;

  static flight_recorder& process() {
    static flight_recorder r;
    return r;
  }

  /// A new operation in progress; returns its sequence number (0 when recording is off).
  std::uint64_t begin(const std::string& label, const char* op, std::size_t bytes, int peer = -1) {
    if (!enabled_.load(std::memory_order_relaxed)) return 0;
    std::lock_guard<std::mutex> lock(m_);
    flight_record r;
    r.seq = ++seq_;
    r.label = label;
    r.op = op;
    r.bytes = bytes;
    r.peer = peer;
    r.started_s = now_s();
    if (trace::process().enabled()) r.traced_from_s = trace::now_s();
    if (ring_.size() < capacity) ring_.push_back(r);
    else ring_[(r.seq - 1) % capacity] = r;
    touch();
    return r.seq;
  }
  /// Operation `seq` has completed; it took `seconds` (a device's measure), or (< 0) since its start.
  void end(std::uint64_t seq, double seconds = -1) {
    if (seq == 0) return;
    std::lock_guard<std::mutex> lock(m_);
    flight_record& r = ring_[(seq - 1) % capacity];
    if (r.seq == seq) {
      r.done = true;
      const double took = seconds >= 0 ? seconds : now_s() - r.started_s;
      comm_s_.store(comm_s_.load(std::memory_order_relaxed) + took, std::memory_order_relaxed);
      if (r.traced_from_s >= 0) trace::process().add({span_name(r), trace::track::communication, r.traced_from_s, trace::now_s()});
    }
    touch();
  }
  /// Progress without an operation (a step begins, a checkpoint is written): `what` names where we are.
  void mark(std::string what) {
    std::lock_guard<std::mutex> lock(m_);
    where_ = std::move(what);
    touch();
  }

  /// Time spent blocked in communication (blocking operations, waits on non-blocking ones), summed: a
  /// step's time less what it adds during the step is the rank's own work (straggler reports).
  void add_blocked(double seconds) { blocked_s_.store(blocked_s_.load(std::memory_order_relaxed) + seconds, std::memory_order_relaxed); }
  double blocked_s() const { return blocked_s_.load(std::memory_order_relaxed); }
  /// Every recorded operation's time from its start to its completion, summed (while recording is on):
  /// against blocked_s(), how much of the communication compute hid.
  double comm_s() const { return comm_s_.load(std::memory_order_relaxed); }

  void enable(bool on) { enabled_.store(on, std::memory_order_relaxed); }
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  /// Seconds since the last progress.
  double idle_s() const { return now_s() - last_progress_.load(std::memory_order_relaxed); }

  /// The records, oldest first.
  std::vector<flight_record> records() const {
    std::lock_guard<std::mutex> lock(m_);
    std::vector<flight_record> out;
    const std::size_t n = ring_.size();
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t s = seq_ - n + 1 + i;
      out.push_back(ring_[(s - 1) % capacity]);
    }
    return out;
  }
  /// The newest operation still in progress, or the newest one, or none (seq 0).
  flight_record current() const {
    const auto rs = records();
    for (auto it = rs.rbegin(); it != rs.rend(); ++it)
      if (!it->done) return *it;
    return rs.empty() ? flight_record{} : rs.back();
  }
  std::string where() const {
    std::lock_guard<std::mutex> lock(m_);
    return where_;
  }
  std::uint64_t last_seq() const {
    std::lock_guard<std::mutex> lock(m_);
    return seq_;
  }

  /// "all-reduce on dp, 4.0 MB (#123, in progress for 31.2 s)" — one record, in words.
  static std::string describe(const flight_record& r, double now) {
    if (r.seq == 0) return "no communication yet";
    char b[96];
    std::snprintf(b, sizeof b, " (#%llu, %s %.1f s)", static_cast<unsigned long long>(r.seq),
                  r.done ? "finished, started" : "in progress for", now - r.started_s);
    return span_name(r) + b;
  }
  double now_s() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  /// "all-reduce (non-blocking) on dp, 1.5 MB" — a record without its progress (a trace span's name).
  static std::string span_name(const flight_record& r) {
    char size[32] = "";
    if (r.bytes > 0) std::snprintf(size, sizeof size, ", %.3g MB", static_cast<double>(r.bytes) / (1024.0 * 1024.0));
    char b[192];
    std::snprintf(b, sizeof b, "%s on %s%s%s", r.op, r.label.c_str(),
                  r.peer >= 0 ? (" with rank " + std::to_string(r.peer)).c_str() : "", size);
    return b;
  }

 private:
  flight_recorder() : t0_(std::chrono::steady_clock::now()) {}
  void touch() { last_progress_.store(now_s(), std::memory_order_relaxed); }

  mutable std::mutex m_;
  std::vector<flight_record> ring_;
  std::uint64_t seq_ = 0;
  std::string where_;
  std::atomic<bool> enabled_{false};
  std::atomic<double> last_progress_{0.0};
  std::atomic<double> blocked_s_{0.0};
  std::atomic<double> comm_s_{0.0};
  std::chrono::steady_clock::time_point t0_;
};

/// Records one blocking operation for its scope (and the time it blocks).
class recorded_op {
 public:
  recorded_op(const std::string& label, const char* op, std::size_t bytes, int peer = -1)
      : seq_(flight_recorder::process().begin(label, op, bytes, peer)), t0_(std::chrono::steady_clock::now()) {}
  ~recorded_op() {
    auto& fr = flight_recorder::process();
    fr.add_blocked(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
    fr.end(seq_);
  }
  recorded_op(const recorded_op&) = delete;
  recorded_op& operator=(const recorded_op&) = delete;
  std::uint64_t seq() const { return seq_; }

 private:
  std::uint64_t seq_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace tessera
