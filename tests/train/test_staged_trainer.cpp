// The trainer on a device whose memory the host may not touch, over several ranks: the fake device system
// (tests/support/fake_device_system.hpp) with the staged communicator (comm/staged.hpp), as several ranks
// on one GPU train. Every layout of tests/support/staged_layouts.hpp trains to the host trainer's losses
// and gradient norms bit for bit (the same operators on the same numbers, the same MPI calls on host
// copies). Each world size of the MPI run trains its layouts.
#include <doctest/doctest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fake_device_system.hpp"
#include "staged_layouts.hpp"
#include "tessera/comm/staged.hpp"

namespace ts = tessera;
using tessera_test::fake_device_system;
using staged = ts::staged_comm<ts::mpi_comm, fake_device_system>;

TEST_CASE("staged communicator on a fake device: every layout trains to the host's bits") {
  const std::int64_t staged_before = fake_device_system::bytes_to_host;
  const int layouts = tessera_test::compare_layouts_with_host<staged, fake_device_system>(
      3, [](bool, const std::vector<double>& host, const std::vector<double>& device) {
        REQUIRE(host.size() == device.size());
        CHECK(std::memcmp(host.data(), device.data(), host.size() * sizeof(double)) == 0);
        for (std::size_t i = 0; i < host.size(); ++i) CHECK(host[i] == device[i]);
        for (double x : host) CHECK(std::isfinite(x));
      });
  CHECK(fake_device_system::bytes_to_host > staged_before);  // the device was reached through the system only
  int world = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  CHECK(layouts >= (world == 1 || world == 2 || world == 8 ? 2 : world == 4 ? 3 : 0));
}
