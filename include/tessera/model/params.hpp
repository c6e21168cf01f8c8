// tessera/model/params.hpp — the model's parameters: global (logical) tensors, and how each rank's local
// buffers ("slots") tile them under tensor parallelism.
//
// A global tensor has a name, a 2-D shape (vectors are [n, 1]), an init rule and a weight-decay flag.
// A slot is one local buffer a rank computes with (e.g. the fused local q|k|v weight of a layer); it is
// a list of boxes, each copying a rectangle of one global tensor to a place in the slot. Everything
// else — initialisation, checkpoints, Hugging Face import/export, the "count once" rule of the gradient
// norm — works on global coordinates through the boxes, so it never depends on the layout.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/layout/shard_shape.hpp"
#include "tessera/model/config.hpp"

namespace tessera {

enum class init_kind : std::uint8_t { normal, zeros, ones };

struct global_tensor {
  std::string name;
  std::int64_t rows = 0, cols = 1;
  init_kind init = init_kind::normal;
  float stddev = 0.02f;
  bool decay = true;  ///< decoupled weight decay (matrices and embeddings)
  std::int64_t valid_rows = -1;  ///< rows below this are real, the rest padding (zeros); -1 = all
  std::int64_t numel() const { return rows * cols; }
};

struct box {
  int tensor = -1;                 ///< index into the model's global tensors
  std::int64_t g_row = 0, g_col = 0;  ///< top-left in the global tensor
  std::int64_t rows = 0, cols = 0;
  std::int64_t l_row = 0, l_col = 0;  ///< top-left in the slot
};

/// Global rows [row_begin, row_end) × columns [col_begin, col_end) of a tensor.
struct global_range {
  std::int64_t row_begin = 0, row_end = 0, col_begin = 0, col_end = 0;
};

/// Visits the elements of box `b` (of a slot whose rows are `slot_cols` wide) that lie inside `within`,
/// row by row: f(global row, global column, index of the element in the slot). The one iteration over a
/// slot's pieces of the global tensors (initialisation, checkpoints, Hugging Face import and export).
template <class F>
void for_each_element(const box& b, std::int64_t slot_cols, const global_range& within, F&& f) {
  const std::int64_t r0 = b.g_row > within.row_begin ? b.g_row : within.row_begin;
  const std::int64_t r1 = b.g_row + b.rows < within.row_end ? b.g_row + b.rows : within.row_end;
  const std::int64_t c0 = b.g_col > within.col_begin ? b.g_col : within.col_begin;
  const std::int64_t c1 = b.g_col + b.cols < within.col_end ? b.g_col + b.cols : within.col_end;
  for (std::int64_t r = r0; r < r1; ++r) {
    const std::int64_t row_at = (b.l_row + r - b.g_row) * slot_cols + b.l_col - b.g_col;
    for (std::int64_t c = c0; c < c1; ++c) f(r, c, static_cast<std::size_t>(row_at + c));
  }
}
/// Every element of box `b`.
template <class F>
void for_each_element(const box& b, std::int64_t slot_cols, F&& f) {
  for_each_element(b, slot_cols, global_range{b.g_row, b.g_row + b.rows, b.g_col, b.g_col + b.cols}, f);
}

/// How a slot's elements relate to other tensor-parallel ranks.
enum class tp_role : std::uint8_t { sharded, replicated };

/// The part of the model a slot belongs to: ZeRO-2/3's unit (reduced and gathered together), and what
/// decides which pipeline stages use the slot (train/slot_sharing.hpp).
struct slot_unit {
  enum class part : std::uint8_t { input, layer, output };
  part where = part::input;
  int layer = -1;                ///< part::layer: the layer's index
  bool token_embedding = false;  ///< the token embedding (with tied embeddings the last stage uses it too)
  /// The same unit (the embedding and the positions are one unit: the input).
  friend bool operator==(const slot_unit& a, const slot_unit& b) { return a.where == b.where && a.layer == b.layer; }
};

/// The unit of the slot named `name`: "embed" and "pos" the input, "layers.<i>.…" layer i, anything
/// else (final norm, head) the output. The one place a slot's name is read for its place in the model.
inline slot_unit unit_of_slot(const std::string& name) {
  if (name == "embed" || name == "pos") return {slot_unit::part::input, -1, name == "embed"};
  if (name.rfind("layers.", 0) == 0) return {slot_unit::part::layer, std::stoi(name.substr(7)), false};
  return {slot_unit::part::output, -1, false};
}

struct slot_layout {
  std::string name;  ///< unique per model (e.g. "layers.3.attn.qkv.weight")
  slot_unit unit;    ///< set from the name when the slot joins a param_store
  std::int64_t rows = 0, cols = 1;
  tp_role role = tp_role::sharded;
  bool decay = true;
  std::vector<box> boxes;
  std::int64_t numel() const { return rows * cols; }
};

// ---- counter-based initialisation: element (tensor name, row, col) → value, for any layout ---------------
namespace init_detail {
constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline std::uint64_t name_hash(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
}  // namespace init_detail

/// Standard normal for (seed, tensor, flat index): Box–Muller on two hashed uniforms.
inline double init_normal(std::uint64_t seed, std::uint64_t tensor_hash, std::uint64_t index) {
  using init_detail::splitmix64;
  const std::uint64_t k = splitmix64(seed ^ splitmix64(tensor_hash ^ splitmix64(index)));
  const std::uint64_t k2 = splitmix64(k);
  const double u1 = (static_cast<double>(k >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  const double u2 = static_cast<double>(k2 >> 11) * (1.0 / 9007199254740992.0);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}
inline double init_value(const global_tensor& t, std::uint64_t seed, std::uint64_t name_hash, std::int64_t r,
                         std::int64_t c) {
  if (t.valid_rows >= 0 && r >= t.valid_rows) return 0.0;
  switch (t.init) {
    case init_kind::zeros: return 0.0;
    case init_kind::ones: return 1.0;
    case init_kind::normal:
      return t.stddev * init_normal(seed, name_hash, static_cast<std::uint64_t>(r * t.cols + c));
  }
  return 0.0;
}

/// The global tensors of a model (vocabulary padded to `vocab_padded` rows).
struct model_tensors {
  std::vector<global_tensor> tensors;
  int find(const std::string& name) const {
    for (std::size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name == name) return static_cast<int>(i);
    internal_error("no model tensor named ", name);
  }
};

inline std::string layer_prefix(int i) {
  std::string s = "layers.";
  s += std::to_string(i);
  s += '.';
  return s;
}

inline model_tensors make_model_tensors(const model_desc& m, int vocab_padded) {
  model_tensors out;
  auto add = [&](std::string name, std::int64_t rows, std::int64_t cols, init_kind k, float sd, bool decay) {
    global_tensor t;
    t.name = std::move(name);
    t.rows = rows;
    t.cols = cols;
    t.init = k;
    t.stddev = sd;
    t.decay = decay;
    out.tensors.push_back(std::move(t));
  };
  const std::int64_t C = m.hidden, D = m.head_dim, F = m.ffn;
  const float sd = 0.02f, sd_out = 0.02f / std::sqrt(2.0f * static_cast<float>(m.layers));
  add("embed", vocab_padded, C, init_kind::normal, sd, true);
  out.tensors.back().valid_rows = m.vocab;
  if (m.position == position::learned) add("pos", m.seq, C, init_kind::normal, 0.01f, true);
  const bool ln = m.norm == norm::layernorm;
  for (int i = 0; i < m.layers; ++i) {
    const std::string p = layer_prefix(i);
    add(p + "norm1.weight", C, 1, init_kind::ones, 0, false);
    if (ln) add(p + "norm1.bias", C, 1, init_kind::zeros, 0, false);
    add(p + "attn.q.weight", m.heads * D, C, init_kind::normal, sd, true);
    add(p + "attn.k.weight", m.kv_heads * D, C, init_kind::normal, sd, true);
    add(p + "attn.v.weight", m.kv_heads * D, C, init_kind::normal, sd, true);
    if (m.bias) {
      add(p + "attn.q.bias", m.heads * D, 1, init_kind::zeros, 0, false);
      add(p + "attn.k.bias", m.kv_heads * D, 1, init_kind::zeros, 0, false);
      add(p + "attn.v.bias", m.kv_heads * D, 1, init_kind::zeros, 0, false);
    }
    add(p + "attn.o.weight", C, m.heads * D, init_kind::normal, sd_out, true);
    if (m.bias) add(p + "attn.o.bias", C, 1, init_kind::zeros, 0, false);
    add(p + "norm2.weight", C, 1, init_kind::ones, 0, false);
    if (ln) add(p + "norm2.bias", C, 1, init_kind::zeros, 0, false);
    if (m.mlp == mlp::swiglu) add(p + "mlp.gate.weight", F, C, init_kind::normal, sd, true);
    add(p + "mlp.up.weight", F, C, init_kind::normal, sd, true);
    if (m.bias) {
      if (m.mlp == mlp::swiglu) add(p + "mlp.gate.bias", F, 1, init_kind::zeros, 0, false);
      add(p + "mlp.up.bias", F, 1, init_kind::zeros, 0, false);
    }
    add(p + "mlp.down.weight", C, F, init_kind::normal, sd_out, true);
    if (m.bias) add(p + "mlp.down.bias", C, 1, init_kind::zeros, 0, false);
  }
  add("final_norm.weight", C, 1, init_kind::ones, 0, false);
  if (ln) add("final_norm.bias", C, 1, init_kind::zeros, 0, false);
  if (!m.tied_embeddings) {
    add("head", vocab_padded, C, init_kind::normal, sd, true);
    out.tensors.back().valid_rows = m.vocab;
  }
  return out;
}

// ---- slots: a rank's local buffers for tp rank `t` of `tp` ---------------------------------------------------
// Megatron's splits are placements on the tp axis, and the piece a rank holds is the layout layer's
// local_box_of (layout/shard_shape.hpp), the one sharding rule of the library: column-parallel weights
// (q|k|v, up|gate) and the vocabulary-parallel embedding and head are Shard(0) — rows, each weight's
// output features — row-parallel weights (attention output, MLP down) are Shard(1), norms and the
// row-parallel biases are replicated.
namespace slot_detail {
/// The box of global tensor `id` that tp rank t of tp holds under placement p, at slot row `l_row`.
/// @pre p's split divides the tensor (the plan checks heads, ffn and the padded vocabulary against tp).
inline box tp_box(const model_tensors& mt, int id, placement p, int t, int tp, std::int64_t l_row = 0) {
  const global_tensor& g = mt.tensors[static_cast<std::size_t>(id)];
  const mesh_desc m = mesh_desc::make({{axis::tp, tp}});
  std::array<int, num_axes> coords{};
  coords[index(axis::tp)] = t;
  const local_box lb = local_box_of(m, sharding{}.with(axis::tp, p), extents{g.rows, g.cols}, coords);
  check(lb.valid == lb.padded, "tessera internal: tp (", tp, ") does not split ", g.name, " ", to_string(extents{g.rows, g.cols}),
        " evenly under ", to_string(p));
  return box{id, lb.offset[0], lb.offset[1], lb.padded[0], lb.padded[1], l_row, 0};
}
inline slot_layout whole(const model_tensors& mt, const std::string& tensor, tp_role role) {
  const int id = mt.find(tensor);
  const auto& g = mt.tensors[static_cast<std::size_t>(id)];
  slot_layout s;
  s.name = tensor;
  s.rows = g.rows;
  s.cols = g.cols;
  s.role = role;
  s.decay = g.decay;
  s.boxes.push_back(tp_box(mt, id, placement::make_replicate(), 0, 1));
  return s;
}
/// Each listed tensor's rows under Shard(0) on tp, stacked in order (column-parallel weights, fused).
inline slot_layout row_shards(const model_tensors& mt, std::string name, const std::vector<std::string>& tensors,
                              int t, int tp) {
  slot_layout s;
  s.name = std::move(name);
  s.role = tp_role::sharded;
  for (const auto& tn : tensors) {
    const int id = mt.find(tn);
    const box b = tp_box(mt, id, placement::make_shard(0), t, tp, s.rows);
    s.boxes.push_back(b);
    s.rows += b.rows;
    s.cols = b.cols;
    s.decay = mt.tensors[static_cast<std::size_t>(id)].decay;
  }
  return s;
}
/// A tensor's columns under Shard(1) on tp (row-parallel weights).
inline slot_layout col_shard(const model_tensors& mt, const std::string& tensor, int t, int tp) {
  const int id = mt.find(tensor);
  const box b = tp_box(mt, id, placement::make_shard(1), t, tp);
  slot_layout s;
  s.name = tensor;
  s.rows = b.rows;
  s.cols = b.cols;
  s.role = tp_role::sharded;
  s.decay = mt.tensors[static_cast<std::size_t>(id)].decay;
  s.boxes.push_back(b);
  return s;
}
}  // namespace slot_detail

/// The slots of one transformer layer, in a fixed order, for tp rank t of tp.
struct layer_slots {
  int norm1_w = -1, norm1_b = -1, qkv_w = -1, qkv_b = -1, o_w = -1, o_b = -1, norm2_w = -1, norm2_b = -1;
  int up_w = -1, up_b = -1, down_w = -1, down_b = -1;
};

}  // namespace tessera
