// The pre-compiled engine's fp32 runners (runners.hpp).
#include "runners.hpp"

namespace tessera::engine_library {
plan_runner fp32_runner(int head_dim) { return runner_for<precision_kind::fp32>(head_dim); }
}  // namespace tessera::engine_library
