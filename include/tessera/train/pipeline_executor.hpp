// tessera/train/pipeline_executor.hpp — runs one pipeline rank's program of actions.
//
// A program is the rank's list of actions from its schedule's constexpr table (schedule/program.hpp):
// compute (F, B, I, W and the overlapped FB) on the rank's chunks, and the point-to-point sends and
// receives of activations (forward) and their gradients (backward) between pipeline ranks, over the
// communicator of the pp axis with one tag per (receiving stage, microbatch, direction). Each
// (stage, microbatch) has a state — the activations its backward needs — created at its first action,
// freed into a pool after its last one (release_points), and reused by the next.
//
// Training steps, evaluation and sampling all run here: the forward-only passes are programs too
// (forward_only_program), so there is one path through the pipeline.
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "tessera/comm/communicator.hpp"
#include "tessera/core/profile.hpp"
#include "tessera/core/trace.hpp"
#include "tessera/model/transformer.hpp"
#include "tessera/schedule/schedule.hpp"
#include "tessera/train/plan.hpp"

namespace tessera {

/// A program with, for each action, the (stage, microbatch) states whose last use it is.
struct pipeline_program {
  std::vector<action> actions;
  std::vector<std::vector<std::pair<int, int>>> release_after;

  pipeline_program() = default;
  explicit pipeline_program(std::vector<action> a) : actions(std::move(a)), release_after(actions.size()) {
    std::map<std::pair<int, int>, std::size_t> last_use;
    for (std::size_t idx = 0; idx < actions.size(); ++idx) {
      const action& x = actions[idx];
      for (int pi = 0; pi < num_parts(x); ++pi) {
        const action y = part(x, pi);
        last_use[{y.stage, y.mb}] = idx;
      }
      if (is_comm(x.kind)) last_use[{x.stage, x.mb}] = idx;
    }
    for (auto [key, idx] : last_use) release_after[idx].push_back(key);
  }
};

/// Microbatches [0, count) of the loaded batch forward through the stages pipeline rank `me` holds, one
/// microbatch at a time in stage order (Chimera: through its first pipeline only).
inline pipeline_program forward_only_program(const plan_desc& pd, int me, int count) {
  const schedule_shape& s = pd.schedule;
  const bool chimera = s.kind == schedule_kind::chimera && pd.pp > 1;
  const int stages = chimera ? pd.pp : num_stages(s);
  std::vector<action> prog;
  for (int mb = 0; mb < count; ++mb)
    for (int g = 0; g < stages; ++g) {
      if (stage_rank(s, g) != me) continue;
      if (!is_first_stage(s, g) && stage_rank(s, g - 1) != me) {
        action a = make_action(op::recv_f, g, mb);
        a.peer = stage_rank(s, g - 1);
        prog.push_back(a);
      }
      prog.push_back(make_action(op::F, g, mb));
      if (!is_last_stage(s, g) && stage_rank(s, g + 1) != me) {
        action a = make_action(op::send_f, g, mb);
        a.peer = stage_rank(s, g + 1);
        prog.push_back(a);
      }
    }
  return pipeline_program(std::move(prog));
}

template <class T, int D, communicator Comm, class System = host_system>
class pipeline_executor {
 public:
  using chunk_t = chunk<T, D, Comm, System>;
  using state_t = mb_state<T, System>;
  using G = ops::grad_t<T>;

  /// chunks[g]: the chunk of global stage g on this rank (nullptr for stages elsewhere).
  /// `sys`: the system value the chunks issue their work on.
  pipeline_executor(const plan_desc& pd, int pp_rank, const chunk_dims& d, Comm& pp, std::vector<chunk_t*> chunks,
                    System sys)
      : pd_(pd), me_(pp_rank), rows_(d.rows), message_(static_cast<std::size_t>(d.local_rows * d.hidden)), pp_(pp),
        chunks_(std::move(chunks)), sys_(sys) {}

  /// The batch the next programs read (in the system's memory): microbatch j of stage g reads rows
  /// pd.global_microbatch(g, j)·R.
  void set_batch(const std::int32_t* tokens, const std::int32_t* targets) {
    tokens_ = tokens;
    targets_ = targets;
  }

  /// Runs `p`: after each action, after_action(index) (the trainer launches gradient reductions there),
  /// then the states used for the last time are pooled. on_last_forward(state) sees every microbatch
  /// leaving a last stage. With `account`, the bytes of all states (live and pooled) after each action
  /// update peak_activation_bytes(). Returns the summed token loss of this rank's last stages.
  /// @pre set_batch() was called; every peer runs its own part of the same schedule.
  template <class After, class OnLast>
  double run(const pipeline_program& p, G backward_scale, After&& after_action, OnLast&& on_last_forward, bool account) {
    std::size_t forwards = 0;  // an upper bound on the microbatch losses this program makes
    backward_follows_ = false;  // whether the program runs backwards (not: evaluation, generation)
    for (const action& a : p.actions)
      for (int pi = 0; pi < num_parts(a); ++pi) {
        forwards += part(a, pi).kind == op::F;
        backward_follows_ = backward_follows_ || part(a, pi).kind == op::B || part(a, pi).kind == op::I;
      }
    resize_for_overwrite(losses_, static_cast<std::int64_t>(forwards));
    losses_made_ = 0;
    for (std::size_t idx = 0; idx < p.actions.size(); ++idx) {
      const action& a = p.actions[idx];
      {
        std::optional<trace::span> traced;  // --trace: the action (not what follows it) on the "pipeline" track
        if (trace::process().enabled()) traced.emplace(trace::track::pipeline, to_string(a));
        for (int pi = 0; pi < num_parts(a); ++pi) compute(part(a, pi), backward_scale, on_last_forward);
        communicate(a);
      }
      if (account) {
        std::int64_t live = 0;
        for (const auto& [key, st] : states_) live += st->bytes();
        for (const auto& st : free_) live += st->bytes();
        peak_bytes_ = std::max(peak_bytes_, live);
      }
      after_action(idx);
      for (auto [g, j] : p.release_after[idx])
        if (states_.count({g, j})) release(g, j);
    }
    return summed_losses();
  }

  /// Peak bytes of microbatch states (saved activations, messages in flight) held so far.
  std::int64_t peak_activation_bytes() const { return peak_bytes_; }

 private:
  chunk_t& chunk_at(int g) { return *chunks_[static_cast<std::size_t>(g)]; }
  /// The microbatch losses of the last run, in the order they were made, summed on the host: one copy
  /// from the system's memory per run (a step's loss comes back once).
  double summed_losses() {
    std::vector<double> made(losses_made_);
    sys_.to_host(made.data(), losses_.data(), static_cast<std::int64_t>(losses_made_));
    double loss = 0;
    for (double x : made) loss += x;
    return loss;
  }
  template <class OnLast>
  void compute(const action& x, G scale, OnLast& on_last_forward) {
    chunk_t& c = chunk_at(x.stage);
    state_t& st = state(x.stage, x.mb);
    switch (x.kind) {
      case op::F:
        if (c.last()) st.loss_out = losses_.data() + losses_made_++;
        c.forward(st);
        if (c.last()) {
          on_last_forward(st);
          return;
        }
        if (local_next(x.stage)) {  // the next stage runs here too (V shapes, interleaving): hand over
          auto& nx = state(x.stage + 1, x.mb);
          nx.xs.resize(1);
          nx.xs[0] = st.xs.back();
        }
        break;
      case op::B:
      case op::I:
        c.backward(st, x.kind == op::I, scale);
        if (!c.first() && local_prev(x.stage)) state(x.stage - 1, x.mb).dy = st.dx;
        break;
      case op::W: c.weight_backward(st); break;
      default: break;
    }
  }
  void communicate(const action& a) {
    if (!is_comm(a.kind)) return;
    const prof::scope p_comm("pipeline send/recv");
    auto& st = state(a.stage, a.mb);
    if (a.kind == op::send_f || a.kind == op::send_b) ready_to_communicate<Comm>(sys_);  // the message is computed
    switch (a.kind) {
      case op::send_f: pp_.send(st.xs.back().data(), message_, a.peer, tag(a.stage + 1, a.mb, true)); break;
      case op::recv_f:
        st.xs.resize(1);
        resize_for_overwrite(st.xs[0], static_cast<std::int64_t>(message_));
        pp_.recv(st.xs[0].data(), message_, a.peer, tag(a.stage, a.mb, true));
        break;
      case op::send_b: pp_.send(st.dx.data(), message_, a.peer, tag(a.stage - 1, a.mb, false)); break;
      case op::recv_b:
        resize_for_overwrite(st.dy, static_cast<std::int64_t>(message_));
        pp_.recv(st.dy.data(), message_, a.peer, tag(a.stage, a.mb, false));
        break;
      default: break;
    }
  }
  /// The tag of a message to `recv_stage` (microbatch mb, forward or backward).
  int tag(int recv_stage, int mb, bool fwd) const {
    return ((recv_stage * (pd_.schedule.microbatches + 1) + mb) * 2 + (fwd ? 0 : 1)) % 32000;
  }
  bool local_next(int g) const { return !is_last_stage(pd_.schedule, g) && stage_rank(pd_.schedule, g + 1) == me_; }
  bool local_prev(int g) const { return !is_first_stage(pd_.schedule, g) && stage_rank(pd_.schedule, g - 1) == me_; }

  state_t& state(int g, int j) {
    auto& p = states_[{g, j}];
    if (!p) {
      if (!free_.empty()) {
        p = std::move(free_.back());
        free_.pop_back();
      } else {
        p = std::make_unique<state_t>();
      }
      const std::int64_t row0 = static_cast<std::int64_t>(pd_.global_microbatch(g, j)) * rows_;
      p->tokens = tokens_ + row0;
      p->targets = targets_ + row0;
      p->deferred.clear();
      p->loss_out = nullptr;
      p->backward_follows = backward_follows_;
      p->logits_hold_grad = false;
    }
    return *p;
  }
  void release(int g, int j) {
    auto it = states_.find({g, j});
    free_.push_back(std::move(it->second));
    states_.erase(it);
  }

  plan_desc pd_;
  int me_ = 0;
  std::int64_t rows_ = 0;  ///< rows of one microbatch
  std::size_t message_ = 0;  ///< elements of one activation (or gradient) message
  Comm& pp_;
  std::vector<chunk_t*> chunks_;
  System sys_;
  buffer_of<System, double> losses_;  ///< the run's microbatch losses (system memory), in the order made
  std::size_t losses_made_ = 0;
  bool backward_follows_ = false;  ///< the current run's program has backward actions
  const std::int32_t* tokens_ = nullptr;
  const std::int32_t* targets_ = nullptr;
  std::map<std::pair<int, int>, std::unique_ptr<state_t>> states_;
  std::vector<std::unique_ptr<state_t>> free_;
  std::int64_t peak_bytes_ = 0;
};

}  // namespace tessera
