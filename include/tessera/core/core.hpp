// tessera/core/core.hpp — the core layer: portability, bf16, errors, small containers.
#pragma once
#include "tessera/core/bf16.hpp"
#include "tessera/core/config.hpp"
#include "tessera/core/cpu.hpp"
#include "tessera/core/crc32.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/profile.hpp"
#include "tessera/core/simd.hpp"
#include "tessera/core/static_vector.hpp"
