// tests/fuzz/fuzz_manifest.cpp — any bytes as a checkpoint's manifest.json, against the real shard files
// of a checkpoint of the tiny GPT (TESSERA_FUZZ_CHECKPOINT: a step directory the seed program wrote,
// tp = 2, so tensors are split into slices over two shards): the manifest is parsed and validated, the
// model compared, and every slot filled from the slices — or a usage_error names what is wrong.
#include "fuzz_models.hpp"

namespace {
const std::string& checkpoint_dir() {
  static const std::string dir = [] {
    const char* d = std::getenv("TESSERA_FUZZ_CHECKPOINT");
    if (!d || !std::filesystem::is_directory(d)) {
      std::fprintf(stderr, "fuzz_manifest: set TESSERA_FUZZ_CHECKPOINT to a step directory of the tiny GPT "
                           "(scripts/fuzz.sh does)\n");
      std::exit(2);
    }
    return std::string(d);
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  checkpoint_dir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr auto pd = fuzz::one_rank<fuzz::gpt>::desc;
  static const tessera::model_tensors mt = tessera::make_model_tensors(pd.model, pd.vocab_padded);
  static const nlohmann::json plan = tessera::plan_to_json(pd);
  auto ps = fuzz::whole_store(mt);
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto man = tessera::parse_manifest(tessera::parse_json(text, "manifest"), "manifest");
    tessera::check_same_model(man, plan, checkpoint_dir());
    tessera::load_slices(man, checkpoint_dir(), mt, ps);
  } catch (const tessera::usage_error&) {
  }
  return 0;
}
