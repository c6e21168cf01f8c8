// tessera/schedule/verify.hpp — checks that a schedule is executable, and the communication program
// derived from it.
//
//   check_coverage(s)      every (stage, microbatch) has exactly one forward and exactly one backward —
//                          either one full B, or one I and one W — each on the rank that owns the stage.
//   simulate_compute(s)    dependencies + deadlock freedom under blocking point-to-point semantics: each
//                          rank executes its list in order; an action runs only once its inputs exist
//                          (F after the previous stage's F; B/I after the next stage's B/I and after its own
//                          F; W after its I). The simulation must execute every action.
//   derive_comm(s)         per rank, the compute actions interleaved with SEND_F/RECV_F/SEND_B/RECV_B (peer
//                          rank, stage, microbatch), as torch's _add_send_recv does: compute actions are
//                          placed in rounds (one per rank per round, when its inputs are available on the
//                          rank); a send goes right after its compute action and the matching receive is
//                          appended to the peer's list at the same moment ("a receive is placed when its
//                          send is placed"). No communication between two stages on the same rank.
//   check_comm(c)          the derived program terminates when every send and receive is blocking and
//                          rendezvous (a send completes only together with its receive — the strictest
//                          semantics; a program that terminates so terminates with buffered or batched p2p
//                          too), and every compute action finds its inputs (received, or produced locally;
//                          a B/I after its own F, a W after its I).
//
// All four are constexpr and run inside the schedule types' static_asserts and, at run time, in the tests.
#pragma once
#include "tessera/schedule/program.hpp"

namespace tessera {

/// Outcome of a check: ok, or the first offending (rank, index) and a reason code.
struct verify_result {
  enum code_t : unsigned char {
    ok_code,
    wrong_rank,        // an action on a stage its rank does not own
    bad_index,         // stage or microbatch out of range
    duplicate,         // a (stage, mb, part) twice
    missing,           // a (stage, mb, part) never
    mixed_backward,    // full B and split I/W for the same (stage, mb)
    deadlock,          // the simulation stopped before the end
    missing_input,     // comm program: a compute action without its received/local input
    unmatched_comm,    // comm program: a send or receive without its partner
  };
  code_t code = ok_code;
  int rank = -1;
  int index = -1;
  int steps = 0;  // simulation rounds (informative)
  constexpr bool ok() const { return code == ok_code; }
};

namespace sched_detail {
// Slots per (stage, mb): 0 = forward, 1 = input gradient (B or I), 2 = weight gradient (B or W).
constexpr int slot_index(int stages, int mbs, int stage, int mb, int slot) {
  (void)stages;
  return (stage * mbs + mb) * 3 + slot;
}
}  // namespace sched_detail

template <class Storage>
constexpr verify_result check_coverage(const basic_schedule<Storage>& s) {
  using ivec = typename Storage::template vec<int>;
  const int S = s.stages(), Mb = microbatches_per_stage(s.shape);
  ivec seen{};   // count per slot
  ivec full{};   // per (stage, mb): number of full B
  seen.assign(S * Mb * 3, 0);
  full.assign(S * Mb, 0);
  for (int r = 0; r < s.ranks(); ++r) {
    for (int i = 0; i < s.size(r); ++i) {
      const action& a = s.at(r, i);
      for (int p = 0; p < num_parts(a); ++p) {
        const action x = part(a, p);
        if (x.stage < 0 || x.stage >= S || x.mb < 0 || x.mb >= Mb) return {verify_result::bad_index, r, i};
        if (s.rank_of(x.stage) != r) return {verify_result::wrong_rank, r, i};
        auto bump = [&](int slot) { return ++seen[sched_detail::slot_index(S, Mb, x.stage, x.mb, slot)] == 1; };
        bool fine = true;
        switch (x.kind) {
          case op::F: fine = bump(0); break;
          case op::B: fine = bump(1) && bump(2); ++full[x.stage * Mb + x.mb]; break;
          case op::I: fine = bump(1); break;
          case op::W: fine = bump(2); break;
          default: break;
        }
        if (!fine) return {verify_result::duplicate, r, i};
      }
    }
  }
  for (int k = 0; k < S * Mb * 3; ++k)
    if (seen[k] != 1) return {verify_result::missing, s.rank_of(k / 3 / Mb), -1};
  (void)full;
  return {};
}

namespace sched_detail {
// Whether compute part x (F/B/I/W) can run given the done-flags of all slots.
template <class Storage, class Vec>
constexpr bool part_ready(const basic_schedule<Storage>& s, const Vec& done, const action& x) {
  const int S = s.stages(), Mb = microbatches_per_stage(s.shape);
  auto is_done = [&](int stage, int slot) { return done[slot_index(S, Mb, stage, x.mb, slot)] != 0; };
  switch (x.kind) {
    case op::F: return is_first_stage(s.shape, x.stage) || is_done(x.stage - 1, 0);
    case op::B:
    case op::I:
      return is_done(x.stage, 0) && (is_last_stage(s.shape, x.stage) || is_done(x.stage + 1, 1));
    case op::W: return is_done(x.stage, 1);
    default: return true;
  }
}
template <class Vec>
constexpr void mark_done(Vec& done, int S, int Mb, const action& x) {
  switch (x.kind) {
    case op::F: done[slot_index(S, Mb, x.stage, x.mb, 0)] = 1; break;
    case op::B:
      done[slot_index(S, Mb, x.stage, x.mb, 1)] = 1;
      done[slot_index(S, Mb, x.stage, x.mb, 2)] = 1;
      break;
    case op::I: done[slot_index(S, Mb, x.stage, x.mb, 1)] = 1; break;
    case op::W: done[slot_index(S, Mb, x.stage, x.mb, 2)] = 1; break;
    default: break;
  }
}
}  // namespace sched_detail

/// Executes every rank's list in order, an action as soon as its inputs exist (FB: both parts must be
/// ready). Requires check_coverage(s).ok().
template <class Storage>
constexpr verify_result simulate_compute(const basic_schedule<Storage>& s) {
  using ivec = typename Storage::template vec<int>;
  const int S = s.stages(), Mb = microbatches_per_stage(s.shape), P = s.ranks();
  ivec done{}, ptr{};
  done.assign(S * Mb * 3, 0);
  ptr.assign(P, 0);
  int remaining = s.total(), steps = 0;
  while (remaining > 0) {
    bool progress = false;
    ++steps;
    for (int r = 0; r < P; ++r) {
      while (ptr[r] < s.size(r)) {
        const action& a = s.at(r, ptr[r]);
        bool ready = true;
        for (int p = 0; p < num_parts(a); ++p) ready = ready && sched_detail::part_ready(s, done, part(a, p));
        if (!ready) break;
        for (int p = 0; p < num_parts(a); ++p) sched_detail::mark_done(done, S, Mb, part(a, p));
        ++ptr[r];
        --remaining;
        progress = true;
      }
    }
    if (!progress) {
      for (int r = 0; r < P; ++r)
        if (ptr[r] < s.size(r)) return {verify_result::deadlock, r, ptr[r], steps};
    }
  }
  verify_result res{};
  res.steps = steps;
  return res;
}

namespace sched_detail {
// The send a compute part needs after it, if its consumer stage lives on another rank.
template <class Storage>
constexpr bool needs_send(const basic_schedule<Storage>& s, const action& x) {
  if (x.kind == op::F) return !is_last_stage(s.shape, x.stage) && s.rank_of(x.stage + 1) != s.rank_of(x.stage);
  if (x.kind == op::B || x.kind == op::I)
    return !is_first_stage(s.shape, x.stage) && s.rank_of(x.stage - 1) != s.rank_of(x.stage);
  return false;
}
}  // namespace sched_detail

/// The communication program of a compute schedule (see the header comment). OutStorage must hold
/// comm_capacity(shape) actions (fixed_storage) or be dynamic_storage. On a malformed schedule (no
/// progress) the result has fewer actions than expected; check_comm reports it.
template <class OutStorage, class Storage>
constexpr basic_schedule<OutStorage> derive_comm(const basic_schedule<Storage>& s) {
  using ivec = typename Storage::template vec<int>;
  using out_avec = typename OutStorage::template vec<action>;
  const int S = s.stages(), Mb = microbatches_per_stage(s.shape), P = s.ranks();
  // Availability of inputs *on the consuming rank*: slot 0 = forward input of (stage, mb) available on
  // rank_of(stage); slot 1 = gradient input of (stage, mb) available on rank_of(stage); slot 2 unused.
  // Local production (same rank) and receives both set it.
  ivec avail{}, ptr{};
  avail.assign(S * Mb * 3, 0);
  ptr.assign(P, 0);
  // All emitted actions in placement order, tagged with their rank; split by rank at the end.
  out_avec flat{};
  typename OutStorage::template vec<int> tag{};
  auto emit = [&](int r, const action& a) {
    flat.push_back(a);
    tag.push_back(r);
  };
  auto ready = [&](const action& x) {
    switch (x.kind) {
      case op::F: return is_first_stage(s.shape, x.stage) || avail[sched_detail::slot_index(S, Mb, x.stage, x.mb, 0)] != 0;
      case op::B:
      case op::I: return is_last_stage(s.shape, x.stage) || avail[sched_detail::slot_index(S, Mb, x.stage, x.mb, 1)] != 0;
      default: return true;
    }
  };
  int remaining = s.total();
  while (remaining > 0) {
    bool progress = false;
    for (int r = 0; r < P; ++r) {
      if (ptr[r] >= s.size(r)) continue;
      const action& a = s.at(r, ptr[r]);
      bool ok = true;
      for (int p = 0; p < num_parts(a); ++p) ok = ok && ready(part(a, p));
      if (!ok) continue;
      emit(r, a);
      for (int p = 0; p < num_parts(a); ++p) {
        const action x = part(a, p);
        if (x.kind == op::F && !is_last_stage(s.shape, x.stage)) {
          if (sched_detail::needs_send(s, x)) {
            const int peer = s.rank_of(x.stage + 1);
            emit(r, action{op::send_f, x.stage, x.mb, -1, -1, peer});
            emit(peer, action{op::recv_f, x.stage + 1, x.mb, -1, -1, r});
          }
          avail[sched_detail::slot_index(S, Mb, x.stage + 1, x.mb, 0)] = 1;
        } else if ((x.kind == op::B || x.kind == op::I) && !is_first_stage(s.shape, x.stage)) {
          if (sched_detail::needs_send(s, x)) {
            const int peer = s.rank_of(x.stage - 1);
            emit(r, action{op::send_b, x.stage, x.mb, -1, -1, peer});
            emit(peer, action{op::recv_b, x.stage - 1, x.mb, -1, -1, r});
          }
          avail[sched_detail::slot_index(S, Mb, x.stage - 1, x.mb, 1)] = 1;
        }
      }
      ++ptr[r];
      --remaining;
      progress = true;
    }
    if (!progress) break;  // malformed: check_comm will report the missing actions
  }
  basic_schedule<OutStorage> c{};
  c.shape = s.shape;
  for (int r = 0; r < P; ++r) {
    c.start_rank();
    for (int k = 0; k < static_cast<int>(flat.size()); ++k)
      if (tag[k] == r) c.push(flat[k]);
  }
  c.finish();
  return c;
}

/// Executes a communication program with blocking rendezvous sends and receives (see header).
/// `expected_compute` is the number of compute actions of the schedule it was derived from (a
/// derivation that stalled has fewer and fails here).
template <class Storage>
constexpr verify_result check_comm(const basic_schedule<Storage>& c, int expected_compute) {
  using ivec = typename Storage::template vec<int>;
  const int S = c.stages(), Mb = microbatches_per_stage(c.shape), P = c.ranks();
  int compute = 0;
  for (int k = 0; k < c.total(); ++k)
    if (is_compute(c.actions[k].kind)) ++compute;
  if (compute != expected_compute) return {verify_result::deadlock, -1, compute};
  ivec avail{}, ran{}, ptr{};
  avail.assign(S * Mb * 3, 0);  // inputs present on the consuming rank (received or produced locally)
  ran.assign(S * Mb * 3, 0);    // compute slots executed (a rank's own F before its B/I, I before W)
  ptr.assign(P, 0);
  auto has = [&](const ivec& v, const action& x, int slot) {
    return v[sched_detail::slot_index(S, Mb, x.stage, x.mb, slot)] != 0;
  };
  auto input_ok = [&](const action& x) {
    switch (x.kind) {
      case op::F: return is_first_stage(c.shape, x.stage) || has(avail, x, 0);
      case op::B:
      case op::I: return has(ran, x, 0) && (is_last_stage(c.shape, x.stage) || has(avail, x, 1));
      case op::W: return has(ran, x, 1);
      default: return true;
    }
  };
  int remaining = c.total(), steps = 0;
  while (remaining > 0) {
    bool progress = false;
    ++steps;
    for (int r = 0; r < P; ++r) {
      while (ptr[r] < c.size(r)) {
        const action& a = c.at(r, ptr[r]);
        if (is_compute(a.kind)) {
          for (int p = 0; p < num_parts(a); ++p) {
            const action x = part(a, p);
            if (!input_ok(x)) return {verify_result::missing_input, r, ptr[r], steps};
            sched_detail::mark_done(ran, S, Mb, x);
            // Local production: the consumer stage on the same rank gets its input directly.
            if (x.kind == op::F && !is_last_stage(c.shape, x.stage) && c.rank_of(x.stage + 1) == r)
              avail[sched_detail::slot_index(S, Mb, x.stage + 1, x.mb, 0)] = 1;
            if ((x.kind == op::B || x.kind == op::I) && !is_first_stage(c.shape, x.stage) &&
                c.rank_of(x.stage - 1) == r)
              avail[sched_detail::slot_index(S, Mb, x.stage - 1, x.mb, 1)] = 1;
          }
          ++ptr[r];
          --remaining;
          progress = true;
          continue;
        }
        if (a.kind == op::recv_f || a.kind == op::recv_b) break;  // completed by its sender
        // A send: completes together with the peer's receive, which must be at the peer's head.
        const int peer = a.peer;
        if (peer < 0 || peer >= P) return {verify_result::unmatched_comm, r, ptr[r], steps};
        if (ptr[peer] >= c.size(peer)) return {verify_result::unmatched_comm, r, ptr[r], steps};
        const action& b = c.at(peer, ptr[peer]);
        const bool fwd = a.kind == op::send_f;
        const action want{fwd ? op::recv_f : op::recv_b, fwd ? a.stage + 1 : a.stage - 1, a.mb, -1, -1, r};
        if (!(b == want)) break;  // peer not there yet
        avail[sched_detail::slot_index(S, Mb, want.stage, want.mb, fwd ? 0 : 1)] = 1;
        ++ptr[r];
        ++ptr[peer];
        remaining -= 2;
        progress = true;
      }
    }
    if (!progress) {
      for (int r = 0; r < P; ++r)
        if (ptr[r] < c.size(r)) return {verify_result::deadlock, r, ptr[r], steps};
    }
  }
  verify_result res{};
  res.steps = steps;
  return res;
}

}  // namespace tessera
