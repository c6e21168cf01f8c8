// tessera/schedule/format.hpp — run-time text forms of schedules (logs, show_schedule, tests).
//
//   to_string(action)          torch _Action notation: "3F0", "(0F7;7B3)OVERLAP_F_B", "1SEND_F0"
//   csv_line(s, r)             rank r's actions, comma-separated
//   format_grid(s)             a step × rank text grid (one row per list position, like torch's
//                              _format_pipeline_order)
//   describe(schedule_error, shape)   the message for an invalid shape
//   check_schedule_shape(shape)       throws tessera::usage_error with that message (exit code 2)
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "tessera/core/error.hpp"
#include "tessera/schedule/action.hpp"
#include "tessera/schedule/program.hpp"

namespace tessera {

inline std::string to_string(const action& a) {
  std::string out;
  if (a.kind == op::FB) {
    out.push_back('(');
    out.append(to_string(part(a, 0)));
    out.push_back(';');
    out.append(to_string(part(a, 1)));
    out.push_back(')');
    out.append(op_name(op::FB));
    return out;
  }
  out.append(std::to_string(a.stage));
  out.append(op_name(a.kind));
  out.append(std::to_string(a.mb));
  return out;
}

template <class Storage>
std::string csv_line(const basic_schedule<Storage>& s, int r) {
  std::string out;
  for (int i = 0; i < s.size(r); ++i) {
    if (i) out += ',';
    out += to_string(s.at(r, i));
  }
  return out;
}

template <class Storage>
std::string format_csv(const basic_schedule<Storage>& s) {
  std::string out;
  for (int r = 0; r < s.ranks(); ++r) out += csv_line(s, r) + "\n";
  return out;
}

template <class Storage>
std::string format_grid(const basic_schedule<Storage>& s) {
  // Built with append only (GCC 12 raises a false -Wrestrict on `"literal" + std::string` at -O2).
  int steps = 0;
  for (int r = 0; r < s.ranks(); ++r) steps = std::max(steps, s.size(r));
  const std::size_t digits = std::to_string(std::max(steps - 1, 0)).size();
  std::vector<std::size_t> width(static_cast<std::size_t>(s.ranks()));
  for (int r = 0; r < s.ranks(); ++r) {
    width[r] = 5 + std::to_string(r).size();  // "Rank r"
    for (int i = 0; i < s.size(r); ++i) width[r] = std::max(width[r], to_string(s.at(r, i)).size());
  }
  auto cell = [](std::string& line, const std::string& x, std::size_t w) {
    line.append(x);
    if (x.size() < w) line.append(w - x.size(), ' ');
  };
  std::string out(5 + digits + 2, ' ');  // under "Step N: "
  for (int r = 0; r < s.ranks(); ++r) {
    if (r) out.push_back(' ');
    std::string head("Rank ");
    head.append(std::to_string(r));
    cell(out, head, width[r]);
  }
  out.push_back('\n');
  for (int i = 0; i < steps; ++i) {
    const std::string n = std::to_string(i);
    std::string row("Step ");
    row.append(digits - n.size(), '0');
    row.append(n);
    row.append(": ");
    for (int r = 0; r < s.ranks(); ++r) {
      if (r) row.push_back(' ');
      cell(row, i < s.size(r) ? to_string(s.at(r, i)) : std::string(), width[r]);
    }
    while (!row.empty() && row.back() == ' ') row.pop_back();
    out.append(row);
    out.push_back('\n');
  }
  return out;
}

inline std::string describe(schedule_error e, const schedule_shape& s) {
  const std::string k(schedule_kind_name(s.kind));
  const std::string P = std::to_string(s.ranks), M = std::to_string(s.microbatches), V = std::to_string(s.chunks);
  switch (e) {
    case schedule_error::none: return "valid";
    case schedule_error::ranks_below_1: return "pipeline stages must be at least 1 (got P = " + P + ")";
    case schedule_error::microbatches_below_1: return "microbatches must be at least 1 (got M = " + M + ")";
    case schedule_error::chunks_below_2: return k + " needs at least 2 chunks per rank (got V = " + V + ")";
    case schedule_error::microbatches_not_multiple_of_ranks:
      return k + " needs the microbatches to be a multiple of the stages (got M = " + M + ", P = " + P + ")";
    case schedule_error::odd_ranks: return k + " needs an even number of stages (got P = " + P + ")";
    case schedule_error::microbatches_below_twice_ranks:
      return k + " needs at least 2*P microbatches (got M = " + M + ", P = " + P + ", so M must be >= " +
             std::to_string(2 * s.ranks) + ")";
  }
  return "invalid schedule";
}

/// Throws usage_error (exit code 2 in programs) unless the shape is valid.
inline void check_schedule_shape(const schedule_shape& s) {
  const schedule_error e = validate(s);
  check(e == schedule_error::none, "invalid schedule: ", describe(e, s));
}

}  // namespace tessera
