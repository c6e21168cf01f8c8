// tessera/comm/mpi.hpp — the host communicator: MPI on host memory.
//
// `mpi_comm` owns an MPI communicator (freed on destruction unless it is MPI_COMM_WORLD/SELF) and
// models `tessera::communicator`. bf16 reductions use MPI user operations that add/max in fp32 and
// round each result to bf16 (like NCCL). `mpi_environment` initialises and finalises MPI.
// Every operation is recorded in the process's flight recorder (comm/flight_recorder.hpp) under the
// communicator's label, so that a hang report can say which operation a rank is stuck in.
#pragma once
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/flight_recorder.hpp"
#include "tessera/core/bf16.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/host_system.hpp"

namespace tessera {

namespace detail {
inline void mpi_check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw std::runtime_error(cat("tessera: ", what, " failed: ", std::string(msg, static_cast<std::size_t>(len))));
}

template <class T>
inline MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, bf16>) return MPI_UINT16_T;
  else if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
  else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return MPI_UINT8_T;
  else static_assert(sizeof(T) == 0, "tessera::mpi_comm: unsupported element type");
}
inline MPI_Datatype mpi_type(dtype d) {
  switch (d) {
    case dtype::f32: return MPI_FLOAT;
    case dtype::bf16: return MPI_UINT16_T;
    case dtype::f64: return MPI_DOUBLE;
    case dtype::i32: return MPI_INT32_T;
    case dtype::i64: return MPI_INT64_T;
    case dtype::u8: return MPI_UINT8_T;
  }
  return MPI_BYTE;
}

inline void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const bf16*>(in);
  auto* b = static_cast<bf16*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = bf16(float(a[i]) + float(b[i]));
}
inline void bf16_max(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const bf16*>(in);
  auto* b = static_cast<bf16*>(inout);
  for (int i = 0; i < *len; ++i)
    if (float(a[i]) > float(b[i])) b[i] = a[i];
}

template <class T>
inline MPI_Op mpi_op(reduce_op op) {
  if constexpr (std::is_same_v<T, bf16>) {
    // Created once, after MPI_Init (first use), commutative.
    static const std::pair<MPI_Op, MPI_Op> ops = [] {
      MPI_Op s, m;
      MPI_Op_create(&bf16_sum, 1, &s);
      MPI_Op_create(&bf16_max, 1, &m);
      return std::pair{s, m};
    }();
    check(op != reduce_op::min, "tessera: mpi_comm: no min reduction of bf16");
    return op == reduce_op::sum ? ops.first : ops.second;
  } else {
    return op == reduce_op::sum ? MPI_SUM : op == reduce_op::max ? MPI_MAX : MPI_MIN;
  }
}

/// MPI counts are int: collectives that take one count check it.
inline int mpi_count(std::size_t n, const char* what) {
  check(n <= static_cast<std::size_t>(INT32_MAX), "tessera: ", what, " of ", n,
        " elements exceeds MPI's int count limit");
  return static_cast<int>(n);
}
/// Element-wise operations split larger messages into pieces of this many elements.
inline constexpr std::size_t mpi_piece = std::size_t{1} << 30;
}  // namespace detail

/// A non-blocking MPI operation (possibly several MPI requests, for messages split into pieces).
/// wait() completes it and checks the result; the destructor waits too (never leaves MPI writing into
/// freed memory). An in-place reduce-scatter moves this rank's block into place on completion.
class mpi_request {
 public:
  mpi_request() = default;
  mpi_request(const mpi_request&) = delete;
  mpi_request& operator=(const mpi_request&) = delete;
  mpi_request(mpi_request&& o) noexcept { swap(o); }
  mpi_request& operator=(mpi_request&& o) noexcept {
    if (this != &o) {
      finish_quietly();
      swap(o);
    }
    return *this;
  }
  ~mpi_request() { finish_quietly(); }

  /// Completes the operation. @post !pending()
  void wait() {
    if (!reqs_.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      const int rc = MPI_Waitall(static_cast<int>(reqs_.size()), reqs_.data(), MPI_STATUSES_IGNORE);
      flight_recorder::process().add_blocked(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      reqs_.clear();
      detail::mpi_check(rc, what_);
    }
    if (move_bytes_ > 0) std::memmove(move_to_, move_from_, move_bytes_);
    move_bytes_ = 0;
    recorded_done();
  }
  bool pending() const { return !reqs_.empty() || move_bytes_ > 0; }

  // ---- for mpi_comm ----
  MPI_Request* add(const char* what) {
    what_ = what;
    reqs_.push_back(MPI_REQUEST_NULL);
    return &reqs_.back();
  }
  /// The flight record of this operation (finished when the request completes).
  void record(std::uint64_t seq) { seq_ = seq; }
  void move_on_completion(void* to, const void* from, std::size_t bytes) {
    move_to_ = to;
    move_from_ = from;
    move_bytes_ = to == from ? 0 : bytes;
  }

 private:
  void finish_quietly() noexcept {
    if (!reqs_.empty()) MPI_Waitall(static_cast<int>(reqs_.size()), reqs_.data(), MPI_STATUSES_IGNORE);
    reqs_.clear();
    move_bytes_ = 0;
    recorded_done();
  }
  void recorded_done() noexcept {
    if (seq_ == 0) return;
    try {
      flight_recorder::process().end(seq_);
    } catch (...) {  // a lock that cannot be taken: the record stays "in progress"
    }
    seq_ = 0;
  }
  void swap(mpi_request& o) noexcept {
    std::swap(reqs_, o.reqs_);
    std::swap(what_, o.what_);
    std::swap(move_to_, o.move_to_);
    std::swap(move_from_, o.move_from_);
    std::swap(move_bytes_, o.move_bytes_);
    std::swap(seq_, o.seq_);
  }
  std::vector<MPI_Request> reqs_;
  std::uint64_t seq_ = 0;
  const char* what_ = "";
  void* move_to_ = nullptr;
  const void* move_from_ = nullptr;
  std::size_t move_bytes_ = 0;
};

class mpi_comm {
 public:
  using system = host_system;
  using request = mpi_request;

  mpi_comm() = default;
  /// Wraps `c`; takes ownership (MPI_Comm_free on destruction) unless it is a predefined communicator.
  explicit mpi_comm(MPI_Comm c) : comm_(c) {
    if (c != MPI_COMM_NULL) {
      detail::mpi_check(MPI_Comm_rank(c, &rank_), "MPI_Comm_rank");
      detail::mpi_check(MPI_Comm_size(c, &size_), "MPI_Comm_size");
    }
  }
  static mpi_comm world() { return mpi_comm(MPI_COMM_WORLD); }
  /// MPI_Comm_split of `parent` (no_color gives an empty communicator).
  static mpi_comm split(MPI_Comm parent, int color, int key) {
    MPI_Comm c = MPI_COMM_NULL;
    detail::mpi_check(MPI_Comm_split(parent, color == no_color ? MPI_UNDEFINED : color, key, &c), "MPI_Comm_split");
    return mpi_comm(c);
  }

  mpi_comm(const mpi_comm&) = delete;
  mpi_comm& operator=(const mpi_comm&) = delete;
  mpi_comm(mpi_comm&& o) noexcept { swap(o); }
  mpi_comm& operator=(mpi_comm&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~mpi_comm() { release(); }

  /// What the start line of a run calls this engine.
  static std::string name() { return "mpi"; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm native() const { return comm_; }
  bool valid() const { return comm_ != MPI_COMM_NULL; }
  /// The name the flight recorder gives this communicator's operations (mesh_comms: the mesh axes).
  void set_label(std::string l) { label_ = std::move(l); }
  const std::string& label() const { return label_; }

  // ---- collectives on equal blocks -----------------------------------------------------------------
  template <class T>
  void all_reduce(const T* send, T* recv, std::size_t n, reduce_op op = reduce_op::sum) {
    const recorded_op rec_(label_, "all-reduce", n * sizeof(T));
    std::size_t off = 0;
    do {  // one call for n == 0 too (every rank takes part)
      const int cnt = static_cast<int>(std::min(n - off, detail::mpi_piece));
      detail::mpi_check(MPI_Allreduce(send == recv ? MPI_IN_PLACE : send + off, recv + off, cnt, detail::mpi_type<T>(),
                                      detail::mpi_op<T>(op), comm_),
                        "MPI_Allreduce");
      off += detail::mpi_piece;
    } while (off < n);
  }
  /// `send` holds size()·n elements; this rank receives the reduction of block rank().
  template <class T>
  void reduce_scatter(const T* send, T* recv, std::size_t n, reduce_op op = reduce_op::sum) {
    const recorded_op rec_(label_, "reduce-scatter", n * static_cast<std::size_t>(size_) * sizeof(T));
    detail::mpi_check(MPI_Reduce_scatter_block(send, recv, detail::mpi_count(n, "reduce_scatter"),
                                               detail::mpi_type<T>(), detail::mpi_op<T>(op), comm_),
                      "MPI_Reduce_scatter_block");
  }
  template <class T>
  void all_gather(const T* send, T* recv, std::size_t n) {
    const recorded_op rec_(label_, "all-gather", n * static_cast<std::size_t>(size_) * sizeof(T));
    const bool in_place = send == recv + static_cast<std::size_t>(rank_) * n;
    detail::mpi_check(MPI_Allgather(in_place ? MPI_IN_PLACE : send, detail::mpi_count(n, "all_gather"),
                                    detail::mpi_type<T>(), recv, static_cast<int>(n), detail::mpi_type<T>(), comm_),
                      "MPI_Allgather");
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    const recorded_op rec_(label_, "broadcast", n * sizeof(T));
    detail::mpi_check(MPI_Bcast(buf, detail::mpi_count(n, "broadcast"), detail::mpi_type<T>(), root, comm_),
                      "MPI_Bcast");
  }
  template <class T>
  void all_to_all(const T* send, T* recv, std::size_t n) {
    const recorded_op rec_(label_, "all-to-all", n * static_cast<std::size_t>(size_) * sizeof(T));
    detail::mpi_check(MPI_Alltoall(send, detail::mpi_count(n, "all_to_all"), detail::mpi_type<T>(), recv,
                                   static_cast<int>(n), detail::mpi_type<T>(), comm_),
                      "MPI_Alltoall");
  }
  /// recv (on root) = op over ranks of send (send == recv: in place).
  template <class T>
  void reduce(const T* send, T* recv, std::size_t n, reduce_op op, int root) {
    const recorded_op rec_(label_, "reduce", n * sizeof(T));
    for (std::size_t off = 0; off < n; off += detail::mpi_piece) {
      const int cnt = static_cast<int>(std::min(n - off, detail::mpi_piece));
      const bool in_place = send == recv && rank_ == root;
      detail::mpi_check(MPI_Reduce(in_place ? MPI_IN_PLACE : send + off, recv + off, cnt, detail::mpi_type<T>(),
                                   detail::mpi_op<T>(op), root, comm_),
                        "MPI_Reduce");
    }
  }
  /// Equal blocks of n to root (recv significant on root only).
  template <class T>
  void gather(const T* send, T* recv, std::size_t n, int root) {
    const recorded_op rec_(label_, "gather", n * sizeof(T));
    const int cnt = detail::mpi_count(n, "gather");
    detail::mpi_check(MPI_Gather(send, cnt, detail::mpi_type<T>(), recv, cnt, detail::mpi_type<T>(), root, comm_),
                      "MPI_Gather");
  }

  // ---- collectives over a block_partition (ZeRO's shards) --------------------------------------------
  template <class T>
  void reduce_scatter_v(const T* send, T* recv, const block_partition& p, reduce_op op = reduce_op::sum) {
    const recorded_op rec_(label_, "reduce-scatter", static_cast<std::size_t>(p.total()) * sizeof(T));
    const T* at = recv - p.displ(rank_);
    detail::mpi_check(MPI_Reduce_scatter(at == send ? MPI_IN_PLACE : send, at == send ? const_cast<T*>(send) : recv,
                                         p.counts.data(), detail::mpi_type<T>(), detail::mpi_op<T>(op), comm_),
                      "MPI_Reduce_scatter");
    if (at == send) std::memmove(recv, send, static_cast<std::size_t>(p.count(rank_)) * sizeof(T));
  }
  /// Non-blocking reduce_scatter_v; in place (recv == send + displs[rank]) the block is moved into place
  /// when the request completes.
  template <class T>
  mpi_request ireduce_scatter_v(const T* send, T* recv, const block_partition& p, reduce_op op = reduce_op::sum) {
    mpi_request r;
    r.record(flight_recorder::process().begin(label_, "reduce-scatter (non-blocking)", static_cast<std::size_t>(p.total()) * sizeof(T)));
    const bool in_place = recv - p.displ(rank_) == send;
    T* out = in_place ? const_cast<T*>(send) : recv;
    detail::mpi_check(MPI_Ireduce_scatter(in_place ? MPI_IN_PLACE : send, out, p.counts.data(), detail::mpi_type<T>(),
                                          detail::mpi_op<T>(op), comm_, r.add("MPI_Ireduce_scatter")),
                      "MPI_Ireduce_scatter");
    if (in_place) r.move_on_completion(recv, out, static_cast<std::size_t>(p.count(rank_)) * sizeof(T));
    return r;
  }
  template <class T>
  void all_gather_v(const T* send, T* recv, const block_partition& p) {
    const recorded_op rec_(label_, "all-gather", static_cast<std::size_t>(p.total()) * sizeof(T));
    const bool in_place = send == recv + p.displ(rank_);
    detail::mpi_check(MPI_Allgatherv(in_place ? MPI_IN_PLACE : send, p.count(rank_), detail::mpi_type<T>(), recv,
                                     p.counts.data(), p.displs.data(), detail::mpi_type<T>(), comm_),
                      "MPI_Allgatherv");
  }
  template <class T>
  mpi_request iall_gather_v(const T* send, T* recv, const block_partition& p) {
    mpi_request r;
    r.record(flight_recorder::process().begin(label_, "all-gather (non-blocking)", static_cast<std::size_t>(p.total()) * sizeof(T)));
    const bool in_place = send == recv + p.displ(rank_);
    detail::mpi_check(MPI_Iallgatherv(in_place ? MPI_IN_PLACE : send, in_place ? 0 : p.count(rank_),
                                      in_place ? MPI_DATATYPE_NULL : detail::mpi_type<T>(), recv, p.counts.data(),
                                      p.displs.data(), detail::mpi_type<T>(), comm_, r.add("MPI_Iallgatherv")),
                      "MPI_Iallgatherv");
    return r;
  }
  /// Block r of recv (significant on root only) from rank r.
  template <class T>
  void gather_v(const T* send, T* recv, const block_partition& p, int root) {
    const recorded_op rec_(label_, "gather", static_cast<std::size_t>(p.total()) * sizeof(T));
    detail::mpi_check(MPI_Gatherv(send, p.count(rank_), detail::mpi_type<T>(), rank_ == root ? recv : nullptr,
                                  p.counts.data(), p.displs.data(), detail::mpi_type<T>(), root, comm_),
                      "MPI_Gatherv");
  }
  template <class T>
  mpi_request iall_reduce(const T* send, T* recv, std::size_t n, reduce_op op = reduce_op::sum) {
    mpi_request r;
    r.record(flight_recorder::process().begin(label_, "all-reduce (non-blocking)", n * sizeof(T)));
    for (std::size_t off = 0; off < n; off += detail::mpi_piece) {
      const int cnt = static_cast<int>(std::min(n - off, detail::mpi_piece));
      detail::mpi_check(MPI_Iallreduce(send == recv ? MPI_IN_PLACE : send + off, recv + off, cnt, detail::mpi_type<T>(),
                                       detail::mpi_op<T>(op), comm_, r.add("MPI_Iallreduce")),
                        "MPI_Iallreduce");
    }
    return r;
  }

  // ---- point-to-point --------------------------------------------------------------------------------
  template <class T>
  void send(const T* buf, std::size_t n, int peer, int tag) {
    const recorded_op rec_(label_, "send", n * sizeof(T), peer);
    detail::mpi_check(MPI_Send(buf, detail::mpi_count(n, "send"), detail::mpi_type<T>(), peer, tag, comm_), "MPI_Send");
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer, int tag) {
    const recorded_op rec_(label_, "recv", n * sizeof(T), peer);
    detail::mpi_check(
        MPI_Recv(buf, detail::mpi_count(n, "recv"), detail::mpi_type<T>(), peer, tag, comm_, MPI_STATUS_IGNORE),
        "MPI_Recv");
  }
  /// Non-blocking tagged send and receive of bytes (in pieces of at most 1 GiB, so any size works).
  mpi_request isend_bytes(const void* buf, std::size_t n, int peer, int tag) {
    mpi_request r;
    r.record(flight_recorder::process().begin(label_, "send (non-blocking)", n, peer));
    const auto* b = static_cast<const unsigned char*>(buf);
    for (std::size_t off = 0; off < n || off == 0; off += detail::mpi_piece) {
      const int cnt = static_cast<int>(std::min(n - off, detail::mpi_piece));
      detail::mpi_check(MPI_Isend(b + off, cnt, MPI_UNSIGNED_CHAR, peer, tag, comm_, r.add("MPI_Isend")), "MPI_Isend");
      if (n == 0) break;
    }
    return r;
  }
  mpi_request irecv_bytes(void* buf, std::size_t n, int peer, int tag) {
    mpi_request r;
    r.record(flight_recorder::process().begin(label_, "recv (non-blocking)", n, peer));
    auto* b = static_cast<unsigned char*>(buf);
    for (std::size_t off = 0; off < n || off == 0; off += detail::mpi_piece) {
      const int cnt = static_cast<int>(std::min(n - off, detail::mpi_piece));
      detail::mpi_check(MPI_Irecv(b + off, cnt, MPI_UNSIGNED_CHAR, peer, tag, comm_, r.add("MPI_Irecv")), "MPI_Irecv");
      if (n == 0) break;
    }
    return r;
  }
  /// Posts every receive and send (MPI_Irecv/MPI_Isend) and waits for all of them.
  /// Messages between the same pair of ranks match in the order they are listed.
  void exchange(std::span<const p2p_op> ops) {
    const recorded_op rec_(label_, "exchange", ops.size());
    requests_.resize(ops.size());
    std::size_t k = 0;
    for (const p2p_op& op : ops) {
      const int n = detail::mpi_count(op.count, "exchange");
      if (op.what == p2p_op::kind::recv)
        detail::mpi_check(MPI_Irecv(op.buf, n, detail::mpi_type(op.type), op.peer, p2p_tag, comm_, &requests_[k++]),
                          "MPI_Irecv");
    }
    for (const p2p_op& op : ops) {
      const int n = static_cast<int>(op.count);
      if (op.what == p2p_op::kind::send)
        detail::mpi_check(MPI_Isend(op.buf, n, detail::mpi_type(op.type), op.peer, p2p_tag, comm_, &requests_[k++]),
                          "MPI_Isend");
    }
    detail::mpi_check(MPI_Waitall(static_cast<int>(k), requests_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  }
  void barrier() {
    const recorded_op rec_(label_, "barrier", 0);
    detail::mpi_check(MPI_Barrier(comm_), "MPI_Barrier");
  }

  /// A new communicator of the ranks with the same color, ordered by key (collective over this one).
  mpi_comm split(int color, int key) const { return split(comm_, color, key); }
  /// The ranks of this communicator that share this rank's node (shared memory), in rank order.
  mpi_comm split_by_node() const {
    MPI_Comm c = MPI_COMM_NULL;
    detail::mpi_check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &c), "MPI_Comm_split_type");
    return mpi_comm(c);
  }

 private:
  static constexpr int p2p_tag = 7341;
  void release() {
    if (comm_ != MPI_COMM_NULL && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_SELF) {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Comm_free(&comm_);
    }
    comm_ = MPI_COMM_NULL;
  }
  void swap(mpi_comm& o) noexcept {
    std::swap(comm_, o.comm_);
    std::swap(rank_, o.rank_);
    std::swap(size_, o.size_);
    std::swap(requests_, o.requests_);
    std::swap(label_, o.label_);
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 0;
  std::vector<MPI_Request> requests_;
  std::string label_ = "comm";
};

static_assert(communicator<mpi_comm>);

/// Initialises MPI (thread level FUNNELED) unless it already is, and finalises what it initialised.
class mpi_environment {
 public:
  mpi_environment(int& argc, char**& argv) {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      int provided = 0;
      MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;
  ~mpi_environment() {
    int fin = 0;
    MPI_Finalized(&fin);
    if (owns_ && !fin) MPI_Finalize();
  }
  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Ends every process of the job now, with `code` (a failure of one rank that the others cannot learn
  /// of: they may be waiting for it in a collective).
  [[noreturn]] void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  bool owns_ = false;
  int rank_ = 0, size_ = 1;
};

/// Stops the run on every rank with exit code 2 unless the MPI world has exactly `needed` ranks.
/// Call it on every rank before any work: each prints "mesh needs N ranks, MPI world has M".
inline void require_world_size(int needed, MPI_Comm world = MPI_COMM_WORLD) {
  int have = 0, rank = 0;
  MPI_Comm_size(world, &have);
  MPI_Comm_rank(world, &rank);
  if (have == needed) return;
  std::fprintf(stderr, "tessera: mesh needs %d ranks, MPI world has %d (rank %d; run with mpirun -np %d)\n", needed,
               have, rank, needed);
  std::fflush(stderr);
  MPI_Finalize();
  std::exit(usage_exit_code);
}

}  // namespace tessera
