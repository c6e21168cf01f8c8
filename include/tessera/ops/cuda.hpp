// tessera/ops/cuda.hpp — every operator of the CUDA backend (device pointers, cuBLASLt GEMMs). Each entry
// point has the host version's name and arguments with a cuda_system value first, and issues its work on
// that value's stream.
#pragma once
#if !defined(__CUDACC__)
#error "tessera/ops/cuda.hpp needs a CUDA compiler (nvcc); the host operators are tessera/ops/host.hpp"
#endif
#include "tessera/ops/attention_shape.hpp"
#include "tessera/ops/cuda/attention.hpp"
#include "tessera/ops/cuda/blas.hpp"
#include "tessera/ops/cuda/common.hpp"
#include "tessera/ops/cuda/cudnn_attention.hpp"
#include "tessera/ops/cuda/cross_entropy.hpp"
#include "tessera/ops/cuda/elementwise.hpp"
#include "tessera/ops/cuda/linear.hpp"
#include "tessera/ops/cuda/norm.hpp"
#include "tessera/ops/elementwise.hpp"
#include "tessera/ops/math.hpp"
#include "tessera/ops/vocab_slice.hpp"
