// Every host operator, forward and backward, against PyTorch.
//
// tests/ops/oracle.py (the CTest fixture ops.oracle.generate) writes oracle.json + oracle.bin: inputs
// drawn by torch and PyTorch's forward outputs and autograd gradients. Each case here runs the tessera
// host operator on the same inputs, with fp32 or bf16 storage (bf16 inputs are exactly the bf16 numbers
// torch rounded to; the references are fp32 computed from them), and compares every reference tensor.
//
// Error measure, per tensor:  err = max_i |got_i − ref_i| / max(max_i |ref_i|, 1e-6)  (an all-zero reference is compared absolutely, to 1e-6·tol)
// (the largest absolute difference relative to the reference's largest magnitude; any NaN or inf in
// `got` makes err = inf). Tolerances:
//   tensors tessera stores in bf16 ............................................. 2e-2
//   fp32 tensors of GEMM-heavy operators (linear, attention) ................... 1e-4
//   fp32 tensors of every other operator ....................................... 1e-5
// fp32 tensors of bf16 cases (saved statistics, lse, parameter gradients, AdamW state) are computed in
// fp32 from bf16 inputs, so they get the fp32 tolerance too.
//
// Each case runs twice: variant 0 on one OpenMP thread with packed buffers; variant 1 on two threads
// with the other layouts the operators promise to handle (fused QKV and SwiGLU inputs, padded row
// strides for RoPE and cross-entropy, in-place backwards, the vocabulary split into shards).
// The worst error per operator, dtype and tolerance class is printed.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "tessera/ops/host.hpp"

#ifndef TESSERA_ORACLE_DEFAULT_DIR
#define TESSERA_ORACLE_DEFAULT_DIR "oracle"
#endif

namespace {

namespace ts = tessera;
namespace ops = tessera::ops;
using json = nlohmann::json;
using ts::bf16;
using i64 = std::int64_t;
constexpr ts::host_system hs{};

constexpr double tol_bf16 = 2e-2;
constexpr double tol_pointwise = 1e-5;
constexpr double tol_gemm = 1e-4;

// ---- the manifest and the blob ------------------------------------------------------------------------
struct oracle_data {
  json manifest;
  std::vector<char> blob;
  std::string error;
  std::string dir;
};

const oracle_data& oracle() {
  static const oracle_data d = [] {
    oracle_data o;
    const char* env = std::getenv("TESSERA_ORACLE_DIR");
    o.dir = env && *env ? env : TESSERA_ORACLE_DEFAULT_DIR;
    std::ifstream mf(o.dir + "/oracle.json");
    std::ifstream bf(o.dir + "/oracle.bin", std::ios::binary);
    if (!mf || !bf) {
      o.error = "no oracle.json/oracle.bin in " + o.dir +
                " (run: python3 tests/ops/oracle.py --out DIR, or ctest -R test_oracle, whose fixture does;"
                " TESSERA_ORACLE_DIR=DIR picks the directory)";
      return o;
    }
    try {
      o.manifest = json::parse(mf);
    } catch (const std::exception& e) {
      o.error = std::string("oracle.json: ") + e.what();
      return o;
    }
    o.blob.assign(std::istreambuf_iterator<char>(bf), std::istreambuf_iterator<char>());
    if (o.manifest.value("bytes", i64(-1)) != static_cast<i64>(o.blob.size()))
      o.error = "oracle.bin does not have the size oracle.json records";
    return o;
  }();
  return d;
}

// ---- worst errors, reported per (op, dtype, tolerance) ---------------------------------------------------
struct worst_entry {
  double err = 0;
  std::string where;
  int tensors = 0;
};
std::map<std::tuple<std::string, std::string, double>, worst_entry>& worst() {
  static std::map<std::tuple<std::string, std::string, double>, worst_entry> w;
  return w;
}

/// max|got − ref| / max(max|ref|, tiny); inf if got holds a NaN or inf.
template <class T>
double rel_err(const T* got, const std::vector<float>& ref) {
  double diff = 0, mag = 0;
  bool bad = false;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(static_cast<float>(got[i]));
    const double r = static_cast<double>(ref[i]);
    if (!std::isfinite(g)) bad = true;
    diff = std::max(diff, std::abs(g - r));
    mag = std::max(mag, std::abs(r));
  }
  return bad ? INFINITY : diff / std::max(mag, 1e-6);
}

// ---- one case of the manifest ---------------------------------------------------------------------------
class case_ctx {
 public:
  case_ctx(const std::string& name, const json& c, int variant, double fp32_tol)
      : name_(name), c_(c), variant_(variant), fp32_tol_(fp32_tol) {}

  int variant() const { return variant_; }
  const std::string& name() const { return name_; }
  double p(const char* key) const { return c_.at("params").at(key).get<double>(); }
  i64 ip(const char* key) const { return c_.at("params").at(key).get<i64>(); }
  bool has(const char* tensor) const { return c_.at("tensors").contains(tensor); }

  std::vector<float> f32(const std::string& tensor) const { return raw<float>(tensor, "f32"); }
  std::vector<std::int32_t> i32(const std::string& tensor) const { return raw<std::int32_t>(tensor, "i32"); }
  /// An input converted to storage type T (exact: bf16 inputs are bf16 numbers; checked).
  template <class T>
  std::vector<T> in(const std::string& tensor) const {
    const std::vector<float> f = f32(tensor);
    std::vector<T> v(f.size());
    std::size_t inexact = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
      v[i] = T(f[i]);
      if (static_cast<float>(v[i]) != f[i]) ++inexact;
    }
    INFO(name_, ": input ", tensor, " is not exactly representable");
    CHECK(inexact == 0);
    return v;
  }

  /// Compares `got` (ref.size() elements) with reference tensor `ref_name`; the tolerance follows from
  /// got's type (bf16 storage, or fp32 of this operator's class).
  template <class T>
  void compare(const std::string& ref_name, const T* got, std::size_t n) {
    const std::vector<float> ref = f32(ref_name);
    compared_.insert(ref_name);
    INFO(name_, " variant ", variant_, ": ", ref_name);
    REQUIRE(n == ref.size());
    const double tol = std::is_same_v<T, bf16> ? tol_bf16 : fp32_tol_;
    const double e = rel_err(got, ref);
    INFO("rel err ", e, " > tol ", tol);
    CHECK(e <= tol);
    worst_entry& w = worst()[{c_.at("op").get<std::string>(), c_.at("dtype").get<std::string>(), tol}];
    ++w.tensors;
    if (!(e <= w.err) || w.tensors == 1) {
      w.err = e;
      w.where = name_ + " " + ref_name + (variant_ ? " (variant 1)" : "");
    }
  }
  template <class T>
  void compare(const std::string& ref_name, const std::vector<T>& got) {
    compare(ref_name, got.data(), got.size());
  }

  /// Every *_ref tensor of the case must have been compared.
  void check_all_compared() const {
    for (const auto& [k, v] : c_.at("tensors").items()) {
      (void)v;
      if (k.size() > 4 && k.compare(k.size() - 4, 4, "_ref") == 0) {
        INFO(name_, " variant ", variant_, ": reference ", k, " was never compared");
        CHECK(compared_.count(k) == 1);
      }
    }
  }

 private:
  template <class E>
  std::vector<E> raw(const std::string& tensor, const char* dtype) const {
    const json& t = c_.at("tensors").at(tensor);
    REQUIRE_MESSAGE(t.at("dtype").get<std::string>() == dtype, name_, ": ", tensor, " is not ", dtype);
    std::size_t n = 1;
    for (const auto& d : t.at("shape")) n *= d.get<std::size_t>();
    const std::size_t off = t.at("offset").get<std::size_t>();
    const auto& blob = oracle().blob;
    REQUIRE_MESSAGE(off + n * sizeof(E) <= blob.size(), name_, ": ", tensor, " lies outside oracle.bin");
    std::vector<E> v(n);
    if (n) std::memcpy(v.data(), blob.data() + off, n * sizeof(E));
    return v;
  }

  std::string name_;
  const json& c_;
  int variant_;
  double fp32_tol_;
  std::set<std::string> compared_;
};

/// Runs `f.template operator()<T>(ctx)` for every case of `op` in the manifest, T = float or bf16, in both
/// variants; prints the worst errors.
template <class F>
void run_op(const std::string& op, double fp32_tol, F&& f) {
  const oracle_data& o = oracle();
  REQUIRE_MESSAGE(o.error.empty(), o.error);
  const int saved_threads = omp_get_max_threads();
  int cases = 0;
  for (const auto& item : o.manifest.at("cases").items()) {
    const std::string& name = item.key();
    const json& c = item.value();
    if (c.at("op").get<std::string>() != op) continue;
    ++cases;
    const std::string dt = c.at("dtype").get<std::string>();
    REQUIRE_MESSAGE((dt == "f32" || dt == "bf16"), name, ": unknown dtype ", dt);
    for (int variant = 0; variant < 2; ++variant) {
      omp_set_num_threads(variant == 0 ? 1 : 2);
      case_ctx cx(name, c, variant, fp32_tol);
      if (dt == "f32") f.template operator()<float>(cx);
      else f.template operator()<bf16>(cx);
      cx.check_all_compared();
    }
  }
  omp_set_num_threads(saved_threads);
  INFO("the oracle has no case of ", op);
  CHECK(cases > 0);
  for (const auto& [key, w] : worst()) {
    if (std::get<0>(key) != op) continue;
    std::printf("oracle %-14s %-4s tol %.0e: worst rel err %.2e over %3d tensors (%s)\n", op.c_str(),
                std::get<1>(key).c_str(), std::get<2>(key), w.err, w.tensors, w.where.c_str());
  }
  std::fflush(stdout);
}

template <class T>
std::vector<T> zeros(std::size_t n) {
  return std::vector<T>(n, static_cast<T>(0.0f));
}

/// Columns [c0, c0 + w) of the rows of a [rows × ld] buffer, packed.
template <class T>
std::vector<T> columns(const std::vector<T>& buf, i64 rows, i64 ld, i64 c0, i64 w) {
  std::vector<T> out(static_cast<std::size_t>(rows * w));
  for (i64 r = 0; r < rows; ++r)
    std::copy_n(buf.begin() + r * ld + c0, w, out.begin() + r * w);
  return out;
}
/// Writes packed [rows × w] into columns [c0, c0 + w) of a [rows × ld] buffer.
template <class T>
void put_columns(std::vector<T>& buf, i64 ld, i64 c0, const std::vector<T>& src, i64 rows, i64 w) {
  for (i64 r = 0; r < rows; ++r) std::copy_n(src.begin() + r * w, w, buf.begin() + r * ld + c0);
}
/// Number of elements of buf outside columns [c0, c0 + w) that differ from `fill`.
template <class T>
long outside_changed(const std::vector<T>& buf, i64 rows, i64 ld, i64 c0, i64 w, float fill) {
  long bad = 0;
  for (i64 r = 0; r < rows; ++r)
    for (i64 c = 0; c < ld; ++c)
      if ((c < c0 || c >= c0 + w) && static_cast<float>(buf[static_cast<std::size_t>(r * ld + c)]) != fill) ++bad;
  return bad;
}

}  // namespace

// ---- element-wise -----------------------------------------------------------------------------------------
TEST_CASE("oracle: gelu (tanh) forward and backward") {
  run_op("gelu", tol_pointwise, []<class T>(case_ctx& cx) {
    const i64 n = cx.ip("n");
    const auto x = cx.in<T>("x");
    const auto dy = cx.in<T>("dy");
    auto y = zeros<T>(x.size());
    ops::gelu_forward(hs, x.data(), n, y.data());
    cx.compare("y_ref", y);
    auto dx = zeros<T>(x.size());
    if (cx.variant() == 0) {
      ops::gelu_backward(hs, dy.data(), x.data(), n, dx.data());
    } else {  // in place: dx aliases dy
      dx = dy;
      ops::gelu_backward(hs, dx.data(), x.data(), n, dx.data());
    }
    cx.compare("dx_ref", dx);
  });
}

TEST_CASE("oracle: swiglu forward and backward") {
  run_op("swiglu", tol_pointwise, []<class T>(case_ctx& cx) {
    const i64 N = cx.ip("N"), Fd = cx.ip("F");
    const auto gate = cx.in<T>("gate");
    const auto up = cx.in<T>("up");
    const auto dy = cx.in<T>("dy");
    auto y = zeros<T>(static_cast<std::size_t>(N * Fd));
    if (cx.variant() == 0) {  // separate gate and up, rows F apart
      ops::swiglu_forward(hs, gate.data(), up.data(), N, Fd, Fd, y.data());
      cx.compare("y_ref", y);
      auto dgate = zeros<T>(gate.size()), dup = zeros<T>(up.size());
      ops::swiglu_backward(hs, dy.data(), gate.data(), up.data(), N, Fd, Fd, dgate.data(), dup.data());
      cx.compare("dgate_ref", dgate);
      cx.compare("dup_ref", dup);
    } else {  // one fused [N × 2F] projection output: gate then up
      auto gu = zeros<T>(static_cast<std::size_t>(2 * N * Fd));
      put_columns(gu, 2 * Fd, 0, gate, N, Fd);
      put_columns(gu, 2 * Fd, Fd, up, N, Fd);
      ops::swiglu_forward(hs, gu.data(), gu.data() + Fd, N, Fd, 2 * Fd, y.data());
      cx.compare("y_ref", y);
      auto dgu = zeros<T>(gu.size());
      ops::swiglu_backward(hs, dy.data(), gu.data(), gu.data() + Fd, N, Fd, 2 * Fd, dgu.data(), dgu.data() + Fd);
      cx.compare("dgate_ref", columns(dgu, N, 2 * Fd, 0, Fd));
      cx.compare("dup_ref", columns(dgu, N, 2 * Fd, Fd, Fd));
    }
  });
}

TEST_CASE("oracle: residual add") {
  run_op("add", tol_pointwise, []<class T>(case_ctx& cx) {
    const i64 n = cx.ip("n");
    auto a = cx.in<T>("a");
    const auto b = cx.in<T>("b");
    if (cx.variant() == 0) {
      auto y = zeros<T>(a.size());
      ops::add(hs, a.data(), b.data(), n, y.data());
      cx.compare("y_ref", y);
    } else {  // in place into a
      ops::add(hs, a.data(), b.data(), n, a.data());
      cx.compare("y_ref", a);
    }
  });
}

// ---- normalisation ----------------------------------------------------------------------------------------
TEST_CASE("oracle: layernorm forward and backward, with and without bias") {
  run_op("layernorm", tol_pointwise, []<class T>(case_ctx& cx) {
    using A = ops::acc_t<T>;
    const i64 N = cx.ip("N"), C = cx.ip("C");
    const bool bias = cx.ip("bias") != 0;
    const float eps = static_cast<float>(cx.p("eps"));
    const auto x = cx.in<T>("x");
    const auto g = cx.in<T>("gamma");
    const auto b = bias ? cx.in<T>("beta") : std::vector<T>{};
    const auto dy = cx.in<T>("dy");
    auto y = zeros<T>(x.size());
    std::vector<A> mean(static_cast<std::size_t>(N)), rstd(static_cast<std::size_t>(N));
    ops::layernorm_forward(hs, x.data(), g.data(), bias ? b.data() : nullptr, N, C, eps, y.data(), mean.data(),
                           rstd.data());
    cx.compare("y_ref", y);
    cx.compare("mean_ref", mean);
    cx.compare("rstd_ref", rstd);
    auto dx = zeros<T>(x.size());
    auto dg = zeros<ops::grad_t<T>>(g.size()), db = zeros<ops::grad_t<T>>(g.size());
    ops::layernorm_backward(hs, dy.data(), x.data(), g.data(), mean.data(), rstd.data(), N, C, dx.data(),
                            dg.data(), bias ? db.data() : nullptr);
    cx.compare("dx_ref", dx);
    cx.compare("dgamma_ref", dg);
    if (bias) cx.compare("dbeta_ref", db);
  });
}

TEST_CASE("oracle: rmsnorm (Llama) forward and backward") {
  run_op("rmsnorm", tol_pointwise, []<class T>(case_ctx& cx) {
    using A = ops::acc_t<T>;
    const i64 N = cx.ip("N"), C = cx.ip("C");
    const float eps = static_cast<float>(cx.p("eps"));
    const auto x = cx.in<T>("x");
    const auto g = cx.in<T>("gamma");
    const auto dy = cx.in<T>("dy");
    auto y = zeros<T>(x.size());
    std::vector<A> rstd(static_cast<std::size_t>(N));
    ops::rmsnorm_forward(hs, x.data(), g.data(), N, C, eps, y.data(), rstd.data());
    cx.compare("y_ref", y);
    cx.compare("rstd_ref", rstd);
    auto dx = zeros<T>(x.size());
    auto dg = zeros<ops::grad_t<T>>(g.size());
    ops::rmsnorm_backward(hs, dy.data(), x.data(), g.data(), rstd.data(), N, C, dx.data(), dg.data());
    cx.compare("dx_ref", dx);
    cx.compare("dgamma_ref", dg);
  });
}

// ---- linear -----------------------------------------------------------------------------------------------
namespace {
template <class T>
void linear_case(case_ctx& cx) {
  const i64 N = cx.ip("N"), in = cx.ip("in"), out = cx.ip("out");
  const bool bias = cx.ip("bias") != 0;
  const auto x = cx.in<T>("x");
  const auto W = cx.in<T>("W");
  const auto b = bias ? cx.in<T>("b") : std::vector<T>{};
  const auto dy = cx.in<T>("dy");
  auto y = zeros<T>(static_cast<std::size_t>(N * out));
  ops::linear_forward(hs, x.data(), W.data(), bias ? b.data() : nullptr, N, in, out, y.data());
  cx.compare("y_ref", y);
  auto dx = zeros<T>(x.size());
  auto dW = zeros<ops::grad_t<T>>(W.size());
  auto db = zeros<ops::grad_t<T>>(static_cast<std::size_t>(out));
  ops::linear_backward(hs, dy.data(), x.data(), W.data(), N, in, out, dx.data(), dW.data(),
                       bias ? db.data() : nullptr);
  cx.compare("dx_ref", dx);
  cx.compare("dW_ref", dW);
  if (bias) cx.compare("db_ref", db);
}
}  // namespace

TEST_CASE("oracle: linear forward and backward, with and without bias") {
  run_op("linear", tol_gemm, []<class T>(case_ctx& cx) { linear_case<T>(cx); });
}

// ---- attention --------------------------------------------------------------------------------------------
namespace {
template <int D, class T>
void attention_case(case_ctx& cx) {
  using A = ops::acc_t<T>;
  const i64 B = cx.ip("B"), Tn = cx.ip("T"), Hq = cx.ip("Hq"), Hkv = cx.ip("Hkv");
  const A scale = static_cast<A>(cx.p("scale"));
  const i64 N = B * Tn, wq = Hq * D, wk = Hkv * D;
  const auto q = cx.in<T>("q");
  const auto k = cx.in<T>("k");
  const auto v = cx.in<T>("v");
  const auto dO = cx.in<T>("do");
  std::vector<A> lse(static_cast<std::size_t>(B * Hq * Tn));
  if (cx.variant() == 0) {  // packed heads
    ops::attention_shape sh{B, Tn, Hq, Hkv};
    auto o = zeros<T>(q.size());
    ops::attention_forward<D>(hs, q.data(), k.data(), v.data(), o.data(), lse.data(), sh, scale);
    cx.compare("o_ref", o);
    cx.compare("lse_ref", lse);
    auto dq = zeros<T>(q.size()), dk = zeros<T>(k.size()), dv = zeros<T>(v.size());
    ops::attention_backward<D>(hs, dO.data(), q.data(), k.data(), v.data(), o.data(), lse.data(), sh, scale,
                               dq.data(), dk.data(), dv.data());
    cx.compare("dq_ref", dq);
    cx.compare("dk_ref", dk);
    cx.compare("dv_ref", dv);
  } else {  // q, k, v as column blocks of one fused QKV output; o and dO rows padded by 3
    const i64 ld = wq + 2 * wk, ld_o = wq + 3;
    auto qkv = zeros<T>(static_cast<std::size_t>(N * ld));
    put_columns(qkv, ld, 0, q, N, wq);
    put_columns(qkv, ld, wq, k, N, wk);
    put_columns(qkv, ld, wq + wk, v, N, wk);
    auto dOp = zeros<T>(static_cast<std::size_t>(N * ld_o));
    put_columns(dOp, ld_o, 0, dO, N, wq);
    ops::attention_shape sh{B, Tn, Hq, Hkv, ld, ld, ld, ld_o};
    std::vector<T> o(static_cast<std::size_t>(N * ld_o), T(-5.0f));
    ops::attention_forward<D>(hs, qkv.data(), qkv.data() + wq, qkv.data() + wq + wk, o.data(), lse.data(), sh,
                              scale);
    CHECK(outside_changed(o, N, ld_o, 0, wq, -5.0f) == 0);
    cx.compare("o_ref", columns(o, N, ld_o, 0, wq));
    cx.compare("lse_ref", lse);
    std::vector<T> dqkv(qkv.size(), T(-5.0f));
    ops::attention_backward<D>(hs, dOp.data(), qkv.data(), qkv.data() + wq, qkv.data() + wq + wk, o.data(),
                               lse.data(), sh, scale, dqkv.data(), dqkv.data() + wq, dqkv.data() + wq + wk);
    cx.compare("dq_ref", columns(dqkv, N, ld, 0, wq));
    cx.compare("dk_ref", columns(dqkv, N, ld, wq, wk));
    cx.compare("dv_ref", columns(dqkv, N, ld, wq + wk, wk));
  }
}
}  // namespace

TEST_CASE("oracle: causal GQA flash attention forward and backward") {
  run_op("attention", tol_gemm, []<class T>(case_ctx& cx) {
    switch (cx.ip("D")) {
      case 32: attention_case<32, T>(cx); break;
      case 64: attention_case<64, T>(cx); break;
      default: FAIL("attention: no instantiation for head size ", cx.ip("D"));
    }
  });
}

// ---- RoPE -------------------------------------------------------------------------------------------------
TEST_CASE("oracle: rope (Hugging Face rotate_half) table, forward and backward") {
  run_op("rope", tol_pointwise, []<class T>(case_ctx& cx) {
    using A = ops::acc_t<T>;
    const i64 B = cx.ip("B"), Tn = cx.ip("T"), H = cx.ip("H"), D = cx.ip("D"), pos0 = cx.ip("pos0");
    const float theta = static_cast<float>(cx.p("theta"));
    const i64 N = B * Tn, w = H * D;
    const ops::rope_table<A> table(pos0 + Tn, D, theta);
    cx.compare("cos_ref", table.cos);
    cx.compare("sin_ref", table.sin);
    const auto x = cx.in<T>("x");
    const auto dy = cx.in<T>("dy");
    const i64 ld = cx.variant() == 0 ? w : w + 5;  // variant 1: padded rows, padding must stay untouched
    std::vector<T> buf(static_cast<std::size_t>(N * ld), T(3.0f));
    put_columns(buf, ld, 0, x, N, w);
    ops::rope_forward(hs, buf.data(), N, Tn, H, D, ld, pos0, table.cos.data(), table.sin.data());
    CHECK(outside_changed(buf, N, ld, 0, w, 3.0f) == 0);
    cx.compare("y_ref", columns(buf, N, ld, 0, w));
    std::fill(buf.begin(), buf.end(), T(3.0f));
    put_columns(buf, ld, 0, dy, N, w);
    ops::rope_backward(hs, buf.data(), N, Tn, H, D, ld, pos0, table.cos.data(), table.sin.data());
    CHECK(outside_changed(buf, N, ld, 0, w, 3.0f) == 0);
    cx.compare("dx_ref", columns(buf, N, ld, 0, w));
  });
}

// ---- token + position embedding ---------------------------------------------------------------------------
TEST_CASE("oracle: token and position embedding forward and backward") {
  run_op("embedding", tol_pointwise, []<class T>(case_ctx& cx) {
    using G = ops::grad_t<T>;
    const i64 B = cx.ip("B"), Tn = cx.ip("T"), C = cx.ip("C"), V = cx.ip("V"), P = cx.ip("P"), pos0 = cx.ip("pos0");
    const i64 N = B * Tn;
    const auto tokens = cx.i32("tokens");
    const auto wte = cx.in<T>("wte");
    const auto wpe = cx.in<T>("wpe");
    const auto dy = cx.in<T>("dy");
    REQUIRE(static_cast<i64>(tokens.size()) == N);
    auto y = zeros<T>(static_cast<std::size_t>(N * C));
    auto dwte = zeros<G>(wte.size());
    if (cx.variant() == 0) {
      ops::embedding_forward(hs, tokens.data(), N, wte.data(), V, 0, C, y.data());
      ops::embedding_backward(hs, tokens.data(), N, dy.data(), V, 0, C, dwte.data());
    } else {
      // the vocabulary split into 3 shards of ceil(V/3) rows (the last one padded), one after another here
      // as the tp ranks would hold them: partial outputs summed, gradient rows per shard
      const i64 S = 3, Vl = (V + S - 1) / S;
      for (i64 s = 0; s < S; ++s) {
        const i64 v0 = s * Vl;
        auto shard = zeros<T>(static_cast<std::size_t>(Vl * C));
        for (i64 r = 0; r < Vl && v0 + r < V; ++r)
          std::copy_n(wte.begin() + (v0 + r) * C, C, shard.begin() + r * C);
        auto part = zeros<T>(y.size());
        ops::embedding_forward(hs, tokens.data(), N, shard.data(), Vl, v0, C, part.data());
        ops::add(hs, y.data(), part.data(), N * C, y.data());
        auto dshard = zeros<G>(shard.size());
        ops::embedding_backward(hs, tokens.data(), N, dy.data(), Vl, v0, C, dshard.data());
        for (i64 r = 0; r < Vl; ++r) {
          if (v0 + r < V) {
            std::copy_n(dshard.begin() + r * C, C, dwte.begin() + (v0 + r) * C);
          } else {
            for (i64 c = 0; c < C; ++c) CHECK(dshard[static_cast<std::size_t>(r * C + c)] == G(0));
          }
        }
      }
    }
    ops::add_position_embedding(hs, wpe.data(), N, Tn, C, pos0, y.data());
    cx.compare("y_ref", y);
    cx.compare("dwte_ref", dwte);
    auto dwpe = zeros<G>(static_cast<std::size_t>(P * C));
    ops::position_embedding_backward(hs, dy.data(), N, Tn, C, pos0, dwpe.data());
    cx.compare("dwpe_ref", dwpe);
  });
}

// ---- cross-entropy ----------------------------------------------------------------------------------------
TEST_CASE("oracle: cross-entropy forward and backward") {
  run_op("cross_entropy", tol_pointwise, []<class T>(case_ctx& cx) {
    using A = ops::acc_t<T>;
    const i64 N = cx.ip("N"), V = cx.ip("V");
    const A scale = static_cast<A>(cx.p("dloss") / static_cast<double>(N));  // d mean-loss, times upstream
    const auto logits = cx.in<T>("logits");
    const auto targets = cx.i32("targets");
    std::vector<A> lse(static_cast<std::size_t>(N)), loss(static_cast<std::size_t>(N));
    // variant 0: packed [N × V]. variant 1: 3 padding columns (huge logits that must be ignored, zero
    // gradient) and 2 more columns of row stride beyond them (untouched), backward in place.
    const i64 Vl = cx.variant() == 0 ? V : V + 3, ld = cx.variant() == 0 ? V : V + 5;
    std::vector<T> buf(static_cast<std::size_t>(N * ld), T(7.0f));
    for (i64 n = 0; n < N; ++n)
      for (i64 c = V; c < Vl; ++c) buf[static_cast<std::size_t>(n * ld + c)] = T(1e4f);
    put_columns(buf, ld, 0, logits, N, V);
    const ops::vocab_slice vs{Vl, 0, V, ld};
    ops::cross_entropy_forward(hs, buf.data(), targets.data(), N, vs, lse.data(), loss.data());
    cx.compare("lse_ref", lse);
    cx.compare("rows_ref", loss);
    double sum = 0;
    for (A l : loss) sum += static_cast<double>(l);
    const std::vector<float> mean{static_cast<float>(sum / static_cast<double>(N))};
    cx.compare("loss_ref", mean);
    if (cx.variant() == 0) {
      auto d = zeros<T>(logits.size());
      ops::cross_entropy_backward(hs, buf.data(), targets.data(), lse.data(), N, vs, scale, d.data());
      cx.compare("dlogits_ref", d);
    } else {
      ops::cross_entropy_backward(hs, buf.data(), targets.data(), lse.data(), N, vs, scale, buf.data());
      long bad_pad = 0;
      for (i64 n = 0; n < N; ++n)
        for (i64 c = V; c < ld; ++c)
          if (static_cast<float>(buf[static_cast<std::size_t>(n * ld + c)]) != (c < Vl ? 0.0f : 7.0f)) ++bad_pad;
      CHECK(bad_pad == 0);
      cx.compare("dlogits_ref", columns(buf, N, ld, 0, V));
    }
  });
}

// ---- AdamW ------------------------------------------------------------------------------------------------
TEST_CASE("oracle: AdamW steps against torch.optim.AdamW") {
  run_op("adamw", tol_pointwise, []<class T>(case_ctx& cx) {
    using G = ops::grad_t<T>;
    const i64 n = cx.ip("n"), steps = cx.ip("steps");
    const double wd = cx.p("weight_decay");
    const auto w0 = cx.f32("w0");
    const auto grads = cx.f32("grads");
    REQUIRE(static_cast<i64>(grads.size()) == steps * n);
    ops::math::adamw_params p;
    p.lr = static_cast<float>(cx.p("lr"));
    p.beta1 = static_cast<float>(cx.p("beta1"));
    p.beta2 = static_cast<float>(cx.p("beta2"));
    p.eps = static_cast<float>(cx.p("eps"));
    // torch's weight_decay=0 must equal tessera's decay=false whatever weight_decay says (variant 0), and
    // decay=true with weight_decay 0 (variant 1)
    bool decay = true;
    p.weight_decay = static_cast<float>(wd);
    if (wd == 0.0 && cx.variant() == 0) {
      p.weight_decay = 0.1f;
      decay = false;
    }
    std::vector<T> param = cx.in<T>("w0");
    std::vector<G> master(w0.begin(), w0.end());
    auto m = zeros<G>(w0.size()), v = zeros<G>(w0.size());
    constexpr bool has_master = std::is_same_v<T, bf16>;
    for (i64 s = 0; s < steps; ++s) {
      p.step = s + 1;
      ops::adamw_step(hs, param.data(), has_master ? master.data() : nullptr, grads.data() + s * n, m.data(),
                      v.data(), n, p, decay);
    }
    cx.compare("param_ref", param);
    if constexpr (has_master) {
      cx.compare("param_ref", master);  // the fp32 master weights, fp32 tolerance
      long bad = 0;
      for (std::size_t i = 0; i < param.size(); ++i)
        if (!(param[i] == bf16(master[i]))) ++bad;
      INFO("the bf16 parameters are not the rounding of the master weights");
      CHECK(bad == 0);
    }
    cx.compare("exp_avg_ref", m);
    cx.compare("exp_avg_sq_ref", v);
  });
}

TEST_CASE("oracle: the manifest holds only operators this suite knows") {
  const oracle_data& o = oracle();
  REQUIRE_MESSAGE(o.error.empty(), o.error);
  const std::set<std::string> known{"gelu",    "swiglu", "add",       "layernorm",     "rmsnorm", "linear",
                                    "attention", "rope", "embedding", "cross_entropy", "adamw"};
  for (const auto& [name, c] : o.manifest.at("cases").items()) {
    INFO(name);
    CHECK(known.count(c.at("op").get<std::string>()) == 1);
  }
  std::printf("oracle: %zu cases from %s\n", o.manifest.at("cases").size(), o.dir.c_str());
}
