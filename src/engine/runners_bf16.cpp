// The pre-compiled engine's bf16 runners (runners.hpp).
#include "runners.hpp"

namespace tessera::engine_library {
plan_runner bf16_runner(int head_dim) { return runner_for<precision_kind::bf16>(head_dim); }
}  // namespace tessera::engine_library
