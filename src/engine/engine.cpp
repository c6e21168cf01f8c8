// libtessera_engine.so: the training engine compiled once, for the (dtype, head size) pairs of
// engine_builds; what ts::train calls when the build wrote include/tessera/generated/prebuilt_engine.hpp
// (tessera/train/engine.hpp, docs/training.md §12).
#include <cstdio>
#include <vector>

#include "runners.hpp"

namespace te = tessera::engine_library;

/// engine_abi() of the headers this library was built from; ts::train compares it with its own.
extern "C" __attribute__((visibility("default"))) std::uint64_t tessera_engine_abi() { return tessera::engine_abi(); }

/// ts::train's engine: every plan of the request must be one of engine_builds (ts::train checks that at
/// compile time); a request from other headers is refused with exit 2.
extern "C" __attribute__((visibility("default"))) int tessera_engine_train(const tessera::engine_request* request) {
  if (request->abi != tessera::engine_abi() || request->plan_count < 1) {
    std::fprintf(stderr, "tessera: the pre-compiled engine got a request it cannot read (ABI %llx, its own %llx)\n",
                 static_cast<unsigned long long>(request->abi), static_cast<unsigned long long>(tessera::engine_abi()));
    return tessera::usage_exit_code;
  }
  std::vector<te::plan_runner> runners;
  for (int i = 0; i < request->plan_count; ++i) {
    const tessera::plan_desc& pd = *request->plans[i].desc;
    const int head_dim = pd.model.head_dim;
    te::plan_runner run = pd.policy.precision == tessera::precision_kind::bf16 ? te::bf16_runner(head_dim)
                                                                              : te::fp32_runner(head_dim);
    if (!run) {
      std::fprintf(stderr, "tessera: the pre-compiled engine has no build for head size %d in %s; compile the program "
                           "with -DTESSERA_HEADER_ONLY\n", head_dim,
                   pd.policy.precision == tessera::precision_kind::bf16 ? "bf16" : "fp32");
      return tessera::usage_exit_code;
    }
    runners.push_back(run);
  }
  return tessera::train_detail::run_engine(*request, runners.data());
}
