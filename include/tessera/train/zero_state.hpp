// tessera/train/zero_state.hpp — where the optimizer state, gradients and parameters live under ZeRO.
//
// ZeRO stage s with dp > 1 (Rajbhandari et al. 2020), over the gradient buckets (grad_buckets.hpp), each
// dp rank keeping block `dp rank` of every bucket — its shard:
//   1  AdamW's moments and the fp32 masters of the dp-synchronised slots exist only as the shard; the
//      gradients are reduce-scattered so each rank updates its shard, then the parameters are all-gathered
//   2  the gradients too: between microbatches only the shard exists; each unit's gradient of a
//      microbatch lives in a transient buffer and is reduce-scattered into the shard as soon as the
//      unit's backward of that microbatch is done (the chunk calls grad_begin/grad_end)
//   3  the parameters too: a unit's values are gathered just before the chunk uses them (acquire) and
//      dropped after (release); the next unit of the chunk is prefetched while the current one computes
// Slots shared by several pipeline ranks (tied embeddings across stages, Chimera's copies) are never
// sharded: each holder keeps them whole.
//
// Call order: shard() once, after the parameters and moments are final (initialised or loaded);
// before it every slot holds its whole state. gather_state() … release_gathered_state() bracket a
// checkpoint or an export.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/model/transformer.hpp"
#include "tessera/ops/all.hpp"
#include "tessera/optim/adamw.hpp"
#include "tessera/train/grad_buckets.hpp"

namespace tessera {

template <class T, communicator Comm, class System = host_system>
class zero_state {
 public:
  using G = ops::grad_t<T>;
  using tbuf = buffer_of<System, T>;
  using gbuf = buffer_of<System, G>;
  using request = typename Comm::request;

  /// Elements [arena_off, +n) of the arenas ↔ [shard_off, +n) of the shard buffers, of one slot.
  struct shard_piece {
    std::size_t slot;
    std::int64_t arena_off, shard_off, n;
  };

  /// `stage`: the plan's ZeRO stage (nothing is sharded with dp == 1 or without buckets).
  /// tp/sequence_parallel: for the tp sum a reduction does first (sum_over_tp_if_partial).
  zero_state(int stage, param_store<T, System>& store, std::vector<grad_bucket>& buckets, const std::vector<bool>& shared,
             Comm& dp, Comm& tp, bool sequence_parallel)
      : store_(store), buckets_(buckets), shared_(shared), dp_(dp), tp_(tp), sp_(sequence_parallel),
        me_(dp.rank()), arena_n_(static_cast<std::int64_t>(store.grad_arena.size())) {
    const bool on = dp.size() > 1 && !buckets.empty();
    optimizer_sharded_ = on && stage >= 1;
    grads_sharded_ = on && stage >= 2;
    values_sharded_ = on && stage >= 3;
  }

  /// The stage in effect.
  int stage() const { return values_sharded_ ? 3 : grads_sharded_ ? 2 : optimizer_sharded_ ? 1 : 0; }
  bool optimizer_sharded() const { return optimizer_sharded_; }
  bool grads_sharded() const { return grads_sharded_; }
  const std::vector<shard_piece>& pieces() const { return pieces_; }
  bool values_sharded() const { return values_sharded_; }
  /// Slot i's optimizer state lives in the dp ranks' shards (not whole on any rank).
  bool holds_shard_of(std::size_t i) const { return optimizer_sharded_ && !pieces_.empty() && !shared_[i]; }
  /// This rank's shards (empty below the stage that shards them); pieces() maps them to the slots.
  const gbuf& m_shard() const { return m_shard_; }
  const gbuf& v_shard() const { return v_shard_; }
  const gbuf& master_shard() const { return master_shard_; }
  const tbuf& p_shard() const { return p_shard_; }
  /// The hooks chunks call (empty below ZeRO-2).
  param_hooks* hooks() { return &hooks_; }

  /// Keeps from here on only this rank's shard of the state of the dp-synchronised slots (and, at stage
  /// >= 2, of their gradients; at 3, of their values). chunk_of_bucket[b]: the chunk that uses bucket b
  /// first (ZeRO-3 prefetches only within a chunk). @pre called once, parameters and moments final.
  void shard(std::vector<int> chunk_of_bucket) {
    if (!optimizer_sharded_ || !pieces_.empty()) return;
    chunk_of_bucket_ = std::move(chunk_of_bucket);
    bucket_of_slot_ = bucket_of_slots(buckets_, store_.slots.size());
    std::int64_t total = 0;
    for (grad_bucket& b : buckets_) {
      b.shard_off = total;
      const std::int64_t mine_begin = b.offset + b.part.displ(me_);
      const std::int64_t mine_end = mine_begin + b.part.count(me_);
      for (std::size_t i : b.slots) {
        const auto& s = store_.slots[i];
        const std::int64_t lo = std::max(mine_begin, s.grad_offset), hi = std::min(mine_end, s.grad_offset + s.numel());
        if (lo < hi) pieces_.push_back({i, lo, total + (lo - mine_begin), hi - lo});
      }
      total += b.part.count(me_);
    }
    // the shard keeps this rank's part of the moments (zero, or loaded from a checkpoint) and masters
    m_shard_.assign(static_cast<std::size_t>(total), 0);
    v_shard_.assign(static_cast<std::size_t>(total), 0);
    if constexpr (!std::is_same_v<T, G>) master_shard_.assign(static_cast<std::size_t>(total), 0);
    for (const shard_piece& sp : pieces_) {
      const auto& s = store_.slots[sp.slot];
      const std::int64_t at = sp.arena_off - s.grad_offset;
      store_.sys.copy(m_shard_.data() + sp.shard_off, s.m.data() + at, sp.n);
      store_.sys.copy(v_shard_.data() + sp.shard_off, s.v.data() + at, sp.n);
      if constexpr (!std::is_same_v<T, G>) store_.sys.copy(master_shard_.data() + sp.shard_off, s.master.data() + at, sp.n);
    }
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      if (shared_[i]) continue;
      auto& s = store_.slots[i];
      gbuf().swap(s.m);
      gbuf().swap(s.v);
      gbuf().swap(s.master);
    }
    if (grads_sharded_) shard_gradients_and_values(total);
  }

  /// Zeroes every gradient this rank accumulates into (before a step's first microbatch).
  void zero_gradients() {
    if (grads_sharded_) {  // the shard (and the shared slots' own buffers) hold the gradients between microbatches
      store_.sys.fill(g_shard_.data(), static_cast<std::int64_t>(g_shard_.size()), G(0));
      store_.sys.fill(rep_grads_.data(), static_cast<std::int64_t>(rep_grads_.size()), G(0));
    } else {
      store_.zero_grads();
    }
  }
  /// The dp-reduced gradient of a piece of this rank's shard.
  G* shard_grad(const shard_piece& p) {
    return grads_sharded_ ? g_shard_.data() + p.shard_off : store_.grad_arena.data() + p.arena_off;
  }
  /// f(gradient, count) for each piece of the shard that counts in Σ g², in order (tp-replicated slots
  /// count on tp rank 0 only).
  template <class F>
  void for_each_norm_piece(int tp_rank, F&& f) {
    for (const shard_piece& p : pieces_)
      if (store_.slots[p.slot].layout.role == tp_role::sharded || tp_rank == 0) f(shard_grad(p), p.n);
  }
  /// AdamW on the shard, then (below stage 3) the updated parameters all-gathered over dp, bucket by
  /// bucket; at stage 3 they are gathered unit by unit when next used. @pre the step's gradients are reduced.
  void update(const ops::math::adamw_params& p) {
    if (values_sharded_) drain_prefetch();  // nothing may still be gathering the shards being updated
    for (const shard_piece& sp : pieces_)
      ops::adamw_step(store_.sys, values_sharded_ ? p_shard_.data() + sp.shard_off : store_.value_arena.data() + sp.arena_off,
                      master_shard_.empty() ? static_cast<G*>(nullptr) : master_shard_.data() + sp.shard_off,
                      shard_grad(sp), m_shard_.data() + sp.shard_off, v_shard_.data() + sp.shard_off, sp.n, p,
                      store_.slots[sp.slot].layout.decay);
    const prof::scope p_gather("zero: all-gather parameters");
    if (values_sharded_) return;
    for (const grad_bucket& b : buckets_) {
      T* values = store_.value_arena.data() + b.offset;
      pending_.push_back(dp_.iall_gather_v(values + b.part.displ(me_), values, b.part));  // in place
    }
    wait_all(pending_);
  }

  // ---- whole state, for checkpoints and exports ------------------------------------------------------
  /// Slot i's whole optimizer state (master is null without fp32 masters), in the system's memory: the
  /// host reads it through a host_mirror.
  struct state_view {
    const G* m = nullptr;
    const G* v = nullptr;
    const G* master = nullptr;
  };
  /// Assembles the moments (and masters) of the sharded slots on dp rank 0, bucket by bucket, and at
  /// stage 3 every parameter on every rank (collective over dp). @post slot_state() valid on dp rank 0.
  void gather_state() {
    materialise_values();
    if (!optimizer_sharded_ || pieces_.empty()) return;
    const std::size_t n = me_ == 0 ? static_cast<std::size_t>(arena_n_) : 0;
    auto gather = [&](const gbuf& shard, gbuf& full) {
      full.assign(n, 0);
      for (const grad_bucket& b : buckets_)
        dp_.gather_v(shard.data() + b.shard_off, me_ == 0 ? full.data() + b.offset : nullptr, b.part, 0);
    };
    gather(m_shard_, full_m_);
    gather(v_shard_, full_v_);
    if constexpr (!std::is_same_v<T, G>) gather(master_shard_, full_master_);
  }
  void release_gathered_state() {
    drop_values();
    gbuf().swap(full_m_);
    gbuf().swap(full_v_);
    gbuf().swap(full_master_);
  }
  /// @pre before shard(), or between gather_state() and release_gathered_state() on dp rank 0.
  state_view slot_state(std::size_t i) const {
    const auto& s = store_.slots[i];
    if (optimizer_sharded_ && !pieces_.empty() && !shared_[i]) {
      if (full_m_.empty()) return {};
      return {full_m_.data() + s.grad_offset, full_v_.data() + s.grad_offset,
              full_master_.empty() ? nullptr : full_master_.data() + s.grad_offset};
    }
    return {s.m.data(), s.v.data(), s.master.empty() ? nullptr : s.master.data()};
  }

  /// Visits every buffer of this rank's training state — what an in-memory snapshot holds (snapshot.hpp):
  /// f(p, n) for the parameters (the whole arena, or under ZeRO-3 the shard and the shared slots'
  /// values), AdamW's moments and fp32 masters (the slots' own, and the shards), in the same order on
  /// every call. Buffers are in the system's memory. @pre between steps.
  template <class F>
  void for_each_state_buffer(F&& f) {
    if (store_.value_arena.size() > 0) f(store_.value_arena.data(), store_.value_arena.size());
    for (auto& s : store_.slots)
      for (gbuf* b : {&s.m, &s.v, &s.master})
        if (!b->empty()) f(b->data(), b->size());
    for (gbuf* b : {&m_shard_, &v_shard_, &master_shard_})
      if (!b->empty()) f(b->data(), b->size());
    for (tbuf* b : {&p_shard_, &rep_values_})
      if (!b->empty()) f(b->data(), b->size());
  }

  /// Bytes of parameters, gradients and optimizer state (moments, fp32 masters) this rank holds.
  std::int64_t state_bytes() const {
    std::int64_t b = 0;
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      const auto& s = store_.slots[i];
      const bool sharded = !shared_[i] && !pieces_.empty();
      b += s.numel() * static_cast<std::int64_t>((values_sharded_ && sharded ? 0 : sizeof(T)) +
                                                 (grads_sharded_ && sharded ? 0 : sizeof(G))) +
           static_cast<std::int64_t>((s.m.size() + s.v.size() + s.master.size()) * sizeof(G));
    }
    b += static_cast<std::int64_t>((m_shard_.size() + v_shard_.size() + master_shard_.size() + g_shard_.size()) * sizeof(G));
    b += static_cast<std::int64_t>(p_shard_.size() * sizeof(T));
    return b;
  }

 private:
  template <class E>
  static void bind(buffer_view<E>& v, E* p, std::int64_t n) {
    v = {p, p ? static_cast<std::size_t>(n) : 0};
  }
  /// ZeRO-2/3: gradients of the dp-synchronised slots live only as this rank's shard (and as a unit's
  /// transient buffer during a microbatch's backward); with ZeRO-3 their parameters too. Shared slots
  /// keep whole buffers of their own.
  void shard_gradients_and_values(std::int64_t total) {
    g_shard_.assign(static_cast<std::size_t>(total), G(0));
    std::int64_t nrep = 0;
    for (std::size_t i = 0; i < store_.slots.size(); ++i)
      if (shared_[i]) nrep += store_.slots[i].numel();
    rep_grads_.assign(static_cast<std::size_t>(nrep), G(0));
    if (values_sharded_) {
      resize(rep_values_, nrep);
      resize(p_shard_, total);
      for (const shard_piece& sp : pieces_)
        store_.sys.copy(p_shard_.data() + sp.shard_off, store_.value_arena.data() + sp.arena_off, sp.n);
    }
    std::int64_t off = 0;
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      auto& s = store_.slots[i];
      if (shared_[i]) {
        bind(s.grad, rep_grads_.data() + off, s.numel());
        if (values_sharded_) {
          store_.sys.copy(rep_values_.data() + off, s.value.data(), s.numel());
          bind(s.value, rep_values_.data() + off, s.numel());
        }
        off += s.numel();
      } else {
        bind(s.grad, static_cast<G*>(nullptr), 0);
        if (values_sharded_) bind(s.value, static_cast<T*>(nullptr), 0);
      }
    }
    gbuf().swap(store_.grad_arena);
    if (values_sharded_) tbuf().swap(store_.value_arena);
    units_ = std::vector<unit_state>(buckets_.size());
    hooks_.grad_begin = [this](const std::vector<int>& ids) { begin_unit_grads(ids); };
    hooks_.grad_end = [this](const std::vector<int>& ids) { end_unit_grads(ids); };
    if (values_sharded_) {
      hooks_.acquire = [this](const std::vector<int>& ids, int dir) { acquire(ids, dir); };
      hooks_.release = [this](const std::vector<int>& ids) {
        for (int b : buckets_of(ids))
          if (--units_[static_cast<std::size_t>(b)].vref == 0) free_unit(b);
      };
    }
  }
  void begin_unit_grads(const std::vector<int>& ids) {
    for (int b : buckets_of(ids)) {
      unit_state& u = units_[static_cast<std::size_t>(b)];
      if (u.gref++ > 0) continue;
      const grad_bucket& bk = buckets_[static_cast<std::size_t>(b)];
      u.grads.assign(static_cast<std::size_t>(bk.count), G(0));
      for (std::size_t i : bk.slots)
        bind(store_.slots[i].grad, u.grads.data() + (store_.slots[i].grad_offset - bk.offset), store_.slots[i].numel());
    }
  }
  void end_unit_grads(const std::vector<int>& ids) {
    for (int b : buckets_of(ids)) {
      unit_state& u = units_[static_cast<std::size_t>(b)];
      if (--u.gref > 0) continue;
      reduce_unit(b);
      for (std::size_t i : buckets_[static_cast<std::size_t>(b)].slots) bind(store_.slots[i].grad, static_cast<G*>(nullptr), 0);
      gbuf().swap(u.grads);
    }
  }
  void acquire(const std::vector<int>& ids, int dir) {
    const auto bs = buckets_of(ids);
    for (int b : bs)
      if (units_[static_cast<std::size_t>(b)].vref++ == 0) make_resident(b);
    if (bs.empty()) return;
    // prefetch the unit this chunk uses next, so its gather overlaps this unit's compute
    const int next = dir > 0 ? bs.back() + 1 : bs.front() - 1;
    if (next >= 0 && next < static_cast<int>(buckets_.size()) &&
        chunk_of_bucket_[static_cast<std::size_t>(next)] == chunk_of_bucket_[static_cast<std::size_t>(bs.front())])
      start_gather(next);
  }
  /// The distinct buckets (units) of slots, in arena order; shared slots have none.
  std::vector<int> buckets_of(const std::vector<int>& ids) const {
    std::vector<int> out = distinct_buckets(ids, bucket_of_slot_);
    std::sort(out.begin(), out.end());
    return out;
  }
  /// A microbatch's gradient of one unit, summed over dp, added to this rank's shard.
  void reduce_unit(int b) {
    const grad_bucket& bk = buckets_[static_cast<std::size_t>(b)];
    for (std::size_t i : bk.slots) sum_over_tp_if_partial(store_.slots[i], tp_, sp_);
    unit_state& u = units_[static_cast<std::size_t>(b)];
    const int mine = bk.part.count(me_);
    resize(rs_tmp_, mine);
    ready_to_communicate<Comm>(store_.sys);  // the unit's backward is complete before its gradient travels
    dp_.reduce_scatter_v(u.grads.data(), rs_tmp_.data(), bk.part);
    G* g = g_shard_.data() + bk.shard_off;
    ops::add(store_.sys, g, rs_tmp_.data(), mine, g);
  }
  /// ZeRO-3: start gathering unit b's parameters unless they are here or on their way.
  void start_gather(int b) {
    unit_state& u = units_[static_cast<std::size_t>(b)];
    if (u.resident || u.gathering) return;
    const grad_bucket& bk = buckets_[static_cast<std::size_t>(b)];
    resize(u.values, bk.count);
    u.pending = dp_.iall_gather_v(p_shard_.data() + bk.shard_off, u.values.data(), bk.part);
    u.gathering = true;
  }
  void make_resident(int b) {
    unit_state& u = units_[static_cast<std::size_t>(b)];
    if (u.resident) return;
    start_gather(b);
    u.pending.wait();
    u.gathering = false;
    u.resident = true;
    const grad_bucket& bk = buckets_[static_cast<std::size_t>(b)];
    for (std::size_t i : bk.slots)
      bind(store_.slots[i].value, u.values.data() + (store_.slots[i].grad_offset - bk.offset), store_.slots[i].numel());
  }
  void free_unit(int b) {
    unit_state& u = units_[static_cast<std::size_t>(b)];
    if (u.gathering) u.pending.wait();
    u.gathering = false;
    u.resident = false;
    for (std::size_t i : buckets_[static_cast<std::size_t>(b)].slots) bind(store_.slots[i].value, static_cast<T*>(nullptr), 0);
    tbuf().swap(u.values);
  }
  /// ZeRO-3: completes and drops prefetches no one used (before the shards change).
  void drain_prefetch() {
    for (std::size_t b = 0; b < units_.size(); ++b)
      if (units_[b].vref == 0 && (units_[b].gathering || units_[b].resident)) free_unit(static_cast<int>(b));
  }
  /// ZeRO-3: every parameter whole, for a checkpoint or an export (collective over dp).
  void materialise_values() {
    if (!values_sharded_ || pieces_.empty()) return;
    drain_prefetch();
    full_values_.assign(static_cast<std::size_t>(arena_n_), T{});
    for (const grad_bucket& b : buckets_) dp_.all_gather_v(p_shard_.data() + b.shard_off, full_values_.data() + b.offset, b.part);
    for (const grad_bucket& b : buckets_)
      for (std::size_t i : b.slots)
        bind(store_.slots[i].value, full_values_.data() + store_.slots[i].grad_offset, store_.slots[i].numel());
  }
  void drop_values() {
    if (!values_sharded_ || full_values_.empty()) return;
    for (const grad_bucket& b : buckets_)
      for (std::size_t i : b.slots) bind(store_.slots[i].value, static_cast<T*>(nullptr), 0);
    tbuf().swap(full_values_);
  }

  struct unit_state {
    tbuf values;  ///< ZeRO-3: the unit's gathered parameters while in use
    gbuf grads;   ///< ZeRO-2/3: the unit's gradient of the microbatches in flight
    int vref = 0, gref = 0;
    bool resident = false;
    request pending;         ///< ZeRO-3: a gather of values
    bool gathering = false;  ///< whether `pending` is in flight
  };

  param_store<T, System>& store_;
  std::vector<grad_bucket>& buckets_;
  const std::vector<bool>& shared_;
  Comm& dp_;
  Comm& tp_;
  bool sp_ = false;
  int me_ = 0;                 ///< dp rank
  std::int64_t arena_n_ = 0;   ///< elements of the value and gradient arenas, whole
  bool optimizer_sharded_ = false, grads_sharded_ = false, values_sharded_ = false;
  std::vector<int> chunk_of_bucket_, bucket_of_slot_;
  std::vector<shard_piece> pieces_;
  gbuf m_shard_, v_shard_, master_shard_;
  gbuf g_shard_;      ///< ZeRO-2/3: this rank's shard of the dp-reduced gradients
  tbuf p_shard_;      ///< ZeRO-3: this rank's shard of the parameters
  tbuf rep_values_;   ///< ZeRO-3: values of shared slots (never sharded)
  gbuf rep_grads_;    ///< ZeRO-2/3: their gradients
  tbuf full_values_;  ///< ZeRO-3: all parameters, for a checkpoint or an export
  gbuf full_m_, full_v_, full_master_;  ///< gather_state(): whole state on dp rank 0
  gbuf rs_tmp_;
  std::vector<unit_state> units_;
  std::vector<request> pending_;
  param_hooks hooks_;
};

}  // namespace tessera
