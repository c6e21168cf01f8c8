// tessera/core/profile.hpp — an operator profile of the host backend (`--profile` of ts::train).
//
// prof::scope marks one operator call: its name, and the floating-point operations it does (0 for
// memory-bound work). Scopes nest: a scope's time excludes the scopes opened inside it, so every
// microsecond is counted once, in the innermost operator (a GEMM inside the attention is "gemm ...").
// Disabled (the default), a scope costs one branch. Calls come from the host thread that runs the
// step (operators parallelise inside with OpenMP), so the bookkeeping needs no locks. When the trace
// recorder is on (`--trace`, core/trace.hpp), every scope is also a span on the "compute" track (and,
// with a device timeline, the device's compute-stream span of the work issued inside it).
#pragma once
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tessera/core/trace.hpp"

namespace tessera::prof {

struct entry {
  double seconds = 0;  ///< exclusive time
  double flops = 0;
  long calls = 0;
};

inline bool& enabled() {
  static bool on = false;
  return on;
}
inline std::map<std::string, entry>& table() {
  static std::map<std::string, entry> t;
  return t;
}
namespace detail {
inline std::vector<double>& child_time() {  // per open scope: time spent in scopes opened inside it
  static std::vector<double> s;
  return s;
}
inline double now() { return trace::now_s(); }  // the steady clock, in seconds
}  // namespace detail

class scope {
 public:
  explicit scope(const char* name, double flops = 0) : on_(enabled()), traced_(trace::process().enabled()) {
    if (!on_ && !traced_) return;
    name_ = name;
    flops_ = flops;
    if (on_) detail::child_time().push_back(0.0);
    if (traced_ && (dev_ = trace::process().device())) from_ = dev_->mark();
    t0_ = detail::now();
  }
  scope(std::string name, double flops) : scope("", flops) {
    if (on_ || traced_) name_ = std::move(name);
  }
  ~scope() {
    if (!on_ && !traced_) return;
    const double t1 = detail::now();
    if (traced_) trace::process().add({name_, trace::track::compute, t0_, t1});
    if (dev_) dev_->span(from_, dev_->mark(), trace::track::device_compute, name_);
    if (!on_) return;
    const double total = t1 - t0_;
    auto& stack = detail::child_time();
    const double inner = stack.back();
    stack.pop_back();
    if (!stack.empty()) stack.back() += total;
    entry& e = table()[name_];
    e.seconds += total - inner;
    e.flops += flops_;
    ++e.calls;
  }
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

 private:
  bool on_, traced_;
  std::string name_;
  double flops_ = 0, t0_ = 0;
  trace::device_timeline* dev_ = nullptr;
  int from_ = 0;
};

inline void reset() { table().clear(); }

/// The entries, largest time first.
inline std::vector<std::pair<std::string, entry>> sorted() {
  std::vector<std::pair<std::string, entry>> v(table().begin(), table().end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  return v;
}

}  // namespace tessera::prof
