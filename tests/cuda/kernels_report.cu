// Instantiates the main CUDA operator kernels so ptxas reports their registers, shared memory and spills
// (compiled with -Xptxas -v; see tests/cuda/ptxas_report.sh, which fails on attention-forward spills).
// Nothing here runs: the entry points are only instantiated.
#include <tessera/ops/cuda/attention.hpp>
#include <tessera/ops/cuda/cross_entropy.hpp>
#include <tessera/ops/cuda/norm.hpp>

namespace ts = tessera;
namespace ops = tessera::ops;

template <int D, class T>
void instantiate_attention() {
  ops::attention_forward<D, T>(ts::cuda_system{}, nullptr, nullptr, nullptr, nullptr, nullptr, {}, 1.0f);
  ops::attention_backward<D, T>(ts::cuda_system{}, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, {}, 1.0f,
                                nullptr, nullptr, nullptr);
}

template <class T>
void instantiate_rows() {
  ops::layernorm_forward<T>(ts::cuda_system{}, nullptr, nullptr, nullptr, 0, 0, 1e-5f, nullptr, nullptr, nullptr);
  ops::layernorm_backward<T>(ts::cuda_system{}, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 0, nullptr, nullptr,
                             nullptr);
  ops::rmsnorm_forward<T>(ts::cuda_system{}, nullptr, nullptr, 0, 0, 1e-5f, nullptr, nullptr);
  ops::rmsnorm_backward<T>(ts::cuda_system{}, nullptr, nullptr, nullptr, nullptr, 0, 0, nullptr, nullptr);
  ops::cross_entropy_forward<T>(ts::cuda_system{}, nullptr, nullptr, 0, ops::vocab_slice{}, nullptr, nullptr);
  ops::cross_entropy_backward<T>(ts::cuda_system{}, nullptr, nullptr, nullptr, 0, ops::vocab_slice{}, 1.0f, nullptr);
}

template void instantiate_attention<64, float>();
template void instantiate_attention<64, ts::bf16>();
template void instantiate_attention<128, float>();
template void instantiate_attention<128, ts::bf16>();
template void instantiate_rows<float>();
template void instantiate_rows<ts::bf16>();
