// tessera/comm/staged.hpp — a communicator for memory the host communicator cannot reach, by staging.
//
// `staged_comm<Host, System>` models `communicator` for buffers of `System` (a device): every operation
// copies its input to host memory (to_host), lets the host communicator `Host` (mpi_comm) do the
// operation there, and copies the result back (from_host). The host communicator does the
// arithmetic, so results — bf16 rounding included — are the host trainer's, bit for bit. It is what
// several ranks on one GPU use (NCCL refuses two ranks on one device), and what any device uses whose
// ranks have no device-to-device engine.
//
//   Aliasing is kept: when one buffer lies inside the other (in-place all-reduce, recv == send + displs[r]
//   of a partitioned reduce-scatter, send == recv + displs[r] of an all-gather), the host copies alias the
//   same way, so the host communicator sees exactly the call the host trainer makes.
//   Only what the operation reads is copied in (the send range; on a broadcast the root's buffer), and
//   only what it writes is copied out (the recv range, on the ranks where it is significant).
//   Buffers may also be host memory: to_host/from_host accept both (cuda_system copies with
//   cudaMemcpyDefault under unified addressing), so scalar bookkeeping (losses, counts) just works.
//   Byte messages (isend_bytes/irecv_bytes: snapshots) are host memory by contract and are passed through.
//
// Non-blocking operations stage into a buffer of their own (from a pool the communicator keeps) and copy
// out when waited for. The copies are issued on the compute system value the communicator is bound to
// (bind_compute: the trainer binds its own; default System{}) and synchronise it, which orders them after
// the compute that produced the input and before the compute that consumes the output. Cost: two copies
// through host memory per operation — the price of a shared device, not a substitute for NCCL between
// devices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"

namespace tessera {

/// Host memory for staged operations: blocks of bytes, taken and given back (never shrunk).
class staging_pool {
 public:
  using block = std::vector<std::byte>;
  block take(std::size_t bytes) {
    block b;
    if (!free_.empty()) {
      b = std::move(free_.back());
      free_.pop_back();
    }
    if (b.size() < bytes) b.resize(bytes);
    return b;
  }
  void give(block b) { free_.push_back(std::move(b)); }

 private:
  std::vector<block> free_;
};

namespace staged_detail {
inline std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
/// Whether [a, a + na) lies inside [b, b + nb) (both non-null).
template <class T>
bool inside(const T* a, std::size_t na, const T* b, std::size_t nb) {
  return a && b && address(a) >= address(b) && address(a + na) <= address(b + nb);
}

/// Where an operation's send and recv buffers are on the host, with the aliasing of the originals.
template <class T>
struct host_pair {
  T* send = nullptr;
  T* recv = nullptr;
};

/// Lays send (ns elements) and recv (nr) out in `b`: one region when one lies inside the other, else two.
/// A null original stays null.
template <class T>
host_pair<T> lay_out(staging_pool::block& b, const T* s, std::size_t ns, const T* r, std::size_t nr) {
  auto room = [&](std::size_t n) {
    if (b.size() < n * sizeof(T)) b.resize(n * sizeof(T));
    return reinterpret_cast<T*>(b.data());
  };
  if (inside(s, ns, r, nr)) {
    T* h = room(nr);
    return {h + (s - r), h};
  }
  if (inside(r, nr, s, ns)) {
    T* h = room(ns);
    return {h, h + (r - s)};
  }
  T* h = room(ns + nr);
  return {s ? h : nullptr, r ? h + ns : nullptr};
}
}  // namespace staged_detail

/// A staged non-blocking operation: the host communicator's request, the host buffer it works in, and
/// the copy of the result back to the system's memory, done when it completes.
template <class HostRequest>
class staged_request {
 public:
  staged_request() = default;
  staged_request(HostRequest r, staging_pool::block b, std::shared_ptr<staging_pool> pool, std::function<void()> deliver)
      : block_(std::move(b)), inner_(std::move(r)), pool_(std::move(pool)), deliver_(std::move(deliver)) {}
  staged_request(staged_request&& o) noexcept { swap(o); }
  staged_request& operator=(staged_request&& o) noexcept {
    if (this != &o) {
      finish_quietly();
      swap(o);
    }
    return *this;
  }
  staged_request(const staged_request&) = delete;
  staged_request& operator=(const staged_request&) = delete;
  ~staged_request() { finish_quietly(); }

  /// Completes the host operation, then copies its result to the system's memory (once).
  void wait() {
    inner_.wait();
    if (deliver_) std::exchange(deliver_, nullptr)();
    if (pool_) std::exchange(pool_, nullptr)->give(std::move(block_));
  }

 private:
  void finish_quietly() noexcept {
    try {
      wait();
    } catch (...) {  // a destructor cannot report it; wait() does
    }
  }
  void swap(staged_request& o) noexcept {
    std::swap(block_, o.block_);
    std::swap(inner_, o.inner_);
    std::swap(pool_, o.pool_);
    std::swap(deliver_, o.deliver_);
  }
  staging_pool::block block_;  // before inner_: the host operation ends before its memory goes
  HostRequest inner_;
  std::shared_ptr<staging_pool> pool_;
  std::function<void()> deliver_;
};

template <communicator Host, class System>
  requires Host::system::host_accessible
class staged_comm {
 public:
  using system = System;
  using host_comm = Host;
  using request = staged_request<typename Host::request>;
  static constexpr bool orders_after_compute = true;  // copies on the compute stream, synchronised

  staged_comm() = default;
  explicit staged_comm(Host host, System compute = System{}) : host_(std::move(host)), sys_(compute) {}

  /// The copies go on `compute` from now on (the trainer's compute stream).
  void bind_compute(System compute) { sys_ = compute; }

  /// "staged (cuda -> host -> mpi)".
  static std::string name() { return cat("staged (", System::name, " -> host -> ", Host::name(), ")"); }
  int rank() const { return host_.rank(); }
  int size() const { return host_.size(); }
  /// The host communicator that does the work.
  Host& host() { return host_; }
  /// The flight recorder's name for this communicator's operations (forwarded to the host communicator).
  void set_label(std::string l) {
    if constexpr (requires(Host& c) { c.set_label(std::string()); }) host_.set_label(std::move(l));
  }

  // ---- collectives on equal blocks -----------------------------------------------------------------
  template <class T>
  void all_reduce(const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) {
    auto h = stage_in(s, n, r, n);
    host_.all_reduce(h.send, h.recv, n, op);
    stage_out(r, h.recv, n);
  }
  template <class T>
  void reduce_scatter(const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) {
    auto h = stage_in(s, n * blocks(), r, n);
    host_.reduce_scatter(h.send, h.recv, n, op);
    stage_out(r, h.recv, n);
  }
  template <class T>
  void all_gather(const T* s, T* r, std::size_t n) {
    auto h = stage_in(s, n, r, n * blocks());
    host_.all_gather(h.send, h.recv, n);
    stage_out(r, h.recv, n * blocks());
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    auto h = staged_detail::lay_out<T>(blocking_, nullptr, 0, buf, n);
    if (rank() == root) sys_.to_host(h.recv, buf, signed_count(n));
    host_.broadcast(h.recv, n, root);
    if (rank() != root) stage_out(buf, h.recv, n);
  }
  template <class T>
  void all_to_all(const T* s, T* r, std::size_t n) {
    auto h = stage_in(s, n * blocks(), r, n * blocks());
    host_.all_to_all(h.send, h.recv, n);
    stage_out(r, h.recv, n * blocks());
  }
  template <class T>
  void reduce(const T* s, T* r, std::size_t n, reduce_op op, int root) {
    auto h = stage_in(s, n, rank() == root ? r : nullptr, n);
    host_.reduce(h.send, h.recv, n, op, root);
    if (rank() == root) stage_out(r, h.recv, n);
  }
  template <class T>
  void gather(const T* s, T* r, std::size_t n, int root) {
    auto h = stage_in(s, n, rank() == root ? r : nullptr, n * blocks());
    host_.gather(h.send, h.recv, n, root);
    if (rank() == root) stage_out(r, h.recv, n * blocks());
  }

  // ---- collectives over a block_partition ------------------------------------------------------------
  template <class T>
  void reduce_scatter_v(const T* s, T* r, const block_partition& p, reduce_op op = reduce_op::sum) {
    const std::size_t total = static_cast<std::size_t>(p.total()), mine = static_cast<std::size_t>(p.count(rank()));
    auto h = stage_in(s, total, r, mine);
    host_.reduce_scatter_v(h.send, h.recv, p, op);
    stage_out(r, h.recv, mine);
  }
  template <class T>
  void all_gather_v(const T* s, T* r, const block_partition& p) {
    const std::size_t total = static_cast<std::size_t>(p.total()), mine = static_cast<std::size_t>(p.count(rank()));
    auto h = stage_in(s, mine, r, total);
    host_.all_gather_v(h.send, h.recv, p);
    stage_out(r, h.recv, total);
  }
  template <class T>
  void gather_v(const T* s, T* r, const block_partition& p, int root) {
    const std::size_t total = static_cast<std::size_t>(p.total()), mine = static_cast<std::size_t>(p.count(rank()));
    auto h = stage_in(s, mine, rank() == root ? r : nullptr, total);
    host_.gather_v(h.send, h.recv, p, root);
    if (rank() == root) stage_out(r, h.recv, total);
  }
  template <class T>
  request iall_reduce(const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) {
    return start(s, n, r, n, [&](const T* hs, T* hr) { return host_.iall_reduce(hs, hr, n, op); });
  }
  template <class T>
  request ireduce_scatter_v(const T* s, T* r, const block_partition& p, reduce_op op = reduce_op::sum) {
    return start(s, static_cast<std::size_t>(p.total()), r, static_cast<std::size_t>(p.count(rank())),
                 [&](const T* hs, T* hr) { return host_.ireduce_scatter_v(hs, hr, p, op); });
  }
  template <class T>
  request iall_gather_v(const T* s, T* r, const block_partition& p) {
    return start(s, static_cast<std::size_t>(p.count(rank())), r, static_cast<std::size_t>(p.total()),
                 [&](const T* hs, T* hr) { return host_.iall_gather_v(hs, hr, p); });
  }

  // ---- point-to-point --------------------------------------------------------------------------------
  template <class T>
  void send(const T* buf, std::size_t n, int peer, int tag) {
    auto h = stage_in<T>(buf, n, nullptr, 0);
    host_.send(h.send, n, peer, tag);
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer, int tag) {
    auto h = staged_detail::lay_out<T>(blocking_, nullptr, 0, buf, n);
    host_.recv(h.recv, n, peer, tag);
    stage_out(buf, h.recv, n);
  }
  /// Host-memory byte messages, passed through (snapshots); when the host communicator has them.
  request isend_bytes(const void* buf, std::size_t n, int peer, int tag)
    requires requires(Host& c, const void* b, std::size_t k, int p, int t) { c.isend_bytes(b, k, p, t); }
  {
    return request(host_.isend_bytes(buf, n, peer, tag), {}, nullptr, nullptr);
  }
  request irecv_bytes(void* buf, std::size_t n, int peer, int tag)
    requires requires(Host& c, void* b, std::size_t k, int p, int t) { c.irecv_bytes(b, k, p, t); }
  {
    return request(host_.irecv_bytes(buf, n, peer, tag), {}, nullptr, nullptr);
  }
  /// The batch staged as one: every send copied in, the host exchange, every receive copied out.
  void exchange(std::span<const p2p_op> ops) {
    std::vector<std::size_t> at(ops.size());
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      at[i] = bytes;
      bytes += (ops[i].count * static_cast<std::size_t>(dtype_size(ops[i].type)) + 15) / 16 * 16;
    }
    if (blocking_.size() < bytes) blocking_.resize(bytes);
    std::vector<p2p_op> host_ops(ops.begin(), ops.end());
    for (std::size_t i = 0; i < ops.size(); ++i) {
      host_ops[i].buf = blocking_.data() + at[i];
      if (ops[i].what == p2p_op::kind::send) copy_bytes_in(host_ops[i].buf, ops[i].buf, byte_count(ops[i]));
    }
    host_.exchange(std::span<const p2p_op>(host_ops));
    for (std::size_t i = 0; i < ops.size(); ++i)
      if (ops[i].what == p2p_op::kind::recv) copy_bytes_out(ops[i].buf, host_ops[i].buf, byte_count(ops[i]));
  }
  void barrier() { host_.barrier(); }
  staged_comm split(int color, int key) const { return staged_comm(host_.split(color, key), sys_); }

 private:
  std::size_t blocks() const { return static_cast<std::size_t>(size()); }
  static std::int64_t signed_count(std::size_t n) { return static_cast<std::int64_t>(n); }
  static std::size_t byte_count(const p2p_op& op) { return op.count * static_cast<std::size_t>(dtype_size(op.type)); }
  void copy_bytes_in(void* host, const void* p, std::size_t n) const {
    sys_.to_host(static_cast<unsigned char*>(host), static_cast<const unsigned char*>(p), signed_count(n));
  }
  void copy_bytes_out(void* p, const void* host, std::size_t n) const {
    sys_.from_host(static_cast<unsigned char*>(p), static_cast<const unsigned char*>(host), signed_count(n));
  }
  /// The host copies of a blocking operation's buffers (in this communicator's own block), send copied in.
  template <class T>
  staged_detail::host_pair<T> stage_in(const T* s, std::size_t ns, const T* r, std::size_t nr) {
    auto h = staged_detail::lay_out(blocking_, s, ns, r, nr);
    if (s) sys_.to_host(h.send, s, signed_count(ns));
    return h;
  }
  template <class T>
  void stage_out(T* r, const T* host, std::size_t n) const {
    if (r) sys_.from_host(r, host, signed_count(n));
  }
  /// A non-blocking operation in a pool block: send copied in, `begin(host send, host recv)` started, the
  /// recv range copied out when the request completes.
  template <class T, class Begin>
  request start(const T* s, std::size_t ns, T* r, std::size_t nr, Begin begin) {
    staging_pool::block b = pool_->take(0);
    auto h = staged_detail::lay_out(b, s, ns, r, nr);
    if (s) sys_.to_host(h.send, s, signed_count(ns));
    auto inner = begin(h.send, h.recv);
    std::function<void()> deliver;
    if (r) deliver = [sys = sys_, r, hr = h.recv, nr] { sys.from_host(r, hr, signed_count(nr)); };
    return request(std::move(inner), std::move(b), pool_, std::move(deliver));
  }

  Host host_;
  System sys_{};
  staging_pool::block blocking_;
  std::shared_ptr<staging_pool> pool_ = std::make_shared<staging_pool>();
};

}  // namespace tessera
