// tessera/model/config.hpp — the model families as types: ts::gpt<gpt_config{...}>, ts::llama<llama_config{...}>.
//
// A config is a C++20 aggregate used as a template argument; everything downstream (the plan, the
// trainer, the kernels) sees only `model_desc`, a plain value with every default resolved, and integer
// template arguments such as the head size. (Class-type template arguments stop at this header: kernel
// templates take integers and types only.)
#pragma once
#include <cstdint>
#include <string_view>

namespace tessera {

namespace norm {
enum kind : std::uint8_t { layernorm, rmsnorm };
}
namespace mlp {
enum kind : std::uint8_t { gelu, swiglu };
}
namespace position {
enum kind : std::uint8_t { learned, rope };
}

/// GPT-2 family. Every field has a default; vocab, seq, layers, hidden and heads are the ones to set.
struct gpt_config {
  int vocab = 50257;
  int seq = 1024;
  int layers = 12;
  int hidden = 768;
  int heads = 12;
  int kv_heads = 0;  ///< 0 = heads
  int ffn = 0;       ///< 0 = 4·hidden
  norm::kind norm = norm::layernorm;
  mlp::kind mlp = mlp::gelu;
  position::kind position = position::learned;
  bool tied_embeddings = true;
  bool bias = true;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
};

/// LLaMA family: RMSNorm, SwiGLU, RoPE (rotate_half), untied head, no biases.
struct llama_config {
  int vocab = 32000;
  int seq = 2048;
  int layers = 32;
  int hidden = 4096;
  int heads = 32;
  int kv_heads = 0;
  int ffn = 0;  ///< 0 = 4·hidden
  norm::kind norm = norm::rmsnorm;
  mlp::kind mlp = mlp::swiglu;
  position::kind position = position::rope;
  bool tied_embeddings = false;
  bool bias = false;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
};

enum class model_family : std::uint8_t { gpt, llama };

/// Activation recompute (Korthikanti et al. 2022): none; selective = keep q|k|v, recompute the attention
/// core (its output and log-sum-exp) in the backward; full = keep only each layer's input, recompute the
/// whole layer in the backward.
enum class recompute_kind : std::uint8_t { none, selective, full };

/// A model with every default resolved.
struct model_desc {
  model_family family = model_family::gpt;
  int vocab = 0, seq = 0, layers = 0, hidden = 0, heads = 0, kv_heads = 0, ffn = 0, head_dim = 0;
  norm::kind norm = norm::layernorm;
  mlp::kind mlp = mlp::gelu;
  position::kind position = position::learned;
  bool tied_embeddings = true;
  bool bias = true;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;

  constexpr const char* family_name() const { return family == model_family::gpt ? "gpt" : "llama"; }

  /// Parameters of the model (tied head counted once, without vocabulary padding).
  constexpr std::int64_t num_params() const {
    const std::int64_t C = hidden, D = head_dim, F = ffn;
    const std::int64_t qkv = C * (heads + 2 * kv_heads) * D + (bias ? (heads + 2 * kv_heads) * D : 0);
    const std::int64_t proj = heads * D * C + (bias ? C : 0);
    const std::int64_t up = (mlp == mlp::swiglu ? 2 : 1) * (C * F + (bias ? F : 0));
    const std::int64_t down = F * C + (bias ? C : 0);
    const std::int64_t norms = 2 * (norm == norm::layernorm ? 2 * C : C);
    const std::int64_t layer = qkv + proj + up + down + norms;
    std::int64_t total = layers * layer + std::int64_t(vocab) * C + (norm == norm::layernorm ? 2 * C : C);
    if (position == position::learned) total += std::int64_t(seq) * C;
    if (!tied_embeddings) total += std::int64_t(vocab) * C;
    return total;
  }
};

template <class Config>
constexpr model_desc resolve(model_family f, const Config& c) {
  model_desc m;
  m.family = f;
  m.vocab = c.vocab;
  m.seq = c.seq;
  m.layers = c.layers;
  m.hidden = c.hidden;
  m.heads = c.heads;
  m.kv_heads = c.kv_heads == 0 ? c.heads : c.kv_heads;
  m.ffn = c.ffn == 0 ? 4 * c.hidden : c.ffn;
  m.head_dim = c.heads > 0 ? c.hidden / c.heads : 0;
  m.norm = c.norm;
  m.mlp = c.mlp;
  m.position = c.position;
  m.tied_embeddings = c.tied_embeddings;
  m.bias = c.bias;
  m.norm_eps = c.norm_eps;
  m.rope_theta = c.rope_theta;
  return m;
}

namespace diag {
template <int Hidden, int Heads> struct hidden_not_divisible_by_heads { static constexpr bool value = Heads > 0 && Hidden % Heads == 0; };
template <int Heads, int KvHeads> struct heads_not_divisible_by_kv_heads { static constexpr bool value = KvHeads > 0 && Heads % KvHeads == 0; };
template <int Value> struct model_size_must_be_positive { static constexpr bool value = Value > 0; };
}  // namespace diag

namespace model_detail {
template <model_desc M>
constexpr bool check_model() {
  static_assert(diag::model_size_must_be_positive<M.vocab>::value, "tessera model: vocab must be > 0");
  static_assert(diag::model_size_must_be_positive<M.seq>::value, "tessera model: seq must be > 0");
  static_assert(diag::model_size_must_be_positive<M.layers>::value, "tessera model: layers must be > 0");
  static_assert(diag::model_size_must_be_positive<M.heads>::value, "tessera model: heads must be > 0");
  static_assert(diag::hidden_not_divisible_by_heads<M.hidden, M.heads>::value,
                "tessera model: hidden not divisible by heads (numbers in the note)");
  static_assert(diag::heads_not_divisible_by_kv_heads<M.heads, M.kv_heads>::value,
                "tessera model: heads not divisible by kv_heads (numbers in the note)");
  static_assert(M.position != position::rope || M.head_dim % 2 == 0, "tessera model: RoPE needs an even head size");
  return true;
}
}  // namespace model_detail

/// A GPT-2-family model type.
template <gpt_config C>
struct gpt {
  static constexpr model_desc desc = resolve(model_family::gpt, C);
  static constexpr bool checked = model_detail::check_model<desc>();
  static constexpr int head_dim = desc.head_dim;
};
/// A LLaMA-family model type.
template <llama_config C>
struct llama {
  static constexpr model_desc desc = resolve(model_family::llama, C);
  static constexpr bool checked = model_detail::check_model<desc>();
  static constexpr int head_dim = desc.head_dim;
};

template <class T> inline constexpr bool is_model_v = false;
template <gpt_config C> inline constexpr bool is_model_v<gpt<C>> = true;
template <llama_config C> inline constexpr bool is_model_v<llama<C>> = true;

/// Model FLOPs per token of a training step (forward + backward, no recompute): 6·N + 12·L·C·T, N = the
/// parameters that enter matrix products (docs/training.md, "MFU"). The token embedding is a lookup, but
/// the head (tied or not) is a V×C GEMM: V·C counts once.
constexpr double flops_per_token(const model_desc& m) {
  double n = static_cast<double>(m.num_params());
  if (m.position == position::learned) n -= static_cast<double>(m.seq) * m.hidden;
  if (!m.tied_embeddings) n -= static_cast<double>(m.vocab) * m.hidden;
  return 6.0 * n + 12.0 * m.layers * m.hidden * m.seq;
}

}  // namespace tessera
