// tests/fuzz/fuzz_safetensors.cpp — any bytes as a safetensors file: the reader either accepts the file,
// and then every tensor reads back with exactly numel values, or refuses it with a usage_error. Anything
// else (another exception, a sanitizer report) is a defect. Seeds: checkpoint shards and HF exports.
#include "fuzz_scratch.hpp"
#include "tessera/train/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch_file("input.safetensors", data, size);
  try {
    const tessera::safetensors_reader rd(path);
    for (const auto& [name, t] : rd.tensors()) {
      const auto values = rd.read(name);
      if (static_cast<std::int64_t>(values.size()) != t.numel()) std::abort();
    }
  } catch (const tessera::usage_error&) {
  }
  return 0;
}
