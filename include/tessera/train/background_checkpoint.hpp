// tessera/train/background_checkpoint.hpp — disk checkpoints written in the background, from every rank's
// own state (with --snapshot-every: the same moment's state a snapshot copies).
//
// The format is the checkpoint's (checkpoint.hpp, docs/formats.md: slices of global tensors in safetensors
// shards, a manifest with their CRC-32s), so it loads — and reshards — like any checkpoint. What differs is
// who writes what: nothing is gathered. Every rank writes the whole slots it owns (the one-owner rule of
// the gathered checkpoint) and its own shard pieces of the ZeRO-sharded ones (moments, fp32 masters, and
// under ZeRO-3 the parameters): a piece — a run of a slot's elements — is stored as the rectangles of
// global tensors it covers. The step waits only for that copy; a thread writes and syncs the rank's file,
// and at a later step boundary, once every rank's file is written, rank 0 writes the manifest and renames
// the directory into place (a checkpoint is whole or absent, as always).
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/comm/consensus.hpp"
#include "tessera/core/host_mirror.hpp"
#include "tessera/model/params.hpp"
#include "tessera/train/checkpoint.hpp"
#include "tessera/train/safetensors.hpp"

namespace tessera {

namespace local_ckpt {
/// The parts of slot elements [begin, begin + n) (slot-flat, row-major) inside each box: (box, global range).
inline std::vector<std::pair<std::size_t, global_range>> ranges_of(const slot_layout& s, std::int64_t begin,
                                                                   std::int64_t n) {
  std::vector<std::pair<std::size_t, global_range>> out;
  if (n <= 0) return out;
  const std::int64_t cols = s.cols, end = begin + n;
  // the run as slot-row rectangles: a partial first row, whole rows, a partial last row
  struct rect {
    std::int64_t r0, r1, c0, c1;
  };
  std::vector<rect> rects;
  const std::int64_t rb = begin / cols, re = (end - 1) / cols;
  if (rb == re) {
    rects.push_back({rb, rb + 1, begin % cols, (end - 1) % cols + 1});
  } else {
    std::int64_t whole0 = rb, whole1 = re + 1;
    if (begin % cols != 0) rects.push_back({rb, rb + 1, begin % cols, cols}), whole0 = rb + 1;
    if (end % cols != 0) whole1 = re;
    if (whole1 > whole0) rects.push_back({whole0, whole1, 0, cols});
    if (end % cols != 0) rects.push_back({re, re + 1, 0, end % cols});
  }
  for (const rect& r : rects)
    for (std::size_t bi = 0; bi < s.boxes.size(); ++bi) {
      const box& b = s.boxes[bi];
      const std::int64_t r0 = std::max(r.r0, b.l_row), r1 = std::min(r.r1, b.l_row + b.rows);
      const std::int64_t c0 = std::max(r.c0, b.l_col), c1 = std::min(r.c1, b.l_col + b.cols);
      if (r0 >= r1 || c0 >= c1) continue;
      out.push_back({bi, global_range{b.g_row + r0 - b.l_row, b.g_row + r1 - b.l_row, b.g_col + c0 - b.l_col,
                                      b.g_col + c1 - b.l_col}});
    }
  return out;
}

/// One entry (kind k of tensor g, the stored part of `range` of box b) read through at(slot index).
template <class At>
void add_entry(const model_tensors& mt, const slot_layout& s, const box& b, global_range range, int k,
               const std::string& file, std::vector<st_entry>& entries, nlohmann::json& slices, At&& at) {
  const global_tensor& g = mt.tensors[static_cast<std::size_t>(b.tensor)];
  range.row_end = std::min(range.row_end, ckpt_detail::stored_rows(g));  // padding rows are not stored
  if (range.row_end <= range.row_begin || range.col_end <= range.col_begin) return;
  const std::int64_t rows = range.row_end - range.row_begin, cols = range.col_end - range.col_begin;
  st_entry e;
  e.name = cat(checkpoint_kinds[k], "/", g.name, "@", range.row_begin, ",", range.col_begin);
  e.dtype = st_dtype::f32;
  e.shape = {rows, cols};
  e.bytes.resize(static_cast<std::size_t>(rows * cols) * 4);
  float* out = reinterpret_cast<float*>(e.bytes.data());
  for_each_element(b, s.cols, range, [&](std::int64_t r, std::int64_t c, std::size_t idx) {
    out[(r - range.row_begin) * cols + c - range.col_begin] = at(idx);
  });
  slices.push_back({{"tensor", g.name}, {"kind", checkpoint_kinds[k]}, {"file", file}, {"key", e.name},
                    {"start", {range.row_begin, range.col_begin}}, {"shape", {rows, cols}}});
  entries.push_back(std::move(e));
}
}  // namespace local_ckpt

/// This rank's entries of a checkpoint written without gathering (see the top of this file).
/// @pre between steps, after shard_optimizer_state().
template <class Trainer>
void local_checkpoint_entries(Trainer& tr, const std::string& file, std::vector<st_entry>& entries,
                              nlohmann::json& slices) {
  using S = typename Trainer::system;
  using T = typename Trainer::value_type;
  using G = typename Trainer::G;
  const auto& ps = tr.store();
  const auto& mt = tr.tensors();
  const auto& z = tr.zero();
  const bool masters = !std::is_same_v<T, G>;
  // what is whole on a rank is written by its owner (the one-owner rule of the gathered checkpoint): the
  // slots that are not sharded, and the parameters of sharded slots below ZeRO-3 without fp32 masters
  const bool values_whole = !masters && !z.values_sharded();
  for (std::size_t i = 0; i < ps.slots.size(); ++i) {
    const auto& s = ps.slots[i];
    const bool sharded = z.holds_shard_of(i);
    if (!tr.owners()[i] || (sharded && !values_whole)) continue;
    const auto n = static_cast<std::size_t>(s.numel());
    const S sys = ps.sys;
    const host_mirror<S, const T> value(s.value.data(), s.value.data() ? n : 0, sys);
    const host_mirror<S, const G> m(s.m.data(), s.m.size(), sys), v(s.v.data(), s.v.size(), sys),
        master(s.master.data(), s.master.size(), sys);
    for (const box& b : s.layout.boxes)
      for (int k = 0; k < (sharded ? 1 : 3); ++k)
        local_ckpt::add_entry(mt, s.layout, b, global_range{b.g_row, b.g_row + b.rows, b.g_col, b.g_col + b.cols}, k, file,
                              entries, slices, [&](std::size_t at) {
                                if (k == 1) return static_cast<float>(m[at]);
                                if (k == 2) return static_cast<float>(v[at]);
                                return masters ? static_cast<float>(master[at]) : static_cast<float>(value[at]);
                              });
  }
  // the shards: every dp rank writes its own pieces (moments; masters, or ZeRO-3's parameters), for the
  // slots whose tp/pp owner it is
  if (z.pieces().empty()) return;
  const S sys = ps.sys;
  const host_mirror<S, const G> m(z.m_shard().data(), z.m_shard().size(), sys),
      v(z.v_shard().data(), z.v_shard().size(), sys), master(z.master_shard().data(), z.master_shard().size(), sys);
  const host_mirror<S, const T> value(z.p_shard().data(), z.p_shard().size(), sys);
  for (const auto& p : z.pieces()) {
    if (!tr.piece_writers()[p.slot]) continue;
    const auto& s = ps.slots[p.slot];
    const std::int64_t begin = p.arena_off - s.grad_offset;
    for (const auto& [bi, range] : local_ckpt::ranges_of(s.layout, begin, p.n)) {
      const box& b = s.layout.boxes[bi];
      for (int k = values_whole ? 1 : 0; k < 3; ++k)
        local_ckpt::add_entry(mt, s.layout, b, range, k, file, entries, slices, [&](std::size_t at) {
          const auto j = static_cast<std::size_t>(p.shard_off + static_cast<std::int64_t>(at) - begin);
          if (k == 1) return static_cast<float>(m[j]);
          if (k == 2) return static_cast<float>(v[j]);
          return masters ? static_cast<float>(master[j]) : static_cast<float>(value[j]);
        });
    }
  }
}

/// A checkpoint in flight: started at a step boundary, finished (published) at a later one.
template <class Comm>
class background_checkpoint {
 public:
  ~background_checkpoint() {
    if (writer_.joinable()) writer_.join();
  }
  bool pending() const { return pending_; }

  /// Collective. Copies this rank's part (all the step waits for) and starts writing it.
  /// Returns the seconds it blocked. @pre !pending()
  template <class Trainer>
  double start(const std::string& dir, int step, Trainer& tr, const nlohmann::json& plan, const nlohmann::json& extra,
               Comm& world) {
    const auto t0 = std::chrono::steady_clock::now();
    dir_ = dir;
    step_ = step;
    adam_step_ = tr.adam_step();
    plan_ = plan;
    extra_ = extra;
    final_dir_ = dir + "/" + step_dir_name(step);
    tmp_ = dir + "/." + step_dir_name(step) + ".tmp";
    std::string err;
    if (world.rank() == 0) {
      try {
        std::filesystem::create_directories(dir);
        std::filesystem::remove_all(tmp_);
        std::filesystem::create_directory(tmp_);
      } catch (const std::filesystem::filesystem_error& e) {
        err = cat("--save ", dir, ": ", e.what());
      }
    }
    ckpt_detail::agree(err, world);
    char fname[48];
    std::snprintf(fname, sizeof fname, "shard_%05d.safetensors", world.rank());
    file_ = fname;
    auto entries = std::make_shared<std::vector<st_entry>>();
    slices_ = nlohmann::json::array();
    local_checkpoint_entries(tr, file_, *entries, slices_);
    done_ = false;
    error_.clear();
    pending_ = true;
    started_ = t0;
    writer_ = std::thread([this, entries] {
      try {
        if (!entries->empty()) written_ = write_safetensors(tmp_ + "/" + file_, *entries, {{"format", checkpoint_format}});
      } catch (const std::exception& e) {
        error_ = cat("--save: ", e.what());
      }
      done_.store(true);
    });
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  /// Collective. When every rank's file is written (or `wait`: once it is), rank 0 writes the manifest
  /// and publishes the checkpoint; returns its path and the seconds since start(), or "" while pending.
  /// Throws usage_error on every rank when any rank failed.
  std::pair<std::string, double> finish(Comm& world, const model_tensors& mt, bool wait) {
    if (!pending_) return {"", 0.0};
    if (wait) writer_.join();
    if (all_reduce_value(world, done_.load() ? 1 : 0, reduce_op::min) == 0) return {"", 0.0};
    if (writer_.joinable()) writer_.join();
    pending_ = false;
    ckpt_detail::agree(error_, world);
    const bool wrote = !slices_.empty();
    const nlohmann::json record = wrote ? nlohmann::json{{"file", file_}, {"bytes", written_.bytes}, {"crc32", written_.crc32},
                                                         {"slices", slices_}}
                                        : nlohmann::json();
    const std::vector<std::string> records = gather_strings(world, wrote ? record.dump() : std::string(), 0);
    std::string err;
    if (world.rank() == 0) {
      try {
        const auto man = ckpt_detail::manifest_of(step_, adam_step_, plan_, world.size(), extra_, mt, records);
        ckpt_detail::write_text_synced(tmp_ + "/manifest.json", man.dump(1));
        ckpt_detail::publish(tmp_, final_dir_, dir_, step_);
      } catch (const std::exception& e) {
        err = cat("--save ", final_dir_, ": ", e.what());
      }
    }
    ckpt_detail::agree(err, world);
    return {final_dir_, std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count()};
  }
  int step() const { return step_; }

 private:
  std::string dir_, final_dir_, tmp_, file_, error_;
  int step_ = 0;
  std::int64_t adam_step_ = 0;
  nlohmann::json plan_, extra_, slices_;
  st_written written_;
  std::atomic<bool> done_{false};
  bool pending_ = false;
  std::chrono::steady_clock::time_point started_;
  std::thread writer_;
};

}  // namespace tessera
