// tessera/core/cuda_timeline.hpp — the trace's device tracks on CUDA: marks are timing events recorded
// on a stream, spans between them are measured with cudaEventElapsedTime (core/trace.hpp's
// device_timeline). CUDA only.
//
// Time base: start() waits for the device, records a reference event and takes the host clock once the
// event has completed, so a device span's times are that host time plus the event's offset from the
// reference — on now_s()'s clock, as the host's spans are (late by the event's completion latency, a few
// microseconds). Events come from a pool kept across traced steps; nothing is recorded while untraced.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/core/cuda_timeline.hpp needs a CUDA compiler (nvcc)"
#endif
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "tessera/core/cuda_stream.hpp"
#include "tessera/core/trace.hpp"

namespace tessera {

class cuda_timeline final : public trace::device_timeline {
 public:
  /// The process's timeline (never destroyed: its events live until the process ends).
  static cuda_timeline& process() {
    static auto* t = new cuda_timeline();
    return *t;
  }

  void start() override {
    cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (trace start)");
    spans_.clear();
    used_ = 0;
    ref_ = mark_on(compute_);
    cuda_check(cudaEventSynchronize(event(ref_)), "cudaEventSynchronize (trace start)");
    ref_s_ = trace::now_s();
  }
  /// The stream mark() records on (cuda_system::timeline() sets its own; default: the legacy stream).
  void set_compute_stream(cudaStream_t s) { compute_ = s; }
  int mark() override { return mark_on(compute_); }
  /// A timed point after the work issued so far on `stream` (a communicator's own stream).
  int mark_on(cudaStream_t stream) {
    cuda_check(cudaEventRecord(event(used_), stream), "cudaEventRecord (trace)");
    return used_++;
  }
  void span(int from, int to, trace::track on, std::string name) override { spans_.push_back({from, to, on, std::move(name)}); }
  std::vector<trace::event> collect() override {
    cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (trace end)");
    std::vector<trace::event> out;
    out.reserve(spans_.size());
    for (pending& p : spans_) out.push_back({std::move(p.name), p.on, at_s(p.from), at_s(p.to)});
    spans_.clear();
    used_ = 0;
    return out;
  }

 private:
  struct pending {
    int from, to;
    trace::track on;
    std::string name;
  };
  cuda_timeline() = default;
  /// Event i of the pool (timing enabled), created when first needed.
  cudaEvent_t event(int i) {
    while (static_cast<int>(events_.size()) <= i) {
      cudaEvent_t e = nullptr;
      cuda_check(cudaEventCreate(&e), "cudaEventCreate (trace)");
      events_.push_back(e);
    }
    return events_[static_cast<std::size_t>(i)];
  }
  /// Mark i on the host's clock.
  double at_s(int i) {
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, event(ref_), event(i)), "cudaEventElapsedTime (trace)");
    return ref_s_ + 1e-3 * ms;
  }

  std::vector<cudaEvent_t> events_;
  std::vector<pending> spans_;
  cudaStream_t compute_ = cudaStreamLegacy;
  int used_ = 0, ref_ = 0;
  double ref_s_ = 0;
};

}  // namespace tessera
