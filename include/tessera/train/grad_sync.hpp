// tessera/train/grad_sync.hpp — summing gradients over the ranks that hold the same parameters.
//
// dp: the buckets (grad_buckets.hpp) are reduced over the dp axis without blocking, each launched as
// soon as its last gradient is final, so the reduction overlaps the rest of the backward: an all-reduce,
// or under ZeRO-1 an in-place reduce-scatter of each rank's block (ZeRO-2/3 reduce unit by unit during
// the backward instead: zero_state.hpp). "Final" is counted: the chunks report each unit's completed
// microbatch contribution (param_hooks::grad_end), and a bucket launches at the report that completes
// the count the program implies — inside a backward, layer by layer, so even a one-chunk stage overlaps
// its last backward. Launch points (after the program action that finishes a bucket) are the backstop.
// Shared slots (the tied embedding on the first and last stage, Chimera's two copies of every stage)
// are summed after the program over (dp × the pipeline ranks holding them), in one canonical order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/model/transformer.hpp"
#include "tessera/train/grad_buckets.hpp"

namespace tessera {

template <class T, communicator Comm, class System = host_system>
class gradient_sync {
 public:
  using request = typename Comm::request;

  /// zero_stage: the ZeRO stage in effect (zero_state::stage()).
  gradient_sync(param_store<T, System>& store, std::vector<grad_bucket>& buckets, Comm& dp, Comm& tp, bool sequence_parallel,
                int zero_stage)
      : store_(store), buckets_(buckets), dp_(dp), tp_(tp), sp_(sequence_parallel), zero_(zero_stage) {}

  /// launch_after[idx]: the buckets whose gradients are final once action idx of the program is done.
  void set_launch_points(std::vector<std::vector<int>> launch_after) { launch_after_ = std::move(launch_after); }
  /// reports[b]: how many grad_end reports touch bucket b in one step's program. Returns the hooks that
  /// launch a bucket at its last report (for the chunks, below ZeRO-2). @pre one count per bucket.
  const param_hooks* launch_on_reports(std::vector<int> reports) {
    check(reports.size() == buckets_.size(), "tessera internal: one report count per bucket");
    expected_ = std::move(reports);
    bucket_of_ = bucket_of_slots(buckets_, store_.slots.size());
    hooks_.grad_end = [this](const std::vector<int>& ids) { report(ids); };
    return &hooks_;
  }
  /// Slot i is shared by the ranks of `group` (a communicator over dp × its pipeline holders), reduced
  /// after the program; slots are reduced in the order they are added. @pre the same order on every holder.
  void add_shared_slot(std::size_t i, Comm& group) { shared_.push_back({i, &group}); }

  /// Before a step's program.
  void begin_step() {
    pending_.clear();
    launched_.assign(buckets_.size(), false);
    reported_.assign(buckets_.size(), 0);
  }
  /// After action idx of the program: launch what became final.
  void after_action(std::size_t idx) {
    for (int b : launch_after_[idx]) launch(b);
  }
  /// After the program: launches what is left, waits for every reduction, sums the shared slots.
  /// @post every gradient this rank updates from is summed over its holders.
  void finish() {
    for (std::size_t bi = 0; bi < buckets_.size(); ++bi) launch(static_cast<int>(bi));
    if (!expected_.empty())
      check(reported_ == expected_, "tessera internal: the chunks reported other gradient units than the program implies");
    wait_all(pending_);
    if (!shared_.empty()) ready_to_communicate<Comm>(store_.sys);
    for (const auto& [i, group] : shared_) {
      sum_over_tp_if_partial(store_.slots[i], tp_, sp_);
      auto& s = store_.slots[i];
      group->all_reduce(s.grad.data(), s.grad.data(), s.grad.size());
    }
  }

 private:
  /// A unit's microbatch contribution is complete: launch the buckets that had their last report.
  void report(const std::vector<int>& ids) {
    for (int b : distinct_buckets(ids, bucket_of_))
      if (++reported_[static_cast<std::size_t>(b)] == expected_[static_cast<std::size_t>(b)]) launch(b);
  }
  /// Non-blocking dp reduction of a bucket whose gradients are final.
  void launch(int bi) {
    if (launched_[static_cast<std::size_t>(bi)]) return;
    launched_[static_cast<std::size_t>(bi)] = true;
    if (zero_ >= 2) return;  // reduced microbatch by microbatch during the backward
    const grad_bucket& b = buckets_[static_cast<std::size_t>(bi)];
    for (std::size_t i : b.slots) sum_over_tp_if_partial(store_.slots[i], tp_, sp_);
    if (dp_.size() == 1) return;
    ready_to_communicate<Comm>(store_.sys);  // the backward that made these gradients is complete before they travel
    auto* p = store_.grad_arena.data() + b.offset;
    if (zero_ == 1) {  // each dp rank receives the sum of its block only, in place
      pending_.push_back(dp_.ireduce_scatter_v(p, p + b.part.displ(dp_.rank()), b.part));
      return;
    }
    pending_.push_back(dp_.iall_reduce(p, p, static_cast<std::size_t>(b.count)));
  }

  struct shared_slot {
    std::size_t slot;
    Comm* group;
  };
  param_store<T, System>& store_;
  std::vector<grad_bucket>& buckets_;
  Comm& dp_;
  Comm& tp_;
  bool sp_ = false;
  int zero_ = 0;
  std::vector<std::vector<int>> launch_after_;
  std::vector<int> expected_, reported_, bucket_of_;  ///< grad_end reports per bucket: per step, this step; slot → bucket
  param_hooks hooks_;
  std::vector<shared_slot> shared_;
  std::vector<bool> launched_;
  std::vector<request> pending_;
};

}  // namespace tessera
