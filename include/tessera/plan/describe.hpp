// tessera/plan/describe.hpp — plans in words: the ts::plan<…> type of a plan point (C++ source), its JSON,
// and why a user's fixed choices admit no plan (the first reason, naming the numbers).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "tessera/core/error.hpp"
#include "tessera/plan/search.hpp"
#include "tessera/schedule/format.hpp"

namespace tessera {

inline const char* recompute_name(recompute_kind r) {
  return r == recompute_kind::full ? "full" : r == recompute_kind::selective ? "selective" : "none";
}

/// `ts::interleaved_1f1b<48, 4>` and the like.
inline std::string schedule_type_name(const plan_point& p) {
  const char* names[num_schedule_kinds] = {"gpipe", "one_f_one_b", "interleaved_1f1b", "chimera", "zb_h1", "zbv", "dualpipe_v"};
  std::string s = cat("ts::", names[static_cast<int>(p.schedule)], "<", p.microbatches);
  if (p.schedule == schedule_kind::interleaved) s += cat(", ", p.chunks);
  return s + ">";
}

/// The model type of a model_desc (every field that differs from the family's default is written).
inline std::string model_type_name(const model_desc& m) {
  const bool gpt = m.family == model_family::gpt;
  std::string s = cat("ts::", gpt ? "gpt<ts::gpt_config" : "llama<ts::llama_config", "{.vocab = ", m.vocab, ", .seq = ", m.seq,
                      ", .layers = ", m.layers, ", .hidden = ", m.hidden, ", .heads = ", m.heads);
  if (m.kv_heads != m.heads) s += cat(", .kv_heads = ", m.kv_heads);
  if (m.ffn != 4 * m.hidden) s += cat(", .ffn = ", m.ffn);
  return s + "}>";
}

/// C++ source: `using model = …; using plan = ts::plan<model, mesh, schedule, policies…>;`.
inline std::string plan_cpp(const model_desc& m, const plan_point& p) {
  std::string s = cat("using model = ", model_type_name(m), ";\n");
  s += cat("using plan = ts::plan<model, ts::mesh<ts::dp<", p.dp, ">, ts::pp<", p.pp, ">, ts::tp<", p.tp, ">>, ",
           schedule_type_name(p), ", ts::zero<", p.zero, ">, ts::precision<", p.bf16 ? "ts::bf16" : "ts::fp32",
           ">, ts::recompute<ts::", recompute_name(p.recompute), ">", p.sequence_parallel ? ", ts::sequence_parallel" : "",
           ", ts::global_batch<", p.global_batch(), ">>;\n");
  return s;
}

inline nlohmann::json to_json(const plan_point& p) {
  return {{"tp", p.tp}, {"pp", p.pp}, {"dp", p.dp}, {"microbatch_size", p.microbatch_size},
          {"microbatches", p.microbatches}, {"schedule", std::string(schedule_kind_name(p.schedule))},
          {"chunks", p.chunks}, {"zero", p.zero}, {"recompute", recompute_name(p.recompute)},
          {"sequence_parallel", p.sequence_parallel}, {"precision", p.bf16 ? "bf16" : "fp32"},
          {"global_batch", p.global_batch()}};
}

inline nlohmann::json to_json(const ranked_plan& r) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  const prediction& x = r.pred;
  return {{"plan", to_json(r.point)},         {"iteration_s", x.iteration_s},     {"tokens_per_s", x.tokens_per_s},
          {"mfu", x.mfu},                     {"memory_gib_per_gpu", x.memory_bytes / gib},
          {"state_gib", x.state_bytes / gib}, {"activation_gib", x.activation_bytes / gib},
          {"bubble_s", x.bubble_s},           {"pipeline_s", x.pipeline_s},       {"exposed_comm_s", x.exposed_comm_s},
          {"optimizer_s", x.optimizer_s},     {"fits", x.fits}};
}

/// Why the fixed choices of a request leave no layout (before memory): "" when some layout exists.
inline std::string why_no_layout(const plan_request& r) {
  const model_desc& m = r.costs.model;
  const plan_constraints& f = r.fixed;
  const int gpus = r.costs.cluster.gpus();
  if (f.tp > 0) {
    if (m.heads % f.tp) return cat("heads (", m.heads, ") not divisible by tp (", f.tp, ")");
    if (m.kv_heads % f.tp) return cat("kv_heads (", m.kv_heads, ") not divisible by tp (", f.tp, ")");
    if (m.ffn % f.tp) return cat("ffn (", m.ffn, ") not divisible by tp (", f.tp, ")");
    if (gpus % f.tp) return cat("gpus (", gpus, ") not divisible by tp (", f.tp, ")");
  }
  const int tp = f.tp > 0 ? f.tp : 1, pp = f.pp > 0 ? f.pp : 1;
  if (f.pp > 0 && gpus % (tp * pp)) return cat("gpus (", gpus, ") not divisible by tp × pp (", tp, " × ", pp, ")");
  if (f.pp > 0 && f.pp > m.layers) return cat("pp (", f.pp, ") exceeds the layers (", m.layers, ")");
  if (f.dp > 0 && f.tp > 0 && f.pp > 0 && f.tp * f.pp * f.dp != gpus)
    return cat("tp × pp × dp (", f.tp, " × ", f.pp, " × ", f.dp, ") is not the gpus (", gpus, ")");
  if (f.dp > 0 && r.global_batch % f.dp) return cat("batch (", r.global_batch, ") not divisible by dp (", f.dp, ")");
  if (f.dp > 0 && f.microbatch_size > 0 && (r.global_batch / f.dp) % f.microbatch_size)
    return cat("batch per dp replica (", r.global_batch / f.dp, ") not divisible by the microbatch size (", f.microbatch_size, ")");
  if (f.tp > 0 && f.pp > 0 && f.dp > 0 && f.microbatch_size > 0 && (f.schedules & (f.schedules - 1)) == 0 && f.pp > 1) {
    plan_point p;
    p.tp = f.tp, p.pp = f.pp, p.dp = f.dp, p.microbatch_size = f.microbatch_size;
    p.microbatches = r.global_batch / f.dp / f.microbatch_size;
    for (int k = 0; k < num_schedule_kinds; ++k)
      if (f.schedules >> k & 1) p.schedule = static_cast<schedule_kind>(k);
    p.chunks = p.schedule == schedule_kind::interleaved ? (f.chunks > 0 ? f.chunks : 2) : 1;
    const schedule_error e = validate(p.shape());
    if (e != schedule_error::none) return describe(e, p.shape());
    if (m.layers % p.model_stages())
      return cat("layers (", m.layers, ") not divisible by the pipeline's stages (", p.model_stages(), ")");
  }
  bool any = false;
  search_detail::for_each_plan(r, [&](const plan_point&) { any = true; });
  return any ? "" : "no layout satisfies all the fixed choices together (tp, pp, dp, microbatch size, schedule, chunks)";
}

}  // namespace tessera
