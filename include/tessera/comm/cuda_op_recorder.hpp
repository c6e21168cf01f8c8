// tessera/comm/cuda_op_recorder.hpp — a device communicator's operations in the flight recorder and in
// --trace: the host only enqueues them, so their progress is read from events on the stream. CUDA only.
//
// begin() opens a flight record (in progress: what a hang report names) and records a timing event on
// the communication stream before the operation's first work; end() records one after its last. poll()
// (the communicator's, at every call) closes, oldest first, every record whose end event has completed,
// with the device's duration (so the step line's comm_ms is the time the stream spent on them). While
// --trace records with the CUDA timeline, each operation is also a span on the device's
// communication-stream track.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/comm/cuda_op_recorder.hpp needs a CUDA compiler (nvcc)"
#endif
#include <cuda_runtime.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tessera/comm/flight_recorder.hpp"
#include "tessera/core/cuda_stream.hpp"
#include "tessera/core/cuda_timeline.hpp"
#include "tessera/core/trace.hpp"

namespace tessera {

class cuda_op_recorder {
 public:
  cuda_op_recorder() = default;
  cuda_op_recorder(const cuda_op_recorder&) = delete;
  cuda_op_recorder& operator=(const cuda_op_recorder&) = delete;
  ~cuda_op_recorder() {
    for (op& o : in_flight_) give_back(o);
    for (cudaEvent_t e : free_) (void)cudaEventDestroy(e);
  }

  /// An operation on `label` about to be enqueued on `stream` (peer: point-to-point, else -1).
  void begin(cudaStream_t stream, const std::string& label, const char* what, std::size_t bytes, int peer = -1) {
    op o;
    o.seq = flight_recorder::process().begin(label, what, bytes, peer);
    cuda_timeline* t = timeline();
    if (o.seq == 0 && !t) return;
    o.stream = stream;
    o.start = take();
    cuda_check(cudaEventRecord(o.start, stream), "cudaEventRecord (flight record)");
    if (t) {
      o.trace_from = t->mark_on(stream);
      o.name = flight_recorder::span_name({.label = label, .op = what, .bytes = bytes, .peer = peer});
    }
    open_ = std::move(o);
  }
  /// The operation begun last has all its work enqueued.
  void end() {
    if (!open_) return;
    op o = std::move(*open_);
    open_.reset();
    o.end = take();
    cuda_check(cudaEventRecord(o.end, o.stream), "cudaEventRecord (flight record)");
    if (o.trace_from >= 0)
      if (cuda_timeline* t = timeline()) t->span(o.trace_from, t->mark_on(o.stream), trace::track::device_communication, o.name);
    in_flight_.push_back(std::move(o));
  }
  /// Closes the records of completed operations (the stream runs them in order: oldest first).
  void poll() {
    while (!in_flight_.empty()) {
      op& o = in_flight_.front();
      const cudaError_t q = cudaEventQuery(o.end);
      if (q == cudaErrorNotReady) return;
      cuda_check(q, "cudaEventQuery (flight record)");
      float ms = 0;
      cuda_check(cudaEventElapsedTime(&ms, o.start, o.end), "cudaEventElapsedTime (flight record)");
      flight_recorder::process().end(o.seq, 1e-3 * ms);
      give_back(o);
      in_flight_.pop_front();
    }
  }

 private:
  struct op {
    std::uint64_t seq = 0;
    cudaStream_t stream = nullptr;
    cudaEvent_t start = nullptr, end = nullptr;
    int trace_from = -1;
    std::string name;
  };
  /// The CUDA timeline when --trace records with it, else null.
  static cuda_timeline* timeline() {
    return trace::process().device() == &cuda_timeline::process() ? &cuda_timeline::process() : nullptr;
  }
  cudaEvent_t take() {
    if (!free_.empty()) {
      cudaEvent_t e = free_.back();
      free_.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    cuda_check(cudaEventCreate(&e), "cudaEventCreate (flight record)");
    return e;
  }
  void give_back(op& o) {
    for (cudaEvent_t e : {o.start, o.end})
      if (e) free_.push_back(e);
    o.start = o.end = nullptr;
  }

  std::deque<op> in_flight_;
  std::vector<cudaEvent_t> free_;
  std::optional<op> open_;  ///< begun, not yet ended
};

}  // namespace tessera
