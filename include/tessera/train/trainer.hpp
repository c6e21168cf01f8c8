// tessera/train/trainer.hpp — one rank's training engine for ts::train<plan>: it builds the rank's
// chunks and parameter slots and runs steps, evaluations and sampling by composing the components:
//
//   pipeline_executor   the rank's program of actions (training step, or forward-only passes)
//   gradient_sync       dp buckets reduced while the backward runs; shared slots summed after it
//   zero_state          optimizer state, gradients and parameters under ZeRO 1–3
//   optim/adamw.hpp     learning rate, clipping, AdamW's per-step scalars (ops::sum_of_squares: the norm)
//   memory_model.hpp    predicted state and activation bytes (logged beside the measurements)
//   sampling.hpp        the next token from a row of logits
//
// Every message goes through the communicator concept (comm/communicator.hpp): `Comm` is mpi_comm in a
// training program and loopback_comm in one-process tests. Every buffer belongs to the system `System`
// (core/host_system.hpp): host_system here, cuda_system next; the host reads the system's memory only
// through host mirrors (the batch's tokens go in, a row of logits and the loss come out).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/mesh_comms.hpp"
#include "tessera/model/transformer.hpp"
#include "tessera/ops/all.hpp"
#include "tessera/optim/adamw.hpp"
#include "tessera/schedule/schedule.hpp"
#include "tessera/train/data.hpp"
#include "tessera/train/grad_buckets.hpp"
#include "tessera/train/grad_sync.hpp"
#include "tessera/train/memory_model.hpp"
#include "tessera/train/options.hpp"
#include "tessera/train/pipeline_executor.hpp"
#include "tessera/train/plan.hpp"
#include "tessera/train/sampling.hpp"
#include "tessera/train/slot_sharing.hpp"
#include "tessera/train/zero_state.hpp"

namespace tessera {

/// The sizes of one rank's chunks: microbatch rows, local heads, ffn and vocabulary under tp.
/// Throws usage_error when the batch does not split over dp × microbatches, or the rows over tp
/// under sequence parallelism.
inline chunk_dims chunk_dims_of(const plan_desc& pd, int head_dim, int batch, int tp_rank) {
  const model_desc& m = pd.model;
  const int M = pd.schedule.microbatches;
  if (batch % (pd.dp * M) != 0)
    throw usage_error(cat("--batch ", batch, " not divisible by dp (", pd.dp, ") x microbatches (", M, ")"));
  chunk_dims d;
  d.seqs = batch / (pd.dp * M);
  d.seq_len = m.seq;
  d.rows = d.seqs * d.seq_len;
  d.tp = pd.tp;
  d.tp_rank = tp_rank;
  d.sp = pd.policy.sequence_parallel && pd.tp > 1;
  if (d.sp && d.rows % pd.tp != 0)
    throw usage_error(cat("sequence parallel: rows per microbatch (", d.rows, ") not divisible by tp (", pd.tp, ")"));
  d.local_rows = d.sp ? d.rows / pd.tp : d.rows;
  d.recompute = pd.policy.recompute;
  d.hidden = m.hidden;
  d.head_dim = head_dim;
  d.q_heads = m.heads / pd.tp;
  d.kv_heads = m.kv_heads / pd.tp;
  d.ffn = m.ffn / pd.tp;
  d.vocab_rows = pd.vocab_padded / pd.tp;
  d.vocab_begin = tp_rank * d.vocab_rows;
  d.vocab = m.vocab;
  d.qkv_cols = (d.q_heads + 2 * d.kv_heads) * head_dim;
  d.up_cols = (m.mlp == mlp::swiglu ? 2 : 1) * d.ffn;
  return d;
}

template <class T, int D, communicator Comm, class System = host_system>
class trainer {
 public:
  using A = ops::acc_t<T>;
  using G = ops::grad_t<T>;
  using value_type = T;
  using system = System;
  using chunk_t = chunk<T, D, Comm, System>;
  using state_view = typename zero_state<T, Comm, System>::state_view;

  trainer(const plan_desc& pd, std::vector<action> program, const train_options& o, mesh_comms<Comm>& mc,
          const token_data& data)
      : pd_(pd), program_(std::move(program)), adam_(adamw_of(o)), mc_(mc), data_(data), dp_rank_(mc.coord(axis::dp)),
        pp_rank_(mc.coord(axis::pp)), tp_rank_(mc.coord(axis::tp)),
        batch_(o.batch > 0 ? o.batch : pd.dp * pd.schedule.microbatches),
        d_(chunk_dims_of(pd, D, batch_, tp_rank_)), tensors_(make_model_tensors(pd.model, pd.vocab_padded)) {
    store_.sys = context_.system();  // every operator, copy and communicator of the step works on it
    mc.bind_compute(store_.sys);
    build_chunks();
    arrange_slots();
    // bf16 storage: fp32 master weights (the optimizer updates them; the bf16 values are their rounding)
    if constexpr (!std::is_same_v<T, G>)
      for (auto& s : store_.slots) s.master.assign(s.value.size(), 0);
    store_.initialise(tensors_, o.seed);
    for (auto& s : store_.slots) {
      s.m.assign(s.value.size(), 0);
      s.v.assign(s.value.size(), 0);
    }
    const bool per_unit = pd.policy.zero >= 2 && pd.dp > 1;  // ZeRO-2/3 reduce and gather unit by unit
    const auto cap = std::max<std::int64_t>(1, static_cast<std::int64_t>(o.bucket_mb * 1024 * 1024 / sizeof(G)));
    buckets_ = make_buckets(store_, shared_, per_unit, cap, pd.dp);
    zero_ = std::make_unique<zero_state<T, Comm, System>>(pd.policy.zero, store_, buckets_, shared_, mc.along(axes::dp),
                                                  mc.along(axes::tp), d_.sp);
    sync_ = std::make_unique<gradient_sync<T, Comm, System>>(store_, buckets_, mc.along(axes::dp), mc.along(axes::tp), d_.sp,
                                                     zero_->stage());
    sync_->set_launch_points(launch_points());
    if (zero_->stage() < 2 && pd.dp > 1) {  // ZeRO-2/3 install their own hooks (shard_optimizer_state)
      const param_hooks* h = sync_->launch_on_reports(reports_per_bucket());
      for (auto& c : chunks_) c->set_hooks(h);
    }
    group_shared_slots();
    std::vector<chunk_t*> by_stage(chunk_of_stage_.size(), nullptr);
    for (std::size_t g = 0; g < chunk_of_stage_.size(); ++g)
      if (chunk_of_stage_[g] >= 0) by_stage[g] = chunks_[static_cast<std::size_t>(chunk_of_stage_[g])].get();
    executor_ = std::make_unique<pipeline_executor<T, D, Comm, System>>(pd, pp_rank_, d_, mc.along(axes::pp), std::move(by_stage),
                                                                       store_.sys);
    inputs_.resize(static_cast<std::size_t>(batch_ / pd.dp * d_.seq_len));
    targets_.resize(inputs_.size());
    if constexpr (System::host_accessible) {
      executor_->set_batch(inputs_.data(), targets_.data());
    } else {
      resize(system_inputs_, static_cast<std::int64_t>(inputs_.size()));
      resize(system_targets_, static_cast<std::int64_t>(targets_.size()));
      executor_->set_batch(system_inputs_.data(), system_targets_.data());
    }
  }

  trainer(const trainer&) = delete;
  trainer& operator=(const trainer&) = delete;
  /// The communicators no longer order themselves with this trainer's stream (it is about to go).
  ~trainer() { mc_.bind_compute(System{}); }

  /// The system value the trainer's work is issued on (its own compute stream on a device).
  const System& compute_system() const { return store_.sys; }

  /// Mean token loss over batches [k0, k0 + count) without updating (forward only).
  double evaluate(int k0, int count) {
    const pipeline_program p = forward_only_program(pd_, pp_rank_, pd_.schedule.microbatches);
    double total = 0;
    for (int k = k0; k < k0 + count; ++k) {
      load_batch(k);
      total += global_loss(executor_->run(p, G(0), [](std::size_t) {}, [](auto&) {}, false));
    }
    return total / count;
  }

  struct step_result {
    double loss = 0, grad_norm = 0, lr = 0;
    bool skipped = false;
  };

  /// One optimizer step on batch k: the program (forward, backward, gradient reductions overlapped),
  /// the global gradient norm, and — unless it is not finite — AdamW with clipping fused in.
  /// @pre shard_optimizer_state() was called (after initialising or loading the parameters).
  step_result step(int k) {
    {
      const prof::scope p("zero gradients");
      zero_->zero_gradients();
    }
    load_batch(k);
    sync_->begin_step();
    const G scale = static_cast<G>(1.0 / (static_cast<double>(batch_) * d_.seq_len));
    const double loss = executor_->run(
        program_, scale, [this](std::size_t idx) { sync_->after_action(idx); }, [](auto&) {}, true);
    {
      const prof::scope p("dp gradient sync (wait) + replicas");
      sync_->finish();
    }
    step_result r;
    r.loss = global_loss(loss);
    r.grad_norm = global_grad_norm();
    r.lr = learning_rate(adam_, k);
    if (!std::isfinite(r.grad_norm)) {
      r.skipped = true;
      return r;
    }
    ++adam_step_;
    const auto p = step_params(adam_, r.lr, adam_step_, clip_scale(r.grad_norm, adam_.grad_clip));
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      if (zero_->optimizer_sharded() && !shared_[i]) continue;  // updated shard by shard below
      auto& s = store_.slots[i];
      ops::adamw_step(store_.sys, s.value.data(), s.master.empty() ? static_cast<G*>(nullptr) : s.master.data(),
                      s.grad.data(), s.m.data(), s.v.data(), s.numel(), p, s.layout.decay);
    }
    if (zero_->optimizer_sharded()) zero_->update(p);
    return r;
  }

  // ---- in-memory snapshots (snapshot.hpp): this rank's state as bytes, in this layout only -----------
  /// Bytes of this rank's training state (parameters, moments, masters; sharded as they are).
  std::size_t snapshot_bytes() {
    std::size_t n = 0;
    zero_->for_each_state_buffer([&](auto* p, std::size_t k) { n += k * sizeof(*p); });
    return n;
  }
  /// Copies the state to `dst` (snapshot_bytes() of host memory). @pre between steps.
  void copy_state_to(unsigned char* dst) {
    zero_->for_each_state_buffer([&](auto* p, std::size_t k) {
      using E = std::remove_cvref_t<decltype(*p)>;
      if constexpr (System::host_accessible) {
        std::memcpy(dst, p, k * sizeof(E));
      } else {
        std::vector<E> host(k);
        store_.sys.to_host(host.data(), p, static_cast<std::int64_t>(k));
        std::memcpy(dst, host.data(), k * sizeof(E));
      }
      dst += k * sizeof(E);
    });
  }
  /// Restores the state from `src` (n bytes, as copy_state_to wrote them in this layout) and the AdamW
  /// step. Returns false, changing nothing, when n is not this layout's size. @pre shard_optimizer_state().
  bool restore_state(const unsigned char* src, std::size_t n, std::int64_t adam_step) {
    if (n != snapshot_bytes()) return false;
    zero_->for_each_state_buffer([&](auto* p, std::size_t k) {
      using E = std::remove_cvref_t<decltype(*p)>;
      std::vector<E> host(k);
      std::memcpy(host.data(), src, k * sizeof(E));
      store_.sys.from_host(p, host.data(), static_cast<std::int64_t>(k));
      src += k * sizeof(E);
    });
    adam_step_ = adam_step;
    return true;
  }

  /// The next step's gradient norm is not finite on this rank (an injected fault: train/faults.hpp).
  void poison_gradient_norm() { poison_norm_ = true; }

  /// Bytes of parameters, gradients and optimizer state this rank holds.
  std::int64_t state_bytes() const { return zero_->state_bytes(); }
  /// The ZeRO formula for this rank's parameters (memory_model.hpp).
  double predicted_state_bytes() const {
    std::vector<std::int64_t> numel;
    for (const auto& s : store_.slots) numel.push_back(s.numel());
    return tessera::predicted_state_bytes(numel, shared_, pd_.dp, zero_->stage(), bytes_per_element());
  }
  /// The activation formula for this rank (memory_model.hpp).
  double predicted_activation_bytes() const {
    return tessera::predicted_activation_bytes(pd_, d_, program_, chunk_of_stage_, bytes_per_element());
  }
  /// Peak bytes of activations (saved for the backward, and in flight) held by this rank so far.
  std::int64_t peak_activation_bytes() const { return executor_->peak_activation_bytes(); }

  /// ZeRO: from here on each dp rank keeps only its shard of the state (zero_state::shard).
  /// @pre the parameters and moments are final (initialised, or loaded from a checkpoint).
  void shard_optimizer_state() {
    std::vector<int> chunk_of_bucket(buckets_.size(), -1);
    const auto bucket_of = bucket_of_slots(buckets_, store_.slots.size());
    for (std::size_t c = 0; c < chunks_.size(); ++c)
      for (std::size_t i : slots_of_chunk(c))
        if (bucket_of[i] >= 0 && chunk_of_bucket[static_cast<std::size_t>(bucket_of[i])] < 0)
          chunk_of_bucket[static_cast<std::size_t>(bucket_of[i])] = static_cast<int>(c);
    zero_->shard(std::move(chunk_of_bucket));
    if (zero_->grads_sharded())
      for (auto& c : chunks_) c->set_hooks(zero_->hooks());
  }

  // ---- checkpoints and exports ---------------------------------------------------------------------
  std::int64_t adam_step() const { return adam_step_; }
  void set_adam_step(std::int64_t k) { adam_step_ = k; }
  int dp_rank() const { return dp_rank_; }
  /// Whole optimizer state (and ZeRO-3: whole parameters) on dp rank 0; collective over dp.
  void gather_state() { zero_->gather_state(); }
  void release_gathered_state() { zero_->release_gathered_state(); }
  /// @pre before shard_optimizer_state(), or between gather_state() and release_gathered_state().
  state_view slot_state(std::size_t i) const { return zero_->slot_state(i); }

  int global_batch() const { return batch_; }
  param_store<T, System>& store() { return store_; }
  /// owners()[i]: this rank is the one owner of slot i's elements (dp rank 0, tp rank 0 for tp-replicated
  /// slots, the first pipeline holder of a shared slot) — the rule of the norm, checkpoints and exports.
  const std::vector<bool>& owners() const { return owner_; }
  /// piece_writers()[i]: this rank writes its own shard pieces of slot i to a checkpoint written without
  /// gathering (background_checkpoint.hpp): the owner rule without "dp rank 0".
  const std::vector<bool>& piece_writers() const { return piece_writer_; }
  const zero_state<T, Comm, System>& zero() const { return *zero_; }
  const model_tensors& tensors() const { return tensors_; }

  /// Appends n tokens to `seq`, each predicted from the last `seq` (model) tokens: greedy when temperature
  /// is 0, else drawn from softmax(logits / temperature) by a generator seeded with `seed`. Every rank
  /// calls it and gets the same tokens (the last stage's tp ranks gather the vocabulary slices of the
  /// logits; the choice is made on one rank and all-reduced).
  std::vector<std::int32_t> generate(std::vector<std::int32_t> seq, int n, double temperature, std::uint64_t seed) {
    check(!seq.empty(), "generate: the prompt must hold at least one token");
    std::uint64_t rng = sampling_state(seed);
    const std::int64_t Tn = d_.seq_len, V = d_.vocab_rows;
    const pipeline_program one = forward_only_program(pd_, pp_rank_, 1);
    std::vector<float> row, full;
    for (int t = 0; t < n; ++t) {
      const std::int64_t start = std::max<std::int64_t>(0, static_cast<std::int64_t>(seq.size()) - Tn);
      const std::int64_t len = static_cast<std::int64_t>(seq.size()) - start;
      for (std::size_t i = 0; i < inputs_.size(); ++i) {
        const std::int64_t p = static_cast<std::int64_t>(i) % Tn;
        inputs_[i] = p < len ? seq[static_cast<std::size_t>(start + p)] : 0;
        targets_[i] = 0;
      }
      stage_batch();
      row.clear();
      executor_->run(one, G(0), [](std::size_t) {}, [&](auto& st) {  // sequence 0, position len - 1
        const host_mirror<System, const T> logits(st.logits.data() + (len - 1) * V, static_cast<std::size_t>(V),
                                                  store_.sys);
        row.resize(static_cast<std::size_t>(V));
        for (std::size_t j = 0; j < row.size(); ++j) row[j] = static_cast<float>(logits[j]);
      }, false);
      std::int32_t tok = -1;
      if (!row.empty()) {  // every tp rank of the last stage holds its vocabulary slice
        full.assign(tp_rank_ == 0 ? static_cast<std::size_t>(V * pd_.tp) : 0, 0.0f);
        mc_.along(axes::tp).gather(row.data(), full.data(), static_cast<std::size_t>(V), 0);
        if (tp_rank_ == 0 && dp_rank_ == 0) tok = pick_token(full, pd_.model.vocab, temperature, rng);
      }
      seq.push_back(all_reduce_value(mc_.world(), tok, reduce_op::max));
    }
    return seq;
  }

 private:
  /// This pipeline rank's chunks, in global stage order.
  void build_chunks() {
    const int S = num_stages(pd_.schedule);
    chunk_of_stage_.assign(static_cast<std::size_t>(S), -1);
    for (int g = 0; g < S; ++g) {
      if (stage_rank(pd_.schedule, g) != pp_rank_) continue;
      const int ms = pd_.model_stage(g);
      chunk_of_stage_[static_cast<std::size_t>(g)] = static_cast<int>(chunks_.size());
      chunks_.push_back(std::make_unique<chunk_t>(pd_.model, d_, store_, tensors_, ms, pd_.layer_begin[ms],
                                                  pd_.layer_begin[ms + 1], ms == 0, ms == pd_.model_stages - 1,
                                                  mc_.along(axes::tp)));
    }
  }
  /// Gradients in one arena: slots synchronised over dp first (in bucket order), shared slots last; and
  /// who owns each slot for the norm, checkpoints and exports.
  void arrange_slots() {
    std::vector<std::size_t> order, tail;
    const std::size_t n = store_.slots.size();
    shared_.assign(n, false);
    owner_.assign(n, false);
    piece_writer_.assign(n, false);
    holders_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& s = store_.slots[i];
      holders_[i] = slot_holders(pd_, s.layout.unit);
      const auto& h = holders_[i];
      check(!h.empty() && std::find(h.begin(), h.end(), pp_rank_) != h.end(), "tessera internal: slot ",
            s.layout.name, " has no holder");
      shared_[i] = h.size() > 1;
      piece_writer_[i] = h.front() == pp_rank_ && (s.layout.role == tp_role::sharded || tp_rank_ == 0);
      owner_[i] = dp_rank_ == 0 && piece_writer_[i];
      (shared_[i] ? tail : order).push_back(i);
    }
    order.insert(order.end(), tail.begin(), tail.end());
    store_.finalise(order);
  }
  /// Communicators over (dp × the pipeline ranks of each sharing group), one per tp coordinate, built
  /// collectively in the same order everywhere; shared slots are reduced in name order.
  void group_shared_slots() {
    for (const auto& s : sharing_groups(pd_)) {
      const bool member = std::find(s.begin(), s.end(), pp_rank_) != s.end();
      sharing_comms_.emplace(s, mc_.world().split(member ? tp_rank_ : no_color, mc_.rank()));
    }
    std::vector<std::size_t> shared;
    for (std::size_t i = 0; i < store_.slots.size(); ++i)
      if (shared_[i]) shared.push_back(i);
    std::sort(shared.begin(), shared.end(),
              [&](std::size_t a, std::size_t b) { return store_.slots[a].layout.name < store_.slots[b].layout.name; });
    for (std::size_t i : shared) sync_->add_shared_slot(i, sharing_comms_.at(holders_[i]));
  }
  /// The program index after which each bucket's gradients are final: after the last backward part of
  /// every chunk using one of its slots (a slot used by several chunks of this rank waits for all).
  std::vector<std::vector<int>> launch_points() const {
    const auto& prog = program_.actions;
    std::vector<std::vector<int>> launch_after(prog.size());
    std::vector<std::size_t> last_bw(chunks_.size(), prog.empty() ? 0 : prog.size() - 1);
    for (std::size_t idx = 0; idx < prog.size(); ++idx)
      for (int pi = 0; pi < num_parts(prog[idx]); ++pi) {
        const action x = part(prog[idx], pi);
        if (x.kind != op::B && x.kind != op::W && x.kind != op::I) continue;
        const auto c = static_cast<std::size_t>(chunk_of_stage_[static_cast<std::size_t>(x.stage)]);
        last_bw[c] = idx;
      }
    std::vector<std::size_t> final_at(store_.slots.size(), 0);
    for (std::size_t c = 0; c < chunks_.size(); ++c)
      for (std::size_t i : slots_of_chunk(c)) final_at[i] = std::max(final_at[i], last_bw[c]);
    for (std::size_t bi = 0; bi < buckets_.size(); ++bi) {
      std::size_t at = 0;
      for (std::size_t i : buckets_[bi].slots) at = std::max(at, final_at[i]);
      if (!prog.empty()) launch_after[at].push_back(static_cast<int>(bi));
    }
    return launch_after;
  }
  /// How many grad_end reports touch each bucket in one step: every backward part of the program reports
  /// each unit of its chunk once (chunk::grad_units), touching the distinct buckets of the unit's slots.
  std::vector<int> reports_per_bucket() const {
    const auto bucket_of = bucket_of_slots(buckets_, store_.slots.size());
    std::vector<int> reports(buckets_.size(), 0);
    for (const action& a : program_.actions)
      for (int pi = 0; pi < num_parts(a); ++pi) {
        const action x = part(a, pi);
        if (x.kind != op::B && x.kind != op::I) continue;
        const auto& c = *chunks_[static_cast<std::size_t>(chunk_of_stage_[static_cast<std::size_t>(x.stage)])];
        for (const auto& ids : c.grad_units())
          for (int b : distinct_buckets(ids, bucket_of)) ++reports[static_cast<std::size_t>(b)];
      }
    return reports;
  }
  /// The slots chunk c uses (its model stage's).
  std::vector<std::size_t> slots_of_chunk(std::size_t c) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < store_.slots.size(); ++i)
      if (stage_uses(pd_, chunks_[c]->stage(), store_.slots[i].layout.unit)) out.push_back(i);
    return out;
  }
  element_bytes bytes_per_element() const { return {sizeof(T), sizeof(A), !std::is_same_v<T, G>}; }

  void load_batch(int k) {
    const std::int64_t per_dp = batch_ / pd_.dp;
    data_.fill(k, batch_, dp_rank_ * per_dp, per_dp, inputs_.data(), targets_.data());
    stage_batch();
  }
  /// The host's tokens and targets into the system's memory (where that is not the host's own).
  void stage_batch() {
    if constexpr (!System::host_accessible) {
      store_.sys.from_host(system_inputs_.data(), inputs_.data(), static_cast<std::int64_t>(inputs_.size()));
      store_.sys.from_host(system_targets_.data(), targets_.data(), static_cast<std::int64_t>(targets_.size()));
    }
  }
  /// Mean token loss of the batch from this rank's summed loss (tp rank 0 of each last stage counts).
  double global_loss(double local) {
    const double v = tp_rank_ == 0 ? local : 0.0;
    return all_reduce_value(mc_.world(), v) / (static_cast<double>(batch_) * d_.seq_len);
  }
  /// The global gradient norm, every parameter counted once (by its owner; sharded slots by shard).
  /// Each piece's Σ g² is computed into the system's memory; the pieces come back in one copy and are
  /// added on the host in order.
  double global_grad_norm() {
    const prof::scope p("gradient norm");
    std::vector<std::pair<const G*, std::int64_t>> pieces;
    for (std::size_t i = 0; i < store_.slots.size(); ++i) {
      if (zero_->optimizer_sharded() && !shared_[i]) continue;  // counted from the shards below
      if (owner_[i]) pieces.emplace_back(store_.slots[i].grad.data(), store_.slots[i].numel());
    }
    zero_->for_each_norm_piece(tp_rank_, [&](const G* g, std::int64_t n) { pieces.emplace_back(g, n); });
    resize_for_overwrite(norm_pieces_, static_cast<std::int64_t>(pieces.size()));
    for (std::size_t k = 0; k < pieces.size(); ++k)
      ops::sum_of_squares(store_.sys, pieces[k].first, pieces[k].second, norm_pieces_.data() + k);
    std::vector<double> squares(pieces.size());
    store_.sys.to_host(squares.data(), norm_pieces_.data(), static_cast<std::int64_t>(squares.size()));
    double sq = 0;
    for (double x : squares) sq += x;
    if (poison_norm_) sq = std::numeric_limits<double>::quiet_NaN(), poison_norm_ = false;
    return std::sqrt(all_reduce_value(mc_.world(), sq));
  }

  typename System::context context_;  ///< first: what store_.sys refers to outlives everything using it
  plan_desc pd_;
  pipeline_program program_;
  adamw_config adam_;  ///< the optimizer's part of the options
  mesh_comms<Comm>& mc_;
  const token_data& data_;
  int dp_rank_ = 0, pp_rank_ = 0, tp_rank_ = 0;
  int batch_ = 1;  ///< global batch (sequences per step)
  chunk_dims d_;
  model_tensors tensors_;
  param_store<T, System> store_;
  std::vector<std::unique_ptr<chunk_t>> chunks_;
  std::vector<int> chunk_of_stage_;  ///< chunk index of each global stage on this rank, -1 elsewhere
  std::vector<std::vector<int>> holders_;  ///< per slot: the pipeline ranks that hold it
  std::vector<bool> shared_;         ///< per slot: held by several pipeline ranks
  std::vector<bool> owner_;          ///< per slot: this rank owns its elements (norm, checkpoint, export)
  std::vector<bool> piece_writer_;   ///< per slot: this rank writes its shard pieces (local checkpoints)
  std::vector<grad_bucket> buckets_;
  std::map<std::vector<int>, Comm> sharing_comms_;
  std::unique_ptr<zero_state<T, Comm, System>> zero_;
  std::unique_ptr<gradient_sync<T, Comm, System>> sync_;
  std::unique_ptr<pipeline_executor<T, D, Comm, System>> executor_;
  std::vector<std::int32_t> inputs_, targets_;             ///< this rank's batch, on the host
  buffer_of<System, std::int32_t> system_inputs_, system_targets_;  ///< ... in the system's memory (when not the host's)
  buffer_of<System, double> norm_pieces_;  ///< Σ g² of each piece of the global norm (system memory)
  std::int64_t adam_step_ = 0;
  bool poison_norm_ = false;
};

}  // namespace tessera
