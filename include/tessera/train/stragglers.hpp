// tessera/train/stragglers.hpp — which rank held a step back.
//
// A rank's own work in a step is the step's time less the time it was blocked in communication (the
// flight recorder sums that: comm/flight_recorder.hpp). In synchronous training every rank's step takes
// as long as the slowest rank's work, so the step time cannot name a straggler, but the work can: each
// rank compares its work with the median of its own last `window` steps (a layout whose stages do unequal
// work is not a straggler), and the rank whose work grew the most is named when its lag exceeds
// max(min_lag_s, min_fraction × the step time).
#pragma once
#include <algorithm>
#include <deque>
#include <vector>

#include "tessera/comm/communicator.hpp"

namespace tessera {

class straggler_monitor {
 public:
  static constexpr int window = 8;
  static constexpr double min_lag_s = 0.05, min_fraction = 0.2;

  struct report {
    int rank = -1;       ///< the slowest rank, -1 when no rank lagged (or not on rank 0)
    double lag_s = 0;    ///< its work this step less its recent median
    /// Communication over the ranks (on rank 0): time blocked in it, mean and largest; operations' time,
    /// mean (-1 when a rank did not record it).
    double wait_mean_s = 0, wait_max_s = 0, comm_mean_s = -1;
  };

  /// This rank's lag: its work less the median of its previous steps' (0 until it has one).
  double lag_of(double work_s) {
    double lag = 0;
    if (!recent_.empty()) {
      std::vector<double> v(recent_.begin(), recent_.end());
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
      lag = work_s - v[v.size() / 2];
    }
    recent_.push_back(work_s);
    if (recent_.size() > window) recent_.pop_front();
    return lag;
  }

  /// Collective over `world`: every rank's lag to rank 0, which names the largest above the threshold,
  /// and with it (the same gather) the ranks' time blocked in communication and their communication
  /// time (comm_s < 0: not recorded).
  template <communicator C>
  report slowest(C& world, double work_s, double step_s, double blocked_s = 0, double comm_s = -1) {
    const double mine[3] = {lag_of(work_s), blocked_s, comm_s};
    const std::size_t n = static_cast<std::size_t>(world.size());
    std::vector<double> all(world.rank() == 0 ? 3 * n : 0);
    world.gather(mine, all.data(), 3, 0);
    report r;
    if (world.rank() != 0) return r;
    double comm = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double lag = all[3 * i], wait = all[3 * i + 1];
      if (lag > std::max({min_lag_s, min_fraction * step_s, r.lag_s})) r.rank = static_cast<int>(i), r.lag_s = lag;
      r.wait_mean_s += wait / static_cast<double>(n);
      r.wait_max_s = std::max(r.wait_max_s, wait);
      comm = comm < 0 || all[3 * i + 2] < 0 ? -1.0 : comm + all[3 * i + 2] / static_cast<double>(n);
    }
    r.comm_mean_s = comm;
    return r;
  }

 private:
  std::deque<double> recent_;
};

}  // namespace tessera
