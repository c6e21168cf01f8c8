// tests/fuzz/fuzz_models.hpp — the tiny models the fuzz harnesses load into and the seed program trains
// (fuzz_seeds.cpp), so the seeds are real files of exactly these models: a GPT (learned positions,
// LayerNorm, GELU, biases, tied embeddings) and a LLaMA (RoPE, RMSNorm, SwiGLU, grouped-query, untied).
#pragma once
#include <tessera/tessera.hpp>

#include "fuzz_scratch.hpp"

namespace fuzz {
namespace ts = tessera;

using gpt = ts::gpt<ts::gpt_config{.vocab = 256, .seq = 8, .layers = 2, .hidden = 16, .heads = 2}>;
using llama = ts::llama<ts::llama_config{
    .vocab = 256, .seq = 8, .layers = 2, .hidden = 16, .heads = 2, .kv_heads = 1, .ffn = 24}>;
template <class Model>
using one_rank = ts::plan<Model, ts::mesh<>, ts::gpipe<1>>;

/// The model's parameters as one slot per global tensor (every tensor whole: a valid one-rank layout for
/// the loaders, which fill slots through their boxes), fp32.
inline ts::param_store<float> whole_store(const ts::model_tensors& mt) {
  ts::param_store<float> ps;
  std::vector<std::size_t> order;
  for (const auto& g : mt.tensors) {
    order.push_back(ps.slots.size());
    ps.get_or_add(ts::slot_detail::whole(mt, g.name, ts::tp_role::replicated));
  }
  ps.finalise(order);
  return ps;
}

}  // namespace fuzz
