// tessera/ops/all.hpp — the operators of every system this compiler can build for: the host's always,
// CUDA's under nvcc. Code written against a system (`ops::linear_forward(sys_, …)` in the chunk, the
// optimizer and ZeRO) includes this, so the overload for its system is declared before the template that
// calls it (qualified calls are looked up where the template is defined).
#pragma once
#include "tessera/ops/host.hpp"
#if defined(__CUDACC__)
#include "tessera/ops/cuda.hpp"
#endif
