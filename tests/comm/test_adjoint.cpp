// The backward column of the transition table is the adjoint of the forward column: for every
// single-axis transition F : src → dst and its backward G : dual(dst) → dual(src), summed over all ranks,
// <F x, y> = <x, G y>. This is what makes a placement change differentiable with the table alone.
#include <doctest/doctest.h>
#include <mpi.h>

#include <cmath>
#include <vector>

#include "host_harness.hpp"
#include "redistribute_cases.hpp"

namespace ts = tessera;
using namespace tessera::testing;

namespace {
double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}
std::vector<float> as_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }
}  // namespace

TEST_CASE("transition table: backward is the adjoint of forward, on every mesh and axis") {
  long checked = 0;
  for_every_mesh<host_harness>([&](ts::mpi_comm& c, const ts::mesh_desc& m) {
    ts::mesh_comms<ts::mpi_comm> comms(c, m);
    const auto coords = comms.coords();
    const ts::extents g{6, 5};
    std::uint64_t seed = 11;
    for (ts::axis a : ts::all_axes)
      for (ts::placement from : basic_placements)
        for (ts::placement to : basic_placements) {
          const ts::sharding src = ts::sharding{}.with(a, from), dst = ts::sharding{}.with(a, to);
          const ts::sharding bsrc = ts::sharding{}.with(a, ts::dual(to)), bdst = ts::sharding{}.with(a, ts::dual(from));
          // the table's backward entry is the transition between the duals
          CHECK(ts::transition(ts::dual(to), ts::dual(from)) == ts::transition_with_backward(from, to).backward);
          const auto x = as_float(reference_local(m, src, g, coords, seed++));
          const auto y = as_float(reference_local(m, dst, g, coords, seed++));
          std::vector<float> fx(y.size()), gy(x.size());
          ts::redistribute(comms, g, src, dst, x.data(), fx.data());
          ts::redistribute(comms, g, bsrc, bdst, y.data(), gy.data());
          double sums[2] = {dot(fx, y), dot(x, gy)};
          MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, c.native());
          CHECK_MESSAGE(std::fabs(sums[0] - sums[1]) <= 1e-5 * (1.0 + std::fabs(sums[0])),
                        "axis ", std::string(ts::axis_name(a)), " ", ts::to_string(from), " -> ", ts::to_string(to),
                        ": <Fx,y> = ", sums[0], ", <x,Gy> = ", sums[1]);
          ++checked;
        }
  });
  CHECK(checked > 0);
}
