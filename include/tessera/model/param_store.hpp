// tessera/model/param_store.hpp — one rank's parameters: slots (a local buffer of one or more global
// tensors' pieces, with its gradient and, for the optimizer, moments and fp32 masters), kept in two arenas
// (values, gradients) so that gradient buckets and ZeRO's shards are contiguous ranges; and the hooks a
// chunk calls so that ZeRO-2/3 can move a unit's gradients and parameters around its use.
// Everything lives in the memory of the system `System` (buffers of System); the host writes the initial
// values through a host_mirror.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/core/host_mirror.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/model/params.hpp"
#include "tessera/ops/all.hpp"

namespace tessera {

/// A contiguous piece of a larger buffer in a system's memory (a slot's gradient in the store's gradient
/// arena): where it is and how long, no element access (that is the host_mirror's job).
template <class E>
struct buffer_view {
  E* ptr = nullptr;
  std::size_t n = 0;
  E* data() const { return ptr; }
  std::size_t size() const { return n; }
};

/// One local parameter buffer with its gradient (and, for the optimizer, moments and master copy).
template <class T, class System = host_system>
struct param_slot {
  using G = ops::grad_t<T>;
  slot_layout layout;
  buffer_view<T> value;        ///< in param_store::value_arena (valid after finalise)
  buffer_view<G> grad;         ///< in param_store::grad_arena (valid after finalise)
  std::int64_t grad_offset = 0;  ///< where value and grad start in their arenas
  buffer_of<System, G> m, v, master;
  std::int64_t numel() const { return layout.numel(); }
};

template <class T, class System = host_system>
struct param_store {
  using system = System;
  using slot = param_slot<T, System>;
  /// The system value the store's buffers are worked on with (the trainer's: its compute stream).
  System sys{};
  std::vector<slot> slots;
  int find(const std::string& name) const {
    for (std::size_t i = 0; i < slots.size(); ++i)
      if (slots[i].layout.name == name) return static_cast<int>(i);
    return -1;
  }
  int get_or_add(slot_layout l) {
    const int f = find(l.name);
    if (f >= 0) return f;
    slot s;
    l.unit = unit_of_slot(l.name);
    s.layout = std::move(l);
    slots.push_back(std::move(s));
    return static_cast<int>(slots.size() - 1);
  }
  /// All values and all gradients each in one arena, slots in `order` (so gradient buckets, and ZeRO's
  /// shards of them, are contiguous ranges of both).
  buffer_of<System, T> value_arena;
  buffer_of<System, ops::grad_t<T>> grad_arena;
  void finalise(const std::vector<std::size_t>& order) {
    check(order.size() == slots.size(), "tessera internal: finalise needs every slot once");
    std::int64_t n = 0;
    for (std::size_t i : order) {
      slots[i].grad_offset = n;
      n += slots[i].numel();
    }
    value_arena.assign(static_cast<std::size_t>(n), T{});
    grad_arena.assign(static_cast<std::size_t>(n), 0);
    for (auto& s : slots) {
      s.value = {value_arena.data() + s.grad_offset, static_cast<std::size_t>(s.numel())};
      s.grad = {grad_arena.data() + s.grad_offset, static_cast<std::size_t>(s.numel())};
    }
  }
  /// Initial values from (seed, global tensor, global element) only: the same numbers on every layout
  /// (and into the fp32 master copies, where a slot has them).
  void initialise(const model_tensors& mt, std::uint64_t seed) {
    for (auto& s : slots) {
      auto value = mirror_of(s.value, sys);
      auto master = mirror_of(s.master, sys);
      for (const box& b : s.layout.boxes) {
        const global_tensor& g = mt.tensors[static_cast<std::size_t>(b.tensor)];
        const std::uint64_t h = init_detail::name_hash(g.name);
        for_each_element(b, s.layout.cols, [&](std::int64_t r, std::int64_t c, std::size_t k) {
          const double x = init_value(g, seed, h, r, c);
          value[k] = ops::store<T>(x);
          if (!master.empty()) master[k] = static_cast<ops::grad_t<T>>(x);
        });
      }
      value.commit();
      master.commit();
    }
  }
  void zero_grads() {
    sys.fill(grad_arena.data(), static_cast<std::int64_t>(grad_arena.size()), ops::grad_t<T>(0));
  }
};

/// What a chunk tells its owner about parameter use, so that ZeRO-3 can gather a unit's parameters just
/// before they are used and free them after, and ZeRO-2 can reduce-scatter a unit's gradients as soon as
/// a microbatch's backward is done with them. A unit is the embedding (embed, pos), one layer, or the head
/// (final norm, head); calls name the unit's slots. Empty functions (ZeRO 0 and 1): everything resident.
struct param_hooks {
  std::function<void(const std::vector<int>&, int)> acquire;  ///< values needed now (+1 forward, -1 backward)
  std::function<void(const std::vector<int>&)> release;       ///< values no longer needed
  std::function<void(const std::vector<int>&)> grad_begin;    ///< gradients about to be accumulated
  std::function<void(const std::vector<int>&)> grad_end;      ///< this microbatch's contribution is complete
};

}  // namespace tessera
