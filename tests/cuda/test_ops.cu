// The CUDA operators against the host operators: every entry point of ops/cuda.hpp, forward and backward,
// fp32 and bf16, at odd sizes, on the same inputs. Normwise relative error max|got − want| / max|want|:
// ≤ 1e-5 for fp32 element-wise / norm / cross-entropy results, ≤ 1e-4 for GEMMs and attention, ≤ 2e-2
// for anything stored in bf16 (fp32 results of bf16 models: ≤ 1e-4). Backward passes get the host
// forward's saved tensors, so each pass is compared on identical inputs. Every rank runs every case; the
// vocab-parallel cross-entropy splits the vocabulary over MPI_COMM_WORLD (through a staged MPI
// communicator on device pointers, and through NCCL when there is a GPU per rank).
// Skips (exit 77) without a CUDA device.
#include <doctest/doctest.h>
#include <mpi.h>
#include <thrust/copy.h>
#include <thrust/device_vector.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "tessera/comm/nccl.hpp"
#include "tessera/ops/cuda.hpp"
#include "tessera/ops/host.hpp"

namespace ts = tessera;
namespace ops = tessera::ops;
using ts::bf16;
using i64 = std::int64_t;

namespace {

const ts::host_system hs{};
/// The operators run on a stream of their own, as in the trainer (not the legacy default stream, which the
/// test's thrust vectors use: it orders itself with the blocking stream a context creates).
const ts::cuda_system& cs() {
  static const ts::cuda_system::context ctx;
  static const ts::cuda_system s = ctx.system();
  return s;
}

// ---- data ----------------------------------------------------------------------------------------------
template <class T>
std::vector<T> random_vec(i64 n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = ops::store<T>(dist(gen));
  return v;
}
template <class T>
thrust::device_vector<T> dev(const std::vector<T>& h) { return thrust::device_vector<T>(h.begin(), h.end()); }
template <class T>
std::vector<T> back(const thrust::device_vector<T>& d) {
  cs().synchronize();
  ts::cuda_check(cudaGetLastError(), "a test kernel");
  std::vector<T> h(d.size());
  thrust::copy(d.begin(), d.end(), h.begin());
  return h;
}
template <class T> T* ptr(thrust::device_vector<T>& d) { return thrust::raw_pointer_cast(d.data()); }

// ---- comparison ----------------------------------------------------------------------------------------
template <class X> double dbl(X x) { return static_cast<double>(static_cast<float>(x)); }

template <class A, class B>
double rel_err(const std::vector<A>& got, const std::vector<B>& want) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(dbl(got[i]) - dbl(want[i]));
    num = std::isnan(d) || d > num ? d : num;  // a NaN sticks
    den = std::max(den, std::fabs(dbl(want[i])));
  }
  return den > 0.0 ? num / den : num;
}
template <class A, class B>
void check_close(const std::string& what, const std::vector<A>& got, const std::vector<B>& want, double tol) {
  REQUIRE(got.size() == want.size());
  const double e = rel_err(got, want);
  const std::string msg = what + ": normwise relative error " + std::to_string(e) + " (tolerance " +
                          std::to_string(tol) + ")";
  CHECK_MESSAGE(e <= tol, msg);
}
template <class A, class B>
void check_close(const std::string& what, const thrust::device_vector<A>& got, const std::vector<B>& want,
                 double tol) {
  check_close(what, back(got), want, tol);
}

/// Tolerance of a result stored as T: bf16 → 2e-2, else the fp32 one.
template <class T> double tol_T(double fp32) { return std::is_same_v<T, bf16> ? 2e-2 : fp32; }
/// Tolerance of an fp32 result of a model stored as T.
template <class T> double tol_acc(double fp32) { return std::is_same_v<T, bf16> ? std::max(fp32, 1e-4) : fp32; }

std::string shape_name(std::initializer_list<i64> dims) {
  std::string s = "[";
  for (i64 d : dims) {
    if (s.size() > 1) s += 'x';
    s += std::to_string(d);
  }
  return s + "]";
}

}  // namespace

// ---- GEMM ------------------------------------------------------------------------------------------------
TEST_CASE_TEMPLATE("cuda ops: cuBLASLt gemm matches host::gemm (row-major, every transposition)", T, float, bf16) {
  using ops::host::trans;
  struct shape { i64 m, n, k; };
  for (const shape s : {shape{7, 33, 37}, shape{64, 48, 96}, shape{1, 5, 3}, shape{37, 1, 64}})
    for (const trans ta : {trans::no, trans::yes})
      for (const trans tb : {trans::no, trans::yes}) {
        const i64 pad = 3;
        const i64 lda = (ta == trans::yes ? s.m : s.k) + pad, ldb = (tb == trans::yes ? s.k : s.n) + pad,
                  ldc = s.n + pad;
        const i64 a_rows = ta == trans::yes ? s.k : s.m, b_rows = tb == trans::yes ? s.n : s.k;
        const auto a = random_vec<T>(a_rows * lda, 1), b = random_vec<T>(b_rows * ldb, 2);
        const auto c0 = random_vec<float>(s.m * ldc, 3);
        const std::string name = "gemm " + shape_name({s.m, s.n, s.k}) + (ta == trans::yes ? " Aᵀ" : " A") +
                                 (tb == trans::yes ? " Bᵀ" : " B");
        std::vector<float> want = c0;
        ops::host::gemm(ta, tb, s.m, s.n, s.k, 0.5f, a.data(), lda, b.data(), ldb, 0.25f, want.data(), ldc);
        auto da = dev(a), db = dev(b);
        auto dc = dev(c0);
        ops::gemm(cs(), ta, tb, s.m, s.n, s.k, 0.5f, ptr(da), lda, ptr(db), ldb, 0.25f, ptr(dc), ldc);
        check_close(name + " → fp32", dc, want, 1e-4);
        if constexpr (std::is_same_v<T, bf16>) {  // bf16 output, β = 0
          std::vector<float> want0(static_cast<std::size_t>(s.m * ldc), 0.0f);
          ops::host::gemm(ta, tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, want0.data(), ldc);
          thrust::device_vector<bf16> dc16(static_cast<std::size_t>(s.m * ldc), bf16(0.0f));
          ops::gemm(cs(), ta, tb, s.m, s.n, s.k, 1.0f, ptr(da), lda, ptr(db), ldb, 0.0f, ptr(dc16), ldc);
          check_close(name + " → bf16", dc16, want0, 2e-2);
        }
      }
}

// ---- linear ----------------------------------------------------------------------------------------------
TEST_CASE_TEMPLATE("cuda ops: linear forward and backward", T, float, bf16) {
  struct shape { i64 N, in, out; };
  for (const shape s : {shape{7, 33, 37}, shape{64, 64, 96}, shape{130, 17, 5}})
    for (const bool with_bias : {true, false})
      for (const bool accumulate : {false, true}) {
        const std::string name = "linear " + shape_name({s.N, s.in, s.out}) + (with_bias ? " +b" : "") +
                                 (accumulate ? " accumulate" : "");
        const auto x = random_vec<T>(s.N * s.in, 11), W = random_vec<T>(s.out * s.in, 12),
                   b = random_vec<T>(s.out, 13), y0 = random_vec<T>(s.N * s.out, 14);
        auto dx_ = dev(x), dW_ = dev(W), db_ = dev(b);
        // forward
        std::vector<T> y = y0;
        ops::linear_forward(hs, x.data(), W.data(), with_bias ? b.data() : nullptr, s.N, s.in, s.out, y.data(),
                            accumulate);
        auto dy_out = dev(y0);
        ops::linear_forward(cs(), ptr(dx_), ptr(dW_), with_bias ? ptr(db_) : nullptr, s.N, s.in, s.out, ptr(dy_out),
                            accumulate);
        check_close(name + " y", dy_out, y, tol_T<T>(1e-4));
        // backward
        const auto dy = random_vec<T>(s.N * s.out, 15), gx0 = random_vec<T>(s.N * s.in, 16);
        const auto gW0 = random_vec<float>(s.out * s.in, 17), gb0 = random_vec<float>(s.out, 18);
        std::vector<T> gx = gx0;
        std::vector<float> gW = gW0, gb = gb0;
        ops::linear_backward(hs, dy.data(), x.data(), W.data(), s.N, s.in, s.out, gx.data(), gW.data(),
                             with_bias ? gb.data() : nullptr, accumulate);
        auto d_dy = dev(dy), d_gx = dev(gx0);
        auto d_gW = dev(gW0), d_gb = dev(gb0);
        ops::linear_backward(cs(), ptr(d_dy), ptr(dx_), ptr(dW_), s.N, s.in, s.out, ptr(d_gx), ptr(d_gW),
                             with_bias ? ptr(d_gb) : nullptr, accumulate);
        check_close(name + " dx", d_gx, gx, tol_T<T>(1e-4));
        check_close(name + " dW", d_gW, gW, 1e-4);
        check_close(name + " db", d_gb, gb, tol_acc<T>(1e-5));
      }
}

// The MLP's first layer and GELU fused into cuBLASLt's epilogues (GELU_AUX_BIAS forward, DGELU backward)
// against the host's composition; out (in) not a multiple of 8 takes the composed path on the device too.
TEST_CASE_TEMPLATE("cuda ops: linear + GELU through cuBLASLt epilogues", T, float, bf16) {
  struct shape { i64 N, in, out; };
  for (const shape s : {shape{64, 64, 256}, shape{37, 48, 96}, shape{16, 32, 36}})
    for (const bool with_bias : {true, false}) {
      const std::string name = "linear+gelu " + shape_name({s.N, s.in, s.out}) + (with_bias ? " +b" : "");
      const auto x = random_vec<T>(s.N * s.in, 21, -2.0f, 2.0f), W = random_vec<T>(s.out * s.in, 22),
                 b = random_vec<T>(s.out, 23);
      std::vector<T> up(s.N * s.out), act(s.N * s.out);
      ops::linear_gelu_forward(hs, x.data(), W.data(), with_bias ? b.data() : nullptr, s.N, s.in, s.out, up.data(),
                               act.data());
      auto d_x = dev(x), d_W = dev(W), d_b = dev(b);
      thrust::device_vector<T> d_up(s.N * s.out), d_act(s.N * s.out);
      ops::linear_gelu_forward(cs(), ptr(d_x), ptr(d_W), with_bias ? ptr(d_b) : nullptr, s.N, s.in, s.out, ptr(d_up),
                               ptr(d_act));
      check_close(name + " up (pre-activation)", d_up, up, tol_T<T>(1e-4));
      check_close(name + " act", d_act, act, tol_T<T>(1e-4));
      // backward of the next layer [N×out] → [N×in2] through the GELU: d_up = (dy·W2) ⊙ gelu'(up)
      const i64 in2 = 40;
      const auto dy = random_vec<T>(s.N * in2, 24), W2 = random_vec<T>(in2 * s.out, 25);
      std::vector<T> d_up_h(s.N * s.out);
      ops::linear_dgelu_backward(hs, dy.data(), W2.data(), up.data(), s.N, s.out, in2, d_up_h.data());
      auto d_dy = dev(dy), d_W2 = dev(W2), h_up = dev(up);
      thrust::device_vector<T> d_up_d(s.N * s.out);
      ops::linear_dgelu_backward(cs(), ptr(d_dy), ptr(d_W2), ptr(h_up), s.N, s.out, in2, ptr(d_up_d));
      check_close(name + " d_up", d_up_d, d_up_h, tol_T<T>(1e-4));
    }
}

// ---- element-wise ------------------------------------------------------------------------------------------
TEST_CASE_TEMPLATE("cuda ops: gelu, swiglu, add", T, float, bf16) {
  const i64 n = 1031;
  const auto x = random_vec<T>(n, 21, -4.0f, 4.0f), dy = random_vec<T>(n, 22), z = random_vec<T>(n, 23);
  auto dx_ = dev(x), ddy = dev(dy), dz = dev(z);
  {
    std::vector<T> y(n);
    ops::gelu_forward(hs, x.data(), n, y.data());
    thrust::device_vector<T> d(n);
    ops::gelu_forward(cs(), ptr(dx_), n, ptr(d));
    check_close("gelu forward", d, y, tol_T<T>(1e-5));
    std::vector<T> g(n);
    ops::gelu_backward(hs, dy.data(), x.data(), n, g.data());
    ops::gelu_backward(cs(), ptr(ddy), ptr(dx_), n, ptr(d));
    check_close("gelu backward", d, g, tol_T<T>(1e-5));
  }
  {
    std::vector<T> y(n);
    ops::add(hs, x.data(), z.data(), n, y.data());
    thrust::device_vector<T> d(n);
    ops::add(cs(), ptr(dx_), ptr(dz), n, ptr(d));
    check_close("add", d, y, tol_T<T>(1e-5));
  }
  for (const i64 F : {i64(33), i64(64)}) {
    const i64 N = 7, ld = 2 * F;
    const auto gu = random_vec<T>(N * ld, 24, -3.0f, 3.0f), dout = random_vec<T>(N * F, 25);
    auto dgu = dev(gu), ddout = dev(dout);
    std::vector<T> out(N * F);
    ops::swiglu_forward(hs, gu.data(), gu.data() + F, N, F, ld, out.data());
    thrust::device_vector<T> dout_(N * F);
    ops::swiglu_forward(cs(), ptr(dgu), ptr(dgu) + F, N, F, ld, ptr(dout_));
    check_close("swiglu forward F=" + std::to_string(F), dout_, out, tol_T<T>(1e-5));
    std::vector<T> g(N * ld, ops::store<T>(0.0f));
    ops::swiglu_backward(hs, dout.data(), gu.data(), gu.data() + F, N, F, ld, g.data(), g.data() + F);
    thrust::device_vector<T> dg(N * ld, ops::store<T>(0.0f));
    ops::swiglu_backward(cs(), ptr(ddout), ptr(dgu), ptr(dgu) + F, N, F, ld, ptr(dg), ptr(dg) + F);
    check_close("swiglu backward F=" + std::to_string(F), dg, g, tol_T<T>(1e-5));
  }
}

TEST_CASE_TEMPLATE("cuda ops: rope forward and backward", T, float, bf16) {
  for (const i64 D : {i64(64), i64(32)}) {
    const i64 B = 2, T_len = 37, H = 4, pos0 = 3, ld = H * D + 5, rows = B * T_len;
    const ops::rope_table<float> tab(T_len + pos0, D, 10000.0f);
    const thrust::device_vector<float> dcos = dev(tab.cos), dsin = dev(tab.sin);
    const float* cp = thrust::raw_pointer_cast(dcos.data());
    const float* sp = thrust::raw_pointer_cast(dsin.data());
    const auto x0 = random_vec<T>(rows * ld, 31);
    std::vector<T> x = x0;
    ops::rope_forward(hs, x.data(), rows, T_len, H, D, ld, pos0, tab.cos.data(), tab.sin.data());
    auto dx_ = dev(x0);
    ops::rope_forward(cs(), ptr(dx_), rows, T_len, H, D, ld, pos0, cp, sp);
    check_close("rope forward D=" + std::to_string(D), dx_, x, tol_T<T>(1e-5));
    std::vector<T> g = x0;
    ops::rope_backward(hs, g.data(), rows, T_len, H, D, ld, pos0, tab.cos.data(), tab.sin.data());
    auto dg = dev(x0);
    ops::rope_backward(cs(), ptr(dg), rows, T_len, H, D, ld, pos0, cp, sp);
    check_close("rope backward D=" + std::to_string(D), dg, g, tol_T<T>(1e-5));
  }
}

TEST_CASE_TEMPLATE("cuda ops: token and position embeddings", T, float, bf16) {
  const i64 N = 2 * 37, T_len = 37, C = 33, V_local = 50, v0 = 10, pos0 = 2;
  std::vector<std::int32_t> tokens(N);
  std::mt19937 gen(41);
  for (auto& t : tokens) t = static_cast<std::int32_t>(gen() % 80);  // some outside [v0, v0 + V_local), repeats
  const auto wte = random_vec<T>(V_local * C, 42), dout = random_vec<T>(N * C, 43);
  const auto gte0 = random_vec<float>(V_local * C, 44);
  auto dtok = dev(tokens);
  auto dwte = dev(wte), ddout = dev(dout);
  std::vector<T> out(N * C);
  ops::embedding_forward(hs, tokens.data(), N, wte.data(), V_local, v0, C, out.data());
  thrust::device_vector<T> dout_(N * C);
  ops::embedding_forward(cs(), ptr(dtok), N, ptr(dwte), V_local, v0, C, ptr(dout_));
  check_close("embedding forward", dout_, out, 0.0);
  std::vector<float> gte = gte0;
  ops::embedding_backward(hs, tokens.data(), N, dout.data(), V_local, v0, C, gte.data());
  auto dgte = dev(gte0);
  ops::embedding_backward(cs(), ptr(dtok), N, ptr(ddout), V_local, v0, C, ptr(dgte));
  check_close("embedding backward (sorted, no atomics: the host's order and bits)", dgte, gte, 0.0);
  auto again = dev(gte0);  // and the same bits on a second run
  ops::embedding_backward(cs(), ptr(dtok), N, ptr(ddout), V_local, v0, C, ptr(again));
  check_close("embedding backward, run twice", again, gte, 0.0);

  const i64 P = T_len + pos0 + 1;
  const auto wpe = random_vec<T>(P * C, 45), x0 = random_vec<T>(N * C, 46);
  const auto gpe0 = random_vec<float>(P * C, 47);
  auto dwpe = dev(wpe);
  std::vector<T> x = x0;
  ops::add_position_embedding(hs, wpe.data(), N, T_len, C, pos0, x.data());
  auto dx_ = dev(x0);
  ops::add_position_embedding(cs(), ptr(dwpe), N, T_len, C, pos0, ptr(dx_));
  check_close("position embedding forward", dx_, x, tol_T<T>(1e-5));
  std::vector<float> gpe = gpe0;
  ops::position_embedding_backward(hs, dout.data(), N, T_len, C, pos0, gpe.data());
  auto dgpe = dev(gpe0);
  ops::position_embedding_backward(cs(), ptr(ddout), N, T_len, C, pos0, ptr(dgpe));
  check_close("position embedding backward", dgpe, gpe, tol_acc<T>(1e-5));
}

TEST_CASE_TEMPLATE("cuda ops: fused AdamW step", T, float, bf16) {
  const i64 n = 1031;
  for (const bool decay : {true, false})
    for (const bool with_master : {false, true}) {
      if (with_master && std::is_same_v<T, float>) continue;  // fp32 models update the parameter itself
      ops::math::adamw_params p;
      p.lr = 3e-3f;
      p.weight_decay = 0.1f;
      p.step = 3;
      const auto w0 = random_vec<T>(n, 51);
      const auto g = random_vec<float>(n, 52), m0 = random_vec<float>(n, 53, -0.1f, 0.1f),
                 v0 = random_vec<float>(n, 54, 0.0f, 0.01f);
      std::vector<float> master0(n);
      for (i64 i = 0; i < n; ++i) master0[i] = ops::load(w0[i]);
      std::vector<T> w = w0;
      std::vector<float> m = m0, v = v0, master = master0;
      ops::adamw_step(hs, w.data(), with_master ? master.data() : nullptr, g.data(), m.data(), v.data(), n, p, decay);
      auto dw = dev(w0);
      auto dg = dev(g), dm = dev(m0), dv = dev(v0), dmaster = dev(master0);
      ops::adamw_step(cs(), ptr(dw), with_master ? ptr(dmaster) : nullptr, ptr(dg), ptr(dm), ptr(dv), n, p, decay);
      const std::string name = std::string("adamw") + (decay ? " decay" : "") + (with_master ? " master" : "");
      check_close(name + " param", dw, w, tol_T<T>(1e-5));
      check_close(name + " m", dm, m, 1e-5);
      check_close(name + " v", dv, v, 1e-5);
      if (with_master) check_close(name + " master", dmaster, master, 1e-5);
    }
}

TEST_CASE_TEMPLATE("cuda ops: the norm's and the loss's sums stay in device memory", T, float, bf16) {
  using G = ops::grad_t<T>;
  for (const i64 n : {i64(0), i64(1), i64(1031), i64(1) << 20}) {
    const auto g = random_vec<G>(n, 61);
    const auto loss = random_vec<float>(n, 62, 0.0f, 11.0f);
    double want_sq = 0, want_loss = 0;
    ops::sum_of_squares(hs, g.data(), n, &want_sq);
    ops::sum_in_double(hs, loss.data(), n, &want_loss);
    auto dg = dev(g);
    auto dloss = dev(loss);
    thrust::device_vector<double> out(2, -1.0);
    ops::sum_of_squares(cs(), ptr(dg), n, ptr(out));
    ops::sum_in_double(cs(), ptr(dloss), n, ptr(out) + 1);
    const auto got = back(out);
    CHECK(got[0] == doctest::Approx(want_sq).epsilon(1e-12));  // another order of the same double sums
    CHECK(got[1] == doctest::Approx(want_loss).epsilon(1e-12));
    if (n == 0) CHECK((got[0] == 0.0 && got[1] == 0.0));
    // the same on a second run (CUB's reduction is deterministic)
    ops::sum_of_squares(cs(), ptr(dg), n, ptr(out));
    CHECK(back(out)[0] == got[0]);
  }
}

TEST_CASE("cuda ops: operators on two streams (two contexts) give the same bits") {
  const ts::cuda_system::context a_ctx, b_ctx;
  const ts::cuda_system a = a_ctx.system(), b = b_ctx.system();
  CHECK(a.stream() != b.stream());
  CHECK(a.stream() != cudaStreamLegacy);
  const i64 n = 512;
  const auto x = random_vec<float>(n * n, 71);
  auto dx = dev(x);
  thrust::device_vector<float> ya(n * n), yb(n * n);
  // issued back to back, running concurrently: each stream has its own cuBLASLt workspace and scratch
  ops::gemm(a, ops::host::trans::no, ops::host::trans::no, n, n, n, 1.0f, ptr(dx), n, ptr(dx), n, 0.0f, ptr(ya), n);
  ops::gemm(b, ops::host::trans::no, ops::host::trans::no, n, n, n, 1.0f, ptr(dx), n, ptr(dx), n, 0.0f, ptr(yb), n);
  ts::cuda_system::event done;
  a.record(done);
  a.synchronize();
  CHECK(cudaEventQuery(done.e) == cudaSuccess);
  b.synchronize();
  CHECK(back(ya) == back(yb));
}

// ---- norms -------------------------------------------------------------------------------------------------
TEST_CASE_TEMPLATE("cuda ops: layernorm and rmsnorm forward and backward", T, float, bf16) {
  struct shape { i64 N, C; };
  for (const shape s : {shape{7, 33}, shape{130, 256}, shape{1000, 65}})
    for (const bool accumulate : {false, true}) {
      const std::string name = shape_name({s.N, s.C}) + (accumulate ? " accumulate" : "");
      const float eps = 1e-5f;
      const auto x = random_vec<T>(s.N * s.C, 61, -2.0f, 3.0f), gamma = random_vec<T>(s.C, 62, 0.5f, 1.5f),
                 beta = random_vec<T>(s.C, 63), dy = random_vec<T>(s.N * s.C, 64), dx0 = random_vec<T>(s.N * s.C, 65);
      const auto dg0 = random_vec<float>(s.C, 66), db0 = random_vec<float>(s.C, 67);
      auto d_x = dev(x), d_gamma = dev(gamma), d_beta = dev(beta), d_dy = dev(dy);
      for (const bool with_beta : {true, false}) {  // LayerNorm
        const std::string ln = "layernorm " + name + (with_beta ? " +beta" : "");
        std::vector<T> y(s.N * s.C);
        std::vector<float> mean(s.N), rstd(s.N);
        ops::layernorm_forward(hs, x.data(), gamma.data(), with_beta ? beta.data() : nullptr, s.N, s.C, eps, y.data(),
                               mean.data(), rstd.data());
        thrust::device_vector<T> d_y(s.N * s.C);
        thrust::device_vector<float> d_mean(s.N), d_rstd(s.N);
        ops::layernorm_forward(cs(), ptr(d_x), ptr(d_gamma), with_beta ? ptr(d_beta) : nullptr, s.N, s.C, eps,
                               ptr(d_y), ptr(d_mean), ptr(d_rstd));
        check_close(ln + " y", d_y, y, tol_T<T>(1e-5));
        check_close(ln + " mean", d_mean, mean, tol_acc<T>(1e-5));
        check_close(ln + " rstd", d_rstd, rstd, tol_acc<T>(1e-5));
        // backward on the host's statistics
        std::vector<T> dx = dx0;
        std::vector<float> dg = dg0, db = db0;
        ops::layernorm_backward(hs, dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(), s.N, s.C, dx.data(),
                                dg.data(), with_beta ? db.data() : nullptr, accumulate);
        auto hmean = dev(mean), hrstd = dev(rstd);
        auto d_dx = dev(dx0);
        auto d_dg = dev(dg0), d_db = dev(db0);
        ops::layernorm_backward(cs(), ptr(d_dy), ptr(d_x), ptr(d_gamma), ptr(hmean), ptr(hrstd), s.N, s.C, ptr(d_dx),
                                ptr(d_dg), with_beta ? ptr(d_db) : nullptr, accumulate);
        check_close(ln + " dx", d_dx, dx, tol_T<T>(1e-5));
        check_close(ln + " dgamma", d_dg, dg, tol_acc<T>(1e-5));
        check_close(ln + " dbeta", d_db, db, tol_acc<T>(1e-5));
      }
      {  // RMSNorm
        const std::string rn = "rmsnorm " + name;
        std::vector<T> y(s.N * s.C);
        std::vector<float> rstd(s.N);
        ops::rmsnorm_forward(hs, x.data(), gamma.data(), s.N, s.C, eps, y.data(), rstd.data());
        thrust::device_vector<T> d_y(s.N * s.C);
        thrust::device_vector<float> d_rstd(s.N);
        ops::rmsnorm_forward(cs(), ptr(d_x), ptr(d_gamma), s.N, s.C, eps, ptr(d_y), ptr(d_rstd));
        check_close(rn + " y", d_y, y, tol_T<T>(1e-5));
        check_close(rn + " rstd", d_rstd, rstd, tol_acc<T>(1e-5));
        std::vector<T> dx = dx0;
        std::vector<float> dg = dg0;
        ops::rmsnorm_backward(hs, dy.data(), x.data(), gamma.data(), rstd.data(), s.N, s.C, dx.data(), dg.data(),
                              accumulate);
        auto hrstd = dev(rstd);
        auto d_dx = dev(dx0);
        auto d_dg = dev(dg0);
        ops::rmsnorm_backward(cs(), ptr(d_dy), ptr(d_x), ptr(d_gamma), ptr(hrstd), s.N, s.C, ptr(d_dx), ptr(d_dg),
                              accumulate);
        check_close(rn + " dx", d_dx, dx, tol_T<T>(1e-5));
        check_close(rn + " dgamma", d_dg, dg, tol_acc<T>(1e-5));
      }
      {  // dx aliasing dy (the transformer reuses gradient buffers)
        std::vector<T> dx = dy;
        std::vector<float> dg = dg0;
        std::vector<float> rstd(s.N);
        std::vector<T> y(s.N * s.C);
        ops::rmsnorm_forward(hs, x.data(), gamma.data(), s.N, s.C, eps, y.data(), rstd.data());
        ops::rmsnorm_backward(hs, dx.data(), x.data(), gamma.data(), rstd.data(), s.N, s.C, dx.data(), dg.data(),
                              false);
        auto hrstd = dev(rstd);
        auto d_dx = dev(dy);
        auto d_dg = dev(dg0);
        ops::rmsnorm_backward(cs(), ptr(d_dx), ptr(d_x), ptr(d_gamma), ptr(hrstd), s.N, s.C, ptr(d_dx), ptr(d_dg), false);
        check_close("rmsnorm " + name + " dx aliasing dy", d_dx, dx, tol_T<T>(1e-5));
        check_close("rmsnorm " + name + " dgamma (dx aliasing dy)", d_dg, dg, tol_acc<T>(1e-5));
      }
    }
}

// ---- attention ---------------------------------------------------------------------------------------------
template <int D, class T>
void attention_case(i64 B, i64 Tn, i64 Hq, i64 Hkv, bool fused) {
  const std::string name = "attention D=" + std::to_string(D) + " " + shape_name({B, Tn, Hq, Hkv}) +
                           (fused ? " fused QKV" : " packed") + (std::is_same_v<T, bf16> ? " bf16" : " fp32");
  ops::attention_shape sh{B, Tn, Hq, Hkv};
  const i64 rows = B * Tn;
  // fused: q, k, v are column blocks of one [rows × (Hq + 2Hkv)·D] projection output, o has padded rows
  const i64 ld_in = fused ? (Hq + 2 * Hkv) * D : 0;
  const i64 ld_q = fused ? ld_in : Hq * D, ld_kv = fused ? ld_in : Hkv * D, ld_o = fused ? Hq * D + 8 : Hq * D;
  if (fused) {
    sh.ld_q = sh.ld_k = sh.ld_v = ld_in;
    sh.ld_o = ld_o;
  }
  const i64 off_k = fused ? Hq * D : 0, off_v = fused ? (Hq + Hkv) * D : 0;
  const i64 nq = rows * ld_q, nkv = rows * ld_kv;
  // fused: q holds the whole qkv projection output and k, v are empty
  const auto q = random_vec<T>(nq, 71, -2.0f, 2.0f);
  const auto k = fused ? std::vector<T>{} : random_vec<T>(nkv, 72, -2.0f, 2.0f);
  const auto v = fused ? std::vector<T>{} : random_vec<T>(nkv, 73);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  auto dq_ = dev(q), dk_ = dev(k), dv_ = dev(v);
  const T* hq = q.data();
  const T* hk = fused ? q.data() + off_k : k.data();
  const T* hv = fused ? q.data() + off_v : v.data();
  const T* gq = ptr(dq_);
  const T* gk = fused ? ptr(dq_) + off_k : ptr(dk_);
  const T* gv = fused ? ptr(dq_) + off_v : ptr(dv_);

  std::vector<T> o(rows * ld_o, ops::store<T>(0.0f));
  std::vector<float> lse(B * Hq * Tn);
  ops::attention_forward<D>(hs, hq, hk, hv, o.data(), lse.data(), sh, scale);
  thrust::device_vector<T> d_o(rows * ld_o, ops::store<T>(0.0f));
  thrust::device_vector<float> d_lse(B * Hq * Tn);
  ops::attention_forward<D>(cs(), gq, gk, gv, ptr(d_o), ptr(d_lse), sh, scale);
  check_close(name + " o", d_o, o, tol_T<T>(1e-4));
  check_close(name + " lse", d_lse, lse, 1e-4);

  // backward, both on the host's o and lse
  const auto dout = random_vec<T>(rows * ld_o, 74);
  std::vector<T> gq_h(nq, ops::store<T>(0.0f)), gk_h(fused ? 0 : nkv, ops::store<T>(0.0f)),
      gv_h(fused ? 0 : nkv, ops::store<T>(0.0f));
  T* hdq = gq_h.data();
  T* hdk = fused ? gq_h.data() + off_k : gk_h.data();
  T* hdv = fused ? gq_h.data() + off_v : gv_h.data();
  ops::attention_backward<D>(hs, dout.data(), hq, hk, hv, o.data(), lse.data(), sh, scale, hdq, hdk, hdv);
  auto d_dout = dev(dout), h_o = dev(o);
  auto h_lse = dev(lse);
  thrust::device_vector<T> g_q(nq, ops::store<T>(0.0f)), g_k(fused ? 0 : nkv, ops::store<T>(0.0f)),
      g_v(fused ? 0 : nkv, ops::store<T>(0.0f));
  T* ddq = ptr(g_q);
  T* ddk = fused ? ptr(g_q) + off_k : ptr(g_k);
  T* ddv = fused ? ptr(g_q) + off_v : ptr(g_v);
  ops::attention_backward<D>(cs(), ptr(d_dout), gq, gk, gv, ptr(h_o), ptr(h_lse), sh, scale, ddq, ddk, ddv);
  if (fused) {
    check_close(name + " dqkv", g_q, gq_h, tol_T<T>(1e-4));
  } else {
    check_close(name + " dq", g_q, gq_h, tol_T<T>(1e-4));
    check_close(name + " dk", g_k, gk_h, tol_T<T>(1e-4));
    check_close(name + " dv", g_v, gv_h, tol_T<T>(1e-4));
  }
}

TEST_CASE_TEMPLATE("cuda ops: causal GQA flash attention forward and backward", T, float, bf16) {
  for (const bool fused : {false, true}) {
    attention_case<64, T>(2, 37, 4, 2, fused);
    attention_case<32, T>(2, 37, 4, 2, fused);
    attention_case<64, T>(1, 130, 2, 2, fused);  // several query and key tiles, MHA
    attention_case<64, T>(1, 1, 4, 1, fused);    // one token, MQA
    attention_case<128, T>(1, 70, 4, 2, fused);
  }
}

// bf16 attention through cuDNN's fused flash attention (libtessera_cudnn_sdpa.so) against tessera's kernel on
// the same inputs: cuDNN must have been chosen for these shapes (a GPU of this project's targets has
// engines for them), the outputs agree within bf16 tolerance, and cuDNN's backward repeats bit for bit.
template <int D>
void cudnn_attention_case(i64 B, i64 Tn, i64 Hq, i64 Hkv) {
  const std::string name = "cuDNN attention D=" + std::to_string(D) + " " + shape_name({B, Tn, Hq, Hkv});
  const i64 rows = B * Tn, ld = (Hq + 2 * Hkv) * D, ld_o = Hq * D;
  ops::attention_shape sh{B, Tn, Hq, Hkv, ld, ld, ld, ld_o};
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  auto qkv = dev(random_vec<bf16>(rows * ld, 81, -2.0f, 2.0f));
  const bf16* q = ptr(qkv);
  const bf16* k = q + Hq * D;
  const bf16* v = q + (Hq + Hkv) * D;
  using engine = ops::attention_engine;
  thrust::device_vector<bf16> o_dnn(rows * ld_o), o_own(rows * ld_o);
  thrust::device_vector<float> lse_dnn(B * Hq * Tn), lse_own(B * Hq * Tn);
  ops::attention_forward<D>(cs(), q, k, v, ptr(o_dnn), ptr(lse_dnn), sh, scale, engine::automatic);
  ops::attention_forward<D>(cs(), q, k, v, ptr(o_own), ptr(lse_own), sh, scale, engine::own_kernel);
  auto choices = [] {
    std::string all;
    for (const auto& c : ts::engine_choice::process().choices()) all += c.op + ": " + c.engine + "\n";
    return all;
  };
  INFO("engine choices so far:\n" << choices());
  REQUIRE(choices().find("attention forward: cuDNN fused flash attention") != std::string::npos);
  check_close(name + " o", o_dnn, back(o_own), 2e-2);
  check_close(name + " lse", lse_dnn, back(lse_own), 1e-3);

  auto dout = dev(random_vec<bf16>(rows * ld_o, 82));
  thrust::device_vector<bf16> g_dnn(rows * ld), g_again(rows * ld), g_own(rows * ld);
  auto grads = [&](thrust::device_vector<bf16>& g, engine e) {
    bf16* dq = ptr(g);
    ops::attention_backward<D>(cs(), ptr(dout), q, k, v, ptr(o_own), ptr(lse_own), sh, scale, dq, dq + Hq * D,
                               dq + (Hq + Hkv) * D, e);
  };
  grads(g_dnn, engine::automatic);
  grads(g_again, engine::automatic);
  grads(g_own, engine::own_kernel);
  REQUIRE(choices().find("attention backward: cuDNN fused flash attention") != std::string::npos);
  check_close(name + " dqkv", g_dnn, back(g_own), 2e-2);
  check_close(name + " dqkv, deterministic rerun", g_again, back(g_dnn), 0.0);
}

TEST_CASE("cuda ops: bf16 attention on cuDNN's fused flash attention agrees with tessera's kernel") {
  const auto& lib = ops::cudnn_sdpa::process();
  INFO(lib.why);
  REQUIRE(lib.ok);
  MESSAGE("cuDNN attention library: " << lib.path << " (" << lib.version << ")");
  cudnn_attention_case<64>(2, 256, 4, 2);
  cudnn_attention_case<128>(1, 200, 8, 8);
  cudnn_attention_case<32>(2, 32, 4, 2);  // the test models' heads
}

// ---- cross-entropy -----------------------------------------------------------------------------------------
namespace {
/// All-reduce over device pointers through host memory and MPI: a second communicator model for the
/// vocab-parallel cross-entropy (which needs only all_reduce).
struct staged_mpi_comm {
  MPI_Comm comm = MPI_COMM_WORLD;
  void all_reduce(const float* send, float* recv, std::size_t n, ts::reduce_op op) {
    std::vector<float> h(n);
    ts::cuda_check(cudaMemcpy(h.data(), send, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
    MPI_Allreduce(MPI_IN_PLACE, h.data(), static_cast<int>(n), MPI_FLOAT, op == ts::reduce_op::sum ? MPI_SUM : MPI_MAX,
                  comm);
    ts::cuda_check(cudaMemcpy(recv, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
  }
};

template <class T>
void cross_entropy_local_case(i64 N, i64 V_local, i64 vocab, i64 ld) {
  const std::string name = "cross-entropy " + shape_name({N, V_local, vocab, ld});
  const ops::vocab_slice vs{V_local, 0, vocab, ld};
  const auto logits = random_vec<T>(N * ld, 81, -4.0f, 4.0f);
  std::vector<std::int32_t> targets(N);
  std::mt19937 gen(82);
  for (auto& t : targets) t = static_cast<std::int32_t>(gen() % static_cast<unsigned>(vocab));
  std::vector<float> lse(N), loss(N);
  ops::cross_entropy_forward(hs, logits.data(), targets.data(), N, vs, lse.data(), loss.data());
  auto d_logits = dev(logits);
  auto d_targets = dev(targets);
  thrust::device_vector<float> d_lse(N), d_loss(N);
  ops::cross_entropy_forward(cs(), ptr(d_logits), ptr(d_targets), N, vs, ptr(d_lse), ptr(d_loss));
  check_close(name + " lse", d_lse, lse, tol_acc<T>(1e-5));
  check_close(name + " loss", d_loss, loss, tol_acc<T>(1e-5));

  const float scale = 1.0f / static_cast<float>(N);
  std::vector<T> dlogits = logits;  // untouched padding beyond V_local compares equal
  ops::cross_entropy_backward(hs, logits.data(), targets.data(), lse.data(), N, vs, scale, dlogits.data());
  auto h_lse = dev(lse);
  thrust::device_vector<T> d_dlogits = dev(logits);
  ops::cross_entropy_backward(cs(), ptr(d_logits), ptr(d_targets), ptr(h_lse), N, vs, scale, ptr(d_dlogits));
  check_close(name + " dlogits", d_dlogits, dlogits, tol_T<T>(1e-5));
  ops::cross_entropy_backward(cs(), ptr(d_logits), ptr(d_targets), ptr(h_lse), N, vs, scale, ptr(d_logits));
  check_close(name + " dlogits (in place over the logits)", d_logits, dlogits, tol_T<T>(1e-5));
  if constexpr (std::is_same_v<T, float>) {  // the gradient made in the forward, then scaled (fp32 training)
    auto d_fused = dev(logits);
    thrust::device_vector<float> d_lse2(N), d_loss2(N);
    ops::cross_entropy_forward_with_grad(cs(), ptr(d_fused), ptr(d_targets), N, vs, ptr(d_lse2), ptr(d_loss2));
    check_close(name + " lse (forward with gradient)", d_lse2, lse, tol_acc<T>(1e-5));
    check_close(name + " loss (forward with gradient)", d_loss2, loss, tol_acc<T>(1e-5));
    ops::cross_entropy_backward_from_grad(cs(), ptr(d_fused), N, vs, scale);
    check_close(name + " dlogits (from the forward's gradient)", d_fused, dlogits, tol_T<T>(1e-5));
  }
}

template <class T, class Comm>
void cross_entropy_parallel_case(Comm& comm, int rank, int world, const std::string& comm_name) {
  const i64 N = 37, vocab = 101, V_local = (vocab + world - 1) / world, ld = V_local + 3, v0 = rank * V_local;
  const std::string name = "vocab-parallel cross-entropy over " + std::to_string(world) + " rank(s), " + comm_name;
  // every rank builds the same full logits; rank r holds columns [v0, v0 + V_local) (padding past vocab)
  const auto full = random_vec<T>(N * vocab, 91, -4.0f, 4.0f);
  std::vector<std::int32_t> targets(N);
  std::mt19937 gen(92);
  for (auto& t : targets) t = static_cast<std::int32_t>(gen() % static_cast<unsigned>(vocab));
  std::vector<T> mine(N * ld, ops::store<T>(100.0f));  // padding and gaps hold large values to be ignored
  for (i64 n = 0; n < N; ++n)
    for (i64 c = 0; c < V_local && v0 + c < vocab; ++c) mine[n * ld + c] = full[n * vocab + v0 + c];

  const ops::vocab_slice whole{vocab, 0, vocab, vocab};
  std::vector<float> lse(N), loss(N);
  ops::cross_entropy_forward(hs, full.data(), targets.data(), N, whole, lse.data(), loss.data());
  const ops::vocab_slice vs{V_local, v0, vocab, ld};
  auto d_mine = dev(mine);
  auto d_targets = dev(targets);
  thrust::device_vector<float> d_lse(N), d_loss(N);
  ops::cross_entropy_forward(cs(), ptr(d_mine), ptr(d_targets), N, vs, ptr(d_lse), ptr(d_loss), comm);
  check_close(name + " lse", d_lse, lse, tol_acc<T>(1e-5));
  check_close(name + " loss", d_loss, loss, tol_acc<T>(1e-5));

  const float scale = 0.5f;
  std::vector<T> dfull(N * vocab);
  ops::cross_entropy_backward(hs, full.data(), targets.data(), lse.data(), N, whole, scale, dfull.data());
  std::vector<T> want = mine;
  for (i64 n = 0; n < N; ++n)
    for (i64 c = 0; c < V_local; ++c)
      want[n * ld + c] = v0 + c < vocab ? dfull[n * vocab + v0 + c] : ops::store<T>(0.0f);
  auto h_lse = dev(lse);
  ops::cross_entropy_backward(cs(), ptr(d_mine), ptr(d_targets), ptr(h_lse), N, vs, scale, ptr(d_mine));
  check_close(name + " dlogits", d_mine, want, tol_T<T>(1e-5));
}
}  // namespace

TEST_CASE_TEMPLATE("cuda ops: cross-entropy forward and backward", T, float, bf16) {
  cross_entropy_local_case<T>(7, 33, 33, 33);
  cross_entropy_local_case<T>(37, 40, 37, 45);    // 3 padding columns, padded rows
  cross_entropy_local_case<T>(5, 4099, 4099, 4099);  // more columns than threads
}

TEST_CASE_TEMPLATE("cuda ops: vocab-parallel cross-entropy (staged MPI and NCCL communicators)", T, float, bf16) {
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  staged_mpi_comm staged;
  cross_entropy_parallel_case<T>(staged, rank, world, "staged MPI");
  // NCCL needs a device per rank; decided identically on every rank
  int enough = ts::cuda_device_count() >= world ? 1 : 0, all = 0;
  MPI_Allreduce(&enough, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (all) {
    ts::nccl_comm nc = ts::nccl_comm::from_mpi(MPI_COMM_WORLD);
    cross_entropy_parallel_case<T>(nc, rank, world, "NCCL");
  } else if (rank == 0) {
    MESSAGE("NCCL vocab-parallel case skipped: fewer CUDA devices than ranks");
  }
}
