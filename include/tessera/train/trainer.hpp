// tessera/train/trainer.hpp — the run-time engine of ts::train<plan> on the host backend: one rank's
// chunks, the pipeline program of its schedule (with tagged point-to-point), gradient synchronisation
// over dp (non-blocking, launched as soon as a chunk's gradients are final), the replicas of tied
// embeddings and of Chimera's two pipelines, global-norm clipping, AdamW and logs. Every message goes
// through the communicator concept (comm/communicator.hpp): `Comm` is mpi_comm in a training program,
// loopback_comm in one-process tests.
#pragma once
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/mesh_comms.hpp"
#include "tessera/model/transformer.hpp"
#include "tessera/ops/host.hpp"
#include "tessera/schedule/schedule.hpp"
#include "tessera/train/data.hpp"
#include "tessera/train/options.hpp"
#include "tessera/train/plan.hpp"

namespace tessera {

/// Learning rate at 0-based step k (contract §2): linear warmup, then cosine to min_lr.
inline double lr_at(const train_options& o, int k) {
  if (k < o.warmup) return o.lr * (k + 1) / o.warmup;
  const double span = std::max(1, o.steps - o.warmup);
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(3.141592653589793 * (k - o.warmup) / span));
}

/// Model FLOPs per token for a training step (forward + backward, no recompute): 6·N + 12·L·C·T,
/// N = parameters that enter matrix products; docs/training.md §14 states it.
inline double flops_per_token(const model_desc& m) {
  // the token embedding is a lookup, but the head (tied or not) is a V×C GEMM: count V·C once
  double n = static_cast<double>(m.num_params());
  if (m.position == position::learned) n -= static_cast<double>(m.seq) * m.hidden;
  if (!m.tied_embeddings) n -= static_cast<double>(m.vocab) * m.hidden;
  return 6.0 * n + 12.0 * m.layers * m.hidden * m.seq;
}

/// The pipeline ranks that hold model stage ms.
inline std::vector<int> stage_holders(const plan_desc& pd, int ms) {
  std::set<int> r;
  for (int g = 0; g < num_stages(pd.schedule); ++g)
    if (pd.model_stage(g) == ms) r.insert(stage_rank(pd.schedule, g));
  return {r.begin(), r.end()};
}

template <class T, int D, communicator Comm>
class trainer {
 public:
  using A = ops::acc_t<T>;
  using G = ops::grad_t<T>;
  using chunk_t = chunk<T, D, Comm>;
  using request = typename Comm::request;

  trainer(const plan_desc& pd, std::vector<action> program, const train_options& o, mesh_comms<Comm>& mc,
          const token_data& data)
      : pd_(pd), prog_(std::move(program)), o_(o), mc_(mc), data_(data) {
    dp_rank_ = mc.coord(axis::dp);
    pp_rank_ = mc.coord(axis::pp);
    tp_rank_ = mc.coord(axis::tp);
    world_rank_ = mc.rank();
    const model_desc& m = pd.model;
    B_ = o.batch > 0 ? o.batch : pd.dp * pd.schedule.microbatches;
    const int M = pd.schedule.microbatches;
    if (B_ % (pd.dp * M) != 0)
      throw usage_error(cat("--batch ", B_, " not divisible by dp (", pd.dp, ") x microbatches (", M, ")"));
    d_.b = B_ / (pd.dp * M);
    d_.T = m.seq;
    d_.R = d_.b * d_.T;
    d_.tp = pd.tp;
    d_.tp_rank = tp_rank_;
    d_.sp = pd.policy.sequence_parallel && pd.tp > 1;
    if (d_.sp && d_.R % pd.tp != 0)
      throw usage_error(cat("sequence parallel: rows per microbatch (", d_.R, ") not divisible by tp (", pd.tp, ")"));
    d_.Rl = d_.sp ? d_.R / pd.tp : d_.R;
    d_.recompute = pd.policy.recompute;
    zero1_ = pd.policy.zero >= 1 && pd.dp > 1;
    zero2_ = pd.policy.zero >= 2 && pd.dp > 1;
    zero3_ = pd.policy.zero >= 3 && pd.dp > 1;
    d_.C = m.hidden;
    d_.D = D;
    d_.Hq = m.heads / pd.tp;
    d_.Hkv = m.kv_heads / pd.tp;
    d_.F = m.ffn / pd.tp;
    d_.V = pd.vocab_padded / pd.tp;
    d_.v0 = tp_rank_ * d_.V;
    d_.vocab = m.vocab;
    d_.QKV = (d_.Hq + 2 * d_.Hkv) * D;
    d_.U = (m.mlp == mlp::swiglu ? 2 : 1) * d_.F;

    tensors_ = make_model_tensors(m, pd.vocab_padded);
    // chunks of this pipeline rank, in global stage order
    const int S = num_stages(pd.schedule);
    chunk_of_stage_.assign(static_cast<std::size_t>(S), -1);
    for (int g = 0; g < S; ++g) {
      if (stage_rank(pd.schedule, g) != pp_rank_) continue;
      const int ms = pd.model_stage(g);
      chunk_of_stage_[static_cast<std::size_t>(g)] = static_cast<int>(chunks_.size());
      chunks_.push_back(std::make_unique<chunk_t>(m, d_, store_, tensors_, ms, pd.layer_begin[ms], pd.layer_begin[ms + 1],
                                                  ms == 0, ms == pd.model_stages - 1, mc.along(axes::tp)));
    }
    // gradients in one arena: slots synchronised over dp first (in bucket order), pipeline replicas last
    {
      std::vector<std::size_t> order, tail;
      holders_.resize(store_.slots.size());
      replicated_.assign(store_.slots.size(), false);
      for (std::size_t i = 0; i < store_.slots.size(); ++i) {
        holders_[i] = slot_holders(store_.slots[i].layout.name);
        replicated_[i] = holders_[i].size() > 1;
        (replicated_[i] ? tail : order).push_back(i);
      }
      order.insert(order.end(), tail.begin(), tail.end());
      store_.finalise(order);
      arena_n_ = static_cast<std::int64_t>(store_.grad_arena.size());
    }
    // bf16 storage: fp32 master weights (the optimizer updates them; the bf16 values are their rounding)
    if constexpr (!std::is_same_v<T, G>)
      for (auto& s : store_.slots) s.master.assign(s.value.size(), 0);
    store_.initialise(tensors_, o.seed);
    for (auto& s : store_.slots) {
      s.m.assign(s.value.size(), 0);
      s.v.assign(s.value.size(), 0);
    }
    setup_sync();
    inputs_.resize(static_cast<std::size_t>(B_ / pd.dp * d_.T));
    targets_.resize(inputs_.size());
  }

  /// Mean token loss over batches [k0, k0 + count) without updating (forward only).
  double evaluate(int k0, int count) {
    double total = 0;
    for (int k = k0; k < k0 + count; ++k) total += forward_only(k);
    return total / count;
  }

  struct step_result {
    double loss = 0, grad_norm = 0, lr = 0;
    bool skipped = false;
  };

  step_result step(int k) {
    {
      const prof::scope p("zero gradients");
      if (zero2_) {  // gradients live in the shard (and, for replicated slots, their own buffer) between microbatches
        host_system::fill(g_shard_.data(), static_cast<std::int64_t>(g_shard_.size()), G(0));
        host_system::fill(rep_grads_.data(), static_cast<std::int64_t>(rep_grads_.size()), G(0));
      } else {
        store_.zero_grads();
      }
    }
    load_batch(k);
    loss_local_ = 0;
    pending_.clear();
    launched_.assign(buckets_.size(), false);
    run_program();
    {
      const prof::scope p("dp gradient sync (wait) + replicas");
      finish_sync();
    }
    step_result r;
    r.loss = global_loss();
    // global gradient norm, every parameter counted once
    double sq = 0;
    std::optional<prof::scope> p_norm;
    p_norm.emplace("gradient norm");
    auto sum_sq = [](const G* g, std::int64_t n) {
      double s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static)  // vectorised: a memory-bound pass
      for (std::int64_t j = 0; j < n; ++j) s += static_cast<double>(g[j]) * g[j];
      return s;
    };
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      if (zero1_ && !replicated_[i]) continue;  // counted from the shards below
      if (counts_in_norm_[i]) sq += sum_sq(store_.slots[i].grad.data(), store_.slots[i].numel());
    }
    for (const shard_piece& p : shard_pieces_)  // ZeRO: every dp rank counts its own shard
      if (store_.slots[p.slot].layout.role == tp_role::sharded || tp_rank_ == 0) sq += sum_sq(shard_grad(p), p.n);
    sq = all_reduce_value(mc_.world(), sq);
    r.grad_norm = std::sqrt(sq);
    p_norm.reset();
    r.lr = lr_at(o_, k);
    if (!std::isfinite(r.grad_norm)) {
      r.skipped = true;
      return r;
    }
    const double clip = (o_.grad_clip > 0) ? std::min(1.0, o_.grad_clip / (r.grad_norm + 1e-6)) : 1.0;
    ++adam_step_;
    ops::math::adamw_params p;
    p.lr = static_cast<float>(r.lr);
    p.beta1 = static_cast<float>(o_.beta1);
    p.beta2 = static_cast<float>(o_.beta2);
    p.eps = static_cast<float>(o_.eps);
    p.weight_decay = static_cast<float>(o_.weight_decay);
    p.step = adam_step_;
    p.grad_scale = static_cast<float>(clip);  // clipping is fused into the update (no pass of its own)
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      if (zero1_ && !replicated_[i]) continue;  // updated shard by shard below
      auto& s = store_.slots[i];
      ops::adamw_step(host_system{}, s.value.data(), s.master.empty() ? static_cast<G*>(nullptr) : s.master.data(),
                      s.grad.data(), s.m.data(), s.v.data(), s.numel(), p, s.layout.decay);
    }
    if (zero1_) {
      // ZeRO-1: each dp rank updates its shard (reduced gradients, moments, masters of its elements only) ...
      if (zero3_) drain_prefetch();  // nothing may still be gathering the shards being updated
      for (const shard_piece& sp : shard_pieces_) {
        G* g = shard_grad(sp);
        ops::adamw_step(host_system{}, zero3_ ? p_shard_.data() + sp.shard_off : store_.value_arena.data() + sp.arena_off,
                        master_shard_.empty() ? static_cast<G*>(nullptr) : master_shard_.data() + sp.shard_off, g,
                        m_shard_.data() + sp.shard_off, v_shard_.data() + sp.shard_off, sp.n, p,
                        store_.slots[sp.slot].layout.decay);
      }
      // ... and the updated parameters are all-gathered over dp, bucket by bucket (ZeRO-3: layer by layer,
      // when they are next used)
      const prof::scope p_gather("zero: all-gather parameters");
      for (const bucket& b : buckets_) {
        if (zero3_) break;
        T* values = store_.value_arena.data() + b.offset;
        pending_.push_back(dp().iall_gather_v(values + b.part.displ(dp_rank_), values, b.part));  // in place
      }
      wait_all(pending_);
    }
    return r;
  }

  /// Bytes of parameters, gradients and optimizer state (moments, fp32 masters) this rank holds.
  std::int64_t state_bytes() const {
    std::int64_t b = 0;
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      const auto& s = store_.slots[i];
      const bool sharded = !replicated_[i] && !shard_pieces_.empty();
      b += s.numel() * static_cast<std::int64_t>((zero3_ && sharded ? 0 : sizeof(T)) + (zero2_ && sharded ? 0 : sizeof(G))) +
           static_cast<std::int64_t>((s.m.size() + s.v.size() + s.master.size()) * sizeof(G));
    }
    b += static_cast<std::int64_t>((m_shard_.size() + v_shard_.size() + master_shard_.size() + g_shard_.size()) * sizeof(G));
    b += static_cast<std::int64_t>(p_shard_.size() * sizeof(T));
    return b;
  }

  /// The ZeRO formula for this rank's parameters: bytes per parameter of moments + fp32 masters (divided
  /// over dp at stage >= 1), gradients (at stage >= 2) and values (at stage 3), times the parameters the
  /// rank holds; slots shared by several pipeline ranks are never divided.
  double predicted_state_bytes() const {
    const double value = sizeof(T), grad = sizeof(G), state = 2.0 * sizeof(G) + (std::is_same_v<T, G> ? 0 : sizeof(G));
    double b = 0;
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      const double n = static_cast<double>(store_.slots[i].numel());
      const double split = replicated_[i] ? 1.0 : pd_.dp;
      b += n * (value / (zero3_ ? split : 1.0) + grad / (zero2_ ? split : 1.0) + state / (zero1_ ? split : 1.0));
    }
    return b;
  }

  /// The activation formula for this rank: the most microbatch states the pipeline program keeps at once
  /// (each lives from its first action to its last, weight-gradient passes included, and is then pooled
  /// for reuse), times the bytes one state of a chunk holds — the residual stream at each layer boundary,
  /// each layer's saved tensors (Korthikanti et al. 2022's terms for this implementation: norm outputs,
  /// q|k|v, attention output and log-sum-exp, the residual after attention, MLP input and activation;
  /// sequence parallelism's gathered copies; none of them kept under full recompute, and not the
  /// attention under selective), the head's logits, and the gradients received and sent.
  double predicted_activation_bytes() const {
    const double t = sizeof(T), a = sizeof(A);
    const double R = static_cast<double>(d_.R), Rl = static_cast<double>(d_.Rl), C = static_cast<double>(d_.C);
    const bool ln = pd_.model.norm == norm::layernorm;
    const bool split = pd_.schedule.kind == schedule_kind::zb_h1 || pd_.schedule.kind == schedule_kind::zbv ||
                       pd_.schedule.kind == schedule_kind::dualpipe_v;
    // a layer's cache: saved tensors, attention, and the output gradients its backward leaves in it
    const double kept = t * (Rl * C * 3 + (d_.sp ? 2 * R * C : 0) + R * static_cast<double>(d_.QKV + d_.U + d_.F)) +
                        a * (Rl * (ln ? 4 : 2));
    const double attention = t * R * static_cast<double>(d_.Hq * D) + a * static_cast<double>(d_.b * d_.Hq * d_.T);
    const double grads = t * R * (2 * C + static_cast<double>(d_.U + d_.QKV));
    const double whole = kept + attention + grads;
    // with recompute, a layer's cache is rebuilt for its backward and freed right after it (a transient
    // not counted here, nor in the measurement between actions) — unless a split backward keeps it for
    // the deferred weight pass, so the layers of such a microbatch become whole again
    double layer = whole;
    if (d_.recompute != recompute_kind::none && !split) layer = d_.recompute == recompute_kind::selective ? kept : 0.0;
    std::vector<double> per_chunk;
    for (const auto& c : chunks_) {
      const double nl = pd_.layer_begin[c->stage() + 1] - pd_.layer_begin[c->stage()];
      double b = t * (nl + 1) * Rl * C + nl * layer + 2 * t * Rl * C;  // xs, layers, dx and dy
      if (c->last())
        b += t * (Rl * C + (d_.sp ? R * C : 0) + R * static_cast<double>(d_.V)) + a * (Rl * (ln ? 2 : 1) + 2 * R);
      per_chunk.push_back(b);
    }
    // replay the program: which (stage, microbatch) states exist after each action
    std::map<std::pair<int, int>, int> live;
    double peak = 0, cur = 0;
    std::size_t pooled = 0;
    double pooled_bytes = 0;
    for (std::size_t idx = 0; idx < prog_.size(); ++idx) {
      const action& x = prog_[idx];
      auto touch = [&](int g, int j) {
        if (live.count({g, j})) return;
        const int c = chunk_of_stage_[static_cast<std::size_t>(g)];
        live[{g, j}] = c;
        cur += per_chunk[static_cast<std::size_t>(c)];
        if (pooled > 0) {  // a pooled state is reused (its buffers count once)
          --pooled;
          pooled_bytes -= per_chunk[static_cast<std::size_t>(c)];
        }
      };
      for (int pi = 0; pi < num_parts(x); ++pi) {
        const action y = part(x, pi);
        touch(y.stage, y.mb);
        if (y.kind == op::F && local_next(y.stage)) touch(y.stage + 1, y.mb);
      }
      if (is_comm(x.kind)) touch(x.stage, x.mb);
      peak = std::max(peak, cur + std::max(0.0, pooled_bytes));
      for (auto [g, j] : release_after_[idx]) {
        auto it = live.find({g, j});
        if (it == live.end()) continue;
        cur -= per_chunk[static_cast<std::size_t>(it->second)];
        ++pooled;
        pooled_bytes += per_chunk[static_cast<std::size_t>(it->second)];
        live.erase(it);
      }
    }
    return peak;
  }

  /// ZeRO-1 (optimizer state sharded over dp): from here on each dp rank keeps the moments (and, for bf16,
  /// the fp32 master weights) of its shard of every gradient bucket only. Called once, after the
  /// parameters are final (initialised or loaded). Slots shared by several pipeline ranks (tied
  /// embeddings across stages, Chimera's copies) keep their whole state on each holder.
  void shard_optimizer_state() {
    if (!zero1_ || !shard_pieces_.empty()) return;
    std::int64_t total = 0;
    const int me = dp_rank_;
    for (bucket& b : buckets_) {
      b.shard_off = total;
      const std::int64_t mine_begin = b.offset + b.part.displ(me);
      const std::int64_t mine_end = mine_begin + b.part.count(me);
      for (std::size_t i : b.slots) {
        const auto& s = store_.slots[i];
        const std::int64_t lo = std::max(mine_begin, s.grad_offset), hi = std::min(mine_end, s.grad_offset + s.numel());
        if (lo < hi) shard_pieces_.push_back({i, lo, total + (lo - mine_begin), hi - lo});
      }
      total += b.part.count(me);
    }
    // the shard keeps this rank's part of the moments (zero, or loaded from a checkpoint) and masters
    m_shard_.assign(static_cast<std::size_t>(total), 0);
    v_shard_.assign(static_cast<std::size_t>(total), 0);
    if constexpr (!std::is_same_v<T, G>) master_shard_.assign(static_cast<std::size_t>(total), 0);
    for (const shard_piece& sp : shard_pieces_) {
      const auto& s = store_.slots[sp.slot];
      const std::int64_t at = sp.arena_off - s.grad_offset;
      std::copy_n(s.m.data() + at, sp.n, m_shard_.data() + sp.shard_off);
      std::copy_n(s.v.data() + at, sp.n, v_shard_.data() + sp.shard_off);
      if constexpr (!std::is_same_v<T, G>) std::copy_n(s.master.data() + at, sp.n, master_shard_.data() + sp.shard_off);
    }
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      if (replicated_[i]) continue;
      auto& s = store_.slots[i];
      std::vector<G>().swap(s.m);
      std::vector<G>().swap(s.v);
      std::vector<G>().swap(s.master);
    }
    if (zero2_) shard_gradients_and_values(total);
  }
  // ---- checkpoints ------------------------------------------------------------------------------------
  std::int64_t adam_step() const { return adam_step_; }
  void set_adam_step(std::int64_t k) { adam_step_ = k; }
  int dp_rank() const { return dp_rank_; }
  /// Slot i's whole optimizer state (master is null without fp32 masters). Valid on dp rank 0 between
  /// gather_state() and release_gathered_state(); on every rank before shard_optimizer_state().
  struct state_view {
    const G* m = nullptr;
    const G* v = nullptr;
    const G* master = nullptr;
  };
  /// ZeRO-1: assembles the moments (and masters) of the dp-synchronised slots on dp rank 0 from the dp
  /// shards, bucket by bucket (collective over dp). Without ZeRO every slot holds its whole state already.
  void gather_state() {
    materialise_values();
    if (!zero1_ || shard_pieces_.empty()) return;
    const std::size_t n = dp_rank_ == 0 ? static_cast<std::size_t>(arena_n_) : 0;
    auto gather = [&](const std::vector<G>& shard, std::vector<G>& full) {
      full.assign(n, 0);
      for (const bucket& b : buckets_)
        dp().gather_v(shard.data() + b.shard_off, dp_rank_ == 0 ? full.data() + b.offset : nullptr, b.part, 0);
    };
    gather(m_shard_, full_m_);
    gather(v_shard_, full_v_);
    if constexpr (!std::is_same_v<T, G>) gather(master_shard_, full_master_);
  }
  void release_gathered_state() {
    drop_values();
    std::vector<G>().swap(full_m_);
    std::vector<G>().swap(full_v_);
    std::vector<G>().swap(full_master_);
  }
  state_view slot_state(std::size_t i) const {
    const auto& s = store_.slots[i];
    if (zero1_ && !shard_pieces_.empty() && !replicated_[i]) {
      if (full_m_.empty()) return {};
      return {full_m_.data() + s.grad_offset, full_v_.data() + s.grad_offset,
              full_master_.empty() ? nullptr : full_master_.data() + s.grad_offset};
    }
    return {s.m.data(), s.v.data(), s.master.empty() ? nullptr : s.master.data()};
  }

  int global_batch() const { return B_; }
  /// Peak bytes of activations (saved for the backward, and in flight) held by this rank so far.
  std::int64_t peak_activation_bytes() const { return peak_activation_bytes_; }
  param_store<T>& store() { return store_; }
  /// Whether this rank is the one owner of slot i's elements (dp rank 0, tp rank 0 for tp-replicated
  /// slots, the first pipeline holder of a replicated stage): the rule of the norm and of exports.
  const std::vector<bool>& owners() const { return counts_in_norm_; }
  const model_tensors& tensors() const { return tensors_; }

 private:
  // ---- data ---------------------------------------------------------------------------------------
  void load_batch(int k) {
    const std::int64_t per_dp = B_ / pd_.dp;
    data_.fill(k, B_, dp_rank_ * per_dp, per_dp, inputs_.data(), targets_.data());
  }
  mb_state<T>& state(int g, int j) {
    auto& p = states_[{g, j}];
    if (!p) {
      if (!free_.empty()) {
        p = std::move(free_.back());
        free_.pop_back();
      } else {
        p = std::make_unique<mb_state<T>>();
      }
      const int gm = pd_.global_microbatch(g, j);
      p->tokens = inputs_.data() + static_cast<std::int64_t>(gm) * d_.R;
      p->targets = targets_.data() + static_cast<std::int64_t>(gm) * d_.R;
      p->deferred.clear();
      p->loss_sum = 0;
    }
    return *p;
  }
  void release(int g, int j) {
    auto it = states_.find({g, j});
    free_.push_back(std::move(it->second));
    states_.erase(it);
  }
  chunk_t& chunk_at(int g) { return *chunks_[static_cast<std::size_t>(chunk_of_stage_[static_cast<std::size_t>(g)])]; }

  // ---- pipeline program ----------------------------------------------------------------------------------
  /// Forward-only passes (evaluation, sampling) send every activation with this tag.
  static constexpr int forward_only_tag = 7;
  Comm& dp() { return mc_.along(axes::dp); }
  /// The tag of a training program's message to `recv_stage` (microbatch mb, forward or backward).
  int tag(int recv_stage, int mb, bool fwd) const {
    return ((recv_stage * (pd_.schedule.microbatches + 1) + mb) * 2 + (fwd ? 0 : 1)) % 32000;
  }
  void run_program() {
    Comm& pp = mc_.along(axes::pp);
    const std::int64_t n = d_.Rl * d_.C;
    const auto count = static_cast<std::size_t>(n);
    const G scale = static_cast<G>(1.0 / (static_cast<double>(B_) * d_.T));
    for (std::size_t idx = 0; idx < prog_.size(); ++idx) {
      const action& a = prog_[idx];
      for (int pi = 0; pi < num_parts(a); ++pi) {
        const action x = part(a, pi);
        chunk_t& c = chunk_at(x.stage);
        mb_state<T>& st = state(x.stage, x.mb);
        switch (x.kind) {
          case op::F:
            c.forward(st);
            if (c.last()) loss_local_ += st.loss_sum;
            else if (local_next(x.stage)) {  // the next stage runs here too (V shapes): hand over
              auto& nx = state(x.stage + 1, x.mb);
              nx.xs.resize(1);
              nx.xs[0] = st.xs.back();
            }
            break;
          case op::B:
          case op::I:
            c.backward(st, x.kind == op::I, scale);
            if (!c.first() && local_prev(x.stage)) state(x.stage - 1, x.mb).dy = st.dx;
            break;
          case op::W:
            c.weight_backward(st);
            break;
          default: break;
        }
      }
      std::optional<prof::scope> p_comm;
      if (is_comm(a.kind)) p_comm.emplace("pipeline send/recv");
      switch (a.kind) {
        case op::send_f: {
          auto& st = state(a.stage, a.mb);
          pp.send(st.xs.back().data(), count, a.peer, tag(a.stage + 1, a.mb, true));
          break;
        }
        case op::recv_f: {
          auto& st = state(a.stage, a.mb);
          st.xs.resize(1);
          resize(st.xs[0], n);
          pp.recv(st.xs[0].data(), count, a.peer, tag(a.stage, a.mb, true));
          break;
        }
        case op::send_b: {
          auto& st = state(a.stage, a.mb);
          pp.send(st.dx.data(), count, a.peer, tag(a.stage - 1, a.mb, false));
          break;
        }
        case op::recv_b: {
          auto& st = state(a.stage, a.mb);
          resize(st.dy, n);
          pp.recv(st.dy.data(), count, a.peer, tag(a.stage, a.mb, false));
          break;
        }
        default: break;
      }
      p_comm.reset();
      // activation accounting: the bytes of every microbatch state held (live, and kept for reuse)
      std::int64_t live = 0;
      for (const auto& [key, st] : states_) live += st->bytes();
      for (const auto& st : free_) live += st->bytes();
      peak_activation_bytes_ = std::max(peak_activation_bytes_, live);
      // free a microbatch's state once nothing of it is left: after its last backward part and send
      after_action(idx);
    }
  }
  bool local_next(int g) const {
    return !is_last_stage(pd_.schedule, g) && stage_rank(pd_.schedule, g + 1) == pp_rank_;
  }
  bool local_prev(int g) const {
    return !is_first_stage(pd_.schedule, g) && stage_rank(pd_.schedule, g - 1) == pp_rank_;
  }
  void after_action(std::size_t idx) {
    for (int sl : launch_after_[idx]) launch_sync(sl);
    for (auto [g, j] : release_after_[idx])
      if (states_.count({g, j})) release(g, j);
  }

  // ---- forward-only passes (evaluation, sampling): one microbatch at a time through the stages in order -----
  /// Runs microbatches [0, count) of the loaded batch forward; on_last(st) sees each one on the ranks
  /// of its last stage. Returns this rank's summed token loss.
  template <class F>
  double forward_microbatches(int count, F&& on_last) {
    Comm& pp = mc_.along(axes::pp);
    const auto n = static_cast<std::size_t>(d_.Rl * d_.C);
    double local = 0;
    const bool chimera = pd_.schedule.kind == schedule_kind::chimera && pd_.pp > 1;
    const int S = chimera ? pd_.pp : num_stages(pd_.schedule);
    std::vector<T> carry;
    for (int gm = 0; gm < count; ++gm) {
      for (int g = 0; g < S; ++g) {
        if (stage_rank(pd_.schedule, g) != pp_rank_) continue;
        chunk_t& c = chunk_at(g);
        mb_state<T> st;
        st.tokens = inputs_.data() + static_cast<std::int64_t>(gm) * d_.R;
        st.targets = targets_.data() + static_cast<std::int64_t>(gm) * d_.R;
        if (!c.first()) {
          st.xs.resize(1);
          if (stage_rank(pd_.schedule, g - 1) == pp_rank_) {
            st.xs[0] = carry;
          } else {
            resize(st.xs[0], static_cast<std::int64_t>(n));
            pp.recv(st.xs[0].data(), n, stage_rank(pd_.schedule, g - 1), forward_only_tag);
          }
        }
        c.forward(st);
        if (c.last()) {
          local += st.loss_sum;
          on_last(st);
        } else if (stage_rank(pd_.schedule, g + 1) == pp_rank_) {
          carry = st.xs.back();
        } else {
          pp.send(st.xs.back().data(), n, stage_rank(pd_.schedule, g + 1), forward_only_tag);
        }
      }
    }
    return local;
  }
  double forward_only(int k) {
    load_batch(k);
    loss_local_ = forward_microbatches(pd_.schedule.microbatches, [](mb_state<T>&) {});
    return global_loss();
  }

 public:
  /// Appends n tokens to `seq`, each predicted from the last `seq` (model) tokens: greedy when temperature
  /// is 0, else drawn from softmax(logits / temperature) by a generator seeded with `seed`. Every rank
  /// calls it and gets the same tokens (the last stage's tp ranks gather the vocabulary slices of the
  /// logits; the choice is made on one rank and all-reduced).
  std::vector<std::int32_t> generate(std::vector<std::int32_t> seq, int n, double temperature, std::uint64_t seed) {
    check(!seq.empty(), "generate: the prompt must hold at least one token");
    std::uint64_t rng = init_detail::splitmix64(seed ^ 0x5a3b1e9d2c4f6a81ull);
    const std::int64_t Tn = d_.T, V = d_.V;
    std::vector<float> row, full;
    for (int t = 0; t < n; ++t) {
      const std::int64_t start = std::max<std::int64_t>(0, static_cast<std::int64_t>(seq.size()) - Tn);
      const std::int64_t len = static_cast<std::int64_t>(seq.size()) - start;
      for (std::size_t i = 0; i < inputs_.size(); ++i) {
        const std::int64_t p = static_cast<std::int64_t>(i) % Tn;
        inputs_[i] = p < len ? seq[static_cast<std::size_t>(start + p)] : 0;
        targets_[i] = 0;
      }
      row.clear();
      forward_microbatches(1, [&](mb_state<T>& st) {  // sequence 0 of microbatch 0, position len - 1
        row.resize(static_cast<std::size_t>(V));
        for (std::int64_t j = 0; j < V; ++j)
          row[static_cast<std::size_t>(j)] = static_cast<float>(st.logits[static_cast<std::size_t>((len - 1) * V + j)]);
      });
      int tok = -1;
      if (!row.empty()) {  // every tp rank of the last stage holds its vocabulary slice
        full.assign(tp_rank_ == 0 ? static_cast<std::size_t>(V * pd_.tp) : 0, 0.0f);
        mc_.along(axes::tp).gather(row.data(), full.data(), static_cast<std::size_t>(V), 0);
        if (tp_rank_ == 0 && dp_rank_ == 0) tok = pick_token(full, temperature, rng);
      }
      tok = all_reduce_value(mc_.world(), static_cast<std::int32_t>(tok), reduce_op::max);
      seq.push_back(tok);
    }
    return seq;
  }

 private:
  int pick_token(const std::vector<float>& logits, double temperature, std::uint64_t& rng) const {
    const int V = pd_.model.vocab;  // padded columns are never chosen
    int best = 0;
    for (int j = 1; j < V; ++j)
      if (logits[static_cast<std::size_t>(j)] > logits[static_cast<std::size_t>(best)]) best = j;
    if (temperature <= 0) return best;
    std::vector<double> p(static_cast<std::size_t>(V));
    double z = 0;
    for (int j = 0; j < V; ++j)
      z += p[static_cast<std::size_t>(j)] =
          std::exp((logits[static_cast<std::size_t>(j)] - logits[static_cast<std::size_t>(best)]) / temperature);
    rng = init_detail::splitmix64(rng);
    double u = (static_cast<double>(rng >> 11) * (1.0 / 9007199254740992.0)) * z;
    for (int j = 0; j < V; ++j) {
      u -= p[static_cast<std::size_t>(j)];
      if (u < 0) return j;
    }
    return best;
  }
  double global_loss() {
    double v = tp_rank_ == 0 ? loss_local_ : 0.0;
    return all_reduce_value(mc_.world(), v) / (static_cast<double>(B_) * d_.T);
  }

  // ---- gradient synchronisation ------------------------------------------------------------------------
  // Slots held by one pipeline rank are all-reduced over dp in buckets: consecutive slots of the gradient
  // arena, about --bucket-mb each, launched (non-blocking) as soon as every slot in them is final, so
  // the reduction overlaps the rest of the backward. Slots shared by several pipeline ranks (tied
  // embeddings, Chimera's two copies) are summed over (dp × those ranks) after the program.
  struct bucket {
    std::vector<std::size_t> slots;
    std::int64_t offset = 0, count = 0;  ///< range of the gradient (and value) arena
    block_partition part;                ///< ZeRO: each dp rank's part of the bucket
    std::int64_t shard_off = 0;          ///< ZeRO: where this rank's part starts in the shard buffers
  };
  struct shard_piece {
    std::size_t slot;
    std::int64_t arena_off, shard_off, n;  ///< elements [arena_off, +n) of the arenas ↔ [shard_off, +n) of the state shards
  };
  /// Which pipeline ranks hold a slot: the holders of every model stage that uses it.
  std::vector<int> slot_holders(const std::string& name) const {
    std::set<int> r;
    auto add_stage = [&](int ms) {
      for (int x : stage_holders(pd_, ms)) r.insert(x);
    };
    const int last = pd_.model_stages - 1;
    if (name == "embed") {
      add_stage(0);
      if (pd_.model.tied_embeddings) add_stage(last);
    } else if (name == "pos") {
      add_stage(0);
    } else if (name.rfind("final_norm", 0) == 0 || name == "head") {
      add_stage(last);
    } else if (name.rfind("layers.", 0) == 0) {
      const int layer = std::stoi(name.substr(7));
      for (int ms = 0; ms < pd_.model_stages; ++ms)
        if (layer >= pd_.layer_begin[ms] && layer < pd_.layer_begin[ms + 1]) add_stage(ms);
    }
    return {r.begin(), r.end()};
  }

  void setup_sync() {
    // every distinct set of ≥ 2 pipeline ranks that share parameters gets a communicator over
    // (dp × those pp ranks) for each tp coordinate; built collectively in the same order everywhere
    std::set<std::vector<int>> sets;
    for (int ms = 0; ms < pd_.model_stages; ++ms) {
      auto h = stage_holders(pd_, ms);
      if (h.size() > 1) sets.insert(h);
    }
    {
      std::set<int> e;
      for (int x : stage_holders(pd_, 0)) e.insert(x);
      if (pd_.model.tied_embeddings)
        for (int x : stage_holders(pd_, pd_.model_stages - 1)) e.insert(x);
      if (e.size() > 1) sets.insert(std::vector<int>(e.begin(), e.end()));
    }
    for (const auto& s : sets) {
      const bool member = std::find(s.begin(), s.end(), pp_rank_) != s.end();
      replica_comms_.emplace(s, mc_.world().split(member ? tp_rank_ : no_color, world_rank_));
    }
    const std::size_t n = store_.slots.size();
    counts_in_norm_.assign(n, false);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& s = store_.slots[i];
      const auto& h = holders_[i];
      check(!h.empty() && std::find(h.begin(), h.end(), pp_rank_) != h.end(), "tessera internal: slot ",
            s.layout.name, " has no holder");
      if (replicated_[i]) replica_of_[i] = h;
      counts_in_norm_[i] = dp_rank_ == 0 && h.front() == pp_rank_ &&
                           (s.layout.role == tp_role::sharded || tp_rank_ == 0);
    }
    for (std::size_t i = 0; i < n; ++i)
      if (replicated_[i]) replicated_order_.push_back(i);
    std::sort(replicated_order_.begin(), replicated_order_.end(), [&](std::size_t a, std::size_t b) {
      return store_.slots[a].layout.name < store_.slots[b].layout.name;
    });
    // when each slot's gradient is final: after the last backward part of every chunk using it
    launch_after_.assign(prog_.size(), {});
    release_after_.assign(prog_.size(), {});
    std::map<int, std::size_t> last_bw;  // chunk → index of its last backward action
    std::map<std::pair<int, int>, std::size_t> last_use;
    for (std::size_t idx = 0; idx < prog_.size(); ++idx) {
      const action& a = prog_[idx];
      for (int pi = 0; pi < num_parts(a); ++pi) {
        const action x = part(a, pi);
        if (x.kind == op::B || x.kind == op::W || x.kind == op::I)
          last_bw[chunk_of_stage_[static_cast<std::size_t>(x.stage)]] = idx;
        last_use[{x.stage, x.mb}] = idx;
      }
      if (is_comm(a.kind)) last_use[{a.stage, a.mb}] = idx;
    }
    for (auto [key, idx] : last_use) release_after_[idx].push_back(key);
    // a slot used by several chunks of this rank (tied embedding with pp = 1) waits for all of them
    std::vector<std::size_t> final_at(n, 0);
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      const std::size_t at = last_bw.count(static_cast<int>(c)) ? last_bw[static_cast<int>(c)] : prog_.size() - 1;
      for (std::size_t i : slots_of_chunk(c)) final_at[i] = std::max(final_at[i], at);
    }
    // buckets over the dp-synchronised slots, in arena order
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i)
      if (!replicated_[i]) order.push_back(i);
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return store_.slots[a].grad_offset < store_.slots[b].grad_offset; });
    const std::int64_t cap = std::max<std::int64_t>(1, static_cast<std::int64_t>(o_.bucket_mb * 1024 * 1024 / sizeof(G)));
    std::string prev_unit;
    for (std::size_t i : order) {
      // ZeRO-2/3 reduce and gather unit by unit (the embedding, each layer, the head): one bucket per unit
      const std::string unit = zero2_ ? unit_of(store_.slots[i].layout.name) : std::string();
      if (buckets_.empty() || (zero2_ ? unit != prev_unit : buckets_.back().count >= cap)) {
        buckets_.emplace_back();
        buckets_.back().offset = store_.slots[i].grad_offset;
      }
      buckets_.back().slots.push_back(i);
      buckets_.back().count += store_.slots[i].numel();
      prev_unit = unit;
    }
    if (buckets_.empty()) zero1_ = zero2_ = zero3_ = false;  // every slot shared by pipeline ranks: nothing to shard
    bucket_of_slot_.assign(n, -1);
    for (std::size_t bi = 0; bi < buckets_.size(); ++bi)
      for (std::size_t i : buckets_[bi].slots) bucket_of_slot_[i] = static_cast<int>(bi);
    chunk_of_bucket_.assign(buckets_.size(), -1);
    for (std::size_t c = 0; c < chunks_.size(); ++c)
      for (std::size_t i : slots_of_chunk(c))
        if (bucket_of_slot_[i] >= 0 && chunk_of_bucket_[static_cast<std::size_t>(bucket_of_slot_[i])] < 0)
          chunk_of_bucket_[static_cast<std::size_t>(bucket_of_slot_[i])] = static_cast<int>(c);
    for (bucket& b : buckets_) b.part = block_partition::near_equal(b.count, pd_.dp);  // ZeRO: dp rank order
    for (std::size_t bi = 0; bi < buckets_.size(); ++bi) {
      std::size_t at = 0;
      for (std::size_t i : buckets_[bi].slots) at = std::max(at, final_at[i]);
      if (!prog_.empty()) launch_after_[at].push_back(static_cast<int>(bi));
    }
  }
  std::vector<std::size_t> slots_of_chunk(std::size_t c) const {
    // slots whose holders' model stages include this chunk's model stage
    std::vector<std::size_t> out;
    const int ms = chunks_[c]->stage();
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      const std::string& nm = store_.slots[i].layout.name;
      bool uses = false;
      if (nm == "embed") uses = ms == 0 || (pd_.model.tied_embeddings && ms == pd_.model_stages - 1);
      else if (nm == "pos") uses = ms == 0;
      else if (nm.rfind("final_norm", 0) == 0 || nm == "head") uses = ms == pd_.model_stages - 1;
      else if (nm.rfind("layers.", 0) == 0) {
        const int layer = std::stoi(nm.substr(7));
        uses = layer >= pd_.layer_begin[ms] && layer < pd_.layer_begin[ms + 1];
      }
      if (uses) out.push_back(i);
    }
    return out;
  }
  void tp_reduce_if_needed(std::size_t i) {
    auto& s = store_.slots[i];
    if (d_.sp && s.layout.role == tp_role::replicated)
      all_reduce(mc_.along(axes::tp), s.grad.data(), s.grad.data(), s.grad.size());
  }
  /// Non-blocking dp all-reduce of a bucket whose gradients are final (overlaps the rest of the backward).
  void launch_sync(int bi) {
    if (launched_[static_cast<std::size_t>(bi)]) return;
    launched_[static_cast<std::size_t>(bi)] = true;
    if (zero2_) return;  // reduced microbatch by microbatch in grad_end
    const bucket& b = buckets_[static_cast<std::size_t>(bi)];
    for (std::size_t i : b.slots) tp_reduce_if_needed(i);
    if (pd_.dp == 1) return;
    G* p = store_.grad_arena.data() + b.offset;
    if (zero1_) {  // ZeRO: each dp rank receives the sum of its part only, in place
      pending_.push_back(dp().ireduce_scatter_v(p, p + b.part.displ(dp_rank_), b.part));
      return;
    }
    pending_.push_back(dp().iall_reduce(p, p, static_cast<std::size_t>(b.count)));
  }
  void finish_sync() {
    for (std::size_t bi = 0; bi < buckets_.size(); ++bi) launch_sync(static_cast<int>(bi));
    wait_all(pending_);
    // replicas shared by several pipeline ranks: blocking, in one canonical (name) order on every member
    for (std::size_t i : replicated_order_) {
      tp_reduce_if_needed(i);
      auto& s = store_.slots[i];
      replica_comms_.at(replica_of_.at(i)).all_reduce(s.grad.data(), s.grad.data(), s.grad.size());
    }
  }

  // ---- ZeRO-2/3 ---------------------------------------------------------------------------------------
  /// The unit of a slot: "in" (embedding, positions), "layers.<i>", or "out" (final norm, head).
  static std::string unit_of(const std::string& name) {
    if (name == "embed" || name == "pos") return "in";
    if (name.rfind("layers.", 0) == 0) return name.substr(0, name.find('.', 7));
    return "out";
  }
  G* shard_grad(const shard_piece& p) {
    return zero2_ ? g_shard_.data() + p.shard_off : store_.grad_arena.data() + p.arena_off;
  }
  template <class E>
  static void bind(buffer_view<E>& v, E* p, std::int64_t n) {
    v = {p, p ? static_cast<std::size_t>(n) : 0};
  }
  /// ZeRO-2/3 set-up, once the optimizer state is sharded: gradients of the dp-synchronised slots live
  /// only as this rank's shard (and as a unit's transient buffer during a microbatch's backward); with
  /// ZeRO-3 their parameters too. Slots shared by pipeline ranks keep whole buffers of their own.
  void shard_gradients_and_values(std::int64_t total) {
    g_shard_.assign(static_cast<std::size_t>(total), G(0));
    std::int64_t nrep = 0;
    for (std::size_t i = 0; i < store_.slots.size(); ++i)
      if (replicated_[i]) nrep += store_.slots[i].numel();
    rep_grads_.assign(static_cast<std::size_t>(nrep), G(0));
    if (zero3_) {
      rep_values_.resize(static_cast<std::size_t>(nrep));
      p_shard_.resize(static_cast<std::size_t>(total));
      for (const shard_piece& sp : shard_pieces_)
        std::copy_n(store_.value_arena.data() + sp.arena_off, sp.n, p_shard_.data() + sp.shard_off);
    }
    std::int64_t off = 0;
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      auto& s = store_.slots[i];
      if (replicated_[i]) {
        bind(s.grad, rep_grads_.data() + off, s.numel());
        if (zero3_) {
          std::copy_n(s.value.data(), s.numel(), rep_values_.data() + off);
          bind(s.value, rep_values_.data() + off, s.numel());
        }
        off += s.numel();
      } else {
        bind(s.grad, static_cast<G*>(nullptr), 0);
        if (zero3_) bind(s.value, static_cast<T*>(nullptr), 0);
      }
    }
    std::vector<G>().swap(store_.grad_arena);
    if (zero3_) std::vector<T>().swap(store_.value_arena);
    units_ = std::vector<unit_state>(buckets_.size());
    hooks_.grad_begin = [this](const std::vector<int>& ids) {
      for (int b : buckets_of(ids)) {
        unit_state& u = units_[static_cast<std::size_t>(b)];
        if (u.gref++ > 0) continue;
        const bucket& bk = buckets_[static_cast<std::size_t>(b)];
        u.grads.assign(static_cast<std::size_t>(bk.count), G(0));
        for (std::size_t i : bk.slots)
          bind(store_.slots[i].grad, u.grads.data() + (store_.slots[i].grad_offset - bk.offset), store_.slots[i].numel());
      }
    };
    hooks_.grad_end = [this](const std::vector<int>& ids) {
      for (int b : buckets_of(ids)) {
        unit_state& u = units_[static_cast<std::size_t>(b)];
        if (--u.gref > 0) continue;
        reduce_unit(b);
        for (std::size_t i : buckets_[static_cast<std::size_t>(b)].slots) bind(store_.slots[i].grad, static_cast<G*>(nullptr), 0);
        std::vector<G>().swap(u.grads);
      }
    };
    if (zero3_) {
      hooks_.acquire = [this](const std::vector<int>& ids, int dir) {
        const auto bs = buckets_of(ids);
        for (int b : bs) {
          unit_state& u = units_[static_cast<std::size_t>(b)];
          if (u.vref++ == 0) make_resident(b);
        }
        if (bs.empty()) return;
        // prefetch the unit this chunk uses next, so its gather overlaps this unit's compute
        const int next = dir > 0 ? bs.back() + 1 : bs.front() - 1;
        if (next >= 0 && next < static_cast<int>(buckets_.size()) &&
            chunk_of_bucket_[static_cast<std::size_t>(next)] == chunk_of_bucket_[static_cast<std::size_t>(bs.front())])
          start_gather(next);
      };
      hooks_.release = [this](const std::vector<int>& ids) {
        for (int b : buckets_of(ids)) {
          unit_state& u = units_[static_cast<std::size_t>(b)];
          if (--u.vref == 0) free_unit(b);
        }
      };
    }
    for (auto& c : chunks_) c->set_hooks(&hooks_);
  }
  /// The distinct buckets (units) of slots, in arena order; shared slots have none.
  std::vector<int> buckets_of(const std::vector<int>& ids) const {
    std::vector<int> out;
    for (int i : ids) {
      const int b = bucket_of_slot_[static_cast<std::size_t>(i)];
      if (b >= 0 && std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  /// A microbatch's gradient of one unit, summed over dp, added to this rank's shard (tp-replicated
  /// slots under sequence parallelism are first summed over tp, as the whole-gradient path does).
  void reduce_unit(int b) {
    const bucket& bk = buckets_[static_cast<std::size_t>(b)];
    for (std::size_t i : bk.slots) tp_reduce_if_needed(i);
    unit_state& u = units_[static_cast<std::size_t>(b)];
    const int mine = bk.part.count(dp_rank_);
    rs_tmp_.resize(static_cast<std::size_t>(mine));
    dp().reduce_scatter_v(u.grads.data(), rs_tmp_.data(), bk.part);
    G* g = g_shard_.data() + bk.shard_off;
    for (int j = 0; j < mine; ++j) g[j] += rs_tmp_[static_cast<std::size_t>(j)];
  }
  /// ZeRO-3: start gathering unit b's parameters (non-blocking) unless they are here or on their way.
  void start_gather(int b) {
    unit_state& u = units_[static_cast<std::size_t>(b)];
    if (u.resident || u.gathering) return;
    const bucket& bk = buckets_[static_cast<std::size_t>(b)];
    u.values.resize(static_cast<std::size_t>(bk.count));
    u.pending = dp().iall_gather_v(p_shard_.data() + bk.shard_off, u.values.data(), bk.part);
    u.gathering = true;
  }
  void make_resident(int b) {
    unit_state& u = units_[static_cast<std::size_t>(b)];
    if (u.resident) return;
    start_gather(b);
    u.pending.wait();
    u.gathering = false;
    u.resident = true;
    const bucket& bk = buckets_[static_cast<std::size_t>(b)];
    for (std::size_t i : bk.slots)
      bind(store_.slots[i].value, u.values.data() + (store_.slots[i].grad_offset - bk.offset), store_.slots[i].numel());
  }
  void free_unit(int b) {
    unit_state& u = units_[static_cast<std::size_t>(b)];
    if (u.gathering) u.pending.wait();
    u.gathering = false;
    u.resident = false;
    for (std::size_t i : buckets_[static_cast<std::size_t>(b)].slots) bind(store_.slots[i].value, static_cast<T*>(nullptr), 0);
    std::vector<T>().swap(u.values);
  }
  /// ZeRO-3: completes and drops prefetches no one used (before the shards change).
  void drain_prefetch() {
    for (std::size_t b = 0; b < units_.size(); ++b)
      if (units_[b].vref == 0 && (units_[b].gathering || units_[b].resident))
        free_unit(static_cast<int>(b));
  }
  /// ZeRO-3: every parameter whole, for a checkpoint or an export (collective over dp).
  void materialise_values() {
    if (!zero3_ || shard_pieces_.empty()) return;
    drain_prefetch();
    full_values_.assign(static_cast<std::size_t>(arena_n_), T{});
    for (const bucket& b : buckets_) dp().all_gather_v(p_shard_.data() + b.shard_off, full_values_.data() + b.offset, b.part);
    for (const bucket& b : buckets_)
      for (std::size_t i : b.slots) bind(store_.slots[i].value, full_values_.data() + store_.slots[i].grad_offset, store_.slots[i].numel());
  }
  void drop_values() {
    if (!zero3_ || full_values_.empty()) return;
    for (const bucket& b : buckets_)
      for (std::size_t i : b.slots) bind(store_.slots[i].value, static_cast<T*>(nullptr), 0);
    std::vector<T>().swap(full_values_);
  }

  plan_desc pd_;
  std::vector<action> prog_;
  train_options o_;
  mesh_comms<Comm>& mc_;
  const token_data& data_;
  int dp_rank_ = 0, pp_rank_ = 0, tp_rank_ = 0, world_rank_ = 0;
  int B_ = 1;
  chunk_dims d_;
  model_tensors tensors_;
  param_store<T> store_;
  std::vector<std::unique_ptr<chunk_t>> chunks_;
  std::vector<int> chunk_of_stage_;
  std::map<std::pair<int, int>, std::unique_ptr<mb_state<T>>> states_;
  std::vector<std::unique_ptr<mb_state<T>>> free_;
  std::vector<std::int32_t> inputs_, targets_;
  double loss_local_ = 0;
  std::int64_t adam_step_ = 0;
  std::int64_t peak_activation_bytes_ = 0;
  // sync
  std::map<std::vector<int>, Comm> replica_comms_;
  std::map<std::size_t, std::vector<int>> replica_of_;
  std::vector<bool> counts_in_norm_, replicated_, launched_;
  std::vector<std::vector<int>> holders_;  ///< per slot: the pipeline ranks that hold it
  std::vector<std::size_t> replicated_order_;
  std::vector<bucket> buckets_;
  bool zero1_ = false;  ///< ZeRO stage >= 1 with dp > 1: optimizer state sharded over dp
  std::int64_t arena_n_ = 0;  ///< elements of the value and gradient arenas (whole, before any ZeRO sharding)
  bool zero2_ = false;  ///< ZeRO stage >= 2 with dp > 1: gradients sharded too
  bool zero3_ = false;  ///< ZeRO stage 3 with dp > 1: parameters sharded too
  std::vector<int> bucket_of_slot_, chunk_of_bucket_;
  struct unit_state {
    std::vector<T> values;  ///< ZeRO-3: the unit's gathered parameters while in use
    std::vector<G> grads;   ///< ZeRO-2/3: the unit's gradient of the microbatches in flight
    int vref = 0, gref = 0;
    bool resident = false;
    request pending;          ///< ZeRO-3: a prefetch of values
    bool gathering = false;   ///< whether `pending` is in flight
  };
  std::vector<unit_state> units_;
  std::vector<G> g_shard_;          ///< ZeRO-2/3: this rank's shard of the dp-reduced gradients
  std::vector<T> p_shard_;          ///< ZeRO-3: this rank's shard of the parameters
  std::vector<T> rep_values_;       ///< ZeRO-3: values of slots shared by pipeline ranks (never sharded)
  std::vector<G> rep_grads_;        ///< ZeRO-2/3: their gradients
  std::vector<T> full_values_;      ///< ZeRO-3: all parameters, for a checkpoint or an export
  std::vector<G> rs_tmp_;
  param_hooks hooks_;
  std::vector<shard_piece> shard_pieces_;
  std::vector<G> m_shard_, v_shard_, master_shard_;
  std::vector<G> full_m_, full_v_, full_master_;  ///< gather_state(): whole state on dp rank 0
  std::vector<std::vector<int>> launch_after_;
  std::vector<std::vector<std::pair<int, int>>> release_after_;
  std::vector<request> pending_;
};

}  // namespace tessera

