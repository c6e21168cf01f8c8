// tessera/train/snapshot.hpp — in-memory snapshots (--snapshot-every N): the newest training state of
// every rank in node-local memory (/dev/shm), with a replica on a peer rank, for a restart that does not
// wait for a disk checkpoint.
//
// Taking one, after step k: the rank copies its state (parameters, AdamW's moments and masters, as they
// are sharded — trainer::copy_state_to) into a new host buffer; that copy is all the step waits for. The
// buffer goes to the rank's writer thread, which writes `rank<r>.snap` (a header with the step, the
// layout, the payload's size and CRC-32; written to a temporary name and renamed, so a snapshot is whole
// or absent), and to the next rank (r + ranks per node, so on another node where there is one), which
// writes it as `replica<r>.snap` once it has arrived (the transfer overlaps the next step). Only the
// newest of each is kept.
//
// Restoring (a restarted job, same layout): every rank reads its own snapshot — a missing or damaged one
// is reported by name — and otherwise gets the replica from the rank holding it; when all ranks have the
// same newest step, the job resumes from it, else from the disk checkpoint (--save). Snapshots are bound
// to the layout: a job restarted on another mesh (ts::elastic) resumes from disk.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/crc32.hpp"
#include "tessera/core/error.hpp"

namespace tessera {

/// The header of a snapshot file (then `payload_bytes` bytes of state).
struct snapshot_header {
  char magic[8] = {'T', 'S', 'S', 'N', 'A', 'P', '1', '\0'};
  std::int32_t rank = 0, world = 0, step = 0, pad = 0;
  std::int64_t adam_step = 0;
  std::uint64_t layout = 0;  ///< hash of the plan (a snapshot loads only into the same layout)
  std::uint64_t payload_bytes = 0;
  std::uint32_t payload_crc = 0, header_crc = 0;  ///< header_crc: of every byte before it
};

/// A snapshot read back: its header and state.
struct snapshot_data {
  snapshot_header h;
  std::vector<unsigned char> payload;
};

namespace snapshot_detail {
inline std::uint32_t header_crc(const snapshot_header& h) {
  return crc32(&h, offsetof(snapshot_header, header_crc));
}
/// Writes header + payload to path (a temporary name first, then renamed: whole or absent).
inline void write_file(const std::string& path, snapshot_header h, const unsigned char* p, std::size_t n) {
  h.payload_bytes = n;
  h.payload_crc = crc32(p, n);
  h.header_crc = header_crc(h);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
    if (!out) return;  // memory full: the previous snapshot stays
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
}
}  // namespace snapshot_detail

/// Reads a snapshot file; nullopt with `why` set when it is missing, truncated or damaged.
inline std::optional<snapshot_data> read_snapshot(const std::string& path, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = cat(path, ": missing");
    return std::nullopt;
  }
  snapshot_data d;
  in.read(reinterpret_cast<char*>(&d.h), sizeof d.h);
  if (!in || std::memcmp(d.h.magic, "TSSNAP1", 8) != 0 || snapshot_detail::header_crc(d.h) != d.h.header_crc) {
    why = cat(path, ": damaged header");
    return std::nullopt;
  }
  d.payload.resize(d.h.payload_bytes);
  in.read(reinterpret_cast<char*>(d.payload.data()), static_cast<std::streamsize>(d.payload.size()));
  if (!in || in.peek() != std::char_traits<char>::eof()) {
    why = cat(path, ": truncated (", d.h.payload_bytes, " bytes of state expected)");
    return std::nullopt;
  }
  const std::uint32_t crc = crc32(d.payload.data(), d.payload.size());
  if (crc != d.h.payload_crc) {
    char b[80];
    std::snprintf(b, sizeof b, "CRC-32 0x%08x, the header says 0x%08x", crc, d.h.payload_crc);
    why = cat(path, ": damaged (", b, ")");
    return std::nullopt;
  }
  return d;
}

/// Takes the snapshots of one rank (see the top of this file). Comm must offer isend_bytes/irecv_bytes.
template <class Comm>
class snapshotter {
 public:
  /// Collective over `world`. dir: the job's snapshot directory (node-local); ranks_per_node: how far the
  /// replica goes (the next node's rank when the job has several nodes).
  snapshotter(Comm& world, std::string dir, std::uint64_t layout, int ranks_per_node)
      : world_(world), dir_(std::move(dir)), layout_(layout), me_(world.rank()), n_(world.size()) {
    const int hop = n_ > ranks_per_node ? ranks_per_node : 1;
    next_ = (me_ + hop) % n_;
    prev_ = ((me_ - hop) % n_ + n_) % n_;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    writer_ = std::thread([this] { write_loop(); });
  }
  snapshotter(const snapshotter&) = delete;
  snapshotter& operator=(const snapshotter&) = delete;
  ~snapshotter() {
    finish_exchange();
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    writer_.join();
  }

  std::string own_path(int r) const { return (std::filesystem::path(dir_) / cat("rank", r, ".snap")).string(); }
  std::string replica_path(int r) const { return (std::filesystem::path(dir_) / cat("replica", r, ".snap")).string(); }
  int next() const { return next_; }
  int prev() const { return prev_; }
  const std::string& dir() const { return dir_; }
  /// Removes this rank's snapshot and the replica it holds. @pre flush()
  void remove_mine() {
    std::error_code ec;
    std::filesystem::remove(own_path(me_), ec);
    std::filesystem::remove(replica_path(prev_), ec);
  }

  /// The state after `step` steps: bytes of it copied by copy(dst) into a new buffer (the part the
  /// caller waits for), written and replicated in the background. Returns the seconds it blocked.
  double take(int step, std::int64_t adam_step, std::size_t bytes, const std::function<void(unsigned char*)>& copy) {
    const auto t0 = std::chrono::steady_clock::now();
    finish_exchange();  // the previous replica has arrived (long ago: a step has passed)
    if (replica_bytes_ < 0) {  // sizes once: each rank's state has a fixed size in a run
      std::int64_t mine = static_cast<std::int64_t>(bytes), theirs = 0;
      const p2p_op ops[] = {p2p_recv(prev_, &theirs, 1), p2p_send(next_, &mine, 1)};
      world_.exchange(std::span<const p2p_op>(ops));
      replica_bytes_ = theirs;
    }
    auto own = buffer(bytes);
    copy(own->data());
    snapshot_header h;
    h.rank = me_;
    h.world = n_;
    h.step = step;
    h.adam_step = adam_step;
    h.layout = layout_;
    auto incoming = buffer(static_cast<std::size_t>(replica_bytes_));
    pending_recv_ = world_.irecv_bytes(incoming->data(), incoming->size(), prev_, tag);
    pending_send_ = world_.isend_bytes(own->data(), own->size(), next_, tag);
    sending_ = own;
    receiving_ = incoming;
    replica_header_ = h;  // the sender's header differs only in rank
    replica_header_.rank = prev_;
    enqueue({own_path(me_), h, own});
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  /// Completes the replica exchange in flight, if any, and queues the replica for writing.
  void finish_exchange() {
    if (!receiving_) return;
    pending_recv_.wait();
    pending_send_.wait();
    enqueue({replica_path(prev_), replica_header_, receiving_});
    receiving_.reset();
    sending_.reset();
  }
  /// Waits until everything queued is written (the end of a run; tests).
  void flush() {
    finish_exchange();
    std::unique_lock<std::mutex> lock(m_);
    done_cv_.wait(lock, [this] { return jobs_.empty() && !busy_; });
  }

 private:
  static constexpr int tag = 29471;
  struct job {
    std::string path;
    snapshot_header h;
    std::shared_ptr<std::vector<unsigned char>> data;
  };
  /// A buffer of n bytes nobody else holds any more (reused: no allocation, no page faults per snapshot).
  std::shared_ptr<std::vector<unsigned char>> buffer(std::size_t n) {
    std::lock_guard<std::mutex> lock(m_);  // the writer drops its references under this lock
    for (auto& b : pool_)
      if (b.use_count() == 1 && b->size() == n) return b;
    pool_.push_back(std::make_shared<std::vector<unsigned char>>(n));
    return pool_.back();
  }
  void enqueue(job j) {
    {
      std::lock_guard<std::mutex> lock(m_);
      jobs_.push_back(std::move(j));
    }
    cv_.notify_all();
  }
  void write_loop() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job j = std::move(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
      lock.unlock();
      snapshot_detail::write_file(j.path, j.h, j.data->data(), j.data->size());
      lock.lock();
      j.data.reset();
      busy_ = false;
      done_cv_.notify_all();
    }
  }

  Comm& world_;
  std::string dir_;
  std::uint64_t layout_ = 0;
  int me_ = 0, n_ = 1, next_ = 0, prev_ = 0;
  std::int64_t replica_bytes_ = -1;
  typename Comm::request pending_send_, pending_recv_;
  std::shared_ptr<std::vector<unsigned char>> sending_, receiving_;
  snapshot_header replica_header_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::deque<job> jobs_;
  std::vector<std::shared_ptr<std::vector<unsigned char>>> pool_;
  bool busy_ = false, stop_ = false;
  std::thread writer_;
};

/// The newest snapshot every rank of the job has (its own file, or the replica its next rank holds), in
/// this layout: collective; every rank gets the same answer. Reports damaged snapshots on stderr by name.
struct snapshot_choice {
  int step = -1;                        ///< -1: none usable by every rank (resume from disk)
  std::int64_t adam_step = 0;
  std::vector<unsigned char> payload;   ///< this rank's state, after fetch_snapshot
};

template <class Comm>
snapshot_choice fetch_snapshot(Comm& world, const snapshotter<Comm>& snaps, std::uint64_t layout) {
  const int me = world.rank(), n = world.size(), next = snaps.next(), prev = snaps.prev();
  std::string why;
  auto usable = [&](const std::optional<snapshot_data>& d, int rank) {
    return d && d->h.layout == layout && d->h.world == n && d->h.rank == rank;
  };
  std::optional<snapshot_data> own = read_snapshot(snaps.own_path(me), why);
  if (!own && why.find(": missing") == std::string::npos)
    std::fprintf(stderr, "tessera: snapshot %s; its replica on rank %d is used instead (rank %d)\n", why.c_str(), next, me);
  if (!usable(own, me)) own.reset();
  std::optional<snapshot_data> held = read_snapshot(snaps.replica_path(prev), why);  // prev's, kept here
  if (!held && why.find(": missing") == std::string::npos)
    std::fprintf(stderr, "tessera: snapshot replica %s (rank %d)\n", why.c_str(), me);
  if (!usable(held, prev)) held.reset();
  // every rank's own step and the step of the replica it holds (its prev's), to everyone
  const std::int32_t mine[2] = {own ? own->h.step : -1, held ? held->h.step : -1};
  std::vector<std::int32_t> all(static_cast<std::size_t>(2 * n));
  world.all_gather(mine, all.data(), 2);
  const int hop = ((next - me) % n + n) % n;
  auto own_step = [&](int r) { return all[static_cast<std::size_t>(2 * r)]; };
  auto replica_step = [&](int r) { return all[static_cast<std::size_t>(2 * ((r + hop) % n) + 1)]; };
  snapshot_choice c;
  const int step = std::max(own_step(0), replica_step(0));
  for (int r = 0; r < n; ++r)
    if (step < 0 || (own_step(r) != step && replica_step(r) != step)) return c;  // not one step everywhere
  c.step = step;
  // a rank without its own snapshot of that step gets it from the replica's holder
  const bool need = own_step(me) != step, give = own_step(prev) != step;
  constexpr int size_tag = 29472, state_tag = 29473;
  if (give) {
    const std::int64_t head[2] = {static_cast<std::int64_t>(held->payload.size()), held->h.adam_step};
    world.send(head, 2, prev, size_tag);
    world.send(held->payload.data(), held->payload.size(), prev, state_tag);
  }
  if (need) {
    std::int64_t head[2] = {0, 0};
    world.recv(head, 2, next, size_tag);
    c.payload.resize(static_cast<std::size_t>(head[0]));
    c.adam_step = head[1];
    world.recv(c.payload.data(), c.payload.size(), next, state_tag);
    std::fprintf(stderr, "tessera: rank %d's snapshot of step %d restored from its replica on rank %d\n", me, step, next);
  } else {
    c.payload = std::move(own->payload);
    c.adam_step = own->h.adam_step;
  }
  return c;
}

}  // namespace tessera
