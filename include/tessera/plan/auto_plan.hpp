// tessera/plan/auto_plan.hpp — ts::auto_plan<Model, Cluster, GlobalBatch, Policies...>: the ts::plan the
// cost model predicts fastest, chosen while the program compiles.
//
//   using plan = ts::auto_plan<model, ts::cluster<ts::hw::a100_80g, 8, 128>, 1536>;
//   int main(int argc, char** argv) { return ts::train<plan>(argc, argv); }
//
// Policies narrow the search: ts::precision<T> (default bf16 on GPUs, fp32 on the host), ts::zero<k>,
// ts::recompute<R>, ts::sequence_parallel. The chosen plan carries every policy explicitly and
// ts::global_batch<GlobalBatch>, so the program trains that batch without --batch. When no plan fits in
// the device's memory a static_assert says so, with the least memory any plan needs and the memory there
// is (MiB) in the note.
#pragma once
#include <type_traits>

#include "tessera/plan/search.hpp"
#include "tessera/train/plan.hpp"

namespace tessera {

namespace diag {
template <long long NeededMiB, long long AvailableMiB>
struct no_plan_fits_in_device_memory { static constexpr bool value = NeededMiB <= AvailableMiB; };
template <int GlobalBatch>
struct global_batch_must_be_positive { static constexpr bool value = GlobalBatch >= 1; };
}  // namespace diag

/// The chosen plan's schedule table is built and verified while the program compiles (ts::plan); past
/// about this many compute actions that takes seconds and then exceeds GCC's default constexpr limit, so
/// auto_plan chooses among plans below it (tessera_plan has no such bound).
inline constexpr int max_auto_plan_table_actions = 3072;

namespace auto_plan_detail {

template <int Kind, int M, int V> struct schedule_of { using type = one_f_one_b<M>; };
template <int M, int V> struct schedule_of<0, M, V> { using type = gpipe<M>; };
template <int M, int V> struct schedule_of<2, M, V> { using type = interleaved_1f1b<M, V>; };
template <int M, int V> struct schedule_of<3, M, V> { using type = chimera<M>; };
template <int M, int V> struct schedule_of<4, M, V> { using type = zb_h1<M>; };
template <int M, int V> struct schedule_of<5, M, V> { using type = zbv<M>; };
template <int M, int V> struct schedule_of<6, M, V> { using type = dualpipe_v<M>; };

template <int R> struct recompute_of { using type = recompute<none>; };
template <> struct recompute_of<1> { using type = recompute<selective>; };
template <> struct recompute_of<2> { using type = recompute<full>; };

template <class Model, class Mesh, class Schedule, bool SP, class... Policies>
struct plan_with_sp { using type = plan<Model, Mesh, Schedule, Policies...>; };
template <class Model, class Mesh, class Schedule, class... Policies>
struct plan_with_sp<Model, Mesh, Schedule, true, Policies...> {
  using type = plan<Model, Mesh, Schedule, Policies..., sequence_parallel>;
};

template <class Cluster, class... Policies>
constexpr plan_request request_of(const model_desc& m, int global_batch) {
  policy_desc given{};
  (Policies::apply(given), ...);
  plan_request r;
  r.costs.model = m;
  r.costs.cluster = Cluster::desc;
  r.costs.software = software_of<typename Cluster::device>();
  r.global_batch = global_batch;
  const bool host = r.costs.software.name == sw::tessera_host.name;
  r.fixed.bf16 = given.precision_given ? given.precision == precision_kind::bf16 : !host;
  if (given.zero_given) r.fixed.zero = given.zero;
  if (given.recompute_given) r.fixed.recompute = static_cast<int>(given.recompute);
  if (given.sp_given) r.fixed.sequence_parallel = 1;
  r.fixed.max_table_actions = max_auto_plan_table_actions;
  return r;
}

template <class Model, class Cluster, int GlobalBatch, class... Policies>
struct choose {
  static_assert(is_model_v<Model>, "tessera::auto_plan<Model, ...>: Model must be ts::gpt<...> or ts::llama<...>");
  static_assert(is_cluster_v<Cluster>, "tessera::auto_plan<Model, Cluster, ...>: Cluster must be a ts::cluster<...>");
  static_assert(diag::global_batch_must_be_positive<GlobalBatch>::value, "tessera::auto_plan: the global batch must be >= 1");
  static_assert((is_policy_v<Policies> && ...), "tessera::auto_plan: policies must be ts::zero<N>, ts::precision<T>, "
                                                "ts::recompute<R> or ts::sequence_parallel");
  static constexpr best_plan_result result = best_plan<1>(request_of<Cluster, Policies...>(Model::desc, GlobalBatch));
  static constexpr long long mib(double bytes) { return static_cast<long long>(bytes / (1024.0 * 1024.0) + 0.5); }
  static_assert(result.candidates > 0,
                "tessera::auto_plan: no layout of this model divides this cluster and batch (tp must divide the heads, "
                "kv_heads and ffn; dp the global batch; the pipeline stages the layers)");
  static_assert(result.candidates == 0 ||
                    diag::no_plan_fits_in_device_memory<(result.found || result.candidates == 0 ? 0 : mib(result.least_memory)),
                                                       mib(result.device_memory)>::value,
                "tessera::auto_plan: no plan fits in the device's memory (the least any plan needs and the memory "
                "there is, in MiB, are named below); use more devices or a smaller model or batch");
  static constexpr plan_point p = result.found ? result.best.point : plan_point{};
  using type = typename plan_with_sp<
      Model, mesh<dp<p.dp>, pp<p.pp>, tp<p.tp>>,
      typename schedule_of<static_cast<int>(p.schedule), p.microbatches, p.chunks>::type, p.sequence_parallel,
      zero<p.zero>, precision<std::conditional_t<p.bf16, bf16, fp32>>, typename recompute_of<static_cast<int>(p.recompute)>::type,
      global_batch<(result.found ? GlobalBatch : p.dp * p.microbatches)>>::type;
};

}  // namespace auto_plan_detail

/// The fastest predicted plan of Model on Cluster for GlobalBatch sequences per step (a ts::plan<…>).
template <class Model, class Cluster, int GlobalBatch, class... Policies>
using auto_plan = typename auto_plan_detail::choose<Model, Cluster, GlobalBatch, Policies...>::type;

/// What the search predicted for the plan auto_plan chose.
template <class Model, class Cluster, int GlobalBatch, class... Policies>
inline constexpr best_plan_result auto_plan_prediction = auto_plan_detail::choose<Model, Cluster, GlobalBatch, Policies...>::result;

}  // namespace tessera
