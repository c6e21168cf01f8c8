// tessera/ops/host.hpp — every operator of the host backend (OpenMP loops, OpenBLAS GEMMs).
#pragma once
#include "tessera/ops/elementwise.hpp"
#include "tessera/ops/host/attention.hpp"
#include "tessera/ops/host/blas.hpp"
#include "tessera/ops/host/cross_entropy.hpp"
#include "tessera/ops/host/elementwise.hpp"
#include "tessera/ops/host/linear.hpp"
#include "tessera/ops/host/norm.hpp"
#include "tessera/ops/math.hpp"
