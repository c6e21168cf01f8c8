// tessera/comm/mpi.hpp — the host communicator: MPI on host memory.
//
// `mpi_comm` owns an MPI communicator (freed on destruction unless it is MPI_COMM_WORLD/SELF) and
// models `tessera::communicator`. bf16 reductions use MPI user operations that add/max in fp32 and
// round each result to bf16 (like NCCL). `mpi_environment` initialises and finalises MPI.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"
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
    return op == reduce_op::sum ? ops.first : ops.second;
  } else {
    return op == reduce_op::sum ? MPI_SUM : MPI_MAX;
  }
}

/// MPI counts are int: split larger messages (collectives that need one call check instead).
inline int mpi_count(std::size_t n, const char* what) {
  check(n <= static_cast<std::size_t>(INT32_MAX), "tessera: ", what, " of ", n,
        " elements exceeds MPI's int count limit");
  return static_cast<int>(n);
}
}  // namespace detail

class mpi_comm {
 public:
  using system = host_system;

  mpi_comm() = default;
  /// Wraps `c`; takes ownership (MPI_Comm_free on destruction) unless it is a predefined communicator.
  explicit mpi_comm(MPI_Comm c) : comm_(c) {
    if (c != MPI_COMM_NULL) {
      MPI_Comm_rank(c, &rank_);
      MPI_Comm_size(c, &size_);
    }
  }
  static mpi_comm world() { return mpi_comm(MPI_COMM_WORLD); }
  /// MPI_Comm_split of `parent` (MPI_UNDEFINED color gives an empty communicator).
  static mpi_comm split(MPI_Comm parent, int color, int key) {
    MPI_Comm c = MPI_COMM_NULL;
    detail::mpi_check(MPI_Comm_split(parent, color, key, &c), "MPI_Comm_split");
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

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm native() const { return comm_; }
  bool valid() const { return comm_ != MPI_COMM_NULL; }

  template <class T>
  void all_reduce(const T* send, T* recv, std::size_t n, reduce_op op = reduce_op::sum) {
    detail::mpi_check(MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, detail::mpi_count(n, "all_reduce"),
                                    detail::mpi_type<T>(), detail::mpi_op<T>(op), comm_),
                      "MPI_Allreduce");
  }
  /// `send` holds size()·n elements; this rank receives the reduction of block rank().
  template <class T>
  void reduce_scatter(const T* send, T* recv, std::size_t n, reduce_op op = reduce_op::sum) {
    detail::mpi_check(MPI_Reduce_scatter_block(send, recv, detail::mpi_count(n, "reduce_scatter"),
                                               detail::mpi_type<T>(), detail::mpi_op<T>(op), comm_),
                      "MPI_Reduce_scatter_block");
  }
  template <class T>
  void all_gather(const T* send, T* recv, std::size_t n) {
    const bool in_place = send == recv + static_cast<std::size_t>(rank_) * n;
    detail::mpi_check(MPI_Allgather(in_place ? MPI_IN_PLACE : send, detail::mpi_count(n, "all_gather"),
                                    detail::mpi_type<T>(), recv, static_cast<int>(n), detail::mpi_type<T>(), comm_),
                      "MPI_Allgather");
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    detail::mpi_check(MPI_Bcast(buf, detail::mpi_count(n, "broadcast"), detail::mpi_type<T>(), root, comm_),
                      "MPI_Bcast");
  }
  template <class T>
  void all_to_all(const T* send, T* recv, std::size_t n) {
    detail::mpi_check(MPI_Alltoall(send, detail::mpi_count(n, "all_to_all"), detail::mpi_type<T>(), recv,
                                   static_cast<int>(n), detail::mpi_type<T>(), comm_),
                      "MPI_Alltoall");
  }
  /// Posts every receive and send (MPI_Irecv/MPI_Isend) and waits for all of them.
  /// Messages between the same pair of ranks match in the order they are listed.
  void exchange(std::span<const p2p_op> ops) {
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
  void barrier() { detail::mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

  /// A new communicator of the ranks with the same color, ordered by key (collective over this one).
  mpi_comm split(int color, int key) const { return split(comm_, color, key); }

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
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 0;
  std::vector<MPI_Request> requests_;
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
