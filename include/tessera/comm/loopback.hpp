// tessera/comm/loopback.hpp — a communicator of one rank, in one process, with no MPI.
//
// `loopback_comm` models `communicator` for size 1: every collective is a copy (or nothing in place),
// split() gives another loopback (an empty one for no_color), and tagged sends to rank 0 are kept in a
// mailbox until the matching receive takes them (in order per tag). Component tests of the trainer's
// pieces run on it in one process, as Thrust's tests run on a test system.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/host_system.hpp"

namespace tessera {

/// A loopback operation is complete when it is started — except a non-blocking receive, which takes its
/// message when waited for (the matching send may come after it, as with MPI).
struct loopback_request {
  std::function<void()> on_wait;
  void wait() {
    if (on_wait) std::exchange(on_wait, nullptr)();
  }
};

class loopback_comm {
 public:
  using system = host_system;
  using request = loopback_request;

  loopback_comm() = default;
  static std::string name() { return "loopback"; }
  int rank() const { return 0; }
  int size() const { return valid_ ? 1 : 0; }
  bool valid() const { return valid_; }

  template <class T>
  void all_reduce(const T* s, T* r, std::size_t n, reduce_op = reduce_op::sum) { copy(s, r, n); }
  template <class T>
  void reduce_scatter(const T* s, T* r, std::size_t n, reduce_op = reduce_op::sum) { copy(s, r, n); }
  template <class T>
  void all_gather(const T* s, T* r, std::size_t n) { copy(s, r, n); }
  template <class T>
  void broadcast(T*, std::size_t, int root) { check_peer(root); }
  template <class T>
  void all_to_all(const T* s, T* r, std::size_t n) { copy(s, r, n); }
  template <class T>
  void reduce(const T* s, T* r, std::size_t n, reduce_op, int root) {
    check_peer(root);
    copy(s, r, n);
  }
  template <class T>
  void gather(const T* s, T* r, std::size_t n, int root) {
    check_peer(root);
    copy(s, r, n);
  }
  template <class T>
  void reduce_scatter_v(const T* s, T* r, const block_partition& p, reduce_op = reduce_op::sum) {
    copy(s, r, static_cast<std::size_t>(one_block(p)));
  }
  template <class T>
  request ireduce_scatter_v(const T* s, T* r, const block_partition& p, reduce_op op = reduce_op::sum) {
    reduce_scatter_v(s, r, p, op);
    return {};
  }
  template <class T>
  void all_gather_v(const T* s, T* r, const block_partition& p) { copy(s, r, static_cast<std::size_t>(one_block(p))); }
  template <class T>
  request iall_gather_v(const T* s, T* r, const block_partition& p) {
    all_gather_v(s, r, p);
    return {};
  }
  template <class T>
  void gather_v(const T* s, T* r, const block_partition& p, int root) {
    check_peer(root);
    copy(s, r, static_cast<std::size_t>(one_block(p)));
  }
  template <class T>
  request iall_reduce(const T* s, T* r, std::size_t n, reduce_op = reduce_op::sum) {
    copy(s, r, n);
    return {};
  }
  /// Non-blocking byte messages (mpi_comm's isend_bytes / irecv_bytes): the send is delivered at once,
  /// the receive when its request is waited for.
  request isend_bytes(const void* buf, std::size_t n, int peer, int tag) {
    send(static_cast<const unsigned char*>(buf), n, peer, tag);
    return {};
  }
  request irecv_bytes(void* buf, std::size_t n, int peer, int tag) {
    check_peer(peer);
    return {[this, buf, n, peer, tag] { recv(static_cast<unsigned char*>(buf), n, peer, tag); }};
  }
  template <class T>
  void send(const T* buf, std::size_t n, int peer, int tag) {
    check_peer(peer);
    auto& q = (*mail_)[tag];
    q.emplace_back(n * sizeof(T));
    if (n > 0) std::memcpy(q.back().data(), buf, n * sizeof(T));
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer, int tag) {
    check_peer(peer);
    auto it = mail_->find(tag);
    check(it != mail_->end() && !it->second.empty(), "tessera: loopback_comm: receive with tag ", tag,
          " and no message sent (it would wait forever)");
    const std::vector<unsigned char>& m = it->second.front();
    check(m.size() == n * sizeof(T), "tessera: loopback_comm: receive of ", n * sizeof(T), " bytes, message has ",
          m.size());
    if (n > 0) std::memcpy(buf, m.data(), m.size());
    it->second.pop_front();
  }
  void exchange(std::span<const p2p_op> ops) {
    // sends first (into the mailbox), then the receives take them in order
    for (const p2p_op& op : ops)
      if (op.what == p2p_op::kind::send) send(static_cast<const unsigned char*>(op.buf), op.count * static_cast<std::size_t>(dtype_size(op.type)), op.peer, exchange_tag);
    for (const p2p_op& op : ops)
      if (op.what == p2p_op::kind::recv) recv(static_cast<unsigned char*>(op.buf), op.count * static_cast<std::size_t>(dtype_size(op.type)), op.peer, exchange_tag);
  }
  void barrier() {}
  loopback_comm split(int color, int) const {
    loopback_comm c;
    c.valid_ = color != no_color;
    return c;
  }
  /// Messages sent and not yet received (a test's check that a program's sends and receives pair up).
  std::size_t unreceived() const {
    std::size_t k = 0;
    for (const auto& [tag, q] : *mail_) k += q.size();
    return k;
  }

 private:
  static constexpr int exchange_tag = -7341;
  static void check_peer(int peer) { check(peer == 0, "tessera: loopback_comm: rank ", peer, " of a 1-rank communicator"); }
  static int one_block(const block_partition& p) {
    check(p.parts() == 1, "tessera: loopback_comm: a partition over ", p.parts(), " ranks on a 1-rank communicator");
    return p.count(0);
  }
  template <class T>
  static void copy(const T* s, T* r, std::size_t n) {
    if (s != r && n > 0) std::memmove(r, s, n * sizeof(T));
  }
  bool valid_ = true;
  std::shared_ptr<std::map<int, std::deque<std::vector<unsigned char>>>> mail_ =
      std::make_shared<std::map<int, std::deque<std::vector<unsigned char>>>>();
};

static_assert(communicator<loopback_comm>);

}  // namespace tessera
