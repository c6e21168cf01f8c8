// tests/ops: the host's vector paths against the scalar math they share (ops/math.hpp), at whatever width
// the target has: math::fexp on vectors against expf (ulps over the whole range, clamping, NaN), and every
// vectorised host operator against its scalar kernel on lengths that leave every possible tail. The
// cross-entropy whose forward leaves the logits' gradient is bit for bit the two-pass one (any build).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tessera/ops/elementwise.hpp"
#include "tessera/ops/host/cross_entropy.hpp"
#include "tessera/ops/host/elementwise.hpp"
#include "tessera/ops/math.hpp"

namespace ts = tessera;
namespace ops = tessera::ops;
using ops::i64;

namespace {
/// Distance in units in the last place between two finite floats of the same sign.
std::int64_t ulps(float a, float b) {
  std::int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs(static_cast<std::int64_t>(ia) - ib);
}
std::vector<float> ramp(i64 n, float lo, float hi) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) v[i] = lo + (hi - lo) * static_cast<float>((i * 7919) % n) / static_cast<float>(n);
  return v;
}
}  // namespace

#if TESSERA_HOST_VECTORS
using ts::simd::lanes;
using ts::simd::vfloat;

TEST_CASE("fexp on vectors: within 2 ulp of expf on [-87, 88]; clamped outside; NaN stays NaN") {
  std::int64_t worst = 0;
  float at = 0;
  for (float x0 = -87.0f; x0 < 88.0f; x0 += 0.000731f * static_cast<float>(lanes)) {
    float xs[64], ys[64];
    for (int l = 0; l < lanes; ++l) xs[l] = x0 + 0.000731f * static_cast<float>(l);
    ts::simd::store(ys, ops::math::fexp(ts::simd::load(xs)));
    for (int l = 0; l < lanes; ++l) {
      if (xs[l] > 88.0f) continue;
      const std::int64_t u = ulps(ys[l], std::exp(xs[l]));
      if (u > worst) worst = u, at = xs[l];
    }
  }
  INFO("worst " << worst << " ulp at x = " << at);
  CHECK(worst <= 2);
  float xs[64], ys[64];
  for (int l = 0; l < lanes; ++l) xs[l] = l % 3 == 0 ? -1000.0f : l % 3 == 1 ? 1000.0f : NAN;
  ts::simd::store(ys, ops::math::fexp(ts::simd::load(xs)));
  for (int l = 0; l < lanes; ++l) {
    if (l % 3 == 0) CHECK(ys[l] == doctest::Approx(std::exp(-87.0f)).epsilon(1e-6));
    if (l % 3 == 1) CHECK(ys[l] == doctest::Approx(std::exp(88.0f)).epsilon(1e-6));
    if (l % 3 == 2) CHECK(std::isnan(ys[l]));
  }
}

TEST_CASE("vector operators equal their scalar kernels on every tail length") {
  for (i64 n : {i64(1), i64(lanes - 1), i64(lanes), i64(3 * lanes + 1), i64(5 * lanes - 1), i64(1000)}) {
    CAPTURE(n);
    const auto x = ramp(n, -6.0f, 6.0f), dy = ramp(n, -1.0f, 1.0f);
    std::vector<float> yv(n), ys(n), dxv(n), dxs(n);
    ops::gelu_forward(ts::host_system{}, x.data(), n, yv.data());
    ops::gelu_backward(ts::host_system{}, dy.data(), x.data(), n, dxv.data());
    for (i64 i = 0; i < n; ++i) {
      ops::kernels::gelu_forward<float>{x.data(), ys.data()}(i);
      ops::kernels::gelu_backward<float>{dy.data(), x.data(), dxs.data()}(i);
    }
    for (i64 i = 0; i < n; ++i) {
      REQUIRE(yv[i] == doctest::Approx(ys[i]).epsilon(4e-6).scale(1e-6));
      REQUIRE(dxv[i] == doctest::Approx(dxs[i]).epsilon(4e-6).scale(1e-6));
    }
  }
}

TEST_CASE("vector AdamW equals the scalar update (fp32, and bf16 with fp32 masters)") {
  ops::math::adamw_params p;
  p.lr = 1e-2f, p.weight_decay = 0.1f, p.step = 3, p.grad_scale = 0.5f;
  for (i64 n : {i64(lanes + 3), i64(257)}) {
    CAPTURE(n);
    const auto w0 = ramp(n, -1.0f, 1.0f), g = ramp(n, -0.3f, 0.2f), m0 = ramp(n, -0.01f, 0.01f),
               v0 = ramp(n, 0.0f, 0.001f);
    auto wv = w0, mv = m0, vv = v0, ws = w0, ms = m0, vs = v0;
    ops::adamw_step(ts::host_system{}, wv.data(), static_cast<float*>(nullptr), g.data(), mv.data(), vv.data(), n, p,
                    true);
    const ops::kernels::adamw<float, float> scalar{ws.data(), nullptr, g.data(), ms.data(), vs.data(),
                                                   ops::math::adamw_prepare<float>(p, true)};
    for (i64 i = 0; i < n; ++i) scalar(i);
    for (i64 i = 0; i < n; ++i) {
      REQUIRE(wv[i] == doctest::Approx(ws[i]).epsilon(1e-6));
      REQUIRE(mv[i] == doctest::Approx(ms[i]).epsilon(1e-6));
      REQUIRE(vv[i] == doctest::Approx(vs[i]).epsilon(1e-6));
    }
    std::vector<ts::bf16> hb(n), hs(n);
    auto master_v = w0, master_s = w0, mb = m0, vb = v0, mbs = m0, vbs = v0;
    ops::adamw_step(ts::host_system{}, hb.data(), master_v.data(), g.data(), mb.data(), vb.data(), n, p, false);
    const ops::kernels::adamw<ts::bf16, float> sb{hs.data(), master_s.data(), g.data(), mbs.data(), vbs.data(),
                                                  ops::math::adamw_prepare<float>(p, false)};
    for (i64 i = 0; i < n; ++i) sb(i);
    for (i64 i = 0; i < n; ++i) {
      REQUIRE(master_v[i] == doctest::Approx(master_s[i]).epsilon(1e-6));
      REQUIRE(std::abs(static_cast<float>(hb[i]) - static_cast<float>(hs[i])) <=
              std::abs(static_cast<float>(hs[i])) * 0.0079f);  // at most one bf16 rounding step apart
    }
  }
}

TEST_CASE("cross-entropy's vector exp sums equal the scalar definition for vocabularies with tails") {
  for (i64 V : {i64(lanes - 1), i64(4 * lanes + 3), i64(301)}) {
    CAPTURE(V);
    const i64 N = 3;
    const auto logits = ramp(N * V, -5.0f, 7.0f);
    std::vector<std::int32_t> tgt{0, static_cast<std::int32_t>(V / 2), static_cast<std::int32_t>(V - 1)};
    std::vector<float> lse(N), loss(N);
    ops::cross_entropy_forward(ts::host_system{}, logits.data(), tgt.data(), N, ops::vocab_slice{V, 0, V, V},
                               lse.data(), loss.data());
    for (i64 n = 0; n < N; ++n) {
      double mx = -1e30, s = 0;
      for (i64 c = 0; c < V; ++c) mx = std::max(mx, double(logits[n * V + c]));
      for (i64 c = 0; c < V; ++c) s += std::exp(double(logits[n * V + c]) - mx);
      const double want = mx + std::log(s);
      CHECK(lse[n] == doctest::Approx(want).epsilon(2e-6));
      CHECK(loss[n] == doctest::Approx(want - logits[n * V + tgt[n]]).epsilon(2e-5));
    }
  }
}
#else
TEST_CASE("vector math: no host vectors in this build") { MESSAGE("TESSERA_HOST_VECTORS is 0: scalar loops only"); }
#endif

namespace {
/// cross_entropy_forward + cross_entropy_backward against cross_entropy_forward_with_grad +
/// cross_entropy_backward_from_grad: lse, loss and every gradient column identical in bits; the columns
/// between V_local and ld untouched.
template <class T>
void check_forward_with_grad(i64 N, ops::vocab_slice vs, T scale) {
  const i64 ld = vs.ld, vocab = vs.vocab;
  std::vector<T> logits(static_cast<std::size_t>(N * ld));
  for (i64 i = 0; i < N * ld; ++i) logits[i] = static_cast<T>(std::sin(0.7 * static_cast<double>(i)) * 6.0);
  for (i64 n = 0; n < N; ++n)
    for (i64 c = vs.V_local; c < ld; ++c) logits[n * ld + c] = T(12345);  // not ours: must stay
  std::vector<std::int32_t> tgt(static_cast<std::size_t>(N));
  for (i64 n = 0; n < N; ++n) tgt[n] = static_cast<std::int32_t>((n * 7919 + 3) % vocab);  // some outside the slice
  tgt[0] = static_cast<std::int32_t>(vs.v0);
  tgt[N - 1] = static_cast<std::int32_t>(std::min(vocab, vs.v0 + vs.V_local) - 1);
  std::vector<T> two = logits, fused = logits;
  std::vector<ops::acc_t<T>> lse2(N), loss2(N), lsef(N), lossf(N);
  ops::cross_entropy_forward(ts::host_system{}, two.data(), tgt.data(), N, vs, lse2.data(), loss2.data());
  ops::cross_entropy_backward(ts::host_system{}, two.data(), tgt.data(), lse2.data(), N, vs, scale, two.data());
  ops::cross_entropy_forward_with_grad(ts::host_system{}, fused.data(), tgt.data(), N, vs, lsef.data(), lossf.data());
  ops::cross_entropy_backward_from_grad(ts::host_system{}, fused.data(), N, vs, scale);
  CHECK(std::memcmp(lse2.data(), lsef.data(), lse2.size() * sizeof(lse2[0])) == 0);
  CHECK(std::memcmp(loss2.data(), lossf.data(), loss2.size() * sizeof(loss2[0])) == 0);
  CHECK(std::memcmp(two.data(), fused.data(), two.size() * sizeof(T)) == 0);
  i64 kept = 0;
  for (i64 n = 0; n < N; ++n)
    for (i64 c = vs.V_local; c < ld; ++c) kept += fused[n * ld + c] == T(12345);
  CHECK(kept == N * (ld - vs.V_local));
}
}  // namespace

TEST_CASE("cross-entropy with the gradient made in the forward equals forward + backward, bit for bit") {
  for (i64 V : {i64(1), i64(7), i64(37), i64(301)}) {
    CAPTURE(V);
    const i64 N = 5;
    check_forward_with_grad<float>(N, ops::vocab_slice{V, 0, V, V}, 1.0f / 3.0f);            // plain
    check_forward_with_grad<double>(N, ops::vocab_slice{V, 0, V, V}, 1.0 / 3.0);
    check_forward_with_grad<float>(N, ops::vocab_slice{V + 3, 0, V, V + 3}, 0.1f);           // 3 padding columns
    check_forward_with_grad<float>(N, ops::vocab_slice{V, 10, V + 10, V + 5}, 0.7f);         // a slice, strided rows
  }
}
