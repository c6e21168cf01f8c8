// tessera_plan — the layout planner at run time: the same cost model and search as ts::auto_plan.
//
//   tessera_plan --gpu a100-80g|h100-sxm|h200|host --gpus N [--gpus-per-node G] --layers L --hidden H
//                --heads A [--kv-heads K] [--ffn F] --seq S --vocab V --batch B [--family gpt|llama]
//                [--tp T --pp P --dp D --microbatch-size b --schedule KIND --chunks V --zero k
//                 --recompute none|selective|full --sequence-parallel --precision bf16|fp32]
//                [--software tessera|megatron-2021|megatron-core] [--host-profile FILE]
//                [--top N] [--json] [--emit-cpp] [--published]
//
// Prints the best plans as a table (or one JSON object whose `best` is the best plan, or the ts::plan<…>
// type of the best plan). Any of the layout flags fixes that choice; with all of them exactly one plan is
// evaluated (reported even when it does not fit in memory). --published prints the cost model against
// the published Megatron-LM runs it is fitted on. Bad input: a message naming it, exit 2.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "tessera/plan/describe.hpp"
#include "tessera/plan/host_profile.hpp"
#include "tessera/plan/published.hpp"

namespace ts = tessera;

namespace {

struct args {
  std::string gpu, family = "gpt", schedule, recompute, software, precision = "bf16", host_profile;
  double host_speed = 0;
  int gpus = 0, gpus_per_node = 8, layers = 0, hidden = 0, heads = 0, kv_heads = 0, ffn = 0, seq = 0, vocab = 0, batch = 0;
  int tp = 0, pp = 0, dp = 0, microbatch_size = 0, chunks = 0, zero = -1, top = 10;
  bool sequence_parallel = false, json = false, emit_cpp = false, published = false;
};

void add_flags(CLI::App& app, args& a) {
  app.add_option("--gpu", a.gpu, "a100-80g | h100-sxm | h200 | host");
  app.add_option("--gpus", a.gpus, "devices in all");
  app.add_option("--gpus-per-node", a.gpus_per_node, "devices per node (default 8)");
  app.add_option("--layers", a.layers, "transformer layers");
  app.add_option("--hidden", a.hidden, "hidden size");
  app.add_option("--heads", a.heads, "attention heads");
  app.add_option("--kv-heads", a.kv_heads, "key/value heads (default: heads)");
  app.add_option("--ffn", a.ffn, "MLP width (default 4 x hidden)");
  app.add_option("--seq", a.seq, "sequence length");
  app.add_option("--vocab", a.vocab, "vocabulary size");
  app.add_option("--batch", a.batch, "global batch, sequences per step");
  app.add_option("--family", a.family, "gpt | llama (default gpt)")->check(CLI::IsMember({"gpt", "llama"}));
  app.add_option("--tp", a.tp, "fix the tensor-parallel size");
  app.add_option("--pp", a.pp, "fix the pipeline-parallel size");
  app.add_option("--dp", a.dp, "fix the data-parallel size");
  app.add_option("--microbatch-size", a.microbatch_size, "fix the sequences per microbatch");
  app.add_option("--schedule", a.schedule, "fix the schedule: gpipe|1f1b|interleaved|chimera|zb_h1|zbv|dualpipe_v");
  app.add_option("--chunks", a.chunks, "fix the chunks per rank (interleaved)");
  app.add_option("--zero", a.zero, "fix the ZeRO stage 0-3");
  app.add_option("--recompute", a.recompute, "fix recompute: none|selective|full")
      ->check(CLI::IsMember({"none", "selective", "full"}));
  app.add_flag("--sequence-parallel", a.sequence_parallel, "fix sequence parallelism on");
  app.add_option("--precision", a.precision, "bf16 | fp32 (default bf16)")->check(CLI::IsMember({"bf16", "fp32"}));
  app.add_option("--software", a.software, "tessera | megatron-2021 | megatron-core (default tessera)")
      ->check(CLI::IsMember({"tessera", "megatron-2021", "megatron-core"}));
  app.add_option("--host-profile", a.host_profile, "with --gpu host: a profile written by tessera_calibrate");
  app.add_option("--host-speed", a.host_speed,
                 "with --host-profile: the GEMM FLOP/s the run measured at its start (its log's peak_flops_per_rank); "
                 "scales the profile's compute rates to the CPU's speed during that run");
  app.add_option("--top", a.top, "plans in the table (default 10)");
  app.add_flag("--json", a.json, "print one JSON object (best, top)");
  app.add_flag("--emit-cpp", a.emit_cpp, "print the ts::plan<...> type of the best plan");
  app.add_flag("--published", a.published, "the cost model against the published Megatron-LM runs");
}

/// The --host-profile file, read once (the cost model reads its measured rates for the whole run).
const ts::host_profile& host_profile_of(const args& a) {
  static const ts::host_profile p = [&] {
    ts::host_profile q = ts::host_profile_from_json(a.host_profile);
    if (a.host_speed != 0) {
      ts::check(a.host_speed > 0, "--host-speed must be positive (got ", a.host_speed, ")");
      ts::check(q.reference_peak_flops > 0, "--host-speed: host profile ", a.host_profile,
                " has no reference_peak_flops (calibrate again with this tessera_calibrate)");
      q.speed_scale = a.host_speed / q.reference_peak_flops;
    }
    return q;
  }();
  return p;
}

ts::device_desc device_of(const args& a) {
  if (a.gpu == "a100-80g") return ts::hw::a100_80g::desc;
  if (a.gpu == "h100-sxm") return ts::hw::h100_sxm::desc;
  if (a.gpu == "h200") return ts::hw::h200::desc;
  if (a.gpu == "host") return a.host_profile.empty() ? ts::hw::host::desc : host_profile_of(a).device;
  throw ts::usage_error(ts::cat("--gpu '", a.gpu, "' is not one of a100-80g, h100-sxm, h200, host"));
}

void require_positive(int v, const char* flag) {
  ts::check(v > 0, flag, v == 0 ? " is required (a positive integer)" : " must be positive (got ", v == 0 ? "" : std::to_string(v),
            v == 0 ? "" : ")");
}

ts::plan_request request_of(const args& a) {
  require_positive(a.gpus, "--gpus");
  require_positive(a.gpus_per_node, "--gpus-per-node");
  for (auto [v, flag] : {std::pair{a.layers, "--layers"}, {a.hidden, "--hidden"}, {a.heads, "--heads"}, {a.seq, "--seq"},
                         {a.vocab, "--vocab"}, {a.batch, "--batch"}, {a.top, "--top"}})
    require_positive(v, flag);
  ts::check(a.hidden % a.heads == 0, "hidden (", a.hidden, ") not divisible by heads (", a.heads, ")");
  ts::check(a.kv_heads >= 0 && (a.kv_heads == 0 || a.heads % a.kv_heads == 0), "heads (", a.heads,
            ") not divisible by kv-heads (", a.kv_heads, ")");
  ts::check(a.ffn >= 0, "--ffn must be positive (got ", a.ffn, ")");
  const int node = a.gpus < a.gpus_per_node ? a.gpus : a.gpus_per_node;
  ts::check(a.gpus % node == 0, "gpus (", a.gpus, ") not divisible by gpus-per-node (", a.gpus_per_node, ")");
  ts::plan_request r;
  if (a.family == "gpt") {
    r.costs.model = ts::resolve(ts::model_family::gpt, ts::gpt_config{.vocab = a.vocab, .seq = a.seq, .layers = a.layers,
                                                                      .hidden = a.hidden, .heads = a.heads, .kv_heads = a.kv_heads, .ffn = a.ffn});
  } else {
    r.costs.model = ts::resolve(ts::model_family::llama, ts::llama_config{.vocab = a.vocab, .seq = a.seq, .layers = a.layers,
                                                                          .hidden = a.hidden, .heads = a.heads, .kv_heads = a.kv_heads, .ffn = a.ffn});
  }
  r.costs.cluster = {device_of(a), node, a.gpus / node};
  ts::check(a.host_profile.empty() || a.gpu == "host", "--host-profile needs --gpu host (got --gpu ", a.gpu, ")");
  if (a.gpu == "host" && !a.host_profile.empty()) r.costs.measured = &host_profile_of(a);  // its measured rates
  r.costs.software = a.software == "megatron-2021"   ? ts::sw::megatron_2021
                     : a.software == "megatron-core" ? ts::sw::megatron_core
                     : a.gpu == "host"               ? ts::sw::tessera_host
                                                     : ts::sw::tessera_cuda;
  r.global_batch = a.batch;
  ts::plan_constraints& f = r.fixed;
  for (auto [v, flag] : {std::pair{a.tp, "--tp"}, {a.pp, "--pp"}, {a.dp, "--dp"}, {a.microbatch_size, "--microbatch-size"}, {a.chunks, "--chunks"}})
    ts::check(v >= 0, flag, " must be positive (got ", v, ")");
  f.tp = a.tp, f.pp = a.pp, f.dp = a.dp, f.microbatch_size = a.microbatch_size, f.chunks = a.chunks;
  if (a.microbatch_size > f.max_microbatch_size) f.max_microbatch_size = a.microbatch_size;
  ts::check(a.zero >= -1 && a.zero <= 3, "--zero must be 0, 1, 2 or 3 (got ", a.zero, ")");
  f.zero = a.zero;
  if (!a.schedule.empty()) {
    ts::schedule_kind k{};
    ts::check(ts::parse_schedule_kind(a.schedule, k), "unknown --schedule '", a.schedule,
              "' (expected gpipe, 1f1b, interleaved, chimera, zb_h1, zbv or dualpipe_v)");
    f.schedules = 1 << static_cast<int>(k);
  }
  if (!a.recompute.empty()) f.recompute = a.recompute == "full" ? 2 : a.recompute == "selective" ? 1 : 0;
  if (a.sequence_parallel) f.sequence_parallel = 1;
  f.bf16 = a.precision == "bf16";
  return r;
}

std::string gib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", bytes / (1024.0 * 1024.0 * 1024.0));
  return b;
}

void print_table(const ts::plan_request& r, const std::vector<ts::ranked_plan>& plans) {
  std::printf("%s x %d (%d per node), %s, batch %d, model %.2fB parameters\n", r.costs.cluster.device.name,
              r.costs.cluster.gpus(), r.costs.cluster.gpus_per_node, r.costs.software.name, r.global_batch,
              static_cast<double>(r.costs.model.num_params()) / 1e9);
  std::printf("%-4s %-4s %-4s %-3s %-5s %-18s %-4s %-9s %-3s %10s %12s %6s %8s %8s %8s\n", "tp", "pp", "dp", "b", "M",
              "schedule", "zero", "recompute", "sp", "iter_s", "tokens/s", "mfu", "mem_GiB", "bubble_s", "comm_s");
  for (const auto& x : plans) {
    const ts::plan_point& p = x.point;
    std::string sched(ts::schedule_kind_name(p.schedule));
    if (p.schedule == ts::schedule_kind::interleaved) sched += ts::cat(" V=", p.chunks);
    std::printf("%-4d %-4d %-4d %-3d %-5d %-18s %-4d %-9s %-3s %10.4f %12.0f %5.1f%% %8s %8.4f %8.4f%s\n", p.tp, p.pp, p.dp,
                p.microbatch_size, p.microbatches, sched.c_str(), p.zero, ts::recompute_name(p.recompute),
                p.sequence_parallel ? "on" : "off", x.pred.iteration_s, x.pred.tokens_per_s, 100 * x.pred.mfu,
                gib(x.pred.memory_bytes).c_str(), x.pred.bubble_s, x.pred.exposed_comm_s, x.pred.fits ? "" : "  (does not fit)");
  }
}

std::string plan_words(const ts::published_check& c) {
  if (!c.found) return "none fits";
  const ts::plan_point& p = c.plan.point;
  std::string s = ts::cat("tp", p.tp, " pp", p.pp, " dp", p.dp, " b=", p.microbatch_size, " ", ts::schedule_kind_name(p.schedule));
  if (p.schedule == ts::schedule_kind::interleaved) s += ts::cat(" V=", p.chunks);
  return s + ts::cat(" z", p.zero, " ", ts::recompute_name(p.recompute), p.sequence_parallel ? " sp" : "");
}

// Every published run: the cost model with the run's layout (its error), and the planner's own layout for
// the same model, GPUs, batch and software (its speed-up: the predicted time of the published layout over
// the predicted time of the planner's).
int print_published(bool json) {
  nlohmann::json rows = nlohmann::json::array();
  double sum = 0, worst = 0;
  if (!json)
    std::printf("%-26s %-9s %8s %-10s %9s %9s %7s | %-44s %9s %7s\n", "source", "gpu", "params_B", "tp/pp/dp", "published",
                "predicted", "error", "planner's layout (same software)", "predicted", "speedup");
  for (const ts::published_run& run : ts::published_runs) {
    const ts::device_desc dev = std::string(run.gpu) == "a100-80g" ? ts::hw::a100_80g::desc : ts::hw::h100_sxm::desc;
    const ts::published_check c = ts::check_published(run, dev), own = ts::best_for_published(run, dev);
    const double err = c.error(), own_s = own.found ? own.plan.pred.iteration_s : 0.0;
    sum += std::fabs(err);
    worst = std::max(worst, std::fabs(err));
    if (json) {
      rows.push_back({{"source", run.source}, {"gpu", run.gpu}, {"params_b", run.params_b}, {"published_s", run.iteration_s()},
                      {"predicted_s", c.found ? c.plan.pred.iteration_s : 0.0}, {"error", err},
                      {"plan", c.found ? ts::to_json(c.plan.point) : nlohmann::json()},
                      {"planner_plan", own.found ? ts::to_json(own.plan.point) : nlohmann::json()},
                      {"planner_predicted_s", own_s},
                      {"planner_speedup", own.found && c.found ? c.plan.pred.iteration_s / own_s : 0.0}});
    } else {
      std::printf("%-26s %-9s %8.1f %-10s %8.3fs %8.3fs %+6.1f%% | %-44s %8.3fs %6.2fx\n", run.source, run.gpu, run.params_b,
                  ts::cat(run.tp, "/", run.pp, "/", run.dp).c_str(), run.iteration_s(), c.found ? c.plan.pred.iteration_s : 0.0,
                  100 * err, plan_words(own).c_str(), own_s, own.found && c.found ? c.plan.pred.iteration_s / own_s : 0.0);
    }
  }
  const double mean = sum / ts::published_runs.size();
  if (json) std::cout << nlohmann::json{{"rows", rows}, {"mean_abs_error", mean}, {"worst_abs_error", worst}}.dump(1) << "\n";
  else std::printf("mean |error| %.1f%%, worst %.1f%%\n", 100 * mean, 100 * worst);
  return 0;
}

int run(const args& a) {
  if (a.published) return print_published(a.json);
  ts::check(!a.gpu.empty(), "--gpu is required (a100-80g, h100-sxm, h200 or host)");
  const ts::plan_request r = request_of(a);
  const std::string why = ts::why_no_layout(r);
  ts::check(why.empty(), "no plan: ", why);
  std::vector<ts::ranked_plan> plans = ts::rank_plans(r, static_cast<std::size_t>(a.top));
  const bool all_fixed = a.tp > 0 && a.pp > 0 && a.dp > 0 && a.microbatch_size > 0 && !a.schedule.empty() && a.zero >= 0 &&
                         !a.recompute.empty() && (a.chunks > 0 || a.schedule != "interleaved");
  if (plans.empty() && all_fixed) {  // the one plan asked for, though it does not fit
    ts::search_detail::for_each_plan(r, [&](const ts::plan_point& p) {
      if (plans.empty()) plans.push_back({p, ts::predict(r.costs, p)});
    });
  }
  if (plans.empty()) {
    double least = 1e300;
    ts::search_detail::for_each_plan(r, [&](const ts::plan_point& p) { least = std::min(least, ts::memory_bytes(r.costs, p)); });
    throw ts::usage_error(ts::cat("no plan fits in memory: the least any plan needs is ", gib(least), " GiB per device, the ",
                                  r.costs.cluster.device.name, " has ", gib(r.costs.cluster.device.memory_bytes),
                                  " GiB; use more devices, a smaller batch or model, or allow recompute/ZeRO"));
  }
  if (a.emit_cpp) {
    std::cout << ts::plan_cpp(r.costs.model, plans.front().point);
  } else if (a.json) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& x : plans) top.push_back(ts::to_json(x));
    std::cout << nlohmann::json{{"gpu", r.costs.cluster.device.name}, {"gpus", r.costs.cluster.gpus()},
                                {"software", r.costs.software.name}, {"best", top.front()}, {"top", top}}.dump(1) << "\n";
  } else {
    print_table(r, plans);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tessera_plan: predict and rank parallel layouts of a transformer on a cluster"};
  args a;
  add_flags(app, a);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "tessera_plan: error: " << e.what() << "\nRun with --help for usage.\n";
    return ts::usage_exit_code;
  }
  try {
    return run(a);
  } catch (const ts::usage_error& e) {
    std::cerr << "tessera_plan: error: " << e.what() << "\n";
    return ts::usage_exit_code;
  }
}
