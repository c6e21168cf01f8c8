// tessera/train/hf_io.hpp — Hugging Face weights in and out (docs/formats.md): `--init-from` and `--export`.
//
// Import: every rank reads the file (validated by safetensors_reader), checks that every tensor of the
// model's HF layout is there with the right shape, and fills its own slots through their boxes — so it
// works for any layout, including q|k|v split over tp and vocabulary padding (padding rows stay zero).
// With bf16 storage the fp32 master copies are filled from the file too, and exported.
// Export: every global element has exactly one owning rank (dp rank 0, tp rank 0 for tp-replicated
// slots, the first pipeline holder of a replicated stage); owners write their elements into a zeroed
// buffer per HF tensor, a sum-reduction to rank 0 assembles it exactly (x + 0 = x), and rank 0 writes the
// file atomically (safetensors.hpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tessera/comm/consensus.hpp"
#include "tessera/core/bf16.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/host_mirror.hpp"
#include "tessera/model/hf.hpp"
#include "tessera/model/params.hpp"
#include "tessera/model/transformer.hpp"
#include "tessera/train/safetensors.hpp"

namespace tessera {

namespace hf_detail {
inline std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string o = "[";
  for (std::size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}
}  // namespace hf_detail

/// Loads HF-named parameters from `path` into this rank's slots. Throws usage_error naming the file and
/// tensor when a tensor is missing or has the wrong shape; nothing is changed unless all are valid.
template <class T, class S>
void load_hf(const std::string& path, const model_desc& m, const model_tensors& mt, param_store<T, S>& ps) {
  const safetensors_reader rd(path);
  const auto layout = hf_layout(m);
  for (const auto& h : layout) {
    if (!rd.has(h.name))
      throw usage_error(cat("--init-from ", path, ": no tensor named ", h.name, " (the ", m.family_name(),
                            " model needs shape ", hf_detail::shape_str(h.shape), ")"));
    const auto& got = rd.at(h.name).shape;
    if (got != h.shape)
      throw usage_error(cat("--init-from ", path, ": tensor ", h.name, " has shape ", hf_detail::shape_str(got),
                            ", the model needs ", hf_detail::shape_str(h.shape)));
  }
  const auto src = hf_sources(layout, mt);
  std::map<std::string, std::vector<double>> cache;  // HF tensors this rank needs, read once
  using G = ops::grad_t<T>;
  std::vector<std::vector<T>> staged(ps.slots.size());
  std::vector<std::vector<G>> staged_master(ps.slots.size());
  for (std::size_t si = 0; si < ps.slots.size(); ++si) {
    const auto& s = ps.slots[si];
    staged[si].assign(s.value.size(), T{});
    staged_master[si].assign(s.master.size(), G{});
    for (const box& b : s.layout.boxes) {
      const hf_source& from = src[static_cast<std::size_t>(b.tensor)];
      if (!from.tensor) internal_error("tensor ", mt.tensors[static_cast<std::size_t>(b.tensor)].name, " has no HF name");
      auto it = cache.find(from.tensor->name);
      if (it == cache.end()) it = cache.emplace(from.tensor->name, rd.read(from.tensor->name)).first;
      const std::vector<double>& hv = it->second;
      for_each_element(b, s.layout.cols, [&](std::int64_t r, std::int64_t c, std::size_t at) {
        const std::int64_t k = hf_index(*from.tensor, *from.piece, r, c);
        const double x = k < 0 ? 0.0 : hv[static_cast<std::size_t>(k)];
        staged[si][at] = ops::store<T>(x);
        if (!staged_master[si].empty()) staged_master[si][at] = static_cast<G>(x);
      });
    }
  }
  for (std::size_t si = 0; si < ps.slots.size(); ++si) {
    auto& s = ps.slots[si];
    ps.sys.from_host(s.value.data(), staged[si].data(), static_cast<std::int64_t>(staged[si].size()));
    ps.sys.from_host(s.master.data(), staged_master[si].data(), static_cast<std::int64_t>(staged_master[si].size()));
  }
}

/// Writes the model's parameters under HF names to `path` (rank 0 writes; every rank must call).
/// owns[i]: this rank is the one owner of slot i's elements.
/// masters[i], when given, is slot i's fp32 master copy (bf16 training with the optimizer state sharded
/// keeps it outside the slot); else the slot's own.
template <class T, class S, communicator C>
void export_hf(const std::string& path, st_dtype dtype, const model_desc& m, const model_tensors& mt,
               const param_store<T, S>& ps, const std::vector<bool>& owns, C& world,
               const std::vector<const ops::grad_t<T>*>& masters = {}) {
  check(dtype == st_dtype::f32 || dtype == st_dtype::bf16, "--export: dtype must be F32 or BF16");
  const int rank = world.rank();
  using G = ops::grad_t<T>;
  // the owned slots' values and (where there are) fp32 masters, readable on the host
  std::vector<host_mirror<S, const T>> values(ps.slots.size());
  std::vector<host_mirror<S, const G>> master_of(ps.slots.size());
  for (std::size_t si = 0; si < ps.slots.size(); ++si) {
    if (!owns[si]) continue;
    const auto& s = ps.slots[si];
    const auto n = static_cast<std::size_t>(s.numel());
    values[si] = host_mirror<S, const T>(s.value.data(), n, ps.sys);
    const G* master = !masters.empty() ? masters[si] : s.master.empty() ? nullptr : s.master.data();
    if (master) master_of[si] = host_mirror<S, const G>(master, n, ps.sys);
  }
  const auto layout = hf_layout(m);
  std::vector<st_entry> entries;
  std::vector<float> buf;
  for (const auto& h : layout) {
    std::int64_t n = 1;
    for (auto d : h.shape) n *= d;
    buf.assign(static_cast<std::size_t>(n), 0.0f);
    for (const auto& p : h.pieces) {
      const int id = mt.find(p.ours);
      for (std::size_t si = 0; si < ps.slots.size(); ++si) {
        if (!owns[si]) continue;
        const auto& s = ps.slots[si];
        for (const box& b : s.layout.boxes) {
          if (b.tensor != id) continue;
          const auto& master = master_of[si];
          const auto& value = values[si];
          for_each_element(b, s.layout.cols, [&](std::int64_t r, std::int64_t c, std::size_t at) {
            const std::int64_t k = hf_index(h, p, r, c);
            if (k >= 0)  // the fp32 master copy where there is one (bf16 training), else the value
              buf[static_cast<std::size_t>(k)] = !master.empty() ? static_cast<float>(master[at]) : static_cast<float>(value[at]);
          });
        }
      }
    }
    // one owner per element: the sum is the element, bit for bit
    world.reduce(buf.data(), buf.data(), buf.size(), reduce_op::sum, 0);
    if (rank != 0) continue;
    st_entry e;
    e.name = h.name;
    e.dtype = dtype;
    e.shape = h.shape;
    if (dtype == st_dtype::f32) {
      e.bytes.resize(buf.size() * 4);
      std::memcpy(e.bytes.data(), buf.data(), e.bytes.size());
    } else {
      e.bytes.resize(buf.size() * 2);
      for (std::size_t i = 0; i < buf.size(); ++i) {
        const std::uint16_t v = bf16::from_float(buf[i]);
        std::memcpy(e.bytes.data() + 2 * i, &v, 2);
      }
    }
    entries.push_back(std::move(e));
  }
  // rank 0 writes; every rank learns whether it worked, so all fail together with rank 0's reason
  std::string err;
  if (rank == 0) {
    try {
      write_safetensors(path, entries, {{"format", "pt"}, {"producer", "tessera"}});
    } catch (const usage_error& e) {
      err = e.what();
    }
  }
  const std::string first = first_error(world, err);
  if (!first.empty()) throw usage_error(cat("--export: ", first));
}

}  // namespace tessera
