// tessera/comm/nccl.hpp — the device communicator: NCCL on device memory, on a stream of its own. CUDA only.
//
// Bootstrapped over MPI: rank 0 of the MPI communicator creates the ncclUniqueId, MPI_Bcast sends it,
// every rank calls ncclCommInitRank; group communicators come from ncclCommSplit (and an MPI_Comm_split of
// the same ranks). It models `communicator`:
//   - every NCCL operation is enqueued on the communicator's own stream, after an event recorded on the
//     compute stream it is bound to (bind_compute: the trainer binds its context's stream; default the
//     legacy stream): it starts when its input has been produced. A blocking call
//     returns at once, having made the compute stream wait for the operation (an event, no host
//     synchronisation); a non-blocking call returns a `request` whose wait() does that, so compute issued
//     between the call and wait() overlaps the communication;
//   - partitioned collectives (ZeRO's blocks, which differ by one element) go through blocks padded to
//     the partition's largest() (NCCL's reduce-scatter and all-gather take equal blocks), copied on the
//     communication stream;
//   - tagged send/recv are ncclSend/ncclRecv: NCCL matches messages between a pair in the order they are
//     posted, so a program must receive in the order its peer sends. Pipeline programs do, for every
//     schedule: schedule/verify.hpp's check_comm (a static_assert of every schedule type) lets a send
//     complete only with the very receive at the peer's head, under blocking rendezvous semantics;
//   - buffers in host memory (the loss, counts, strings: the trainer's bookkeeping) go through the MPI
//     communicator of the same ranks, as PyTorch sends CPU tensors through gloo;
//   - NCCL's errors, asynchronous ones included (ncclCommGetAsyncError, checked at every wait and
//     blocking call), become exceptions naming the operation and the communicator's axes.
// Untested on a GPU so far (no session has had two); compiled for sm_80/sm_90 in CI.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/comm/nccl.hpp needs a CUDA compiler (nvcc); the host communicator is tessera/comm/mpi.hpp"
#endif
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/cuda_op_recorder.hpp"
#include "tessera/comm/mpi.hpp"
#include "tessera/core/bf16.hpp"
#include "tessera/core/cuda_system.hpp"
#include "tessera/core/error.hpp"

namespace tessera {

namespace detail {
inline void nccl_check(ncclResult_t r, const char* what, const std::string& label = "") {
  if (r != ncclSuccess)
    throw std::runtime_error(cat("tessera: ", what, label.empty() ? "" : " on ", label, " failed: ", ncclGetErrorString(r),
                                 r == ncclRemoteError ? " (a peer failed or left)" : ""));
}
/// Whether p is device memory (or managed memory a kernel may use); false for host memory and null.
inline bool on_device(const void* p) {
  if (!p) return false;
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
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

/// A non-blocking operation: NCCL's (an event after it on the communication stream, and the padded
/// blocks it works in) or, for host memory, MPI's. wait() makes the compute stream wait for it (the host
/// does not), then gives the blocks back; a second wait() does nothing; the destructor waits.
class nccl_request {
 public:
  nccl_request() = default;
  nccl_request(cudaEvent_t done, cudaStream_t compute, device_buffer<unsigned char> blocks, ncclComm_t comm,
               std::string label)
      : done_(done), compute_(compute), blocks_(std::move(blocks)), comm_(comm), label_(std::move(label)) {}
  explicit nccl_request(mpi_request host) : host_(std::move(host)) {}
  nccl_request(nccl_request&& o) noexcept { swap(o); }
  nccl_request& operator=(nccl_request&& o) noexcept {
    if (this != &o) {
      finish_quietly();
      swap(o);
    }
    return *this;
  }
  nccl_request(const nccl_request&) = delete;
  nccl_request& operator=(const nccl_request&) = delete;
  ~nccl_request() { finish_quietly(); }

  void wait() {
    host_.wait();
    if (!done_) return;
    ncclResult_t async = ncclSuccess;
    if (comm_) detail::nccl_check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError", label_);
    detail::nccl_check(async, "a non-blocking NCCL operation", label_);
    cuda_check(cudaStreamWaitEvent(compute_, done_, 0), "cudaStreamWaitEvent");
    (void)cudaEventDestroy(std::exchange(done_, nullptr));
    device_buffer<unsigned char>().swap(blocks_);  // later compute-stream use is ordered after the operation
  }

 private:
  void finish_quietly() noexcept {
    try {
      wait();
    } catch (...) {  // a destructor cannot report it; wait() does
    }
  }
  void swap(nccl_request& o) noexcept {
    std::swap(done_, o.done_);
    std::swap(compute_, o.compute_);
    blocks_.swap(o.blocks_);
    std::swap(comm_, o.comm_);
    std::swap(label_, o.label_);
    std::swap(host_, o.host_);
  }
  cudaEvent_t done_ = nullptr;
  cudaStream_t compute_ = cudaStreamLegacy;  ///< the stream wait() makes wait
  device_buffer<unsigned char> blocks_;
  ncclComm_t comm_ = nullptr;
  std::string label_;
  mpi_request host_;
};

class nccl_comm {
 public:
  using system = cuda_system;
  using request = nccl_request;
  static constexpr bool orders_after_compute = true;  // its stream waits for an event on the compute stream

  nccl_comm() = default;
  /// Collective over `mpi`: one NCCL communicator with the same ranks (device: already set by the caller).
  static nccl_comm from_mpi(MPI_Comm mpi) {
    nccl_comm c;
    c.host_ = mpi_comm::split(mpi, 0, 0);
    ncclUniqueId id;
    if (c.host_.rank() == 0) detail::nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi);
    detail::nccl_check(ncclCommInitRank(&c.comm_, c.host_.size(), id, c.host_.rank()), "ncclCommInitRank");
    c.init_streams();
    return c;
  }
  /// ncclCommSplit (and MPI_Comm_split): the ranks with the same color, ordered by key; no_color: an empty one.
  nccl_comm split(int color, int key) const {
    nccl_comm c;
    c.host_ = host_.split(color, key);
    c.compute_ = compute_;
    detail::nccl_check(ncclCommSplit(comm_, color == no_color ? NCCL_SPLIT_NOCOLOR : color, key, &c.comm_, nullptr),
                       "ncclCommSplit", label_);
    c.init_streams();
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

  static std::string name() { return "nccl"; }
  int rank() const { return host_.rank(); }
  int size() const { return host_.size(); }
  ncclComm_t native() const { return comm_; }
  cudaStream_t stream() const { return stream_; }
  /// Operations order themselves with `compute`'s stream from now on (the trainer's compute stream).
  void bind_compute(cuda_system compute) { compute_ = compute.stream(); }
  void set_label(std::string l) {
    host_.set_label(l);
    label_ = std::move(l);
  }

  // ---- collectives on equal blocks -----------------------------------------------------------------
  template <class T>
  void all_reduce(const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) {
    if (on_host(s, r)) return host_.all_reduce(s, r, n, op);
    after_compute("all-reduce", n * sizeof(T));
    enqueue(ncclAllReduce(s, r, n, detail::nccl_type<T>(), detail::nccl_op(op), comm_, stream_), "ncclAllReduce");
    before_compute();
  }
  template <class T>
  void reduce_scatter(const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) {
    if (on_host(s, r)) return host_.reduce_scatter(s, r, n, op);
    after_compute("reduce-scatter", n * size() * sizeof(T));
    enqueue(ncclReduceScatter(s, r, n, detail::nccl_type<T>(), detail::nccl_op(op), comm_, stream_), "ncclReduceScatter");
    before_compute();
  }
  template <class T>
  void all_gather(const T* s, T* r, std::size_t n) {
    if (on_host(s, r)) return host_.all_gather(s, r, n);
    after_compute("all-gather", n * size() * sizeof(T));
    enqueue(ncclAllGather(s, r, n, detail::nccl_type<T>(), comm_, stream_), "ncclAllGather");
    before_compute();
  }
  template <class T>
  void broadcast(T* buf, std::size_t n, int root) {
    if (on_host(buf, buf)) return host_.broadcast(buf, n, root);
    after_compute("broadcast", n * sizeof(T));
    enqueue(ncclBroadcast(buf, buf, n, detail::nccl_type<T>(), root, comm_, stream_), "ncclBroadcast");
    before_compute();
  }
  /// NCCL has no all-to-all primitive: grouped sends and receives, as NCCL's documentation shows.
  template <class T>
  void all_to_all(const T* s, T* r, std::size_t n) {
    if (on_host(s, r)) return host_.all_to_all(s, r, n);
    after_compute("all-to-all", n * size() * sizeof(T));
    group([&] {
      for (int j = 0; j < size(); ++j) {
        enqueue(ncclSend(s + j * n, n, detail::nccl_type<T>(), j, comm_, stream_), "ncclSend (all-to-all)");
        enqueue(ncclRecv(r + j * n, n, detail::nccl_type<T>(), j, comm_, stream_), "ncclRecv (all-to-all)");
      }
    });
    before_compute();
  }
  template <class T>
  void reduce(const T* s, T* r, std::size_t n, reduce_op op, int root) {
    if (on_host(s, rank() == root ? r : s)) return host_.reduce(s, r, n, op, root);
    after_compute("reduce", n * sizeof(T));
    enqueue(ncclReduce(s, r, n, detail::nccl_type<T>(), detail::nccl_op(op), root, comm_, stream_), "ncclReduce");
    before_compute();
  }
  template <class T>
  void gather(const T* s, T* r, std::size_t n, int root) {
    gather_v(s, r, equal_blocks(n), root);
  }

  // ---- collectives over a block_partition: padded to its largest block -------------------------------
  template <class T>
  void reduce_scatter_v(const T* s, T* r, const block_partition& p, reduce_op op = reduce_op::sum) {
    if (on_host(s, r)) return host_.reduce_scatter_v(s, r, p, op);
    start_reduce_scatter_v(s, r, p, op, blocking_, "reduce-scatter");
    before_compute();
  }
  template <class T>
  request ireduce_scatter_v(const T* s, T* r, const block_partition& p, reduce_op op = reduce_op::sum) {
    if (on_host(s, r)) return request(host_.ireduce_scatter_v(s, r, p, op));
    device_buffer<unsigned char> blocks;
    start_reduce_scatter_v(s, r, p, op, blocks, "reduce-scatter (non-blocking)");
    return issued(std::move(blocks));
  }
  template <class T>
  void all_gather_v(const T* s, T* r, const block_partition& p) {
    if (on_host(s, r)) return host_.all_gather_v(s, r, p);
    start_all_gather_v(s, r, p, blocking_, "all-gather");
    before_compute();
  }
  template <class T>
  request iall_gather_v(const T* s, T* r, const block_partition& p) {
    if (on_host(s, r)) return request(host_.iall_gather_v(s, r, p));
    device_buffer<unsigned char> blocks;
    start_all_gather_v(s, r, p, blocks, "all-gather (non-blocking)");
    return issued(std::move(blocks));
  }
  template <class T>
  request iall_reduce(const T* s, T* r, std::size_t n, reduce_op op = reduce_op::sum) {
    if (on_host(s, r)) return request(host_.iall_reduce(s, r, n, op));
    after_compute("all-reduce (non-blocking)", n * sizeof(T));
    enqueue(ncclAllReduce(s, r, n, detail::nccl_type<T>(), detail::nccl_op(op), comm_, stream_), "ncclAllReduce");
    return issued({});
  }
  /// Block j of recv (significant on root only) from rank j: grouped sends to the root.
  template <class T>
  void gather_v(const T* s, T* r, const block_partition& p, int root) {
    if (on_host(s, rank() == root ? r : s)) return host_.gather_v(s, r, p, root);
    after_compute("gather", static_cast<std::size_t>(p.total()) * sizeof(T));
    group([&] {
      enqueue(ncclSend(s, p.count(rank()), detail::nccl_type<T>(), root, comm_, stream_), "ncclSend (gather)");
      if (rank() == root)
        for (int j = 0; j < size(); ++j)
          enqueue(ncclRecv(r + p.displ(j), p.count(j), detail::nccl_type<T>(), j, comm_, stream_), "ncclRecv (gather)");
    });
    before_compute();
  }

  // ---- point-to-point (tags: see the top of the file) --------------------------------------------------
  template <class T>
  void send(const T* buf, std::size_t n, int peer, int /*tag*/) {
    if (on_host(buf, buf)) return host_.send(buf, n, peer, 0);
    after_compute("send", n * sizeof(T), peer);
    enqueue(ncclSend(buf, n, detail::nccl_type<T>(), peer, comm_, stream_), "ncclSend");
    before_compute();
  }
  template <class T>
  void recv(T* buf, std::size_t n, int peer, int /*tag*/) {
    if (on_host(buf, buf)) return host_.recv(buf, n, peer, 0);
    after_compute("recv", n * sizeof(T), peer);
    enqueue(ncclRecv(buf, n, detail::nccl_type<T>(), peer, comm_, stream_), "ncclRecv");
    before_compute();
  }
  /// Host-memory byte messages (snapshots), through MPI.
  request isend_bytes(const void* buf, std::size_t n, int peer, int tag) { return request(host_.isend_bytes(buf, n, peer, tag)); }
  request irecv_bytes(void* buf, std::size_t n, int peer, int tag) { return request(host_.irecv_bytes(buf, n, peer, tag)); }
  /// Batched point-to-point between ncclGroupStart/ncclGroupEnd (host buffers: MPI's exchange).
  void exchange(std::span<const p2p_op> ops) {
    if (!ops.empty() && on_host(ops.front().buf, ops.front().buf)) return host_.exchange(ops);
    std::size_t bytes = 0;
    for (const p2p_op& op : ops) bytes += op.count * static_cast<std::size_t>(dtype_size(op.type));
    after_compute("send/recv (grouped)", bytes);
    group([&] {
      for (const p2p_op& op : ops) {
        if (op.what == p2p_op::kind::send)
          enqueue(ncclSend(op.buf, op.count, detail::nccl_type(op.type), op.peer, comm_, stream_), "ncclSend");
        else
          enqueue(ncclRecv(op.buf, op.count, detail::nccl_type(op.type), op.peer, comm_, stream_), "ncclRecv");
      }
    });
    before_compute();
  }
  /// Every rank's device work issued so far (on the bound compute stream and this communicator's) is
  /// complete, then an MPI barrier (a step's timing edge).
  void barrier() {
    cuda_check(cudaStreamSynchronize(compute_), "cudaStreamSynchronize");
    cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    check_async();
    ops_->poll();
    host_.barrier();
  }

 private:
  /// Whether an operation's buffers are host memory (then MPI does it); one on the device and one on the
  /// host is an error. Every call passes here first, so it also closes the flight records of completed
  /// operations (the host-memory bookkeeping at a step's end closes the step's NCCL records).
  template <class A, class B>
  bool on_host(const A* a, const B* b) const {
    ops_->poll();
    const bool da = detail::on_device(a), db = detail::on_device(b);
    check(!(a && b) || da == db, "tessera: nccl_comm (", label_, "): one buffer in device memory, the other in host memory");
    return (a || b) && !da && !db;
  }
  /// Blocks of n on every rank (gather as a partitioned gather).
  block_partition equal_blocks(std::size_t n) const {
    return block_partition::near_equal(static_cast<std::int64_t>(n) * size(), size());
  }
  void enqueue(ncclResult_t r, const char* what) const { detail::nccl_check(r, what, label_); }
  template <class F>
  void group(F&& body) {
    enqueue(ncclGroupStart(), "ncclGroupStart");
    body();
    enqueue(ncclGroupEnd(), "ncclGroupEnd");
  }
  void check_async() const {
    if (!comm_) return;
    ncclResult_t async = ncclSuccess;
    enqueue(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    enqueue(async, "an earlier NCCL operation");
  }
  /// The communication stream waits for the compute stream's work so far (the input is produced); then
  /// operation `what` begins (flight record, trace).
  void after_compute(const char* what, std::size_t bytes, int peer = -1) {
    cuda_check(cudaEventRecord(ready_, compute_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent");
    ops_->begin(stream_, label_, what, bytes, peer);
  }
  /// A non-blocking operation is enqueued: its request.
  request issued(device_buffer<unsigned char> blocks) {
    ops_->end();
    return request(mark(), compute_, std::move(blocks), comm_, label_);
  }
  /// The compute stream waits for the communication stream's work so far (a blocking call's end).
  void before_compute() {
    ops_->end();
    check_async();
    cuda_check(cudaEventRecord(done_, stream_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(compute_, done_, 0), "cudaStreamWaitEvent");
  }
  /// A new event after the communication stream's work so far (a request's).
  cudaEvent_t mark() const {
    cudaEvent_t e = nullptr;
    cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventRecord(e, stream_), "cudaEventRecord");
    return e;
  }
  template <class T>
  void copy_on_stream(T* dst, const T* src, std::int64_t n) const {
    if (n > 0 && dst != src)
      cuda_check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice, stream_),
                 "cudaMemcpyAsync (padded blocks)");
  }
  static bool equal(const block_partition& p) { return std::int64_t{p.largest()} * p.parts() == p.total(); }
  /// Enqueues a partitioned reduce-scatter; `blocks` holds the padded copies while it runs.
  template <class T>
  void start_reduce_scatter_v(const T* s, T* r, const block_partition& p, reduce_op op, device_buffer<unsigned char>& blocks,
                              const char* what) {
    const std::size_t L = static_cast<std::size_t>(p.largest()), P = static_cast<std::size_t>(size());
    const std::size_t bytes = static_cast<std::size_t>(p.total()) * sizeof(T);
    if (equal(p)) {  // NCCL's in place is ours: recv == send + rank·count
      after_compute(what, bytes);
      enqueue(ncclReduceScatter(s, r, L, detail::nccl_type<T>(), detail::nccl_op(op), comm_, stream_), "ncclReduceScatter");
      return;
    }
    if (blocks.size() < (P + 1) * L * sizeof(T)) blocks.resize((P + 1) * L * sizeof(T));
    T* padded = reinterpret_cast<T*>(blocks.data());
    T* out = padded + P * L;
    after_compute(what, bytes);
    for (int j = 0; j < size(); ++j) copy_on_stream(padded + j * L, s + p.displ(j), p.count(j));
    enqueue(ncclReduceScatter(padded, out, L, detail::nccl_type<T>(), detail::nccl_op(op), comm_, stream_),
            "ncclReduceScatter (padded blocks)");
    copy_on_stream(r, out, p.count(rank()));
  }
  /// Enqueues a partitioned all-gather; `blocks` holds the padded copies while it runs.
  template <class T>
  void start_all_gather_v(const T* s, T* r, const block_partition& p, device_buffer<unsigned char>& blocks, const char* what) {
    const std::size_t L = static_cast<std::size_t>(p.largest()), P = static_cast<std::size_t>(size());
    const std::size_t bytes = static_cast<std::size_t>(p.total()) * sizeof(T);
    if (equal(p)) {  // NCCL's in place is ours: send == recv + rank·count
      after_compute(what, bytes);
      enqueue(ncclAllGather(s, r, L, detail::nccl_type<T>(), comm_, stream_), "ncclAllGather");
      return;
    }
    if (blocks.size() < (P + 1) * L * sizeof(T)) blocks.resize((P + 1) * L * sizeof(T));
    T* mine = reinterpret_cast<T*>(blocks.data());
    T* padded = mine + L;
    after_compute(what, bytes);
    copy_on_stream(mine, s, p.count(rank()));
    enqueue(ncclAllGather(mine, padded, L, detail::nccl_type<T>(), comm_, stream_), "ncclAllGather (padded blocks)");
    for (int j = 0; j < size(); ++j) copy_on_stream(r + p.displ(j), padded + j * L, p.count(j));
  }

  void init_streams() {
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_check(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreate");
    cuda_check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
  }
  void release() {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
    if (ready_) cudaEventDestroy(ready_);
    if (done_) cudaEventDestroy(done_);
    comm_ = nullptr;
    stream_ = nullptr;
    ready_ = done_ = nullptr;
  }
  void swap(nccl_comm& o) noexcept {
    std::swap(comm_, o.comm_);
    std::swap(stream_, o.stream_);
    std::swap(compute_, o.compute_);
    std::swap(ready_, o.ready_);
    std::swap(done_, o.done_);
    std::swap(host_, o.host_);
    std::swap(label_, o.label_);
    blocking_.swap(o.blocking_);
    ops_.swap(o.ops_);
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaStream_t compute_ = cudaStreamLegacy;  ///< the compute stream operations order themselves with
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
  mpi_comm host_;                           ///< the same ranks, for host-memory buffers
  std::string label_ = "comm";
  device_buffer<unsigned char> blocking_;  ///< padded blocks of blocking partitioned collectives
  std::unique_ptr<cuda_op_recorder> ops_ = std::make_unique<cuda_op_recorder>();  ///< flight records, trace spans
};

static_assert(communicator<nccl_comm> && orders_after_compute<nccl_comm>);

}  // namespace tessera
