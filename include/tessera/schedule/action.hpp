// tessera/schedule/action.hpp — the vocabulary of pipeline schedules: kinds of schedule, kinds of
// action, and one action on (global stage, microbatch).
//
// Notation follows torch.distributed.pipelining's `_Action`: an action is printed
// `<global stage><F|B|I|W><microbatch>`, e.g. `3F0`; an overlapped forward-and-backward slot (DualPipeV)
// is printed `(0F7;7B3)OVERLAP_F_B`; communication actions `1SEND_F0`, `2RECV_F0`, `2SEND_B0`, `1RECV_B0`.
//
//   F   forward of one microbatch through one stage
//   B   full backward (input gradient and weight gradient together)
//   I   input-gradient half of a split backward ("B" in the zero-bubble paper)
//   W   weight-gradient half of a split backward
//   FB  an overlapped slot: the forward (stage, mb) together with the full backward (stage2, mb2)
//   SEND_F / RECV_F   the activation of F(stage, mb) to / from the next stage's rank
//   SEND_B / RECV_B   the input gradient of B|I(stage, mb) to / from the previous stage's rank
//
// Stage conventions (for a send, `stage` is the sending stage; for a receive, the receiving stage,
// exactly as torch's `_get_comms`): SEND_F(s, m) pairs with RECV_F(s + 1, m); SEND_B(s, m) pairs with
// RECV_B(s − 1, m).
#pragma once
#include <cstdint>
#include <string_view>

namespace tessera {

/// The seven pipeline schedules of the library.
enum class schedule_kind : std::uint8_t {
  gpipe = 0,
  one_f_one_b = 1,
  interleaved = 2,
  chimera = 3,
  zb_h1 = 4,
  zbv = 5,
  dualpipe_v = 6,
};
inline constexpr int num_schedule_kinds = 7;

/// The name used on show_schedule's command line (`--kind`).
constexpr std::string_view schedule_kind_name(schedule_kind k) {
  switch (k) {
    case schedule_kind::gpipe: return "gpipe";
    case schedule_kind::one_f_one_b: return "1f1b";
    case schedule_kind::interleaved: return "interleaved";
    case schedule_kind::chimera: return "chimera";
    case schedule_kind::zb_h1: return "zb_h1";
    case schedule_kind::zbv: return "zbv";
    case schedule_kind::dualpipe_v: return "dualpipe_v";
  }
  return "?";
}

/// Inverse of schedule_kind_name; returns false for an unknown name.
constexpr bool parse_schedule_kind(std::string_view name, schedule_kind& out) {
  for (int i = 0; i < num_schedule_kinds; ++i) {
    auto k = static_cast<schedule_kind>(i);
    if (schedule_kind_name(k) == name) {
      out = k;
      return true;
    }
  }
  return false;
}

/// What an action does.
enum class op : std::uint8_t { F, B, I, W, FB, send_f, recv_f, send_b, recv_b };

constexpr bool is_compute(op o) { return o == op::F || o == op::B || o == op::I || o == op::W || o == op::FB; }
constexpr bool is_comm(op o) { return !is_compute(o); }

/// The torch spelling of an op ("F", "B", "I", "W", "OVERLAP_F_B", "SEND_F", ...).
constexpr std::string_view op_name(op o) {
  switch (o) {
    case op::F: return "F";
    case op::B: return "B";
    case op::I: return "I";
    case op::W: return "W";
    case op::FB: return "OVERLAP_F_B";
    case op::send_f: return "SEND_F";
    case op::recv_f: return "RECV_F";
    case op::send_b: return "SEND_B";
    case op::recv_b: return "RECV_B";
  }
  return "?";
}

/// One action of one rank. Plain ints so that tables stay literal types everywhere (also under nvcc).
struct action {
  op kind = op::F;
  int stage = -1;   // global stage (FB: the forward part's stage)
  int mb = -1;      // microbatch within the stage's pipeline (FB: the forward part's)
  int stage2 = -1;  // FB only: the full backward's stage
  int mb2 = -1;     // FB only: the full backward's microbatch
  int peer = -1;    // communication only: the other rank

  friend constexpr bool operator==(const action&, const action&) = default;
};

constexpr action make_action(op o, int stage, int mb) { return action{o, stage, mb, -1, -1, -1}; }
constexpr action make_overlap(int f_stage, int f_mb, int b_stage, int b_mb) {
  return action{op::FB, f_stage, f_mb, b_stage, b_mb, -1};
}

/// Number of plain compute parts of an action: 2 for FB, 1 for F/B/I/W, 0 for communication.
constexpr int num_parts(const action& a) { return a.kind == op::FB ? 2 : (is_compute(a.kind) ? 1 : 0); }
/// Part i of a compute action: FB splits into F(stage, mb) then B(stage2, mb2); others are themselves.
constexpr action part(const action& a, int i) {
  if (a.kind != op::FB) return a;
  return i == 0 ? make_action(op::F, a.stage, a.mb) : make_action(op::B, a.stage2, a.mb2);
}

}  // namespace tessera
