// Vocab-parallel (Megatron) embedding and cross-entropy over MPI, against the one-rank host operators.
//
// The vocabulary is split over the ranks of a communicator (the world, and tp groups of 2 when the
// world is larger and even): rank r holds rows/columns [r·V_local, (r+1)·V_local) with
// V_local = ceil(vocab / ranks), so e.g. vocab 50 over 4 ranks is padded to 52 and the last rank holds 2
// padding columns; vocab 6 over 8 ranks leaves ranks 6 and 7 with nothing but padding. Every rank also
// computes the one-rank result on the whole vocabulary (the host operators test_oracle checks against
// PyTorch) and compares: the all-reduced embedding output, its local gradient rows, the cross-entropy
// lse and loss of every row, and the local slice of dlogits.
//
// Error measure (as in test_oracle): max|got − ref| / max(max|ref|, 1e-30) per tensor; fp32 tensors
// ≤ 1e-5, tensors stored in bf16 ≤ 2e-2. Padding must come out exactly zero and row-stride columns
// beyond V_local untouched.
#include <doctest/doctest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <type_traits>
#include <vector>

#include "tessera/comm/mpi.hpp"
#include "tessera/ops/host.hpp"

namespace {

namespace ts = tessera;
namespace ops = tessera::ops;
using ts::bf16;
using i64 = std::int64_t;
constexpr ts::host_system hs{};

template <class T>
double tol_for() {
  return std::is_same_v<T, bf16> ? 2e-2 : 1e-5;
}

/// max|got − ref| / max(max|ref|, tiny); inf on NaN/inf.
template <class T, class R>
double rel_err(const std::vector<T>& got, const std::vector<R>& ref) {
  REQUIRE(got.size() == ref.size());
  double diff = 0, mag = 0;
  bool bad = false;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(static_cast<float>(got[i]));
    const double r = static_cast<double>(static_cast<float>(ref[i]));
    if (!std::isfinite(g)) bad = true;
    diff = std::max(diff, std::abs(g - r));
    mag = std::max(mag, std::abs(r));
  }
  return bad ? INFINITY : diff / std::max(mag, 1e-30);
}

/// The same pseudo-random numbers on every rank (same seed, same binary), rounded to T.
template <class T>
std::vector<T> normal(std::size_t n, float scale, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<T> v(n);
  for (auto& x : v) x = T(d(gen));
  return v;
}

/// Random ids in [0, vocab), with 0, vocab − 1 and the first id of every shard among them.
std::vector<std::int32_t> ids(i64 n, i64 vocab, i64 V_local, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int32_t> d(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (auto& x : t) x = d(gen);
  std::vector<std::int32_t> special{0, static_cast<std::int32_t>(vocab - 1)};
  for (i64 v0 = V_local; v0 < vocab; v0 += V_local) {
    special.push_back(static_cast<std::int32_t>(v0));
    special.push_back(static_cast<std::int32_t>(v0 - 1));
  }
  for (std::size_t i = 0; i < special.size() && i < t.size(); ++i) t[i] = special[i];
  return t;
}

double worst_fp32 = 0, worst_bf16 = 0;
template <class T>
void note(double e) {
  double& w = std::is_same_v<T, bf16> ? worst_bf16 : worst_fp32;
  if (!(e <= w)) w = e;
}

/// The communicators the vocabulary is split over: the world, and tp groups of 2 for worlds of 4 or more.
struct groups {
  ts::mpi_comm world = ts::mpi_comm::world();
  ts::mpi_comm pairs;
  groups() {
    if (world.size() >= 4 && world.size() % 2 == 0) pairs = world.split(world.rank() / 2, world.rank() % 2);
  }
  template <class F>
  void each(F&& f) {
    f(world);
    if (pairs.valid()) f(pairs);
  }
};

void report(const char* what, bool bf16_storage) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  double w[2] = {worst_fp32, worst_bf16}, g[2] = {0, 0};
  MPI_Allreduce(w, g, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && bf16_storage)
    std::printf("vocab-parallel %-14s np %d: worst rel err %.2e on fp32 tensors (tol 1e-05), %.2e on bf16 "
                "tensors (tol 2e-02)\n", what, size, g[0], g[1]);
  else if (rank == 0)
    std::printf("vocab-parallel %-14s np %d: worst rel err %.2e (tol 1e-05)\n", what, size, g[0]);
  std::fflush(stdout);
  worst_fp32 = worst_bf16 = 0;
}

}  // namespace

TEST_CASE_TEMPLATE("vocab-parallel embedding: partial outputs all-reduced, gradient rows per rank", T, float, bf16) {
  using G = ops::grad_t<T>;
  groups gs;
  gs.each([&](ts::mpi_comm& comm) {
    const int tp = comm.size(), r = comm.rank();
    for (const i64 vocab : {50, 257, 6}) {
      for (const i64 C : {33, 64}) {
        for (const i64 N : {1, 111}) {
          const i64 Vl = (vocab + tp - 1) / tp, v0 = r * Vl;
          INFO("vocab ", vocab, " over ", tp, " ranks (rank ", r, ", rows [", v0, ", ", v0 + Vl, ")), C ", C,
               ", N ", N);
          const unsigned seed = static_cast<unsigned>(vocab * 1000 + C * 10 + N);
          const auto tokens = ids(N, vocab, Vl, seed);
          const auto wte = normal<T>(static_cast<std::size_t>(vocab * C), 1.0f, seed + 1);
          const auto dy = normal<T>(static_cast<std::size_t>(N * C), 1.0f, seed + 2);

          // one rank, whole vocabulary
          std::vector<T> y_ref(static_cast<std::size_t>(N * C));
          ops::embedding_forward(hs, tokens.data(), N, wte.data(), vocab, 0, C, y_ref.data());
          std::vector<G> dwte_ref(wte.size(), G(0));
          ops::embedding_backward(hs, tokens.data(), N, dy.data(), vocab, 0, C, dwte_ref.data());

          // this rank's rows; padding rows hold garbage no token may reach
          std::vector<T> shard(static_cast<std::size_t>(Vl * C), T(99.0f));
          for (i64 row = 0; row < Vl && v0 + row < vocab; ++row)
            std::copy_n(wte.begin() + (v0 + row) * C, C, shard.begin() + row * C);
          std::vector<T> y(y_ref.size(), T(-1.0f));
          ops::embedding_forward(hs, tokens.data(), N, shard.data(), Vl, v0, C, y.data());
          ts::all_reduce(comm, y.data(), y.data(), y.size(), ts::reduce_op::sum);
          const double ey = rel_err(y, y_ref);
          note<T>(ey);
          CHECK(ey <= tol_for<T>());

          std::vector<G> dshard(static_cast<std::size_t>(Vl * C), G(0));
          ops::embedding_backward(hs, tokens.data(), N, dy.data(), Vl, v0, C, dshard.data());
          std::vector<G> want(dshard.size(), G(0));
          for (i64 row = 0; row < Vl && v0 + row < vocab; ++row)
            std::copy_n(dwte_ref.begin() + (v0 + row) * C, C, want.begin() + row * C);
          const double ed = rel_err(dshard, want);
          note<float>(ed);  // gradients are fp32 for both storage types
          CHECK(ed <= 1e-5);
          long pad_nonzero = 0;
          for (i64 i = std::max<i64>(0, vocab - v0) * C; i < Vl * C; ++i)
            if (dshard[static_cast<std::size_t>(i)] != G(0)) ++pad_nonzero;
          CHECK(pad_nonzero == 0);
        }
      }
    }
  });
  report(std::is_same_v<T, bf16> ? "embedding bf16" : "embedding f32", std::is_same_v<T, bf16>);
}

TEST_CASE_TEMPLATE("vocab-parallel cross-entropy: lse, loss and local dlogits equal the one-rank result", T, float,
                   bf16) {
  using A = ops::acc_t<T>;
  groups gs;
  gs.each([&](ts::mpi_comm& comm) {
    const int tp = comm.size(), r = comm.rank();
    for (const i64 vocab : {50, 257, 6}) {
      for (const i64 N : {1, 7, 65}) {
        const i64 Vl = (vocab + tp - 1) / tp, v0 = r * Vl, ld = Vl + 2;
        const i64 valid = std::clamp<i64>(vocab - v0, 0, Vl);
        INFO("vocab ", vocab, " over ", tp, " ranks (rank ", r, ", columns [", v0, ", ", v0 + Vl, "), ", valid,
             " real), N ", N);
        const unsigned seed = static_cast<unsigned>(vocab * 100 + N);
        const auto logits = normal<T>(static_cast<std::size_t>(N * vocab), 3.0f, seed);
        const auto targets = ids(N, vocab, Vl, seed + 7);
        const A scale = A(1) / static_cast<A>(N);  // mean loss

        // one rank, whole vocabulary
        std::vector<A> lse_ref(static_cast<std::size_t>(N)), loss_ref(lse_ref.size());
        ops::cross_entropy_forward(hs, logits.data(), targets.data(), N, ops::vocab_slice{vocab, 0, vocab, 0},
                                   lse_ref.data(), loss_ref.data());
        std::vector<T> d_ref(logits.size());
        ops::cross_entropy_backward(hs, logits.data(), targets.data(), lse_ref.data(), N,
                                    ops::vocab_slice{vocab, 0, vocab, 0}, scale, d_ref.data());

        // this rank's columns; padding columns hold huge logits that must be ignored; 2 stride columns
        std::vector<T> local(static_cast<std::size_t>(N * ld), T(7.0f));
        for (i64 n = 0; n < N; ++n) {
          for (i64 c = 0; c < Vl; ++c)
            local[static_cast<std::size_t>(n * ld + c)] =
                c < valid ? logits[static_cast<std::size_t>(n * vocab + v0 + c)] : T(1e4f);
        }
        const ops::vocab_slice vs{Vl, v0, vocab, ld};
        std::vector<A> lse(lse_ref.size()), loss(lse_ref.size());
        ops::cross_entropy_forward(hs, local.data(), targets.data(), N, vs, lse.data(), loss.data(), comm);
        const double el = rel_err(lse, lse_ref), eo = rel_err(loss, loss_ref);
        note<float>(el);
        note<float>(eo);
        CHECK(el <= 1e-5);
        CHECK(eo <= 1e-5);
        double mean = 0, mean_ref = 0;
        for (i64 n = 0; n < N; ++n) {
          mean += static_cast<double>(loss[static_cast<std::size_t>(n)]);
          mean_ref += static_cast<double>(loss_ref[static_cast<std::size_t>(n)]);
        }
        CHECK(std::abs(mean - mean_ref) <= 1e-5 * std::abs(mean_ref));

        std::vector<T> d(local.size(), T(7.0f));
        ops::cross_entropy_backward(hs, local.data(), targets.data(), lse.data(), N, vs, scale, d.data());
        std::vector<T> got(static_cast<std::size_t>(N * valid)), want(got.size());
        long bad_pad = 0;
        for (i64 n = 0; n < N; ++n) {
          for (i64 c = 0; c < valid; ++c) {
            got[static_cast<std::size_t>(n * valid + c)] = d[static_cast<std::size_t>(n * ld + c)];
            want[static_cast<std::size_t>(n * valid + c)] = d_ref[static_cast<std::size_t>(n * vocab + v0 + c)];
          }
          for (i64 c = valid; c < ld; ++c)
            if (static_cast<float>(d[static_cast<std::size_t>(n * ld + c)]) != (c < Vl ? 0.0f : 7.0f)) ++bad_pad;
        }
        CHECK(bad_pad == 0);
        if (valid > 0) {
          const double ed = rel_err(got, want);
          note<T>(ed);
          CHECK(ed <= tol_for<T>());
        }
      }
    }
  });
  report(std::is_same_v<T, bf16> ? "cross-ent bf16" : "cross-ent f32", std::is_same_v<T, bf16>);
}
