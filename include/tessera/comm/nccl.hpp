// tessera/comm/nccl.hpp — the device communicator: NCCL on device memory. CUDA only.
//
// Bootstrapped over MPI: rank 0 of the MPI communicator creates the ncclUniqueId, MPI_Bcast sends it,
// every rank calls ncclCommInitRank. Group communicators come from ncclCommSplit. Operations are
// enqueued on the communicator's stream and the call returns after the stream synchronises, so the
// semantics match mpi_comm's blocking collectives. It models `collective_communicator`; the trainer's
// `communicator` (requests on a communication stream ordered by events, partitioned collectives padded
// to equal blocks, tagged point-to-point) is the CUDA trainer's work — docs/design.md lists it.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/comm/nccl.hpp needs a CUDA compiler (nvcc); the host communicator is tessera/comm/mpi.hpp"
#endif
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/bf16.hpp"
#include "tessera/core/cuda_system.hpp"
#include "tessera/core/error.hpp"

namespace tessera {

namespace detail {
inline void nccl_check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(cat("tessera: ", what, " failed: ", ncclGetErrorString(r)));
}
template <class T>
inline ncclDataType_t nccl_type() {
  if constexpr (std::is_same_v<T, float>) return ncclFloat32;
  else if constexpr (std::is_same_v<T, bf16>) return ncclBfloat16;
  else if constexpr (std::is_same_v<T, double>) return ncclFloat64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return ncclInt32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return ncclInt64;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return ncclUint8;
  else static_assert(sizeof(T) == 0, "tessera::nccl_comm: unsupported element type");
}
inline ncclDataType_t nccl_type(dtype d) {
  switch (d) {
    case dtype::f32: return ncclFloat32;
    case dtype::bf16: return ncclBfloat16;
    case dtype::f64: return ncclFloat64;
    case dtype::i32: return ncclInt32;
    case dtype::i64: return ncclInt64;
    case dtype::u8: return ncclUint8;
  }
  return ncclUint8;
}
inline ncclRedOp_t nccl_op(reduce_op op) {
  return op == reduce_op::sum ? ncclSum : op == reduce_op::max ? ncclMax : ncclMin;
}
}  // namespace detail

class nccl_comm {
 public:
  using system = cuda_system;

  nccl_comm() = default;
  /// Collective over `mpi`: one NCCL communicator with the same ranks (device: already set by the caller).
  static nccl_comm from_mpi(MPI_Comm mpi) {
    int rank = 0, size = 0;
    MPI_Comm_rank(mpi, &rank);
    MPI_Comm_size(mpi, &size);
    ncclUniqueId id;
    if (rank == 0) detail::nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi);
    nccl_comm c;
    detail::nccl_check(ncclCommInitRank(&c.comm_, size, id, rank), "ncclCommInitRank");
    c.rank_ = rank;
    c.size_ = size;
    c.init_stream();
    return c;
  }
  /// ncclCommSplit: the ranks with the same color, ordered by key (collective over this communicator).
  nccl_comm split(int color, int key) const {
    nccl_comm c;
    detail::nccl_check(ncclCommSplit(comm_, color, key, &c.comm_, nullptr), "ncclCommSplit");
    detail::nccl_check(ncclCommUserRank(c.comm_, &c.rank_), "ncclCommUserRank");
    detail::nccl_check(ncclCommCount(c.comm_, &c.size_), "ncclCommCount");
    c.init_stream();
    return c;
  }

  nccl_comm(const nccl_comm&) = delete;
  nccl_comm& operator=(const nccl_comm&) = delete;
  nccl_comm(nccl_comm&& o) noexcept { swap(o); }
  nccl_comm& operator=(nccl_comm&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~nccl_comm() { release(); }

  int rank() const { return rank_; }
  int size() const { return size_; }
  ncclComm_t native() const { return comm_; }
  cudaStream_t stream() const { return stream_; }

  template <class T>
  void all_reduce(const T* send, T* recv, std::size_t n, reduce_op op = reduce_op::sum) {
    detail::nccl_check(ncclAllReduce(send, recv, n, detail::nccl_type<T>(), detail::nccl_op(op), comm_, stream_),
                       "ncclAllReduce");
    sync();
  }
  template <class T>
  void reduce_scatter(const T* send, T* recv, std::size_t n, reduce_op op = reduce_op::sum) {
    detail::nccl_check(ncclReduceScatter(send, recv, n, detail::nccl_type<T>(), detail::nccl_op(op), comm_, stream_),
                       "ncclReduceScatter");
    sync();
  }
  template <class T>
  void all_gather(const T* send, T* recv, std::size_t n) {
    detail::nccl_check(ncclAllGather(send, recv, n, detail::nccl_type<T>(), comm_, stream_), "ncclAllGather");
    sync();
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    detail::nccl_check(ncclBroadcast(buf, buf, n, detail::nccl_type<T>(), root, comm_, stream_), "ncclBroadcast");
    sync();
  }
  /// NCCL has no all-to-all primitive: grouped sends and receives, as NCCL's documentation shows.
  template <class T>
  void all_to_all(const T* send, T* recv, std::size_t n) {
    detail::nccl_check(ncclGroupStart(), "ncclGroupStart");
    for (int j = 0; j < size_; ++j) {
      detail::nccl_check(ncclSend(send + j * n, n, detail::nccl_type<T>(), j, comm_, stream_), "ncclSend");
      detail::nccl_check(ncclRecv(recv + j * n, n, detail::nccl_type<T>(), j, comm_, stream_), "ncclRecv");
    }
    detail::nccl_check(ncclGroupEnd(), "ncclGroupEnd");
    sync();
  }
  /// Batched point-to-point between ncclGroupStart/ncclGroupEnd.
  void exchange(std::span<const p2p_op> ops) {
    detail::nccl_check(ncclGroupStart(), "ncclGroupStart");
    for (const p2p_op& op : ops) {
      if (op.what == p2p_op::kind::send)
        detail::nccl_check(ncclSend(op.buf, op.count, detail::nccl_type(op.type), op.peer, comm_, stream_), "ncclSend");
      else
        detail::nccl_check(ncclRecv(op.buf, op.count, detail::nccl_type(op.type), op.peer, comm_, stream_), "ncclRecv");
    }
    detail::nccl_check(ncclGroupEnd(), "ncclGroupEnd");
    sync();
  }
  /// A barrier: an all-reduce of one int on the device, then a stream synchronisation.
  void barrier() {
    if (!barrier_buf_) cuda_check(cudaMalloc(&barrier_buf_, sizeof(int)), "cudaMalloc");
    detail::nccl_check(ncclAllReduce(barrier_buf_, barrier_buf_, 1, ncclInt32, ncclSum, comm_, stream_), "ncclAllReduce");
    sync();
  }

 private:
  void init_stream() { cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"); }
  void sync() { cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }
  void release() {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
    if (barrier_buf_) cudaFree(barrier_buf_);
    comm_ = nullptr;
    stream_ = nullptr;
    barrier_buf_ = nullptr;
  }
  void swap(nccl_comm& o) noexcept {
    std::swap(comm_, o.comm_);
    std::swap(stream_, o.stream_);
    std::swap(rank_, o.rank_);
    std::swap(size_, o.size_);
    std::swap(barrier_buf_, o.barrier_buf_);
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int rank_ = 0;
  int size_ = 0;
  int* barrier_buf_ = nullptr;
};

static_assert(collective_communicator<nccl_comm>);

}  // namespace tessera
