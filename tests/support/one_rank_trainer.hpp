// tests/support/one_rank_trainer.hpp — a one-rank trainer for one-process tests: a plan on communicator
// Comm and system System, training on the repository's corpus (TESSERA_CORPUS), and what it produced.
#pragma once
#include <cstdint>
#include <vector>

#include "tessera/tessera.hpp"

namespace tessera_test {

template <class T, class Plan, class Comm, class System = tessera::host_system>
struct one_rank_trainer {
  static constexpr tessera::plan_desc pd = Plan::desc;
  static tessera::train_options options(int steps) {
    tessera::train_options o;
    o.lr = 3e-3;
    o.warmup = 1;
    o.steps = steps;
    o.bucket_mb = 0.01;
    return o;
  }
  /// `steps`: the learning-rate schedule's length.
  one_rank_trainer(Comm& w, int steps)
      : world(w), mc(world, pd.mesh), data(TESSERA_CORPUS, pd.model.vocab, pd.model.seq),
        tr(pd, tessera::program_of_rank<Plan>(0), options(steps), mc, data) {}

  /// Steps [k0, k0 + count): each one's loss and gradient norm.
  std::vector<double> train(int k0, int count) {
    std::vector<double> out;
    for (int k = k0; k < k0 + count; ++k) {
      const auto r = tr.step(k);
      out.push_back(r.loss);
      out.push_back(r.grad_norm);
    }
    return out;
  }
  /// `steps` steps from a fresh start, then an evaluation and a sampled continuation of a prompt.
  std::vector<double> train_evaluate_sample(int steps) {
    tr.shard_optimizer_state();
    std::vector<double> out = train(0, steps);
    out.push_back(tr.evaluate(0, 2));
    for (std::int32_t t : tr.generate({72, 101}, 4, 0.8, 7)) out.push_back(t);
    return out;
  }

  Comm& world;
  tessera::mesh_comms<Comm> mc;
  tessera::token_data data;
  tessera::trainer<T, Plan::model::head_dim, Comm, System> tr;
};

}  // namespace tessera_test
