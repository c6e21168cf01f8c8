// tessera/model/hf.hpp — Hugging Face names and layouts (docs/formats.md) ↔ tessera's global tensors.
//
// GPT-2 (GPT2LMHeadModel) stores Conv1D weights [in, out] with q|k|v stacked along the output of
// c_attn; LLaMA (LlamaForCausalLM) stores Linear weights [out, in] like tessera. Each HF tensor is a list
// of pieces: the tessera tensor it fills, whether it is transposed, and the offset along HF's output dim.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/model/config.hpp"
#include "tessera/model/params.hpp"

namespace tessera {

struct hf_piece {
  std::string ours;
  bool transpose = false;    ///< ours(r, c) = hf(c, offset + r)   (else hf(offset + r, c); 1-D: hf(offset + r))
  std::int64_t offset = 0;
};
struct hf_tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<hf_piece> pieces;
};

inline std::vector<hf_tensor> hf_layout(const model_desc& m) {
  std::vector<hf_tensor> out;
  const std::int64_t C = m.hidden, V = m.vocab, T = m.seq, F = m.ffn, Q = std::int64_t(m.heads) * m.head_dim,
                     KV = std::int64_t(m.kv_heads) * m.head_dim;
  auto add = [&](std::string name, std::vector<std::int64_t> shape, std::vector<hf_piece> pieces) {
    out.push_back({std::move(name), std::move(shape), std::move(pieces)});
  };
  const bool ln = m.norm == norm::layernorm;
  if (m.family == model_family::gpt) {
    add("transformer.wte.weight", {V, C}, {{"embed"}});
    if (m.position == position::learned) add("transformer.wpe.weight", {T, C}, {{"pos"}});
    for (int i = 0; i < m.layers; ++i) {
      const std::string h = "transformer.h." + std::to_string(i) + ".", p = layer_prefix(i);
      add(h + "ln_1.weight", {C}, {{p + "norm1.weight"}});
      if (ln) add(h + "ln_1.bias", {C}, {{p + "norm1.bias"}});
      add(h + "attn.c_attn.weight", {C, Q + 2 * KV},
          {{p + "attn.q.weight", true, 0}, {p + "attn.k.weight", true, Q}, {p + "attn.v.weight", true, Q + KV}});
      if (m.bias)
        add(h + "attn.c_attn.bias", {Q + 2 * KV},
            {{p + "attn.q.bias", false, 0}, {p + "attn.k.bias", false, Q}, {p + "attn.v.bias", false, Q + KV}});
      add(h + "attn.c_proj.weight", {Q, C}, {{p + "attn.o.weight", true, 0}});
      if (m.bias) add(h + "attn.c_proj.bias", {C}, {{p + "attn.o.bias"}});
      add(h + "ln_2.weight", {C}, {{p + "norm2.weight"}});
      if (ln) add(h + "ln_2.bias", {C}, {{p + "norm2.bias"}});
      if (m.mlp == mlp::swiglu) {
        add(h + "mlp.c_fc.weight", {C, 2 * F}, {{p + "mlp.gate.weight", true, 0}, {p + "mlp.up.weight", true, F}});
        if (m.bias) add(h + "mlp.c_fc.bias", {2 * F}, {{p + "mlp.gate.bias", false, 0}, {p + "mlp.up.bias", false, F}});
      } else {
        add(h + "mlp.c_fc.weight", {C, F}, {{p + "mlp.up.weight", true, 0}});
        if (m.bias) add(h + "mlp.c_fc.bias", {F}, {{p + "mlp.up.bias"}});
      }
      add(h + "mlp.c_proj.weight", {F, C}, {{p + "mlp.down.weight", true, 0}});
      if (m.bias) add(h + "mlp.c_proj.bias", {C}, {{p + "mlp.down.bias"}});
    }
    add("transformer.ln_f.weight", {C}, {{"final_norm.weight"}});
    if (ln) add("transformer.ln_f.bias", {C}, {{"final_norm.bias"}});
    if (!m.tied_embeddings) add("lm_head.weight", {V, C}, {{"head"}});
  } else {
    add("model.embed_tokens.weight", {V, C}, {{"embed"}});
    if (m.position == position::learned) add("model.embed_positions.weight", {T, C}, {{"pos"}});
    for (int i = 0; i < m.layers; ++i) {
      const std::string h = "model.layers." + std::to_string(i) + ".", p = layer_prefix(i);
      add(h + "input_layernorm.weight", {C}, {{p + "norm1.weight"}});
      if (ln) add(h + "input_layernorm.bias", {C}, {{p + "norm1.bias"}});
      add(h + "self_attn.q_proj.weight", {Q, C}, {{p + "attn.q.weight"}});
      add(h + "self_attn.k_proj.weight", {KV, C}, {{p + "attn.k.weight"}});
      add(h + "self_attn.v_proj.weight", {KV, C}, {{p + "attn.v.weight"}});
      if (m.bias) {
        add(h + "self_attn.q_proj.bias", {Q}, {{p + "attn.q.bias"}});
        add(h + "self_attn.k_proj.bias", {KV}, {{p + "attn.k.bias"}});
        add(h + "self_attn.v_proj.bias", {KV}, {{p + "attn.v.bias"}});
      }
      add(h + "self_attn.o_proj.weight", {C, Q}, {{p + "attn.o.weight"}});
      if (m.bias) add(h + "self_attn.o_proj.bias", {C}, {{p + "attn.o.bias"}});
      add(h + "post_attention_layernorm.weight", {C}, {{p + "norm2.weight"}});
      if (ln) add(h + "post_attention_layernorm.bias", {C}, {{p + "norm2.bias"}});
      if (m.mlp == mlp::swiglu) {
        add(h + "mlp.gate_proj.weight", {F, C}, {{p + "mlp.gate.weight"}});
        if (m.bias) add(h + "mlp.gate_proj.bias", {F}, {{p + "mlp.gate.bias"}});
      }
      add(h + "mlp.up_proj.weight", {F, C}, {{p + "mlp.up.weight"}});
      if (m.bias) add(h + "mlp.up_proj.bias", {F}, {{p + "mlp.up.bias"}});
      add(h + "mlp.down_proj.weight", {C, F}, {{p + "mlp.down.weight"}});
      if (m.bias) add(h + "mlp.down_proj.bias", {C}, {{p + "mlp.down.bias"}});
    }
    add("model.norm.weight", {C}, {{"final_norm.weight"}});
    if (ln) add("model.norm.bias", {C}, {{"final_norm.bias"}});
    if (!m.tied_embeddings) add("lm_head.weight", {V, C}, {{"head"}});
  }
  return out;
}

/// The flat index in HF tensor h of element (r, c) of the tessera tensor that piece p fills, or -1 where
/// that element has no HF counterpart (rows of vocabulary padding).
inline std::int64_t hf_index(const hf_tensor& h, const hf_piece& p, std::int64_t r, std::int64_t c) {
  if (h.shape.size() == 1) return p.offset + r < h.shape[0] ? p.offset + r : -1;
  const std::int64_t hc = h.shape[1];
  if (p.transpose) return c * hc + p.offset + r;
  return p.offset + r < h.shape[0] ? (p.offset + r) * hc + c : -1;
}

/// ours name → (HF tensor, piece) of a layout: the one place an HF element is found for a tessera one.
struct hf_source {
  const hf_tensor* tensor = nullptr;
  const hf_piece* piece = nullptr;
};
inline std::vector<hf_source> hf_sources(const std::vector<hf_tensor>& layout, const model_tensors& mt) {
  std::vector<hf_source> out(mt.tensors.size());
  for (const auto& h : layout)
    for (const auto& p : h.pieces) out[static_cast<std::size_t>(mt.find(p.ours))] = {&h, &p};
  return out;
}

}  // namespace tessera
