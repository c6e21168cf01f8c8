// tessera/schedule/schedule.hpp — the pipeline-schedule layer: schedule types (gpipe, 1F1B, interleaved,
// Chimera, ZB-H1, ZB-V, DualPipeV), their constexpr generators, verification and metrics.
// Depends on tessera/core only.
#pragma once
#include "tessera/schedule/action.hpp"
#include "tessera/schedule/format.hpp"
#include "tessera/schedule/generators.hpp"
#include "tessera/schedule/metrics.hpp"
#include "tessera/schedule/program.hpp"
#include "tessera/schedule/types.hpp"
#include "tessera/schedule/verify.hpp"
