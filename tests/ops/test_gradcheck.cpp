// Finite-difference gradient checks of every host operator's backward, in float64 (issue 4).
//
// Every host operator is a template over its storage type T ∈ {float, bf16, double}; with T = double all
// accumulation is double and the GEMMs are cblas_dgemm, so the double instantiation is the reference.
//
// For each operator f with inputs x (and parameters), the scalar objective is L = <dy, f(x)> for a random
// dy. The analytic gradient (the op's backward, in double) is compared with central finite differences
//   dL/dx_i ≈ (L(x + h e_i) − L(x − h e_i)) / (2h),   h = 1e-6 · max(1, |x_i|),
// taken for EVERY element of every input and parameter (sizes are small so that is cheap; the one long
// attention case perturbs every element of the rows around the key-tile boundaries).
//
// Error measure (here and below): max_i |a_i − b_i| / max_i max(|a_i|, |b_i|) over one tensor (normwise
// max relative error; element-wise ratios are meaningless for gradients that cross zero).
//
// Tolerance 1e-6 for the finite differences: the truncation error of the central difference is
// h²/6·|L'''| ≈ 1e-13 and the rounding error is about ε·Σ|terms of L| / h ≈ 2.2e-16 · (10…3000) / 1e-6
// ≈ 1e-9…1e-7, with gradients of order one (measured: 5e-11…4e-9, up to 5e-8 for the T = 150 attention
// whose objective sums 2,400 terms), so a correct backward lands 20× or more under 1e-6 while a wrong one
// is off by far more: deliberately broken backwards (a dropped LayerNorm term, gelu' off in one
// coefficient, a missing softmax scale, the wrong kv head, dO read with the wrong stride, D_i scaled by
// 0.999, = instead of +=, a row skipped in db) measured 1.8e-3…1.7.
//
// The fp32 and bf16 instantiations run on the same inputs (all inputs are drawn bf16-representable, so
// every precision sees bit-identical values) and are compared with the double run, forward and backward:
// fp32 ≤ 1e-5 (1e-4 for linear and attention: GEMM-length dot products in fp32), bf16 ≤ 2e-2 (bf16
// storage of the outputs alone costs 2^-9 ≈ 2e-3 per element). The bf16 linear runs on whichever engine
// ops::host::bf16_gemm_engine() names (OpenBLAS sbgemm, oneDNN's AVX512-BF16 matmul, or widened sgemm).
//
// AdamW is not differentiable: its step is checked against PyTorch's AdamW formula written out in double.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "tessera/ops/host.hpp"

namespace {

namespace ts = tessera;
namespace op = tessera::ops;
using ts::bf16;
using i64 = std::int64_t;
using vec = std::vector<double>;
constexpr ts::host_system host{};

constexpr double fd_tol = 1e-6;        // finite differences vs the double backward
constexpr double f32_tol = 1e-5;       // fp32 vs double
constexpr double f32_gemm_tol = 1e-4;  // fp32 vs double, linear and attention
constexpr double bf16_tol = 2e-2;      // bf16 vs double

/// The bf16 linear runs everywhere: cblas_sbgemm where OpenBLAS has it, else oneDNN, else widened sgemm.
constexpr bool have_sbgemm = true;

template <class T> inline constexpr std::type_identity<T> as{};

std::size_t sz(i64 n) { return static_cast<std::size_t>(n); }

/// Random numbers rounded to bf16, so that the float, bf16 and double runs see identical inputs.
struct rng_t {
  std::mt19937_64 gen;
  explicit rng_t(std::uint64_t seed) : gen(seed) {}
  static double exact(double x) { return static_cast<double>(static_cast<float>(bf16(static_cast<float>(x)))); }
  vec uniform(i64 n, double lo, double hi) {
    std::uniform_real_distribution<double> u(lo, hi);
    vec v(sz(n));
    for (double& x : v) x = exact(u(gen));
    return v;
  }
  std::vector<std::int32_t> tokens(i64 n, std::int32_t hi) {
    std::uniform_int_distribution<std::int32_t> u(0, hi - 1);
    std::vector<std::int32_t> t(sz(n));
    for (auto& x : t) x = u(gen);
    return t;
  }
};

template <class T> std::vector<T> to(const vec& v) {
  std::vector<T> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if constexpr (std::is_same_v<T, bf16>) r[i] = bf16(static_cast<float>(v[i]));
    else r[i] = static_cast<T>(v[i]);
  }
  return r;
}
template <class T> vec from(const std::vector<T>& v) {
  vec r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) r[i] = static_cast<double>(static_cast<op::acc_t<T>>(v[i]));
  return r;
}
template <> vec from<double>(const std::vector<double>& v) { return v; }

double dot(const vec& a, const vec& b) {
  REQUIRE(a.size() == b.size());
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
vec minus(const vec& a, const vec& b) {
  REQUIRE(a.size() == b.size());
  vec r(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) r[i] = a[i] - b[i];
  return r;
}
std::vector<i64> all_of(const vec& v) {
  std::vector<i64> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) r[i] = static_cast<i64>(i);
  return r;
}

/// max |got − ref| / max max(|got|, |ref|) over the indices `at` (empty: all).
double rel_err(const vec& got, const vec& ref, const std::vector<i64>& at = {}) {
  REQUIRE(got.size() == ref.size());
  double num = 0, den = 0;
  bool nan = false;
  auto one = [&](std::size_t i) {
    nan = nan || std::isnan(got[i]) || std::isnan(ref[i]);
    num = std::max(num, std::abs(got[i] - ref[i]));
    den = std::max({den, std::abs(got[i]), std::abs(ref[i])});
  };
  if (at.empty())
    for (std::size_t i = 0; i < got.size(); ++i) one(i);
  else
    for (i64 i : at) one(sz(i));
  if (nan) return INFINITY;
  return den > 0 ? num / den : num;
}

void report(const std::string& what, double err, double tol) {
  std::printf("  %-66s %.2e  (tol %.0e)\n", what.c_str(), err, tol);
  INFO(what, ": max rel err ", err, " > tol ", tol);
  CHECK(err <= tol);
}

/// What one run of an operator produced: forward outputs, then backward outputs, as doubles.
struct outputs {
  std::vector<vec> fwd, grad;
};

/// One input of the gradient check: perturbed in place; `analytic` is dL/dx from the backward.
struct wrt {
  std::string name;
  vec* x;
  vec analytic;
  std::vector<i64> at = {};  ///< elements checked (empty: all)
};

/// Central finite differences of L w.r.t. every listed element, compared with the analytic gradient.
/// The thousands of small forwards run on one thread (OpenMP fork/join would dominate them; every
/// forward is row-parallel and gives the same numbers on any number of threads); the analytic gradients
/// were computed with the default number.
void gradcheck(const std::string& opname, const std::function<double()>& L, const std::vector<wrt>& ws) {
  struct one_thread {
    int saved = omp_get_max_threads();
    one_thread() { omp_set_num_threads(1); }
    ~one_thread() { omp_set_num_threads(saved); }
  } scope;
  for (const wrt& w : ws) {
    vec& p = *w.x;
    REQUIRE(w.analytic.size() == p.size());
    const std::vector<i64> at = w.at.empty() ? all_of(p) : w.at;
    vec num(p.size(), 0.0);
    double gmax = 0;
    for (i64 i : at) {
      const double x0 = p[sz(i)];
      const double h = 1e-6 * std::max(1.0, std::abs(x0));
      p[sz(i)] = x0 + h;
      const double xp = p[sz(i)], lp = L();
      p[sz(i)] = x0 - h;
      const double xm = p[sz(i)], lm = L();
      p[sz(i)] = x0;
      num[sz(i)] = (lp - lm) / (xp - xm);
      gmax = std::max(gmax, std::abs(num[sz(i)]));
    }
    report(opname + ": d/d" + w.name + " (" + std::to_string(at.size()) + " el.)", rel_err(w.analytic, num, at),
           fd_tol);
    if (w.name.find("pad") == std::string::npos) CHECK(gmax > 0);  // the objective really depends on it
  }
}

/// fp32 and bf16 runs against the double run, same inputs (bf16 only when WithBf16: see have_sbgemm).
template <bool WithBf16 = true, class Run>
void compare_precisions(const std::string& opname, const Run& run, const std::vector<std::string>& fwd,
                        const std::vector<std::string>& grad, double tol32) {
  const outputs d = run(as<double>, true), f = run(as<float>, true);
  REQUIRE(d.fwd.size() == fwd.size());
  REQUIRE(d.grad.size() == grad.size());
  for (std::size_t k = 0; k < fwd.size(); ++k)
    report(opname + ": fp32 vs fp64, " + fwd[k], rel_err(f.fwd[k], d.fwd[k]), tol32);
  for (std::size_t k = 0; k < grad.size(); ++k)
    report(opname + ": fp32 vs fp64, " + grad[k], rel_err(f.grad[k], d.grad[k]), tol32);
  if constexpr (WithBf16) {
    const outputs b = run(as<bf16>, true);
    for (std::size_t k = 0; k < fwd.size(); ++k)
      report(opname + ": bf16 vs fp64, " + fwd[k], rel_err(b.fwd[k], d.fwd[k]), bf16_tol);
    for (std::size_t k = 0; k < grad.size(); ++k)
      report(opname + ": bf16 vs fp64, " + grad[k], rel_err(b.grad[k], d.grad[k]), bf16_tol);
  } else {
    std::printf("  %-66s skipped (this OpenBLAS has no cblas_sbgemm)\n", (opname + ": bf16 vs fp64").c_str());
  }
}

}  // namespace

// ---- element-wise --------------------------------------------------------------------------------------

TEST_CASE("gradcheck: gelu (tanh)") {
  rng_t r(11);
  const i64 n = 5 * 7;
  vec x = r.uniform(n, -4, 4);
  const vec dy = r.uniform(n, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    const auto xt = to<T>(x);
    std::vector<T> y(sz(n));
    op::gelu_forward(host, xt.data(), n, y.data());
    outputs o{{from(y)}, {}};
    if (bwd) {
      auto dx = to<T>(dy);  // in place: dx aliases dy
      op::gelu_backward(host, dx.data(), xt.data(), n, dx.data());
      o.grad = {from(dx)};
    }
    return o;
  };
  const outputs ref = run(as<double>, true);
  gradcheck("gelu", [&] { return dot(dy, run(as<double>, false).fwd[0]); }, {{"x", &x, ref.grad[0]}});
  compare_precisions("gelu", run, {"y"}, {"dx"}, f32_tol);
}

TEST_CASE("gradcheck: swiglu over a fused [gate | up | pad] input") {
  rng_t r(12);
  const i64 N = 5, F = 7, ld = 2 * F + 3;
  vec in = r.uniform(N * ld, -4, 4);
  const vec dy = r.uniform(N * F, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    const auto it = to<T>(in);
    std::vector<T> y(sz(N * F));
    op::swiglu_forward(host, it.data(), it.data() + F, N, F, ld, y.data());
    outputs o{{from(y)}, {}};
    if (bwd) {
      const auto dyt = to<T>(dy);
      std::vector<T> din(sz(N * ld));
      op::swiglu_backward(host, dyt.data(), it.data(), it.data() + F, N, F, ld, din.data(), din.data() + F);
      o.grad = {from(din)};
    }
    return o;
  };
  const outputs ref = run(as<double>, true);
  std::vector<i64> gate, up, pad;
  for (i64 n = 0; n < N; ++n)
    for (i64 c = 0; c < ld; ++c) (c < F ? gate : c < 2 * F ? up : pad).push_back(n * ld + c);
  gradcheck("swiglu", [&] { return dot(dy, run(as<double>, false).fwd[0]); },
            {{"gate", &in, ref.grad[0], gate}, {"up", &in, ref.grad[0], up}, {"pad columns", &in, ref.grad[0], pad}});
  compare_precisions("swiglu", run, {"y"}, {"d[gate|up]"}, f32_tol);
}

TEST_CASE("gradcheck: residual add") {
  rng_t r(13);
  const i64 n = 5 * 7;
  vec a = r.uniform(n, -2, 2), b = r.uniform(n, -2, 2);
  const vec dy = r.uniform(n, -1, 1);
  auto run = [&](auto tag, bool) {
    using T = typename decltype(tag)::type;
    auto at = to<T>(a);
    const auto bt = to<T>(b);
    op::add(host, at.data(), bt.data(), n, at.data());  // out aliases a
    return outputs{{from(at)}, {}};
  };
  // add has no backward kernel: the backward of a residual add is dy into both branches.
  auto L = [&] { return dot(dy, run(as<double>, false).fwd[0]); };
  gradcheck("add", L, {{"a", &a, dy}, {"b", &b, dy}});
  compare_precisions("add", run, {"y"}, {}, f32_tol);
}

// ---- RoPE -----------------------------------------------------------------------------------------------

template <int D> void rope_case(i64 H, i64 extra_cols, i64 pos0) {
  rng_t r(14 + D + H);
  const i64 B = 2, T = 9, rows = B * T, ld = H * D + extra_cols;
  vec x = r.uniform(rows * ld, -2, 2);
  const vec dy = r.uniform(rows * ld, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T_ = typename decltype(tag)::type;
    using A = op::acc_t<T_>;
    const op::rope_table<A> tab(pos0 + T, D, 10000.0f);
    auto xt = to<T_>(x);
    op::rope_forward(host, xt.data(), rows, T, H, D, ld, pos0, tab.cos.data(), tab.sin.data());
    outputs o{{from(xt)}, {}};
    if (bwd) {
      auto dx = to<T_>(dy);
      op::rope_backward(host, dx.data(), rows, T, H, D, ld, pos0, tab.cos.data(), tab.sin.data());
      o.grad = {from(dx)};
    }
    return o;
  };
  const std::string name = "rope D=" + std::to_string(D) + " H=" + std::to_string(H) + " ld=" + std::to_string(ld) +
                           " pos0=" + std::to_string(pos0);
  const outputs ref = run(as<double>, true);
  gradcheck(name, [&] { return dot(dy, run(as<double>, false).fwd[0]); }, {{"x", &x, ref.grad[0]}});
  compare_precisions(name, run, {"y"}, {"dx"}, f32_tol);
}

TEST_CASE("gradcheck: rope, packed heads and heads inside a wider row") {
  rope_case<8>(3, 0, 0);
  rope_case<8>(3, 5, 3);
  rope_case<16>(2, 7, 2);
}

// ---- embeddings -----------------------------------------------------------------------------------------

void embedding_case(i64 V_local, i64 v0) {
  rng_t r(20 + v0);
  const std::int32_t vocab = 11;
  const i64 N = 18, C = 7;
  const auto tokens = r.tokens(N, vocab);
  vec wte = r.uniform(V_local * C, -1, 1);
  const vec dy = r.uniform(N * C, -1, 1), dwte0 = r.uniform(V_local * C, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    const auto wt = to<T>(wte);
    std::vector<T> y(sz(N * C));
    op::embedding_forward(host, tokens.data(), N, wt.data(), V_local, v0, C, y.data());
    outputs o{{from(y)}, {}};
    if (bwd) {
      const auto dyt = to<T>(dy);
      auto dw = to<op::grad_t<T>>(dwte0);  // the backward accumulates
      op::embedding_backward(host, tokens.data(), N, dyt.data(), V_local, v0, C, dw.data());
      o.grad = {from(dw)};
    }
    return o;
  };
  const std::string name = "embedding rows [" + std::to_string(v0) + ", " + std::to_string(v0 + V_local) + ") of " +
                           std::to_string(vocab);
  const outputs ref = run(as<double>, true);
  i64 hits = 0;
  for (auto t : tokens) hits += (t >= v0 && t < v0 + V_local) ? 1 : 0;
  CHECK(hits > 0);
  CHECK(hits < N);  // some tokens belong to other slices
  gradcheck(name, [&] { return dot(dy, run(as<double>, false).fwd[0]); },
            {{"wte (+= onto a nonzero gradient)", &wte, minus(ref.grad[0], dwte0)}});
  compare_precisions(name, run, {"y"}, {"dwte"}, f32_tol);
}

TEST_CASE("gradcheck: token embedding, vocab slices") {
  embedding_case(6, 0);
  embedding_case(6, 6);  // last slice of a padded vocabulary of 12: row 11 is padding
}

TEST_CASE("gradcheck: position embedding") {
  rng_t r(30);
  const i64 B = 2, T = 9, N = B * T, C = 7, pos0 = 3, P = pos0 + T + 2;
  vec x = r.uniform(N * C, -1, 1), wpe = r.uniform(P * C, -1, 1);
  const vec dy = r.uniform(N * C, -1, 1), dwpe0 = r.uniform(P * C, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T_ = typename decltype(tag)::type;
    auto xt = to<T_>(x);
    const auto wt = to<T_>(wpe);
    op::add_position_embedding(host, wt.data(), N, T, C, pos0, xt.data());
    outputs o{{from(xt)}, {}};
    if (bwd) {
      const auto dyt = to<T_>(dy);
      auto dw = to<op::grad_t<T_>>(dwpe0);
      op::position_embedding_backward(host, dyt.data(), N, T, C, pos0, dw.data());
      o.grad = {from(dw)};
    }
    return o;
  };
  const outputs ref = run(as<double>, true);
  gradcheck("position embedding pos0=3", [&] { return dot(dy, run(as<double>, false).fwd[0]); },
            {{"x (identity)", &x, dy}, {"wpe (+=)", &wpe, minus(ref.grad[0], dwpe0)}});
  compare_precisions("position embedding", run, {"y"}, {"dwpe"}, f32_tol);
}

// ---- normalisation --------------------------------------------------------------------------------------

void layernorm_case(bool with_beta, bool accumulate_dx) {
  rng_t r(40 + 2 * with_beta + accumulate_dx);
  const i64 N = 5, C = 7;
  const float eps = 1e-5f;
  vec x = r.uniform(N * C, -1.5, 2.5), gamma = r.uniform(C, 0.5, 1.5), beta = r.uniform(C, -0.5, 0.5);
  const vec dy = r.uniform(N * C, -1, 1), dx0 = r.uniform(N * C, -0.5, 0.5), dg0 = r.uniform(C, -1, 1),
            db0 = r.uniform(C, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    using A = op::acc_t<T>;
    const auto xt = to<T>(x), gt = to<T>(gamma), bt = to<T>(beta);
    std::vector<T> y(sz(N * C));
    std::vector<A> mean(sz(N)), rstd(sz(N));
    op::layernorm_forward(host, xt.data(), gt.data(), with_beta ? bt.data() : nullptr, N, C, eps, y.data(),
                          mean.data(), rstd.data());
    outputs o{{from(y), from(mean), from(rstd)}, {}};
    if (bwd) {
      const auto dyt = to<T>(dy);
      auto dx = accumulate_dx ? to<T>(dx0) : std::vector<T>(sz(N * C));
      auto dg = to<A>(dg0), db = to<A>(db0);
      op::layernorm_backward(host, dyt.data(), xt.data(), gt.data(), mean.data(), rstd.data(), N, C, dx.data(),
                             dg.data(), with_beta ? db.data() : nullptr, accumulate_dx);
      o.grad = {from(dx), from(dg)};
      if (with_beta) o.grad.push_back(from(db));
      else CHECK(from(db) == db0);  // no beta: dbeta untouched
    }
    return o;
  };
  const std::string name = std::string("layernorm") + (with_beta ? " +beta" : " no-beta") +
                           (accumulate_dx ? " accumulate_dx" : "");
  const outputs ref = run(as<double>, true);
  std::vector<wrt> ws{{"x", &x, accumulate_dx ? minus(ref.grad[0], dx0) : ref.grad[0]},
                      {"gamma (+=)", &gamma, minus(ref.grad[1], dg0)}};
  if (with_beta) ws.push_back({"beta (+=)", &beta, minus(ref.grad[2], db0)});
  gradcheck(name, [&] { return dot(dy, run(as<double>, false).fwd[0]); }, ws);
  if (with_beta)
    compare_precisions(name, run, {"y", "mean", "rstd"}, {"dx", "dgamma", "dbeta"}, f32_tol);
  else
    compare_precisions(name, run, {"y", "mean", "rstd"}, {"dx", "dgamma"}, f32_tol);
}

TEST_CASE("gradcheck: layernorm") {
  layernorm_case(true, false);
  layernorm_case(false, false);
  layernorm_case(true, true);
}

void rmsnorm_case(bool accumulate_dx) {
  rng_t r(50 + accumulate_dx);
  const i64 N = 5, C = 7;
  const float eps = 1e-5f;
  vec x = r.uniform(N * C, -1.5, 2.5), gamma = r.uniform(C, 0.5, 1.5);
  const vec dy = r.uniform(N * C, -1, 1), dx0 = r.uniform(N * C, -0.5, 0.5), dg0 = r.uniform(C, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    using A = op::acc_t<T>;
    const auto xt = to<T>(x), gt = to<T>(gamma);
    std::vector<T> y(sz(N * C));
    std::vector<A> rstd(sz(N));
    op::rmsnorm_forward(host, xt.data(), gt.data(), N, C, eps, y.data(), rstd.data());
    outputs o{{from(y), from(rstd)}, {}};
    if (bwd) {
      const auto dyt = to<T>(dy);
      auto dx = accumulate_dx ? to<T>(dx0) : std::vector<T>(sz(N * C));
      auto dg = to<A>(dg0);
      op::rmsnorm_backward(host, dyt.data(), xt.data(), gt.data(), rstd.data(), N, C, dx.data(), dg.data(),
                           accumulate_dx);
      o.grad = {from(dx), from(dg)};
    }
    return o;
  };
  const std::string name = std::string("rmsnorm") + (accumulate_dx ? " accumulate_dx" : "");
  const outputs ref = run(as<double>, true);
  gradcheck(name, [&] { return dot(dy, run(as<double>, false).fwd[0]); },
            {{"x", &x, accumulate_dx ? minus(ref.grad[0], dx0) : ref.grad[0]},
             {"gamma (+=)", &gamma, minus(ref.grad[1], dg0)}});
  compare_precisions(name, run, {"y", "rstd"}, {"dx", "dgamma"}, f32_tol);
}

TEST_CASE("gradcheck: rmsnorm") {
  rmsnorm_case(false);
  rmsnorm_case(true);
}

// ---- linear ---------------------------------------------------------------------------------------------

void linear_case(bool bias, bool accumulate, bool accumulate_dx) {
  rng_t r(60 + 4 * bias + 2 * accumulate + accumulate_dx);
  const i64 N = 5, in = 7, out = 9;
  vec x = r.uniform(N * in, -1, 1), W = r.uniform(out * in, -1, 1), b = r.uniform(out, -1, 1),
      y0 = r.uniform(N * out, -1, 1);
  const vec dy = r.uniform(N * out, -1, 1), dx0 = r.uniform(N * in, -0.5, 0.5), dW0 = r.uniform(out * in, -1, 1),
            db0 = r.uniform(out, -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    using G = op::grad_t<T>;
    const auto xt = to<T>(x), Wt = to<T>(W), bt = to<T>(b);
    auto y = accumulate ? to<T>(y0) : std::vector<T>(sz(N * out));
    op::linear_forward(host, xt.data(), Wt.data(), bias ? bt.data() : nullptr, N, in, out, y.data(), accumulate);
    outputs o{{from(y)}, {}};
    if (bwd) {
      const auto dyt = to<T>(dy);
      auto dx = accumulate_dx ? to<T>(dx0) : std::vector<T>(sz(N * in));
      auto dW = to<G>(dW0), db = to<G>(db0);
      op::linear_backward(host, dyt.data(), xt.data(), Wt.data(), N, in, out, dx.data(), dW.data(),
                          bias ? db.data() : nullptr, accumulate_dx);
      o.grad = {from(dx), from(dW)};
      if (bias) o.grad.push_back(from(db));
    }
    return o;
  };
  const std::string name = std::string("linear") + (bias ? " +bias" : " no-bias") + (accumulate ? " y+=" : "") +
                           (accumulate_dx ? " dx+=" : "");
  const outputs ref = run(as<double>, true);
  std::vector<wrt> ws{{"x", &x, accumulate_dx ? minus(ref.grad[0], dx0) : ref.grad[0]},
                      {"W (+=)", &W, minus(ref.grad[1], dW0)}};
  if (bias) ws.push_back({"b (+=)", &b, minus(ref.grad[2], db0)});
  if (accumulate) ws.push_back({"y0 (accumulated into, identity)", &y0, dy});
  gradcheck(name, [&] { return dot(dy, run(as<double>, false).fwd[0]); }, ws);
  if (bias)
    compare_precisions<have_sbgemm>(name, run, {"y"}, {"dx", "dW", "db"}, f32_gemm_tol);
  else
    compare_precisions<have_sbgemm>(name, run, {"y"}, {"dx", "dW"}, f32_gemm_tol);
}

TEST_CASE("gradcheck: linear, with/without bias, every accumulate flag") {
  for (int m = 0; m < 8; ++m) linear_case(m & 4, m & 2, m & 1);
}

// ---- attention ------------------------------------------------------------------------------------------

namespace {
/// q, k, v in one input buffer: packed (three [N × H·D] blocks one after the other) or strided (column
/// blocks of one fused [N × ((Hq + 2·Hkv)·D + 5)] QKV buffer, 5 padding columns; o rows Hq·D + 3 wide).
struct attn_layout {
  i64 B, T, Hq, Hkv, D;
  bool strided;
  i64 N() const { return B * T; }
  i64 col0(int blk) const { return blk == 0 ? 0 : blk == 1 ? Hq * D : (Hq + Hkv) * D; }
  i64 width(int blk) const { return blk == 0 ? Hq * D : Hkv * D; }
  i64 W() const { return (Hq + 2 * Hkv) * D + 5; }
  i64 in_size() const { return strided ? N() * W() : N() * (Hq + 2 * Hkv) * D; }
  i64 ld_o() const { return strided ? Hq * D + 3 : Hq * D; }
  i64 off(int blk) const { return strided ? col0(blk) : N() * col0(blk); }
  i64 ld(int blk) const { return strided ? W() : width(blk); }
  /// index in the input buffer of element d of head h of row n of block blk (0 q, 1 k, 2 v)
  i64 at(int blk, i64 n, i64 h, i64 d) const { return off(blk) + n * ld(blk) + h * D + d; }
  op::attention_shape shape() const {
    if (strided) return {B, T, Hq, Hkv, W(), W(), W(), ld_o()};
    return {B, T, Hq, Hkv, 0, 0, 0, 0};
  }
  std::string name() const {
    return "attention D=" + std::to_string(D) + " B=" + std::to_string(B) + " T=" + std::to_string(T) +
           " Hq=" + std::to_string(Hq) + " Hkv=" + std::to_string(Hkv) + (strided ? " strided(fused qkv)" : " packed");
  }
};
}  // namespace

/// `rows`: the token rows whose q, k, v elements are perturbed (empty: all).
template <int D> void attention_case(attn_layout L, const std::vector<i64>& rows = {}) {
  REQUIRE(L.D == D);
  rng_t r(static_cast<std::uint64_t>(70 + D + 10 * L.Hq + 100 * L.strided + L.T));
  const i64 N = L.N();
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  vec in = r.uniform(L.in_size(), -1.5, 1.5);
  const vec dout = r.uniform(N * L.ld_o(), -1, 1);
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    using A = op::acc_t<T>;
    const auto it = to<T>(in);
    std::vector<T> o(sz(N * L.ld_o()));
    std::vector<A> lse(sz(L.B * L.Hq * L.T));
    op::attention_forward<D>(host, it.data() + L.off(0), it.data() + L.off(1), it.data() + L.off(2), o.data(),
                             lse.data(), L.shape(), static_cast<A>(scale));
    outputs res{{from(o), from(lse)}, {}};
    if (bwd) {
      const auto dot_ = to<T>(dout);
      std::vector<T> din(it.size());
      op::attention_backward<D>(host, dot_.data(), it.data() + L.off(0), it.data() + L.off(1), it.data() + L.off(2),
                                o.data(), lse.data(), L.shape(), static_cast<A>(scale), din.data() + L.off(0),
                                din.data() + L.off(1), din.data() + L.off(2));
      res.grad = {from(din)};
    }
    return res;
  };
  const outputs ref = run(as<double>, true);

  // The forward against the textbook formula (whole causal row, no tiles), in double.
  {
    const i64 rep = L.Hq / L.Hkv;
    double eo = 0, el = 0, mo = 0;
    for (i64 b = 0; b < L.B; ++b)
      for (i64 h = 0; h < L.Hq; ++h)
        for (i64 i = 0; i < L.T; ++i) {
          const i64 n = b * L.T + i, g = h / rep;
          vec s(sz(i + 1));
          double mx = -INFINITY;
          for (i64 j = 0; j <= i; ++j) {
            double acc = 0;
            for (i64 d = 0; d < D; ++d) acc += in[sz(L.at(0, n, h, d))] * in[sz(L.at(1, b * L.T + j, g, d))];
            s[sz(j)] = acc * scale;
            mx = std::max(mx, s[sz(j)]);
          }
          double sum = 0;
          for (double& e : s) sum += (e = std::exp(e - mx));
          el = std::max(el, std::abs(ref.fwd[1][sz((b * L.Hq + h) * L.T + i)] - (mx + std::log(sum))));
          for (i64 d = 0; d < D; ++d) {
            double acc = 0;
            for (i64 j = 0; j <= i; ++j) acc += s[sz(j)] / sum * in[sz(L.at(2, b * L.T + j, g, d))];
            eo = std::max(eo, std::abs(ref.fwd[0][sz(n * L.ld_o() + h * D + d)] - acc));
            mo = std::max(mo, std::abs(acc));
          }
        }
    report(L.name() + ": forward o vs naive softmax", eo / mo, 1e-12);
    report(L.name() + ": forward lse vs naive (abs)", el, 1e-12);
  }

  std::vector<i64> idx[3], pad;
  std::vector<i64> rs = rows;
  if (rs.empty())
    for (i64 n = 0; n < N; ++n) rs.push_back(n);
  for (int blk = 0; blk < 3; ++blk)
    for (i64 n : rs)
      for (i64 c = 0; c < L.width(blk); ++c) idx[blk].push_back(L.off(blk) + n * L.ld(blk) + c);
  if (L.strided)
    for (i64 n : rs)
      for (i64 c = (L.Hq + 2 * L.Hkv) * D; c < L.W(); ++c) pad.push_back(n * L.W() + c);
  std::vector<wrt> ws{{"q", &in, ref.grad[0], idx[0]}, {"k", &in, ref.grad[0], idx[1]}, {"v", &in, ref.grad[0], idx[2]}};
  if (L.strided) ws.push_back({"pad columns", &in, ref.grad[0], pad});
  gradcheck(L.name(), [&] { return dot(dout, run(as<double>, false).fwd[0]); }, ws);
  compare_precisions(L.name(), run, {"o", "lse"}, {"d[q|k|v]"}, f32_gemm_tol);
}

TEST_CASE("gradcheck: causal GQA flash attention, packed and fused-QKV strides") {
  for (bool strided : {false, true}) {
    attention_case<8>({2, 9, 4, 2, 8, strided});
    attention_case<8>({2, 9, 3, 1, 8, strided});
    attention_case<16>({2, 9, 4, 2, 16, strided});
    attention_case<16>({2, 9, 3, 1, 16, strided});
  }
}

TEST_CASE("gradcheck: attention over T = 150 > the key tile (online-softmax merges)") {
  static_assert(op::attention_tile == 64, "the rows below sit at the tile boundaries of 64");
  const std::vector<i64> rows{0, 1, 62, 63, 64, 65, 100, 127, 128, 129, 148, 149};
  attention_case<8>({1, 150, 4, 2, 8, true}, rows);
  attention_case<16>({1, 150, 3, 1, 16, false}, rows);
}

// ---- cross-entropy --------------------------------------------------------------------------------------

void cross_entropy_case(const std::string& name, op::vocab_slice vs) {
  rng_t r(80 + vs.v0 + vs.V_local);
  const i64 N = 5;
  const std::int32_t vocab = static_cast<std::int32_t>(vs.vocab ? vs.vocab : vs.v0 + vs.V_local);
  const i64 ld = vs.ld ? vs.ld : vs.V_local;
  const i64 valid = std::clamp<i64>(vocab - vs.v0, 0, vs.V_local);
  const double scale = 0.37;
  vec logits = r.uniform(N * ld, -3, 3);
  for (i64 n = 0; n < N; ++n)
    for (i64 c = valid; c < ld; ++c) logits[sz(n * ld + c)] = c < vs.V_local ? 40.0 : -77.0;  // must be ignored
  auto targets = r.tokens(N, vocab);
  if (vs.v0 > 0) {  // some targets in this slice, some in another
    targets[0] = static_cast<std::int32_t>(vs.v0);
    targets[1] = 0;
  }
  auto run = [&](auto tag, bool bwd) {
    using T = typename decltype(tag)::type;
    using A = op::acc_t<T>;
    const auto lt = to<T>(logits);
    std::vector<A> lse(sz(N)), loss(sz(N));
    op::cross_entropy_forward(host, lt.data(), targets.data(), N, vs, lse.data(), loss.data());
    outputs o{{from(lse), from(loss)}, {}};
    if (bwd) {
      std::vector<T> d(sz(N * ld));
      op::cross_entropy_backward(host, lt.data(), targets.data(), lse.data(), N, vs, static_cast<A>(scale), d.data());
      // in place (dlogits aliasing logits) gives the same numbers over the slice
      auto inplace = lt;
      op::cross_entropy_backward(host, inplace.data(), targets.data(), lse.data(), N, vs, static_cast<A>(scale),
                                 inplace.data());
      double diff = 0;
      for (i64 n = 0; n < N; ++n)
        for (i64 c = 0; c < vs.V_local; ++c)
          diff = std::max(diff, std::abs(static_cast<double>(static_cast<A>(inplace[sz(n * ld + c)])) -
                                         static_cast<double>(static_cast<A>(d[sz(n * ld + c)]))));
      INFO(name, ": in-place cross_entropy_backward differs from out-of-place by up to ", diff);
      CHECK(diff == 0.0);
      o.grad = {from(d)};
    }
    return o;
  };
  const outputs ref = run(as<double>, true);
  {  // forward against the formula over the valid columns of this slice
    double e = 0;
    for (i64 n = 0; n < N; ++n) {
      double mx = -INFINITY, s = 0;
      for (i64 c = 0; c < valid; ++c) mx = std::max(mx, logits[sz(n * ld + c)]);
      for (i64 c = 0; c < valid; ++c) s += std::exp(logits[sz(n * ld + c)] - mx);
      const i64 t = targets[sz(n)] - vs.v0;
      const double loss = mx + std::log(s) - ((t >= 0 && t < valid) ? logits[sz(n * ld + t)] : 0.0);
      e = std::max(e, std::abs(ref.fwd[1][sz(n)] - loss));
    }
    report(name + ": forward loss vs formula (abs)", e, 1e-13);
  }
  std::vector<i64> cols, pad;
  for (i64 n = 0; n < N; ++n)
    for (i64 c = 0; c < ld; ++c) (c < valid ? cols : pad).push_back(n * ld + c);
  std::vector<wrt> ws{{"logits", &logits, ref.grad[0], cols}};
  if (!pad.empty()) ws.push_back({"padding/stride columns", &logits, ref.grad[0], pad});
  auto L = [&] {
    const vec loss = run(as<double>, false).fwd[1];
    double s = 0;
    for (double l : loss) s += l;
    return scale * s;
  };
  gradcheck(name, L, ws);
  compare_precisions(name, run, {"lse", "loss"}, {"dlogits"}, f32_tol);
}

TEST_CASE("gradcheck: cross-entropy, plain, padded, vocab slice") {
  cross_entropy_case("cross-entropy V=11", {11, 0, 0, 0});
  cross_entropy_case("cross-entropy V=11 padded to 13, ld 15", {13, 0, 11, 15});
  cross_entropy_case("cross-entropy slice [6,12) of 11 (1 pad col)", {6, 6, 11, 0});
}

// ---- AdamW ----------------------------------------------------------------------------------------------

namespace {
/// PyTorch's torch.optim.AdamW (single-tensor, non-capturable) for one step, in double.
struct torch_adamw {
  vec w, m, v;
  void step(const vec& g, const op::math::adamw_params& p, bool decay) {
    const double lr = p.lr, b1 = p.beta1, b2 = p.beta2, eps = p.eps, wd = decay ? p.weight_decay : 0.0f;
    const double t = static_cast<double>(p.step);
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    const double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
    for (std::size_t i = 0; i < w.size(); ++i) {
      w[i] *= 1 - lr * wd;                             // param.mul_(1 - lr * weight_decay)
      m[i] += (g[i] - m[i]) * (1 - b1);                // exp_avg.lerp_(grad, 1 - beta1)
      v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i];       // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
      const double denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      w[i] += -step_size * m[i] / denom;               // param.addcdiv_(exp_avg, denom, value=-step_size)
    }
  }
};

template <class T> struct adamw_impl {
  using G = op::grad_t<T>;
  std::vector<T> param;
  std::vector<G> master, m, v;
  bool with_master;
  adamw_impl(const vec& w0, bool master_weights)
      : param(to<T>(w0)), master(to<G>(w0)), m(w0.size()), v(w0.size()), with_master(master_weights) {}
  void step(const vec& g, const op::math::adamw_params& p, bool decay) {
    const auto gg = to<G>(g);
    op::adamw_step(host, param.data(), with_master ? master.data() : nullptr, gg.data(), m.data(), v.data(),
                   static_cast<i64>(param.size()), p, decay);
  }
};
}  // namespace

TEST_CASE("AdamW: three steps against PyTorch's AdamW formula in double") {
  for (bool decay : {true, false}) {
    rng_t r(90 + decay);
    const i64 n = 37;
    const vec w0 = r.uniform(n, -1, 1);
    op::math::adamw_params p;
    p.lr = 0.05f;
    p.beta1 = 0.9f;
    p.beta2 = 0.95f;
    p.eps = 1e-8f;
    p.weight_decay = 0.1f;
    torch_adamw ref{w0, vec(sz(n)), vec(sz(n))};
    adamw_impl<double> d(w0, false);
    adamw_impl<float> f(w0, false);
    adamw_impl<bf16> bm(w0, true), bp(w0, false);
    const std::string tag = decay ? "AdamW wd=0.1" : "AdamW no decay";
    for (std::int64_t step = 1; step <= 3; ++step) {
      p.step = step;
      const vec g = r.uniform(n, -1, 1);
      ref.step(g, p, decay);
      d.step(g, p, decay);
      f.step(g, p, decay);
      bm.step(g, p, decay);
      bp.step(g, p, decay);
      const std::string s = tag + " step " + std::to_string(step) + ": ";
      report(s + "fp64 w", rel_err(from(d.param), ref.w), 1e-14);
      report(s + "fp64 update w - w0", rel_err(minus(from(d.param), w0), minus(ref.w, w0)), 1e-13);
      report(s + "fp64 m", rel_err(from(d.m), ref.m), 1e-14);
      report(s + "fp64 v", rel_err(from(d.v), ref.v), 1e-14);
      report(s + "fp32 update w - w0", rel_err(minus(from(f.param), w0), minus(ref.w, w0)), f32_tol);
      report(s + "fp32 m", rel_err(from(f.m), ref.m), f32_tol);
      report(s + "fp32 v", rel_err(from(f.v), ref.v), f32_tol);
      report(s + "bf16+master: master update", rel_err(minus(from(bm.master), w0), minus(ref.w, w0)), f32_tol);
      report(s + "bf16+master: param", rel_err(from(bm.param), ref.w), bf16_tol);
      bool rounded = true;
      for (i64 i = 0; i < n; ++i) rounded = rounded && bm.param[sz(i)] == bf16(bm.master[sz(i)]);
      CHECK(rounded);  // the stored parameter is the rounding of its master weight
      report(s + "bf16 (no master): param", rel_err(from(bp.param), ref.w), bf16_tol);
      report(s + "bf16 (no master): m", rel_err(from(bp.m), ref.m), f32_tol);
    }
  }
}
