// show_schedule — print a pipeline schedule, computed by the same constexpr generators the schedule
// types use (tessera/schedule/generators.hpp), run here at run time.
//
//   show_schedule --kind gpipe|1f1b|interleaved|chimera|zb_h1|zbv|dualpipe_v --stages P --microbatches M
//                 [--chunks V] [--format csv|grid|svg|trace] [--out FILE]
//
//   csv    one line per rank, actions comma-separated, torch _Action notation (3F0, (0F7;7B3)OVERLAP_F_B)
//   grid   step × rank text grid
//   svg    ranks × time picture (F blue, B green, I orange, W grey; F&B slots half/half; microbatch numbers)
//          from the simulated timeline with costs F = I = W = 1 (full B = 2, F&B slot = 3)
//   trace  Chrome trace-event JSON (open in Perfetto / chrome://tracing), same timeline, 1 unit = 1 ms
//
// Bad arguments print a clear error on stderr and exit with code 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tessera/core/error.hpp"
#include "tessera/schedule/schedule.hpp"

namespace ts = tessera;

namespace {

const ts::schedule_costs picture_costs{1.0, 1.0, 1.0, 3.0};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

const char* fill_of(ts::op o, bool second_chunk) {
  switch (o) {
    case ts::op::F: return second_chunk ? "#9dc3e6" : "#2e75b6";
    case ts::op::B: return second_chunk ? "#a9d18e" : "#548235";
    case ts::op::I: return second_chunk ? "#f4b183" : "#c55a11";
    case ts::op::W: return second_chunk ? "#d9d9d9" : "#7f7f7f";
    default: return "#ffffff";
  }
}

// Whether a stage is the rank's second (or later) chunk: drawn in a lighter shade.
bool later_chunk(const ts::dynamic_schedule& s, int stage) { return stage >= s.ranks(); }

std::string title_of(const ts::schedule_shape& sh) {
  std::string t = std::string(ts::schedule_kind_name(sh.kind)) + ": P = " + std::to_string(sh.ranks) +
                  ", M = " + std::to_string(sh.microbatches);
  if (sh.kind == ts::schedule_kind::interleaved) t += ", V = " + std::to_string(sh.chunks);
  return t;
}

std::string format_svg(const ts::dynamic_schedule& s) {
  const auto t = ts::simulate_timeline(s, picture_costs);
  const double unit = 22.0, row = 30.0, left = 64.0, top = 40.0;
  const double width = left + t.makespan * unit + 16.0;
  const double height = top + s.ranks() * row + 56.0;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\"" << num(height)
    << "\" viewBox=\"0 0 " << num(width) << " " << num(height) << "\" font-family=\"monospace\" font-size=\"11\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  o << "<text x=\"" << num(left) << "\" y=\"20\" font-size=\"14\">" << title_of(s.shape) << " (bubble "
    << num(100.0 * t.bubble_fraction_of_total()) << "% of " << num(t.makespan) << " time units)</text>\n";
  for (int r = 0; r < s.ranks(); ++r) {
    const double y = top + r * row;
    o << "<text x=\"8\" y=\"" << num(y + row / 2 + 4) << "\">rank " << r << "</text>\n";
    o << "<rect x=\"" << num(left) << "\" y=\"" << num(y + 2) << "\" width=\"" << num(t.makespan * unit)
      << "\" height=\"" << num(row - 4) << "\" fill=\"#f2f2f2\"/>\n";
    for (int i = 0; i < s.size(r); ++i) {
      const int idx = s.begin[r] + i;
      const ts::action& a = s.actions[idx];
      const double x0 = left + t.start[idx] * unit, w = (t.end[idx] - t.start[idx]) * unit;
      const int parts = ts::num_parts(a);
      for (int p = 0; p < parts; ++p) {
        const ts::action x = ts::part(a, p);
        const double px = x0 + w * p / parts, pw = w / parts;
        o << "<rect x=\"" << num(px) << "\" y=\"" << num(y + 2) << "\" width=\"" << num(pw) << "\" height=\""
          << num(row - 4) << "\" fill=\"" << fill_of(x.kind, later_chunk(s, x.stage))
          << "\" stroke=\"#000000\" stroke-width=\"0.5\"><title>" << ts::to_string(a) << "</title></rect>\n";
        const bool dark = !later_chunk(s, x.stage);
        o << "<text x=\"" << num(px + pw / 2) << "\" y=\"" << num(y + row / 2 + 4) << "\" text-anchor=\"middle\" fill=\""
          << (dark ? "#ffffff" : "#000000") << "\">" << x.mb << "</text>\n";
      }
    }
  }
  // Legend.
  const double ly = top + s.ranks() * row + 18;
  double lx = left;
  const std::pair<ts::op, const char*> legend[] = {
      {ts::op::F, "F forward"}, {ts::op::B, "B backward"}, {ts::op::I, "I input grad"}, {ts::op::W, "W weight grad"}};
  for (const auto& [o_, name] : legend) {
    o << "<rect x=\"" << num(lx) << "\" y=\"" << num(ly) << "\" width=\"14\" height=\"14\" fill=\"" << fill_of(o_, false)
      << "\"/><text x=\"" << num(lx + 18) << "\" y=\"" << num(ly + 11) << "\">" << name << "</text>\n";
    lx += 120;
  }
  o << "<text x=\"" << num(left) << "\" y=\"" << num(ly + 32)
    << "\">numbers: microbatch; lighter shade: the rank's second chunk/pipeline (stage &gt;= P); "
       "costs F=I=W=1, B=2, F&amp;B=3</text>\n";
  o << "</svg>\n";
  return o.str();
}

std::string format_trace(const ts::dynamic_schedule& s) {
  const auto t = ts::simulate_timeline(s, picture_costs);
  nlohmann::json events = nlohmann::json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 0}, {"args", {{"name", title_of(s.shape)}}}});
  for (int r = 0; r < s.ranks(); ++r)
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 0}, {"tid", r},
                      {"args", {{"name", "rank " + std::to_string(r)}}}});
  for (int r = 0; r < s.ranks(); ++r)
    for (int i = 0; i < s.size(r); ++i) {
      const int idx = s.begin[r] + i;
      const ts::action& a = s.actions[idx];
      nlohmann::json args = {{"stage", a.stage}, {"microbatch", a.mb}};
      if (a.kind == ts::op::FB) args.update({{"backward_stage", a.stage2}, {"backward_microbatch", a.mb2}});
      events.push_back({{"name", ts::to_string(a)},
                        {"cat", std::string(ts::op_name(a.kind))},
                        {"ph", "X"},
                        {"pid", 0},
                        {"tid", r},
                        {"ts", t.start[idx] * 1000.0},
                        {"dur", (t.end[idx] - t.start[idx]) * 1000.0},
                        {"args", args}});
    }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ms"}};
  return doc.dump(1) + "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"show_schedule: print a tessera pipeline schedule (per-rank actions, torch _Action notation)"};
  std::string kind_name, format = "csv", out_file;
  int stages = 0, microbatches = 0, chunks = 2;
  app.add_option("--kind", kind_name, "gpipe|1f1b|interleaved|chimera|zb_h1|zbv|dualpipe_v")->required();
  app.add_option("--stages", stages, "P: pipeline ranks")->required();
  app.add_option("--microbatches", microbatches, "M: microbatches per step")->required();
  app.add_option("--chunks", chunks, "V: model chunks per rank (interleaved; default 2)");
  app.add_option("--format", format, "csv|grid|svg|trace (default csv)")
      ->check(CLI::IsMember({"csv", "grid", "svg", "trace"}));
  app.add_option("--out", out_file, "write to FILE instead of stdout");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "show_schedule: error: " << e.what() << "\nRun with --help for usage.\n";
    return ts::usage_exit_code;
  }
  try {
    ts::schedule_kind kind{};
    ts::check(ts::parse_schedule_kind(kind_name, kind), "unknown --kind '", kind_name,
              "' (expected gpipe, 1f1b, interleaved, chimera, zb_h1, zbv or dualpipe_v)");
    const ts::schedule_shape shape{kind, stages, microbatches, kind == ts::schedule_kind::interleaved ? chunks : 1};
    ts::check_schedule_shape(shape);
    const auto s = ts::make_dynamic_schedule(shape);
    std::string text;
    if (format == "csv") text = ts::format_csv(s);
    else if (format == "grid") text = ts::format_grid(s);
    else if (format == "svg") text = format_svg(s);
    else text = format_trace(s);
    if (out_file.empty()) {
      std::cout << text;
    } else {
      std::ofstream f(out_file, std::ios::binary);
      ts::check(f.good(), "cannot write --out '", out_file, "'");
      f << text;
    }
  } catch (const ts::usage_error& e) {
    std::cerr << "show_schedule: error: " << e.what() << "\n";
    return ts::usage_exit_code;
  }
  return 0;
}
