// A header that breaks both rules of cmake/check_layers.cmake (its test expects both to be reported).
#pragma once
#include "tessera/train/plan.hpp"
inline void bad_send(void* p) { MPI_Send(p, 1, MPI_INT, 0, 0, MPI_COMM_WORLD); }
