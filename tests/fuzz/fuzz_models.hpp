// tests/fuzz/fuzz_models.hpp — the tiny models the fuzz harnesses load into and the seed program trains
// (fuzz_seeds.cpp), so the seeds are real files of exactly these models: a GPT (learned positions,
// LayerNorm, GELU, biases, tied embeddings) and a LLaMA (RoPE, RMSNorm, SwiGLU, grouped-query, untied).
#pragma once
#include <tessera/tessera.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

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

/// A file under /dev/shm holding `size` bytes of `data` (the readers take paths); one per process.
inline std::string scratch_file(const char* name, const std::uint8_t* data, std::size_t size) {
  static const std::string dir = [] {
    const std::string d = "/dev/shm/tessera_fuzz_" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                 static_cast<std::streamsize>(size));
  return path;
}
}  // namespace fuzz
