// Must not compile: interleaved needs V >= 2 (V = 1)
#include "tessera/schedule/types.hpp"
using T = tessera::schedule_table<tessera::interleaved_1f1b<8, 1>, 4>;
int main() { return T::stages; }
