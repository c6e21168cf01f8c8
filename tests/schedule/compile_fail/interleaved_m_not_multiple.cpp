// Must not compile: interleaved needs M % P == 0 (M = 6, P = 4)
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::interleaved_1f1b<6, 2>, 4>;
int main() { return T::stages; }
