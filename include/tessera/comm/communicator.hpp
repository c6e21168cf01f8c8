// tessera/comm/communicator.hpp — the concepts every collective engine models.
//
// Two levels. `collective_communicator`: blocking collectives on equal blocks, batched point-to-point,
// barrier and split — what the operator layer and the redistribution algebra use; `mpi_comm`,
// `loopback_comm` and `nccl_comm` model it. `communicator`: everything the trainer needs on top —
// non-blocking collectives returning a request (`wait()`), collectives over the blocks of a
// `block_partition` (ZeRO's shards), reductions and gathers to a root, scalar reductions, tagged
// point-to-point; `mpi_comm` and `loopback_comm` model it (a CUDA communicator is the next one:
// docs/design.md lists what it provides). Pointers are in the memory of the communicator's `system`.
//
//   all_reduce(send, recv, n, op)           recv[i] = op over ranks of send[i]  (send == recv: in place)
//   reduce_scatter(send, recv, n, op)       send has size()·n elements; rank r gets block r reduced
//   all_gather(send, recv, n)               recv = concat over ranks of send (n each)
//   broadcast(buf, n, root)
//   all_to_all(send, recv, n)               block j of send goes to rank j; block j of recv from rank j
//   exchange(ops)                           batched point-to-point sends/receives, completed together
//   barrier()
//   split(color, key)                       ranks of one color, ordered by key; no_color: an empty one
//
//   iall_reduce(send, recv, n, op)          -> request
//   reduce_scatter_v(send, recv, part, op)  rank r gets block r of the partition, reduced (recv: its
//   ireduce_scatter_v(...)  -> request      counts[r] elements; recv == send + displs[r]: in place)
//   all_gather_v(send, recv, part)          block r of recv from rank r (send == recv + displs[r]: in place)
//   iall_gather_v(...)      -> request
//   gather_v(send, recv, part, root)        block r of recv (on root) from rank r
//   gather(send, recv, n, root)             equal blocks of n
//   reduce(send, recv, n, op, root)         recv on root (send == recv: in place)
//   send(buf, n, peer, tag) / recv(...)     blocking tagged point-to-point; messages between a pair of
//                                           ranks with one tag arrive in order
//
// A request completes on wait() (or on destruction); the buffers it names must stay valid until then,
// and so must the partition it was started with. The customisation-point objects
// `tessera::all_reduce(c, ...)` etc. call the members, so algorithms are written once against the concept.
#pragma once
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tessera/core/bf16.hpp"
#include "tessera/core/error.hpp"

namespace tessera {

enum class reduce_op : unsigned char { sum, max, min };

/// split()'s color for ranks that take part in no group (they get an empty communicator).
inline constexpr int no_color = -1;

/// One send or receive of a batched point-to-point exchange.
struct p2p_op {
  enum class kind : unsigned char { send, recv };
  kind what;
  int peer;
  void* buf;
  std::size_t count;
  dtype type;
};
template <class T>
p2p_op p2p_send(int peer, const T* buf, std::size_t n) {
  return {p2p_op::kind::send, peer, const_cast<T*>(buf), n, dtype_v<T>};
}
template <class T>
p2p_op p2p_recv(int peer, T* buf, std::size_t n) {
  return {p2p_op::kind::recv, peer, buf, n, dtype_v<T>};
}

/// How a buffer of total() elements is divided among the ranks of a communicator: rank r's block is
/// [displs[r], displs[r] + counts[r]), the blocks contiguous and in rank order.
/// @post counts.size() == displs.size() == parts; displs[0] == 0; displs[r + 1] == displs[r] + counts[r].
struct block_partition {
  std::vector<int> counts, displs;

  /// `total` elements over `parts` ranks: the first total % parts ranks hold one element more.
  /// @pre parts >= 1, 0 <= total, every block fits an int (checked).
  static block_partition near_equal(std::int64_t total, int parts) {
    check(parts >= 1 && total >= 0, "tessera: block_partition of ", total, " elements over ", parts, " ranks");
    const std::int64_t base = total / parts, rem = total % parts;
    check(base + 1 <= INT32_MAX, "tessera: block_partition: blocks of ", base + 1, " elements exceed the int count limit");
    block_partition p;
    p.counts.resize(static_cast<std::size_t>(parts));
    p.displs.resize(static_cast<std::size_t>(parts));
    for (int r = 0; r < parts; ++r) {
      p.counts[static_cast<std::size_t>(r)] = static_cast<int>(base + (r < rem ? 1 : 0));
      p.displs[static_cast<std::size_t>(r)] = static_cast<int>(r * base + std::min<std::int64_t>(r, rem));
    }
    return p;
  }
  int parts() const { return static_cast<int>(counts.size()); }
  int count(int r) const { return counts[static_cast<std::size_t>(r)]; }
  int displ(int r) const { return displs[static_cast<std::size_t>(r)]; }
  std::int64_t total() const { return counts.empty() ? 0 : std::int64_t{displs.back()} + counts.back(); }
  /// The largest block: what an engine that needs equal blocks (NCCL) pads every block to.
  int largest() const { return counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end()); }
};

template <class C, class T>
concept collectives_for = requires(C& c, const T* s, T* r, std::size_t n, reduce_op op) {
  c.all_reduce(s, r, n, op);
  c.reduce_scatter(s, r, n, op);
  c.all_gather(s, r, n);
  c.broadcast(r, n, 0);
  c.all_to_all(s, r, n);
};
template <class C, class T>
concept communicator_for = collectives_for<C, T>;  // the name algorithms constrain on

template <class C>
concept collective_communicator = collectives_for<C, float> && collectives_for<C, bf16> &&
    requires(C& c, const C& cc, std::span<const p2p_op> ops) {
      typename C::system;
      { C::name() } -> std::convertible_to<std::string>;  // what a run's start line calls it
      { c.size() } -> std::convertible_to<int>;
      { c.rank() } -> std::convertible_to<int>;
      c.exchange(ops);
      c.barrier();
      { cc.split(0, 0) } -> std::same_as<C>;
    };

/// A non-blocking operation in flight: wait() completes it (a second wait() does nothing).
template <class R>
concept comm_request = std::movable<R> && std::default_initializable<R> && requires(R& r) { r.wait(); };

/// What the trainer moves: parameters/activations (T), gradients and optimizer state (fp32).
template <class C, class T>
concept trainer_collectives_for =
    requires(C& c, const T* s, T* r, std::size_t n, const block_partition& p, reduce_op op, int peer, int tag) {
      { c.iall_reduce(s, r, n, op) } -> std::same_as<typename C::request>;
      { c.ireduce_scatter_v(s, r, p, op) } -> std::same_as<typename C::request>;
      { c.iall_gather_v(s, r, p) } -> std::same_as<typename C::request>;
      c.reduce_scatter_v(s, r, p, op);
      c.all_gather_v(s, r, p);
      c.gather_v(s, r, p, 0);
      c.gather(s, r, n, 0);
      c.reduce(s, r, n, op, 0);
      c.send(s, n, peer, tag);
      c.recv(r, n, peer, tag);
    };

template <class C>
concept communicator = collective_communicator<C> && comm_request<typename C::request> &&
    trainer_collectives_for<C, float> && trainer_collectives_for<C, bf16> &&
    // scalar bookkeeping: losses and norms (double), counts and token ids (int32, int64), bytes (uint8)
    collectives_for<C, double> && collectives_for<C, std::int32_t> && collectives_for<C, std::int64_t> &&
    requires(C& c, std::uint8_t* b, const std::uint8_t* cb, std::int32_t* i, const std::int32_t* ci) {
      c.broadcast(b, std::size_t{1}, 0);
      c.gather(ci, i, std::size_t{1}, 0);
      c.gather_v(cb, b, block_partition{}, 0);
    };

/// A communicator that orders each operation after the work already issued on its compute stream (NCCL:
/// an event; staged: its copies run on that stream) declares `static constexpr bool orders_after_compute =
/// true`. Others (MPI on host memory) read the buffers at once.
template <class C>
concept orders_after_compute = requires { requires C::orders_after_compute; };

/// Communicators whose operations order themselves with compute take the compute system value they order
/// with (its stream) through `bind_compute(sys)`; the trainer binds its own. Others ignore it.
template <class C, class System>
void bind_compute(C& c, const System& sys) {
  if constexpr (requires { c.bind_compute(sys); }) c.bind_compute(sys);
}

/// Before the results of the work issued on `sys` go to `Comm`: waits for that work unless Comm orders
/// itself (a host stall in the middle of a backward is what this avoids; on the host, a no-op).
template <class Comm, class System>
void ready_to_communicate(const System& sys) {
  if constexpr (!orders_after_compute<Comm>) sys.synchronize();
}

namespace cpo {
struct all_reduce_fn {
  template <class C, class T>
    requires collectives_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) const {
    c.all_reduce(s, r, n, op);
  }
};
struct reduce_scatter_fn {
  template <class C, class T>
    requires collectives_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) const {
    c.reduce_scatter(s, r, n, op);
  }
};
struct all_gather_fn {
  template <class C, class T>
    requires collectives_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n) const { c.all_gather(s, r, n); }
};
struct broadcast_fn {
  template <class C, class T>
    requires collectives_for<C, T>
  void operator()(C& c, T* buf, std::size_t n, int root) const { c.broadcast(buf, n, root); }
};
struct all_to_all_fn {
  template <class C, class T>
    requires collectives_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n) const { c.all_to_all(s, r, n); }
};
struct exchange_fn {
  template <collective_communicator C>
  void operator()(C& c, std::span<const p2p_op> ops) const { c.exchange(ops); }
};
struct barrier_fn {
  template <collective_communicator C>
  void operator()(C& c) const { c.barrier(); }
};
}  // namespace cpo

inline constexpr cpo::all_reduce_fn all_reduce{};
inline constexpr cpo::reduce_scatter_fn reduce_scatter{};
inline constexpr cpo::all_gather_fn all_gather{};
inline constexpr cpo::broadcast_fn broadcast{};
inline constexpr cpo::all_to_all_fn all_to_all{};
inline constexpr cpo::exchange_fn exchange{};
inline constexpr cpo::barrier_fn barrier{};

/// One value reduced over the ranks of c (every rank gets it).
template <class C, class T>
  requires collectives_for<C, T>
T all_reduce_value(C& c, T v, reduce_op op = reduce_op::sum) {
  c.all_reduce(&v, &v, 1, op);
  return v;
}

/// Completes every request of `rs` and empties it.
template <class R>
void wait_all(std::vector<R>& rs) {
  for (R& r : rs) r.wait();
  rs.clear();
}

}  // namespace tessera
