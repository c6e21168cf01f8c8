// tessera/train/plan.hpp — ts::plan<model, mesh, schedule, policies...>: the whole parallel layout as one
// type, checked at compile time and lowered to a plain value (`plan_desc`) for the run-time engine.
//
// Policies, in any order: ts::zero<0..3>, ts::precision<ts::fp32 | ts::bf16>,
// ts::recompute<ts::none | ts::selective | ts::full>, ts::sequence_parallel, ts::stage_layers<n0, n1, ...>
// (an uneven split of the layers over the pipeline's model stages; default: even), ts::global_batch<B>
// (the global sequences per step when --batch is not given; default dp × microbatches).
#pragma once
#include <array>
#include <cstdint>
#include <tuple>
#include <type_traits>

#include "tessera/core/bf16.hpp"
#include "tessera/layout/layout.hpp"
#include "tessera/model/config.hpp"
#include "tessera/schedule/schedule.hpp"

namespace tessera {

using fp32 = float;  ///< precision tag (bf16 is tessera::bf16, the storage type)

struct none {};
struct selective {};
struct full {};

enum class precision_kind : std::uint8_t { fp32, bf16 };

inline constexpr int max_model_stages = 64;

/// Everything the policies decide.
struct policy_desc {
  int zero = 0;
  precision_kind precision = precision_kind::fp32;
  recompute_kind recompute = recompute_kind::none;
  bool sequence_parallel = false;
  bool uneven_split = false;
  int split_count = 0;
  std::array<int, max_model_stages> split{};
  int batch = 0;  ///< default global batch (0: dp × microbatches)
  int zero_given = 0, precision_given = 0, recompute_given = 0, sp_given = 0, split_given = 0, batch_given = 0;
};

template <int Stage>
struct zero {
  static_assert(Stage >= 0 && Stage <= 3, "tessera::zero<N>: the ZeRO stage must be 0, 1, 2 or 3");
  static constexpr void apply(policy_desc& p) { p.zero = Stage; ++p.zero_given; }
};
template <class T>
struct precision {
  static_assert(std::is_same_v<T, fp32> || std::is_same_v<T, bf16>,
                "tessera::precision<T>: T must be ts::fp32 or ts::bf16");
  static constexpr void apply(policy_desc& p) {
    p.precision = std::is_same_v<T, bf16> ? precision_kind::bf16 : precision_kind::fp32;
    ++p.precision_given;
  }
};
template <class R>
struct recompute {
  static_assert(std::is_same_v<R, none> || std::is_same_v<R, selective> || std::is_same_v<R, full>,
                "tessera::recompute<R>: R must be ts::none, ts::selective or ts::full");
  static constexpr void apply(policy_desc& p) {
    p.recompute = std::is_same_v<R, full> ? recompute_kind::full
                  : std::is_same_v<R, selective> ? recompute_kind::selective : recompute_kind::none;
    ++p.recompute_given;
  }
};
struct sequence_parallel {
  static constexpr void apply(policy_desc& p) { p.sequence_parallel = true; ++p.sp_given; }
};
/// Layers per model stage, first stage first (e.g. stage_layers<3, 5> for 8 layers on 2 stages).
template <int... Layers>
struct stage_layers {
  static_assert(sizeof...(Layers) >= 1 && sizeof...(Layers) <= max_model_stages,
                "tessera::stage_layers<n...>: between 1 and 64 stages");
  static_assert(((Layers >= 1) && ...), "tessera::stage_layers<n...>: every stage needs at least one layer");
  static constexpr void apply(policy_desc& p) {
    p.uneven_split = true;
    p.split_count = sizeof...(Layers);
    int i = 0;
    ((p.split[i++] = Layers), ...);
    ++p.split_given;
  }
};

/// The global batch (sequences per step) a program trains with when --batch is not given.
template <int B>
struct global_batch {
  static_assert(B >= 1, "tessera::global_batch<B>: B must be >= 1");
  static constexpr void apply(policy_desc& p) { p.batch = B; ++p.batch_given; }
};

template <class T> inline constexpr bool is_policy_v = false;
template <int S> inline constexpr bool is_policy_v<zero<S>> = true;
template <class T> inline constexpr bool is_policy_v<precision<T>> = true;
template <class R> inline constexpr bool is_policy_v<recompute<R>> = true;
template <> inline constexpr bool is_policy_v<sequence_parallel> = true;
template <int... L> inline constexpr bool is_policy_v<stage_layers<L...>> = true;
template <int B> inline constexpr bool is_policy_v<global_batch<B>> = true;


/// The plan as a value: what the run-time engine is built from.
struct plan_desc {
  model_desc model{};
  mesh_desc mesh{};
  schedule_shape schedule{};
  policy_desc policy{};
  int dp = 1, pp = 1, tp = 1;
  int model_stages = 1;  ///< P for chimera (two pipelines of the same P stages), else the schedule's stages
  int vocab_padded = 0;  ///< vocab rounded up to a multiple of tp
  std::array<int, max_model_stages + 1> layer_begin{};  ///< layers of model stage s: [layer_begin[s], layer_begin[s+1])

  constexpr int layers_of(int s) const { return layer_begin[s + 1] - layer_begin[s]; }
  /// The model stage a global schedule stage runs.
  constexpr int model_stage(int global_stage) const {
    return schedule.kind == schedule_kind::chimera && pp > 1 ? global_stage % pp : global_stage;
  }
  /// Global microbatch index of (global stage, microbatch within that stage's pipeline).
  constexpr int global_microbatch(int global_stage, int mb) const {
    if (schedule.kind == schedule_kind::chimera && pp > 1 && global_stage >= pp)
      return schedule.microbatches / 2 + mb;
    return mb;
  }
};

namespace diag {
template <int Layers, int Stages>
struct layers_not_divisible_by_pipeline_stages_times_chunks { static constexpr bool value = Stages >= 1 && Layers % Stages == 0; };
template <int Layers, int Stages>
struct layers_fewer_than_pipeline_stages { static constexpr bool value = Layers >= Stages; };
template <int Given, int Stages>
struct stage_layers_count_differs_from_model_stages { static constexpr bool value = Given == Stages; };
template <int Sum, int Layers>
struct stage_layers_sum_differs_from_layers { static constexpr bool value = Sum == Layers; };
template <int Count>
struct policy_given_more_than_once { static constexpr bool value = Count <= 1; };
template <int Batch, int DpTimesMicrobatches>
struct global_batch_not_divisible_by_dp_times_microbatches {
  static constexpr bool value = Batch % DpTimesMicrobatches == 0;
};
template <int Tp>
struct sequence_parallel_needs_tp_above_1 { static constexpr bool value = Tp > 1; };
}  // namespace diag

template <class Model, class Mesh, class Schedule, class... Policies>
struct plan {
  static_assert(is_model_v<Model>, "tessera::plan<Model, ...>: the first argument must be ts::gpt<...> or ts::llama<...>");
  static_assert(is_mesh_v<Mesh>, "tessera::plan<Model, Mesh, ...>: the second argument must be a ts::mesh<...>");
  static_assert(is_schedule_v<Schedule>, "tessera::plan<Model, Mesh, Schedule, ...>: the third argument must be a "
                                         "pipeline schedule (ts::gpipe<M>, ts::one_f_one_b<M>, ...)");
  static_assert((is_policy_v<Policies> && ...),
                "tessera::plan: policies must be ts::zero<N>, ts::precision<T>, ts::recompute<R>, "
                "ts::sequence_parallel, ts::stage_layers<n...> or ts::global_batch<B>");

  using model = Model;
  using mesh_type = Mesh;
  using schedule = Schedule;
  static constexpr model_desc m = Model::desc;
  static constexpr int DP = Mesh::size(axis::dp), PP = Mesh::size(axis::pp), TP = Mesh::size(axis::tp);

  // ---- the model against the tensor-parallel axis ----
  static_assert(Model::checked);
  static_assert(require_divisible<quantity::heads, m.heads, Mesh, axis::tp>());
  static_assert(require_divisible<quantity::kv_heads, m.kv_heads, Mesh, axis::tp>());
  static_assert(require_divisible<quantity::ffn, m.ffn, Mesh, axis::tp>());
  // ---- the schedule against the pipeline axis (M vs P: static_asserts in the table) ----
  using table = schedule_table<Schedule, PP>;
  static constexpr int model_stages = (Schedule::kind == schedule_kind::chimera && PP > 1) ? PP : table::stages;

  static constexpr policy_desc policies = [] {
    policy_desc p{};
    (Policies::apply(p), ...);
    return p;
  }();
  static_assert(diag::policy_given_more_than_once<policies.zero_given>::value, "tessera::plan: ts::zero given twice");
  static_assert(diag::policy_given_more_than_once<policies.precision_given>::value, "tessera::plan: ts::precision given twice");
  static_assert(diag::policy_given_more_than_once<policies.recompute_given>::value, "tessera::plan: ts::recompute given twice");
  static_assert(diag::policy_given_more_than_once<policies.split_given>::value, "tessera::plan: ts::stage_layers given twice");
  static_assert(diag::policy_given_more_than_once<policies.batch_given>::value, "tessera::plan: ts::global_batch given twice");
  static_assert(diag::global_batch_not_divisible_by_dp_times_microbatches<
                    (policies.batch > 0 ? policies.batch : DP * Schedule::microbatches), DP * Schedule::microbatches>::value,
                "tessera::plan: ts::global_batch<B> must be a multiple of dp × microbatches (numbers in the note)");
  static_assert(diag::sequence_parallel_needs_tp_above_1<(policies.sequence_parallel ? TP : 2)>::value,
                "tessera::plan: ts::sequence_parallel needs a tp axis of size > 1");

  // ---- layers over the model stages ----
  static constexpr int split_sum = [] {
    int s = 0;
    for (int i = 0; i < policies.split_count; ++i) s += policies.split[i];
    return s;
  }();
  static_assert(policies.uneven_split ||
                    diag::layers_fewer_than_pipeline_stages<m.layers, model_stages>::value,
                "tessera::plan: fewer layers than pipeline stages × chunks (numbers in the note)");
  static_assert(policies.uneven_split ||
                    diag::layers_not_divisible_by_pipeline_stages_times_chunks<m.layers, model_stages>::value,
                "tessera::plan: layers not divisible by pipeline stages × chunks (numbers in the note); "
                "give an uneven split with ts::stage_layers<...>");
  static_assert(!policies.uneven_split ||
                    diag::stage_layers_count_differs_from_model_stages<policies.split_count, model_stages>::value,
                "tessera::plan: ts::stage_layers<...> must list one count per model stage (numbers in the note)");
  static_assert(!policies.uneven_split || diag::stage_layers_sum_differs_from_layers<split_sum, m.layers>::value,
                "tessera::plan: ts::stage_layers<...> must add up to the model's layers (numbers in the note)");

  static constexpr plan_desc desc = [] {
    plan_desc d{};
    d.model = m;
    d.mesh = Mesh::desc;
    d.schedule = table::shape;
    d.policy = policies;
    d.dp = DP;
    d.pp = PP;
    d.tp = TP;
    d.model_stages = model_stages;
    d.vocab_padded = (m.vocab + TP - 1) / TP * TP;
    d.layer_begin[0] = 0;
    for (int s = 0; s < model_stages; ++s)
      d.layer_begin[s + 1] = d.layer_begin[s] + (policies.uneven_split ? policies.split[s] : m.layers / model_stages);
    return d;
  }();
};

template <class T> inline constexpr bool is_plan_v = false;
template <class Mo, class Me, class S, class... P> inline constexpr bool is_plan_v<plan<Mo, Me, S, P...>> = true;

/// One program for several meshes of the same model (ts::train<ts::elastic<plan_a, plan_b, …>>): it runs
/// the plan whose mesh size is the MPI world size, so a job restarted on fewer ranks goes on with another
/// layout, resharding the checkpoint it resumes from. The plans need distinct mesh sizes.
template <class... Plans>
struct elastic {
  static_assert(sizeof...(Plans) >= 1, "tessera::elastic<...>: give at least one plan");
  static_assert((is_plan_v<Plans> && ...), "tessera::elastic<...>: every argument must be a ts::plan<...>");
  using first = std::tuple_element_t<0, std::tuple<Plans...>>;
  static_assert((std::is_same_v<typename Plans::model, typename first::model> && ...),
                "tessera::elastic<...>: every plan must train the same model (one resumes another's checkpoint)");
  static constexpr std::array<int, sizeof...(Plans)> world_sizes{Plans::desc.mesh.world()...};
  static constexpr bool distinct_sizes() {
    for (std::size_t i = 0; i < world_sizes.size(); ++i)
      for (std::size_t j = i + 1; j < world_sizes.size(); ++j)
        if (world_sizes[i] == world_sizes[j]) return false;
    return true;
  }
  static_assert(distinct_sizes(), "tessera::elastic<...>: two plans have the same mesh size (the world size must choose one)");
};
template <class T> inline constexpr bool is_elastic_v = false;
template <class... P> inline constexpr bool is_elastic_v<elastic<P...>> = true;

}  // namespace tessera
