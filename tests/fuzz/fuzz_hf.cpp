// tests/fuzz/fuzz_hf.cpp — any bytes as a Hugging Face safetensors file for --init-from: the HF name
// mapping of the GPT and the LLaMA either loads every tensor or refuses the file with a usage_error naming
// it, and then no slot was touched. Seeds: both models' HF exports.
#include "fuzz_models.hpp"

namespace {
template <class Model>
void load_into(const std::string& path) {
  constexpr auto pd = fuzz::one_rank<Model>::desc;
  static const tessera::model_tensors mt = tessera::make_model_tensors(pd.model, pd.vocab_padded);
  auto ps = fuzz::whole_store(mt);
  for (auto& s : ps.slots) std::fill_n(s.value.data(), s.value.size(), 7.0f);
  try {
    tessera::load_hf(path, pd.model, mt, ps);
  } catch (const tessera::usage_error&) {
    for (const auto& s : ps.slots)  // nothing changed unless all tensors were valid
      for (std::size_t j = 0; j < s.value.size(); ++j)
        if (s.value.data()[j] != 7.0f) std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch_file("input.safetensors", data, size);
  load_into<fuzz::gpt>(path);
  load_into<fuzz::llama>(path);
  return 0;
}
