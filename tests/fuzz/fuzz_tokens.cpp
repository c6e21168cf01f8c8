// tests/fuzz/fuzz_tokens.cpp — any bytes as a token file (llm.c shard or raw bytes): token_data either
// accepts it, and then every batch holds tokens inside the vocabulary and targets are inputs shifted by
// one, or refuses it with a usage_error. Seeds: the corpus and an llm.c shard.
#include "fuzz_scratch.hpp"
#include "tessera/train/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch_file("input.bin", data, size);
  // the vocabulary decides whether tokens are checked: 200 < 256 checks raw bytes, 300 checks llm.c tokens
  for (const int vocab : {200, 300, 65536}) {
    try {
      tessera::token_data d(path, vocab, 4);
      std::int32_t in[3 * 4], tg[3 * 4];
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) d.shuffle(size);
        for (std::int64_t k = 0; k < 3; ++k) {
          d.fill(k, 3, 0, 3, in, tg);
          for (int i = 0; i < 12; ++i)
            if (in[i] < 0 || in[i] >= vocab || tg[i] < 0 || tg[i] >= vocab || (i % 4 != 3 && tg[i] != in[i + 1]))
              std::abort();
        }
      }
    } catch (const tessera::usage_error&) {
    }
  }
  return 0;
}
