// tessera/model/transformer.hpp — one rank's share of the transformer: its parameter slots and the
// forward/backward of a pipeline chunk (embedding?, layers [l0, l1), head+loss?) with Megatron tensor
// parallelism and, optionally, sequence parallelism, on the system `System` (host_system, cuda_system):
// every buffer is the system's, every operator is called with the system value as its first argument, and
// the host reads nothing of the chunk's memory (a microbatch's loss stays in the system's memory too).
//
// Tensor parallelism (Megatron-LM): q|k|v and MLP up(|gate) are column-parallel (heads and ffn split
// over tp), the attention output and MLP down projections are row-parallel (partial sums reduced over
// tp), the embedding and head are vocab-parallel. Without sequence parallelism activations between the
// parallel regions are replicated over tp (all-reduce of partial sums); with it they are split by rows
// (all-gather before a column-parallel GEMM, reduce-scatter after a row-parallel one) and the
// tp-replicated parameters (norm weights, row-parallel biases, positions) see only their rows, so their
// gradients are summed over tp by the trainer.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/host_system.hpp"
#include "tessera/model/config.hpp"
#include "tessera/model/chunk_state.hpp"
#include "tessera/model/param_store.hpp"
#include "tessera/model/params.hpp"
#include "tessera/ops/all.hpp"

namespace tessera {

/// A pipeline chunk: model stage `stage`, layers [l0, l1), with the embedding on the first stage and the
/// final norm, head and loss on the last.
template <class T, int D, class Comm, class System = host_system>
class chunk {
 public:
  using A = ops::acc_t<T>;
  using G = ops::grad_t<T>;
  using state = mb_state<T, System>;
  using cache = layer_cache<T, System>;
  using tbuf = buffer_of<System, T>;
  using abuf = buffer_of<System, A>;

  chunk(const model_desc& m, const chunk_dims& d, param_store<T, System>& ps, const model_tensors& mt, int stage, int l0,
        int l1, bool first, bool last, Comm& tp_comm)
      : m_(m), d_(d), ps_(ps), sys_(ps.sys), tp_(tp_comm), stage_(stage), l0_(l0), l1_(l1), first_(first), last_(last) {
    static_assert(D > 0, "head size must be positive");
    using namespace slot_detail;
    const int t = d.tp_rank, k = d.tp;
    const bool ln = m.norm == norm::layernorm;
    if (first) {
      embed_ = ps.get_or_add(row_shards(mt, "embed", {"embed"}, t, k));
      if (m.position == position::learned) pos_ = ps.get_or_add(whole(mt, "pos", tp_role::replicated));
    }
    for (int i = l0; i < l1; ++i) {
      const std::string p = layer_prefix(i);
      layer_slots s;
      s.norm1_w = ps.get_or_add(whole(mt, p + "norm1.weight", tp_role::replicated));
      if (ln) s.norm1_b = ps.get_or_add(whole(mt, p + "norm1.bias", tp_role::replicated));
      s.qkv_w = ps.get_or_add(row_shards(mt, p + "attn.qkv.weight", {p + "attn.q.weight", p + "attn.k.weight", p + "attn.v.weight"}, t, k));
      if (m.bias) s.qkv_b = ps.get_or_add(row_shards(mt, p + "attn.qkv.bias", {p + "attn.q.bias", p + "attn.k.bias", p + "attn.v.bias"}, t, k));
      s.o_w = ps.get_or_add(col_shard(mt, p + "attn.o.weight", t, k));
      if (m.bias) s.o_b = ps.get_or_add(whole(mt, p + "attn.o.bias", tp_role::replicated));
      s.norm2_w = ps.get_or_add(whole(mt, p + "norm2.weight", tp_role::replicated));
      if (ln) s.norm2_b = ps.get_or_add(whole(mt, p + "norm2.bias", tp_role::replicated));
      if (m.mlp == mlp::swiglu) {
        s.up_w = ps.get_or_add(row_shards(mt, p + "mlp.gate_up.weight", {p + "mlp.gate.weight", p + "mlp.up.weight"}, t, k));
        if (m.bias) s.up_b = ps.get_or_add(row_shards(mt, p + "mlp.gate_up.bias", {p + "mlp.gate.bias", p + "mlp.up.bias"}, t, k));
      } else {
        s.up_w = ps.get_or_add(row_shards(mt, p + "mlp.up.weight", {p + "mlp.up.weight"}, t, k));
        if (m.bias) s.up_b = ps.get_or_add(row_shards(mt, p + "mlp.up.bias", {p + "mlp.up.bias"}, t, k));
      }
      s.down_w = ps.get_or_add(col_shard(mt, p + "mlp.down.weight", t, k));
      if (m.bias) s.down_b = ps.get_or_add(whole(mt, p + "mlp.down.bias", tp_role::replicated));
      layers_.push_back(s);
    }
    if (last) {
      normf_w_ = ps.get_or_add(whole(mt, "final_norm.weight", tp_role::replicated));
      if (ln) normf_b_ = ps.get_or_add(whole(mt, "final_norm.bias", tp_role::replicated));
      head_ = m.tied_embeddings ? ps.get_or_add(row_shards(mt, "embed", {"embed"}, t, k))
                                : ps.get_or_add(row_shards(mt, "head", {"head"}, t, k));
    }
    if (m.position == position::rope) {  // the table is made on the host and kept in the system's memory
      const auto rope = ops::rope_table<A>(m.seq, D, m.rope_theta);
      for (auto [dst, src] : {std::pair{&rope_cos_, &rope.cos}, std::pair{&rope_sin_, &rope.sin}}) {
        resize(*dst, static_cast<std::int64_t>(src->size()));
        sys_.from_host(dst->data(), src->data(), static_cast<std::int64_t>(src->size()));
      }
    }
    auto ids = [](std::initializer_list<int> l) {
      std::vector<int> v;
      for (int x : l)
        if (x >= 0) v.push_back(x);
      return v;
    };
    in_slots_ = ids({embed_, pos_});
    out_slots_ = ids({normf_w_, normf_b_, head_});
    for (const auto& L : layers_)
      layer_ids_.push_back(ids({L.norm1_w, L.norm1_b, L.qkv_w, L.qkv_b, L.o_w, L.o_b, L.norm2_w, L.norm2_b, L.up_w,
                                L.up_b, L.down_w, L.down_b}));
  }
  /// Hooks for ZeRO-2/3 (null: parameters and gradients always resident).
  void set_hooks(const param_hooks* h) { hooks_ = h; }

  /// The slot lists one microbatch's backward reports through grad_end, once each: head, layers, embedding.
  std::vector<std::vector<int>> grad_units() const {
    std::vector<std::vector<int>> out(layer_ids_);
    if (last_) out.push_back(out_slots_);
    if (first_) out.push_back(in_slots_);
    return out;
  }
  int stage() const { return stage_; }
  /// The system value the chunk issues its work on.
  const System& system() const { return sys_; }
  bool first() const { return first_; }
  bool last() const { return last_; }
  std::int64_t act_numel() const { return d_.local_rows * d_.hidden; }

  /// Forward of one microbatch: input in st.xs[0] (unless first), output in st.xs.back() (unless last,
  /// where the summed token loss goes to *st.loss_out, in the system's memory).
  void forward(state& st) {
    const std::int64_t n_act = act_numel();
    st.xs.resize(layers_.size() + 1);
    for (auto& x : st.xs) resize_for_overwrite(x, n_act);
    st.layers.resize(layers_.size());
    if (first_) {
      unit_acquire(in_slots_, +1);
      embed_forward(st);
      unit_release(in_slots_);
    }
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      unit_acquire(layer_ids_[i], +1);
      layer_forward(layers_[i], st.layers[i], st.xs[i], st.xs[i + 1]);
      unit_release(layer_ids_[i]);
      drop_recomputed(st.layers[i]);
    }
    if (last_) {
      unit_acquire(out_slots_, +1);
      head_forward(st);
      unit_release(out_slots_);
    }
  }

  /// Backward: with `split`, only input gradients now and the weight-gradient GEMMs queued in
  /// st.deferred (run by weight_backward). The gradient of the output is st.dy (unless last); the
  /// gradient of the input lands in st.dx (unless first).
  void backward(state& st, bool split, G loss_scale) {
    tbuf cur;  // gradient flowing down the residual stream
    resize_for_overwrite(cur, act_numel());
    if (last_) {
      unit_acquire(out_slots_, -1);
      unit_grad_begin(out_slots_);
      head_backward(st, split, loss_scale, cur);
      unit_release(out_slots_);
      unit_grad_end(out_slots_, split, st.deferred);
    } else {
      sys_.copy(cur.data(), st.dy.data(), static_cast<std::int64_t>(st.dy.size()));
    }
    tbuf nxt;
    resize_for_overwrite(nxt, act_numel());
    for (std::size_t i = layers_.size(); i-- > 0;) {
      unit_acquire(layer_ids_[i], -1);
      unit_grad_begin(layer_ids_[i]);
      recompute(layers_[i], st.layers[i], st.xs[i]);
      layer_backward(layers_[i], st.layers[i], st.xs[i], cur, nxt, split, st.deferred);
      unit_release(layer_ids_[i]);
      unit_grad_end(layer_ids_[i], split, st.deferred);
      if (!split) drop_after_backward(st.layers[i]);
      std::swap(cur, nxt);
    }
    if (first_) {  // the embedding's backward reads no parameter
      unit_grad_begin(in_slots_);
      embed_backward(st, cur);
      unit_grad_end(in_slots_, false, st.deferred);
    } else {
      st.dx = std::move(cur);
    }
  }
  void weight_backward(state& st) {
    for (auto& f : st.deferred) f();
    st.deferred.clear();
    for (auto& c : st.layers) drop_after_backward(c);
  }

 private:
  void unit_acquire(const std::vector<int>& ids, int dir) {
    if (hooks_ && hooks_->acquire) hooks_->acquire(ids, dir);
  }
  void unit_release(const std::vector<int>& ids) {
    if (hooks_ && hooks_->release) hooks_->release(ids);
  }
  void unit_grad_begin(const std::vector<int>& ids) {
    if (hooks_ && hooks_->grad_begin) hooks_->grad_begin(ids);
  }
  /// After a unit's backward: now, or (split backward) after its queued weight-gradient passes.
  void unit_grad_end(const std::vector<int>& ids, bool split, std::vector<std::function<void()>>& deferred) {
    if (!hooks_ || !hooks_->grad_end) return;
    if (split) deferred.emplace_back([h = hooks_, ids] { h->grad_end(ids); });
    else hooks_->grad_end(ids);
  }
  param_slot<T, System>& P(int i) { return ps_.slots[static_cast<std::size_t>(i)]; }
  const T* W(int i) { return i < 0 ? nullptr : P(i).value.data(); }
  G* dW(int i) { return i < 0 ? nullptr : P(i).grad.data(); }

  // ---- tp communication of activations --------------------------------------------------------------
  /// Partial sums [R×C] → this rank's rows: all-reduce (replicated) or reduce-scatter (sequence parallel).
  void reduce_rows(tbuf& partial, tbuf& out) {
    const std::int64_t C = d_.hidden;
    if (d_.tp == 1) { out.swap(partial); resize_for_overwrite(partial, d_.rows * C); return; }
    const prof::scope p(d_.sp ? "tp reduce-scatter" : "tp all-reduce");
    if (d_.sp) {
      resize_for_overwrite(out, d_.local_rows * C);
      reduce_scatter(tp_, partial.data(), out.data(), static_cast<std::size_t>(d_.local_rows * C));
    } else {
      all_reduce(tp_, partial.data(), partial.data(), static_cast<std::size_t>(d_.rows * C));
      out.swap(partial);
      resize_for_overwrite(partial, d_.rows * C);
    }
  }
  /// This rank's rows → all rows (sequence parallel), or the rows themselves.
  const T* gather_rows(const tbuf& local, tbuf& full) {
    if (!d_.sp) return local.data();
    const prof::scope p("tp all-gather");
    resize_for_overwrite(full, d_.rows * d_.hidden);
    all_gather(tp_, local.data(), full.data(), static_cast<std::size_t>(d_.local_rows * d_.hidden));
    return full.data();
  }
  void norm_forward(int w, int bsl, const T* x, T* y, abuf& mean, abuf& rstd, std::int64_t rows) {
    resize_for_overwrite(rstd, rows);
    if (m_.norm == norm::layernorm) {
      resize_for_overwrite(mean, rows);
      ops::layernorm_forward(sys_, x, W(w), W(bsl), rows, d_.hidden, m_.norm_eps, y, mean.data(), rstd.data());
    } else {
      ops::rmsnorm_forward(sys_, x, W(w), rows, d_.hidden, m_.norm_eps, y, rstd.data());
    }
  }
  void norm_backward(int w, int bsl, const T* dy, const T* x, const abuf& mean, const abuf& rstd,
                     std::int64_t rows, T* dx_accum) {
    if (m_.norm == norm::layernorm)
      ops::layernorm_backward(sys_, dy, x, W(w), mean.data(), rstd.data(), rows, d_.hidden, dx_accum, dW(w),
                              dW(bsl), true);
    else
      ops::rmsnorm_backward(sys_, dy, x, W(w), rstd.data(), rows, d_.hidden, dx_accum, dW(w), true);
  }
  /// Positions of this rank's rows: local row n is global row row0 + n of the microbatch.
  template <class F>
  void for_position_segments(F&& f) {
    const std::int64_t row0 = d_.sp ? d_.tp_rank * d_.local_rows : 0;
    std::int64_t n = 0;
    while (n < d_.local_rows) {
      const std::int64_t t = (row0 + n) % d_.seq_len;
      const std::int64_t len = std::min(d_.local_rows - n, d_.seq_len - t);
      f(n, len, t);
      n += len;
    }
  }

  // ---- embedding -------------------------------------------------------------------------------------
  void embed_forward(state& st) {
    resize_for_overwrite(tmp_R_, d_.rows * d_.hidden);
    ops::embedding_forward(sys_, st.tokens, d_.rows, W(embed_), d_.vocab_rows, d_.vocab_begin, d_.hidden, tmp_R_.data());
    reduce_rows(tmp_R_, st.xs[0]);
    if (pos_ >= 0)
      for_position_segments([&](std::int64_t n, std::int64_t len, std::int64_t t) {
        ops::add_position_embedding(sys_, W(pos_), len, len, d_.hidden, t, st.xs[0].data() + n * d_.hidden);
      });
  }
  void embed_backward(state& st, tbuf& dx) {
    tbuf full;
    const T* g = gather_rows(dx, full);
    ops::embedding_backward(sys_, st.tokens, d_.rows, g, d_.vocab_rows, d_.vocab_begin, d_.hidden, dW(embed_));
    if (pos_ >= 0)
      for_position_segments([&](std::int64_t n, std::int64_t len, std::int64_t t) {
        ops::position_embedding_backward(sys_, dx.data() + n * d_.hidden, len, len, d_.hidden, t, dW(pos_));
      });
  }

  // ---- one transformer layer ----------------------------------------------------------------------------
  void layer_forward(const layer_slots& s, cache& c, const tbuf& x, tbuf& out) {
    const std::int64_t R = d_.rows, Rl = d_.local_rows, C = d_.hidden;
    resize_for_overwrite(c.h1, Rl * C);
    norm_forward(s.norm1_w, s.norm1_b, x.data(), c.h1.data(), c.mean1, c.rstd1, Rl);
    const T* g1 = gather_rows(c.h1, c.g1);
    resize_for_overwrite(c.qkv, R * d_.qkv_cols);
    ops::linear_forward(sys_, g1, W(s.qkv_w), W(s.qkv_b), R, C, d_.qkv_cols, c.qkv.data());
    if (m_.position == position::rope) {
      ops::rope_forward(sys_, c.qkv.data(), R, d_.seq_len, d_.q_heads, D, d_.qkv_cols, 0, rope_cos_.data(), rope_sin_.data());
      ops::rope_forward(sys_, c.qkv.data() + d_.q_heads * D, R, d_.seq_len, d_.kv_heads, D, d_.qkv_cols, 0, rope_cos_.data(),
                        rope_sin_.data());
    }
    attention_core(c);
    resize_for_overwrite(tmp_R_, R * C);
    ops::linear_forward(sys_, c.att.data(), W(s.o_w), static_cast<const T*>(nullptr), R, d_.q_heads * D, C,
                        tmp_R_.data());
    reduce_rows(tmp_R_, tmp_l_);
    ops::add_bias_rows(sys_, tmp_l_.data(), W(s.o_b), Rl, C);
    resize_for_overwrite(c.x_mid, Rl * C);
    ops::add(sys_, x.data(), tmp_l_.data(), Rl * C, c.x_mid.data());
    resize_for_overwrite(c.h2, Rl * C);
    norm_forward(s.norm2_w, s.norm2_b, c.x_mid.data(), c.h2.data(), c.mean2, c.rstd2, Rl);
    const T* g2 = gather_rows(c.h2, c.g2);
    resize_for_overwrite(c.up, R * d_.up_cols);
    resize_for_overwrite(c.act, R * d_.ffn);
    if (m_.mlp == mlp::swiglu) {
      ops::linear_forward(sys_, g2, W(s.up_w), W(s.up_b), R, C, d_.up_cols, c.up.data());
      ops::swiglu_forward(sys_, c.up.data(), c.up.data() + d_.ffn, R, d_.ffn, d_.up_cols, c.act.data());
    } else {  // up_cols = ffn; on CUDA one GEMM with cuBLASLt's GELU epilogue
      ops::linear_gelu_forward(sys_, g2, W(s.up_w), W(s.up_b), R, C, d_.ffn, c.up.data(), c.act.data());
    }
    ops::linear_forward(sys_, c.act.data(), W(s.down_w), static_cast<const T*>(nullptr), R, d_.ffn, C,
                        tmp_R_.data());
    reduce_rows(tmp_R_, tmp_l_);
    ops::add_bias_rows(sys_, tmp_l_.data(), W(s.down_b), Rl, C);
    ops::add(sys_, c.x_mid.data(), tmp_l_.data(), Rl * C, out.data());
  }

  // ---- activation recompute ----------------------------------------------------------------------------
  template <class V> static void release(V& v) { V().swap(v); }
  /// After a layer's forward: free what the backward will recompute.
  void drop_recomputed(cache& c) {
    if (d_.recompute == recompute_kind::none) return;
    release(c.att);
    release(c.lse);
    if (d_.recompute == recompute_kind::selective) return;
    release(c.h1), release(c.g1), release(c.qkv), release(c.x_mid), release(c.h2), release(c.g2), release(c.up),
        release(c.act), release(c.mean1), release(c.rstd1), release(c.mean2), release(c.rstd2);
  }
  /// After a layer's backward is complete (its weight gradients too): with recompute on, free the whole
  /// cache at once instead of keeping it until the microbatch ends, so recomputed layers do not pile up.
  void drop_after_backward(cache& c) {
    if (d_.recompute == recompute_kind::none) return;
    c = cache{};
  }
  /// Before a layer's backward: rebuild what drop_recomputed freed, with the forward's own code (so the
  /// values are the forward's, bit for bit; the tp collectives of a full recompute run again, in the same
  /// order on every tp rank).
  void recompute(const layer_slots& s, cache& c, const tbuf& x) {
    if (d_.recompute == recompute_kind::full) {
      resize_for_overwrite(recompute_out_, d_.local_rows * d_.hidden);
      layer_forward(s, c, x, recompute_out_);
    } else if (d_.recompute == recompute_kind::selective) {
      attention_core(c);
    }
  }
  /// softmax(q·kᵀ·scale + mask)·v of one layer from its q|k|v (after RoPE): c.att and c.lse.
  void attention_core(cache& c) {
    resize_for_overwrite(c.att, d_.rows * d_.q_heads * D);
    resize_for_overwrite(c.lse, d_.seqs * d_.q_heads * d_.seq_len);
    ops::attention_forward<D>(sys_, c.qkv.data(), c.qkv.data() + d_.q_heads * D, c.qkv.data() + (d_.q_heads + d_.kv_heads) * D,
                              c.att.data(), c.lse.data(), attn_shape(), attn_scale());
  }

  void layer_backward(const layer_slots& s, cache& c, const tbuf& x, const tbuf& dy,
                      tbuf& dx, bool split, std::vector<std::function<void()>>& deferred) {
    const std::int64_t R = d_.rows, Rl = d_.local_rows, C = d_.hidden;
    // MLP down (row-parallel): the output gradient, all rows.
    copy_gathered(dy, c.d_down);
    resize_for_overwrite(c.d_up, R * d_.up_cols);
    if (m_.mlp == mlp::swiglu) {
      tbuf d_act;
      resize_for_overwrite(d_act, R * d_.ffn);
      ops::linear_backward(sys_, c.d_down.data(), c.act.data(), W(s.down_w), R, d_.ffn, C, d_act.data(),
                           static_cast<G*>(nullptr), static_cast<G*>(nullptr));
      ops::swiglu_backward(sys_, d_act.data(), c.up.data(), c.up.data() + d_.ffn, R, d_.ffn, d_.up_cols,
                           c.d_up.data(), c.d_up.data() + d_.ffn);
    } else {  // on CUDA one GEMM with cuBLASLt's DGELU epilogue
      ops::linear_dgelu_backward(sys_, c.d_down.data(), W(s.down_w), c.up.data(), R, d_.ffn, C, c.d_up.data());
    }
    weight_grad(split, deferred, [this, &c, s, R, C] {
      ops::linear_backward(sys_, c.d_down.data(), c.act.data(), W(s.down_w), R, d_.ffn, C, static_cast<T*>(nullptr),
                           dW(s.down_w), static_cast<G*>(nullptr));
      bias_grad_local_rows(c.d_down, s.down_b);
    });
    resize_for_overwrite(tmp_R_, R * C);
    ops::linear_backward(sys_, c.d_up.data(), c.g2.empty() ? c.h2.data() : c.g2.data(), W(s.up_w), R, C, d_.up_cols,
                         tmp_R_.data(), static_cast<G*>(nullptr), static_cast<G*>(nullptr));
    weight_grad(split, deferred, [this, &c, s, R, C] {
      ops::linear_backward(sys_, c.d_up.data(), c.g2.empty() ? c.h2.data() : c.g2.data(), W(s.up_w), R, C, d_.up_cols,
                           static_cast<T*>(nullptr), dW(s.up_w), dW(s.up_b));
    });
    reduce_rows(tmp_R_, tmp_l_);
    tbuf dmid(dy);
    norm_backward(s.norm2_w, s.norm2_b, tmp_l_.data(), c.x_mid.data(), c.mean2, c.rstd2, Rl, dmid.data());
    // attention output (row-parallel)
    copy_gathered(dmid, c.d_proj);
    tbuf d_att;
    resize_for_overwrite(d_att, R * d_.q_heads * D);
    ops::linear_backward(sys_, c.d_proj.data(), c.att.data(), W(s.o_w), R, d_.q_heads * D, C, d_att.data(),
                         static_cast<G*>(nullptr), static_cast<G*>(nullptr));
    weight_grad(split, deferred, [this, &c, s, R, C] {
      ops::linear_backward(sys_, c.d_proj.data(), c.att.data(), W(s.o_w), R, d_.q_heads * D, C, static_cast<T*>(nullptr),
                           dW(s.o_w), static_cast<G*>(nullptr));
      bias_grad_local_rows(c.d_proj, s.o_b);
    });
    resize_for_overwrite(c.dqkv, R * d_.qkv_cols);
    ops::attention_backward<D>(sys_, d_att.data(), c.qkv.data(), c.qkv.data() + d_.q_heads * D,
                               c.qkv.data() + (d_.q_heads + d_.kv_heads) * D, c.att.data(), c.lse.data(), attn_shape(),
                               attn_scale(), c.dqkv.data(), c.dqkv.data() + d_.q_heads * D,
                               c.dqkv.data() + (d_.q_heads + d_.kv_heads) * D);
    if (m_.position == position::rope) {
      ops::rope_backward(sys_, c.dqkv.data(), R, d_.seq_len, d_.q_heads, D, d_.qkv_cols, 0, rope_cos_.data(), rope_sin_.data());
      ops::rope_backward(sys_, c.dqkv.data() + d_.q_heads * D, R, d_.seq_len, d_.kv_heads, D, d_.qkv_cols, 0, rope_cos_.data(),
                         rope_sin_.data());
    }
    ops::linear_backward(sys_, c.dqkv.data(), c.g1.empty() ? c.h1.data() : c.g1.data(), W(s.qkv_w), R, C,
                         d_.qkv_cols, tmp_R_.data(), static_cast<G*>(nullptr), static_cast<G*>(nullptr));
    weight_grad(split, deferred, [this, &c, s, R, C] {
      ops::linear_backward(sys_, c.dqkv.data(), c.g1.empty() ? c.h1.data() : c.g1.data(), W(s.qkv_w), R, C,
                           d_.qkv_cols, static_cast<T*>(nullptr), dW(s.qkv_w), dW(s.qkv_b));
    });
    reduce_rows(tmp_R_, tmp_l_);
    sys_.copy(dx.data(), dmid.data(), static_cast<std::int64_t>(dmid.size()));
    norm_backward(s.norm1_w, s.norm1_b, tmp_l_.data(), x.data(), c.mean1, c.rstd1, Rl, dx.data());
  }

  /// Column sums of this rank's rows of a gathered gradient into a tp-replicated bias.
  void bias_grad_local_rows(const tbuf& full, int b) {
    if (b < 0) return;
    const std::int64_t row0 = d_.sp ? d_.tp_rank * d_.local_rows : 0;
    ops::linear_backward(sys_, full.data() + row0 * d_.hidden, static_cast<const T*>(nullptr),
                         static_cast<const T*>(nullptr), d_.local_rows, 0, d_.hidden, static_cast<T*>(nullptr),
                         static_cast<G*>(nullptr), dW(b));
  }
  void copy_gathered(const tbuf& local, tbuf& full) {
    resize_for_overwrite(full, d_.rows * d_.hidden);
    if (d_.sp) all_gather(tp_, local.data(), full.data(), static_cast<std::size_t>(d_.local_rows * d_.hidden));
    else sys_.copy(full.data(), local.data(), static_cast<std::int64_t>(local.size()));
  }
  template <class F>
  void weight_grad(bool split, std::vector<std::function<void()>>& deferred, F&& f) {
    if (split) deferred.emplace_back(std::forward<F>(f));
    else f();
  }

  // ---- head and loss -------------------------------------------------------------------------------------
  void head_forward(state& st) {
    const std::int64_t R = d_.rows, Rl = d_.local_rows, C = d_.hidden;
    resize_for_overwrite(st.hf, Rl * C);
    norm_forward(normf_w_, normf_b_, st.xs.back().data(), st.hf.data(), st.meanf, st.rstdf, Rl);
    const T* g = gather_rows(st.hf, st.gf);
    resize_for_overwrite(st.logits, R * d_.vocab_rows);
    ops::linear_forward(sys_, g, W(head_), static_cast<const T*>(nullptr), R, C, d_.vocab_rows, st.logits.data());
    resize_for_overwrite(st.lse, R);
    resize_for_overwrite(st.loss, R);
    const ops::vocab_slice vs{d_.vocab_rows, d_.vocab_begin, d_.vocab, 0};
    // fp32 training without tp: the logits' gradient (scale 1) is made while each row is in cache (bf16 keeps two passes)
    st.logits_hold_grad = std::is_same_v<T, A> && d_.tp == 1 && st.backward_follows;
    if (st.logits_hold_grad) {
      if constexpr (std::is_same_v<T, A>)
        ops::cross_entropy_forward_with_grad(sys_, st.logits.data(), st.targets, R, vs, st.lse.data(), st.loss.data());
    } else if (d_.tp > 1) {
      ops::cross_entropy_forward(sys_, st.logits.data(), st.targets, R, vs, st.lse.data(), st.loss.data(), tp_);
    } else {
      ops::cross_entropy_forward(sys_, st.logits.data(), st.targets, R, vs, st.lse.data(), st.loss.data());
    }
    check(st.loss_out != nullptr, "tessera internal: a last stage's forward needs somewhere to put its loss");
    ops::sum_in_double(sys_, st.loss.data(), R, st.loss_out);  // stays in the system's memory
  }
  void head_backward(state& st, bool split, G loss_scale, tbuf& dx) {
    const std::int64_t R = d_.rows, Rl = d_.local_rows, C = d_.hidden;
    const ops::vocab_slice vs{d_.vocab_rows, d_.vocab_begin, d_.vocab, 0};
    if (st.logits_hold_grad) {
      if constexpr (std::is_same_v<T, A>)
        ops::cross_entropy_backward_from_grad(sys_, st.logits.data(), R, vs, static_cast<A>(loss_scale));
    } else {
      ops::cross_entropy_backward(sys_, st.logits.data(), st.targets, st.lse.data(), R, vs, static_cast<A>(loss_scale),
                                  st.logits.data());
    }
    const T* g = st.gf.empty() ? st.hf.data() : st.gf.data();
    resize_for_overwrite(tmp_R_, R * C);
    ops::linear_backward(sys_, st.logits.data(), g, W(head_), R, C, d_.vocab_rows, tmp_R_.data(), static_cast<G*>(nullptr),
                         static_cast<G*>(nullptr));
    weight_grad(split, st.deferred, [this, &st, R, C] {
      const T* gg = st.gf.empty() ? st.hf.data() : st.gf.data();
      ops::linear_backward(sys_, st.logits.data(), gg, W(head_), R, C, d_.vocab_rows, static_cast<T*>(nullptr), dW(head_),
                           static_cast<G*>(nullptr));
    });
    reduce_rows(tmp_R_, tmp_l_);
    sys_.fill(dx.data(), static_cast<std::int64_t>(dx.size()), T{});
    norm_backward(normf_w_, normf_b_, tmp_l_.data(), st.xs.back().data(), st.meanf, st.rstdf, Rl, dx.data());
  }

  ops::attention_shape attn_shape() const {
    ops::attention_shape a;
    a.B = d_.seqs;
    a.T = d_.seq_len;
    a.Hq = d_.q_heads;
    a.Hkv = d_.kv_heads;
    a.ld_q = a.ld_k = a.ld_v = d_.qkv_cols;
    a.ld_o = d_.q_heads * D;
    return a;
  }
  A attn_scale() const { return A(1) / std::sqrt(A(D)); }

  model_desc m_;
  chunk_dims d_;
  param_store<T, System>& ps_;
  System sys_;  ///< where every operator of the chunk is issued (the store's: the trainer's compute stream)
  Comm& tp_;
  int stage_, l0_, l1_;
  bool first_, last_;
  int embed_ = -1, pos_ = -1, normf_w_ = -1, normf_b_ = -1, head_ = -1;
  std::vector<layer_slots> layers_;
  std::vector<int> in_slots_, out_slots_;
  std::vector<std::vector<int>> layer_ids_;
  const param_hooks* hooks_ = nullptr;
  abuf rope_cos_, rope_sin_;  ///< RoPE's table (ops::rope_table), in the system's memory
  tbuf tmp_R_, tmp_l_, recompute_out_;
};

}  // namespace tessera

