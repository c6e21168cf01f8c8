// expect: the tensor dimension D must be >= 0
#include <tessera/layout/placement.hpp>
int main() { return tessera::shard<-1>::value.dim; }
