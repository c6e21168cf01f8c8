// tessera/train/trace_file.hpp — `--trace FILE`: one step of every rank as a Chrome/Perfetto trace
// (chrome://tracing, ui.perfetto.dev; the Trace Event Format's "X" complete events).
//
// A process per rank ("rank 3: dp 0, pp 1, tp 1"), a thread per track (core/trace.hpp): compute (the
// operators, nested), communication (each operation of the mesh's communicators from its start to its
// completion, named with its axis and size) and pipeline (the schedule's actions); on a device also its
// compute and communication streams, as the device timed them. Times are microseconds from the barrier
// that starts the traced step on each rank, so ranks line up without a shared clock.
#pragma once
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/trace.hpp"

namespace tessera {

/// One rank's events as trace events (pid = rank, tid = track), its process and thread names first.
inline nlohmann::json trace_events_json(const std::vector<trace::event>& events, int rank, const std::string& rank_name,
                                        double t0_s) {
  nlohmann::json out = nlohmann::json::array();
  out.push_back({{"ph", "M"}, {"pid", rank}, {"name", "process_name"}, {"args", {{"name", rank_name}}}});
  out.push_back({{"ph", "M"}, {"pid", rank}, {"name", "process_sort_index"}, {"args", {{"sort_index", rank}}}});
  bool used[trace::num_tracks] = {true, true, true};  // the host's tracks always; a device's when it has spans
  for (const trace::event& e : events) used[static_cast<int>(e.on)] = true;
  for (int t = 0; t < trace::num_tracks; ++t)
    if (used[t])
      out.push_back({{"ph", "M"}, {"pid", rank}, {"tid", t}, {"name", "thread_name"}, {"args", {{"name", trace::track_names[t]}}}});
  for (const trace::event& e : events)
    out.push_back({{"ph", "X"}, {"pid", rank}, {"tid", static_cast<int>(e.on)}, {"name", e.name},
                   {"cat", trace::track_names[static_cast<int>(e.on)]}, {"ts", 1e6 * (e.begin_s - t0_s)},
                   {"dur", 1e6 * (e.end_s - e.begin_s)}});
  return out;
}

/// Fails (usage_error naming the file) when `path` cannot be written; leaves no file behind it made.
inline void check_trace_path(const std::string& path) {
  const bool existed = std::ifstream(path).good();
  std::ofstream f(path, std::ios::app);
  check(f.good(), "--trace ", path, ": cannot open the file for writing");
  f.close();
  if (!existed) std::remove(path.c_str());
}

/// Gathers every rank's events of the traced step to rank 0, which writes them to `path` with `about`
/// (the plan, the step) as otherData. Collective over `everyone`.
template <class Comm>
void write_trace(Comm& everyone, const std::string& path, const std::vector<trace::event>& events,
                 const std::string& rank_name, double t0_s, const nlohmann::json& about) {
  const std::string mine = trace_events_json(events, everyone.rank(), rank_name, t0_s).dump();
  const int n = everyone.size();
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(n));
  const std::int64_t my_size = static_cast<std::int64_t>(mine.size());
  everyone.all_gather(&my_size, sizes.data(), 1);  // every rank needs the partition (its own count)
  block_partition part;
  part.counts.resize(static_cast<std::size_t>(n));
  part.displs.resize(static_cast<std::size_t>(n));
  std::int64_t total = 0;
  for (int r = 0; r < n; ++r) {
    check(sizes[static_cast<std::size_t>(r)] <= INT32_MAX, "tessera: --trace: rank ", r, "'s trace exceeds 2 GiB");
    part.counts[static_cast<std::size_t>(r)] = static_cast<int>(sizes[static_cast<std::size_t>(r)]);
    part.displs[static_cast<std::size_t>(r)] = static_cast<int>(total);
    total += sizes[static_cast<std::size_t>(r)];
    check(total <= INT32_MAX, "tessera: --trace: the ranks' traces exceed 2 GiB");
  }
  std::string all(static_cast<std::size_t>(everyone.rank() == 0 ? total : 0), '\0');
  everyone.gather_v(reinterpret_cast<const std::uint8_t*>(mine.data()), reinterpret_cast<std::uint8_t*>(all.data()), part, 0);
  if (everyone.rank() != 0) return;
  nlohmann::json doc{{"displayTimeUnit", "ms"}, {"otherData", about}, {"traceEvents", nlohmann::json::array()}};
  for (int r = 0; r < n; ++r)
    for (auto& e : nlohmann::json::parse(all.substr(static_cast<std::size_t>(part.displ(r)), static_cast<std::size_t>(part.count(r)))))
      doc["traceEvents"].push_back(std::move(e));
  std::ofstream f(path, std::ios::trunc);
  f << doc.dump() << '\n';
  f.close();
  check(f.good(), "tessera: --trace ", path, ": writing the trace failed");
}

}  // namespace tessera
