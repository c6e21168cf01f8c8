// The CUDA engine (libtessera_engine_cuda.so): ../runners_fp32.cpp compiled by nvcc, so that its trainer also runs on
// cuda_system (--backend cuda) — what programs compiled with the README's nvcc line load.
#include "../runners_fp32.cpp"
