// libtessera_cudnn_sdpa.so without a GPU: the library loads (cuDNN, the frontend), and cuDNN's frontend
// accepts the attention graphs tessera builds — causal, grouped-query, tessera's strides (q, k, v as column
// blocks of one fused projection, o padded), fp32 statistics, deterministic backward — for sm_80 and
// sm_90, for the shapes the models train with; it refuses what cuDNN cannot run with a reason the log
// can show. Built by CMake only where the library is (cuDNN and the frontend's headers present).
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "tessera/ops/cuda/cudnn_sdpa.hpp"

namespace sdpa = tessera::ops::cudnn_sdpa;
using tessera::ops::attention_shape;

namespace {

/// q, k, v as column blocks of one [B·T × (Hq + 2·Hkv)·D] projection, o with rows of Hq·D (+ pad).
tessera_sdpa_problem fused(long long B, long long T, long long Hq, long long Hkv, long long D, long long pad = 0) {
  const long long ld = (Hq + 2 * Hkv) * D;
  attention_shape sh{B, T, Hq, Hkv, ld, ld, ld, Hq * D + pad};
  return sdpa::problem(sh, D, 1.0f / 8);
}

std::string validate(const tessera_sdpa_problem& p, int backward, int sm) {
  char why[1024] = {};
  const int r = sdpa::process().validate(&p, backward, sm, why, sizeof why);
  return r == 0 ? std::string("ok") : std::string(why);
}

}  // namespace

TEST_CASE("cudnn_sdpa: the library loads and names cuDNN and the frontend") {
  const sdpa::library& lib = sdpa::process();
  INFO(lib.why);
  REQUIRE(lib.ok);
  CHECK(lib.version.rfind("cuDNN 9.", 0) == 0);
  CHECK(lib.version.find("frontend 1.") != std::string::npos);
}

TEST_CASE("cudnn_sdpa: cuDNN accepts tessera's attention graphs, both directions, sm_80 and sm_90") {
  REQUIRE(sdpa::process().ok);
  struct named {
    const char* what;
    tessera_sdpa_problem p;
  };
  const named shapes[] = {
      {"GPT-2 124M (MHA, D=64, T=1024)", fused(4, 1024, 12, 12, 64)},
      {"GPT 1.3B (MHA, D=128, T=1024)", fused(2, 1024, 16, 16, 128)},
      {"LLaMA-style GQA (32 q heads on 8 kv heads, D=128)", fused(1, 2048, 32, 8, 128)},
      {"test models (GQA 4 on 2, D=32, T=32; o padded)", fused(2, 32, 4, 2, 32, 8)},
      {"tensor-parallel shard (GQA 2 on 1, D=32)", fused(2, 32, 2, 1, 32)},
      {"packed heads, odd T", sdpa::problem(tessera::ops::attention_detail::packed({3, 37, 4, 2}, 64), 64, 0.125f)},
  };
  for (const named& s : shapes)
    for (const int sm : {80, 90})
      for (const int backward : {0, 1}) {
        CAPTURE(s.what);
        CAPTURE(sm);
        CAPTURE(backward);
        CHECK(validate(s.p, backward, sm) == "ok");
      }
}

TEST_CASE("cudnn_sdpa: what cuDNN cannot run is refused with its reason") {
  REQUIRE(sdpa::process().ok);
  // head size not a multiple of 8
  const std::string d60 = validate(fused(1, 64, 4, 4, 60), 0, 90);
  CHECK(d60.find("D=60") != std::string::npos);
  CHECK(d60.find("multiple of 8") != std::string::npos);
  // head size above cuDNN's limit
  CHECK(validate(fused(1, 64, 2, 2, 512), 1, 90).find("D=512") != std::string::npos);
  // query heads not a multiple of kv heads
  const std::string h3 = validate(fused(1, 64, 8, 3, 64), 0, 90);
  CHECK(h3.find("Hkv=3") != std::string::npos);
  CHECK(h3 != "ok");
}

TEST_CASE("cudnn_sdpa: a missing or foreign library is named with the reason") {
  const sdpa::library none = sdpa::open_library("/nonexistent/libtessera_cudnn_sdpa.so");
  CHECK_FALSE(none.ok);
  CHECK(none.why.find("/nonexistent/libtessera_cudnn_sdpa.so") != std::string::npos);
  const sdpa::library foreign = sdpa::open_library("libz.so.1");  // loads, but is not ours
  CHECK_FALSE(foreign.ok);
  CHECK(foreign.why.find("tessera_cudnn_sdpa_") != std::string::npos);
}

TEST_CASE("cudnn_sdpa: TESSERA_CUDNN_SDPA chooses the library or turns cuDNN attention off") {
  ::setenv("TESSERA_CUDNN_SDPA", "off", 1);
  CHECK(sdpa::library_path().empty());
  ::setenv("TESSERA_CUDNN_SDPA", "/opt/x/libtessera_cudnn_sdpa.so", 1);
  CHECK(sdpa::library_path() == "/opt/x/libtessera_cudnn_sdpa.so");
  ::unsetenv("TESSERA_CUDNN_SDPA");
  CHECK(sdpa::library_path() == TESSERA_CUDNN_SDPA_PATH);
}
