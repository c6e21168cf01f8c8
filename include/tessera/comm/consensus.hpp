// tessera/comm/consensus.hpp — agreeing on text across the ranks of a communicator.
//
//   first_error(c, err)       the error text of the lowest rank whose `err` is not empty ("" if none);
//                             every rank gets the same — so all fail together, with one reason
//   broadcast_string(c, s, root)
//   gather_strings(c, s, root) every rank's string, in rank order, on root (empty elsewhere)
//
// Collective over c; written once against the communicator concept.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tessera/comm/communicator.hpp"

namespace tessera {

template <communicator C>
std::string broadcast_string(C& c, std::string s, int root) {
  std::int64_t len = c.rank() == root ? static_cast<std::int64_t>(s.size()) : 0;
  c.broadcast(&len, 1, root);
  s.resize(static_cast<std::size_t>(len));
  if (len > 0) c.broadcast(reinterpret_cast<std::uint8_t*>(s.data()), s.size(), root);
  return s;
}

template <communicator C>
std::string first_error(C& c, const std::string& err) {
  const int first = all_reduce_value(c, static_cast<std::int32_t>(err.empty() ? c.size() : c.rank()), reduce_op::min);
  if (first == c.size()) return {};
  std::string msg = broadcast_string(c, err, first);
  return msg.empty() ? std::string("unknown error") : msg;
}

template <communicator C>
std::vector<std::string> gather_strings(C& c, const std::string& s, int root) {
  const std::int32_t len = static_cast<std::int32_t>(s.size());
  std::vector<std::int32_t> lens(c.rank() == root ? static_cast<std::size_t>(c.size()) : 0);
  c.gather(&len, lens.data(), 1, root);
  block_partition p;
  p.counts.assign(static_cast<std::size_t>(c.size()), 0);
  p.displs.assign(p.counts.size(), 0);
  if (c.rank() == root) {
    int off = 0;
    for (std::size_t r = 0; r < lens.size(); ++r) {
      p.counts[r] = lens[r];
      p.displs[r] = off;
      off += lens[r];
    }
  }
  p.counts[static_cast<std::size_t>(c.rank())] = len;
  std::string all(static_cast<std::size_t>(c.rank() == root ? p.total() : 0), '\0');
  c.gather_v(reinterpret_cast<const std::uint8_t*>(s.data()), reinterpret_cast<std::uint8_t*>(all.data()), p, root);
  std::vector<std::string> out;
  if (c.rank() == root)
    for (std::size_t r = 0; r < lens.size(); ++r)
      out.push_back(all.substr(static_cast<std::size_t>(p.displs[r]), static_cast<std::size_t>(p.counts[r])));
  return out;
}

}  // namespace tessera
