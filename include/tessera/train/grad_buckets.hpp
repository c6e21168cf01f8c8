// tessera/train/grad_buckets.hpp — how the gradient arena is cut for the dp reduction.
//
// The parameters a rank synchronises over dp (every slot not shared by several pipeline ranks) lie in
// one contiguous range of the value and gradient arenas (param_store::finalise). A bucket is a run of
// consecutive slots of that range, reduced over dp as one message as soon as its last gradient is
// final. Without ZeRO-2/3 a bucket closes once it holds about `cap` elements; with them a bucket is one
// *unit* — the input embedding, one layer, or the output head — because ZeRO-2 reduces and ZeRO-3
// gathers unit by unit. Each bucket is split over the dp ranks by block_partition::near_equal: under
// ZeRO a rank keeps block `dp rank` of every bucket (its shard).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/error.hpp"
#include "tessera/model/transformer.hpp"

namespace tessera {

struct grad_bucket {
  std::vector<std::size_t> slots;    ///< slot indices, in arena order
  std::int64_t offset = 0, count = 0;  ///< range of the gradient (and value) arena
  block_partition part;              ///< each dp rank's block of the bucket
  std::int64_t shard_off = 0;        ///< ZeRO: where this rank's block starts in its shard buffers
};

/// Buckets over the slots with shared[i] == false, in arena order.
/// @pre the store is finalised with the unshared slots contiguous (checked); dp >= 1; cap >= 1.
/// @post the buckets' ranges are disjoint, ascending, and cover every unshared slot exactly once.
template <class T, class System>
std::vector<grad_bucket> make_buckets(const param_store<T, System>& store, const std::vector<bool>& shared, bool per_unit,
                                      std::int64_t cap, int dp) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < store.slots.size(); ++i)
    if (!shared[i]) order.push_back(i);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return store.slots[a].grad_offset < store.slots[b].grad_offset; });
  std::vector<grad_bucket> buckets;
  slot_unit prev_unit;
  for (std::size_t i : order) {
    const slot_unit unit = store.slots[i].layout.unit;
    if (buckets.empty() || (per_unit ? !(unit == prev_unit) : buckets.back().count >= cap)) {
      buckets.emplace_back();
      buckets.back().offset = store.slots[i].grad_offset;
    }
    check(store.slots[i].grad_offset == buckets.back().offset + buckets.back().count, "tessera internal: slot ",
          store.slots[i].layout.name, " is not next to its bucket's slots in the arena");
    buckets.back().slots.push_back(i);
    buckets.back().count += store.slots[i].numel();
    prev_unit = unit;
  }
  for (grad_bucket& b : buckets) b.part = block_partition::near_equal(b.count, dp);
  return buckets;
}

/// bucket_of[i]: the bucket holding slot i, -1 for shared slots.
inline std::vector<int> bucket_of_slots(const std::vector<grad_bucket>& buckets, std::size_t num_slots) {
  std::vector<int> out(num_slots, -1);
  for (std::size_t bi = 0; bi < buckets.size(); ++bi)
    for (std::size_t i : buckets[bi].slots) out[i] = static_cast<int>(bi);
  return out;
}

/// The distinct buckets of `slots`, in the order first met; shared slots (bucket -1) have none.
inline std::vector<int> distinct_buckets(const std::vector<int>& slots, const std::vector<int>& bucket_of) {
  std::vector<int> out;
  for (int i : slots)
    if (const int b = bucket_of[static_cast<std::size_t>(i)]; b >= 0 && std::find(out.begin(), out.end(), b) == out.end())
      out.push_back(b);
  return out;
}

/// What every dp reduction of a slot's gradient does first: under sequence parallelism a tp-replicated
/// slot (norm weights, row-parallel biases, positions) saw only its rows on each tp rank, so its gradient
/// is summed over tp.
template <class T, class System, class Comm>
void sum_over_tp_if_partial(param_slot<T, System>& s, Comm& tp, bool sequence_parallel) {
  if (sequence_parallel && s.layout.role == tp_role::replicated) all_reduce(tp, s.grad.data(), s.grad.data(), s.grad.size());
}

}  // namespace tessera
