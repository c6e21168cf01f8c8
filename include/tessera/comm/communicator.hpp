// tessera/comm/communicator.hpp — the one concept every collective engine models.
//
// Two models: `mpi_comm` (host memory, MPI) and `nccl_comm` (device memory, NCCL). Both move fp32 and
// bf16 (and, on MPI, a few integer/fp64 types for bookkeeping). Pointers are in the memory of the
// communicator's `system`. A send pointer equal to the receive pointer means "in place" where the
// operation allows it (all-reduce).
//
//   all_reduce(send, recv, n, op)         recv[i] = op over ranks of send[i]
//   reduce_scatter(send, recv, n, op)     send has size()·n elements; rank r gets block r reduced
//   all_gather(send, recv, n)             recv = concat over ranks of send (n each)
//   broadcast(buf, n, root)
//   all_to_all(send, recv, n)             block j of send goes to rank j; block j of recv from rank j
//   exchange(ops)                         batched point-to-point sends/receives, completed together
//   barrier()
//
// The customisation-point objects `tessera::all_reduce(c, ...)` etc. call these members, so algorithms
// are written once against the concept.
#pragma once
#include <concepts>
#include <cstddef>
#include <span>

#include "tessera/core/bf16.hpp"

namespace tessera {

enum class reduce_op : unsigned char { sum, max };

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

template <class C, class T>
concept communicator_for = requires(C& c, const T* s, T* r, std::size_t n, reduce_op op) {
  c.all_reduce(s, r, n, op);
  c.reduce_scatter(s, r, n, op);
  c.all_gather(s, r, n);
  c.broadcast(r, n, 0);
  c.all_to_all(s, r, n);
};

template <class C>
concept communicator = communicator_for<C, float> && communicator_for<C, bf16> &&
    requires(C& c, std::span<const p2p_op> ops) {
      typename C::system;
      { c.size() } -> std::convertible_to<int>;
      { c.rank() } -> std::convertible_to<int>;
      c.exchange(ops);
      c.barrier();
    };

namespace cpo {
struct all_reduce_fn {
  template <class C, class T>
    requires communicator_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) const {
    c.all_reduce(s, r, n, op);
  }
};
struct reduce_scatter_fn {
  template <class C, class T>
    requires communicator_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) const {
    c.reduce_scatter(s, r, n, op);
  }
};
struct all_gather_fn {
  template <class C, class T>
    requires communicator_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n) const { c.all_gather(s, r, n); }
};
struct broadcast_fn {
  template <class C, class T>
    requires communicator_for<C, T>
  void operator()(C& c, T* buf, std::size_t n, int root) const { c.broadcast(buf, n, root); }
};
struct all_to_all_fn {
  template <class C, class T>
    requires communicator_for<C, T>
  void operator()(C& c, const T* s, T* r, std::size_t n) const { c.all_to_all(s, r, n); }
};
struct exchange_fn {
  template <communicator C>
  void operator()(C& c, std::span<const p2p_op> ops) const { c.exchange(ops); }
};
struct barrier_fn {
  template <communicator C>
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

}  // namespace tessera
