// The CUDA engine (libtessera_engine_cuda.so): ../engine.cpp compiled by nvcc, so that its trainer also runs on
// cuda_system (--backend cuda) — what programs compiled with the README's nvcc line load.
#include "../engine.cpp"
