// bench/ops — every host operator of a GPT-2 small block, timed alone, forward and backward apart.
//
//   ./bench_ops [--batch 4] [--seq 64,128,256,512,1024] [--quick] [--no-bf16] [--part all|ops|adamw] [--json F]
// Shapes: C = 768, 12 heads of D = 64, ffn 3072, vocab 50304, B = --batch, T from --seq (--quick: 64, 256).
// Per (op, T, direction, dtype): two warm-up calls, then calls until --budget-ms is spent (at least
// --min-reps, at most --max-reps); the median is reported. A backward is timed on its own: its inputs
// (activations, saved statistics, upstream gradient) are computed once, before the clock starts.
// AdamW does not depend on T: it is timed once, over all 124,475,904 GPT-2 small parameters (148 tensors,
// decay on matrices and embeddings). Threads: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS (scripts/bench.sh
// sets both to 2). bench/ops_torch.py times the same ops in PyTorch; `scripts/bench.sh ops` runs both.
#include <cblas.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tessera/ops/host.hpp"
#include "tessera/ops/host/openblas_core.hpp"

namespace ts = tessera;
namespace ops = tessera::ops;
using i64 = std::int64_t;

namespace {

constexpr i64 C = 768, H = 12, FF = 3072, V = 50304, MAXPOS = 1024, LAYERS = 12;
constexpr int D = 64;

struct options {
  i64 batch = 4;
  std::vector<i64> seq{64, 128, 256, 512, 1024};
  bool quick = false, no_bf16 = false;
  std::string part = "all";  ///< all, ops (the T-dependent ones) or adamw
  int min_reps = 3, max_reps = 30;
  double budget_ms = 400;
  std::string json;
};

struct record {
  std::string op;
  i64 T;
  std::string dir, dtype;
  double ms, min_ms;
  int reps;
};

/// Median time in ms of f(), after two warm-up calls (the fastest call in *min_out).
double time_ms(const options& o, const std::function<void()>& f, int* reps_out, double* min_out) {
  using clk = std::chrono::steady_clock;
  f();
  f();
  std::vector<double> t;
  const auto start = clk::now();
  while (static_cast<int>(t.size()) < o.min_reps ||
         (static_cast<int>(t.size()) < o.max_reps &&
          std::chrono::duration<double, std::milli>(clk::now() - start).count() < o.budget_ms)) {
    const auto t0 = clk::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(clk::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  *reps_out = static_cast<int>(t.size());
  *min_out = t.front();
  return t.size() % 2 ? t[t.size() / 2] : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
}

/// Deterministic pseudo-random fill in [lo, hi), in parallel (splitmix64 of the index).
template <class T>
void fill(std::vector<T>& v, float lo, float hi, std::uint64_t seed) {
  const i64 n = static_cast<i64>(v.size());
#pragma omp parallel for schedule(static)
  for (i64 i = 0; i < n; ++i) {
    std::uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(i) + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
    v[static_cast<std::size_t>(i)] = T(lo + (hi - lo) * u);
  }
}
template <class T>
std::vector<T> randv(i64 n, float lo, float hi, std::uint64_t seed) {
  std::vector<T> v(static_cast<std::size_t>(n));
  fill(v, lo, hi, seed);
  return v;
}
std::vector<std::int32_t> rand_tokens(i64 n, std::uint64_t seed) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  std::uint64_t s = seed;
  for (auto& x : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<std::int32_t>((s >> 33) % static_cast<std::uint64_t>(V));
  }
  return t;
}

template <class T> const char* dtype_name() { return std::is_same_v<T, float> ? "fp32" : "bf16"; }

class bench {
 public:
  explicit bench(const options& o) : o_(o) {}
  std::vector<record> results;

  void measure(const std::string& op, i64 T, const char* dir, const char* dtype, const std::function<void()>& f) {
    int reps = 0;
    double min_ms = 0;
    const double ms = time_ms(o_, f, &reps, &min_ms);
    results.push_back({op, T, dir, dtype, ms, min_ms, reps});
    std::printf("%-14s %6lld %4s %5s %12.3f %5d\n", op.c_str(), static_cast<long long>(T), dir, dtype, ms, reps);
    std::fflush(stdout);
  }

  /// Every T-dependent operator at one sequence length, storage type S.
  template <class S>
  void block(i64 T) {
    using G = ops::grad_t<S>;
    using A = ops::acc_t<S>;
    const ts::host_system sys{};
    const i64 N = o_.batch * T;
    const char* dt = dtype_name<S>();

    // ---- embedding: x = wte[token] + wpe[t]; backward: dwte[token] += dx, dwpe[t] += Σ_b dx ----
    {
      auto tokens = rand_tokens(N, 1);
      auto wte = randv<S>(V * C, -0.1f, 0.1f, 2), wpe = randv<S>(MAXPOS * C, -0.1f, 0.1f, 3);
      std::vector<S> x(static_cast<std::size_t>(N * C));
      auto dx = randv<S>(N * C, -1, 1, 4);
      std::vector<G> dwte(static_cast<std::size_t>(V * C)), dwpe(static_cast<std::size_t>(MAXPOS * C));
      measure("embedding", T, "fwd", dt, [&] {
        ops::embedding_forward(sys, tokens.data(), N, wte.data(), V, 0, C, x.data());
        ops::add_position_embedding(sys, wpe.data(), N, T, C, 0, x.data());
      });
      measure("embedding", T, "bwd", dt, [&] {
        ops::embedding_backward(sys, tokens.data(), N, dx.data(), V, 0, C, dwte.data());
        ops::position_embedding_backward(sys, dx.data(), N, T, C, 0, dwpe.data());
      });
    }
    // ---- layernorm over rows of C, with gamma and beta ----
    {
      auto x = randv<S>(N * C, -2, 2, 5), g = randv<S>(C, 0.5f, 1.5f, 6), b = randv<S>(C, -0.5f, 0.5f, 7);
      auto dy = randv<S>(N * C, -1, 1, 8);
      std::vector<S> y(x.size()), dx(x.size());
      std::vector<A> mean(static_cast<std::size_t>(N)), rstd(mean.size());
      std::vector<G> dg(static_cast<std::size_t>(C)), db(dg.size());
      measure("layernorm", T, "fwd", dt, [&] {
        ops::layernorm_forward(sys, x.data(), g.data(), b.data(), N, C, 1e-5f, y.data(), mean.data(), rstd.data());
      });
      measure("layernorm", T, "bwd", dt, [&] {
        ops::layernorm_backward(sys, dy.data(), x.data(), g.data(), mean.data(), rstd.data(), N, C, dx.data(),
                                dg.data(), db.data());
      });
    }
    // ---- linears: y = x·Wᵀ + b; backward dx = dy·W, dW += dyᵀ·x, db += Σ dy ----
    // (bf16: OpenBLAS's sbgemm where it has one, else oneDNN's AVX512-BF16 matmul, else widened sgemm)
    const auto linear = [&](const char* name, i64 in, i64 out) {
      auto x = randv<S>(N * in, -1, 1, 9), W = randv<S>(out * in, -0.05f, 0.05f, 10);
      auto b = randv<S>(out, -0.1f, 0.1f, 11), dy = randv<S>(N * out, -1, 1, 12);
      std::vector<S> y(static_cast<std::size_t>(N * out)), dx(x.size());
      std::vector<G> dW(W.size()), db(b.size());
      measure(name, T, "fwd", dt,
              [&] { ops::linear_forward(sys, x.data(), W.data(), b.data(), N, in, out, y.data()); });
      measure(name, T, "bwd", dt, [&] {
        ops::linear_backward(sys, dy.data(), x.data(), W.data(), N, in, out, dx.data(), dW.data(), db.data());
      });
    };
    linear("linear_qkv", C, 3 * C);
    // ---- causal self-attention on the fused QKV output [N × 3C] (q, k, v = column blocks) → [N × C] ----
    {
      auto qkv = randv<S>(N * 3 * C, -1, 1, 13), dout = randv<S>(N * C, -1, 1, 14);
      std::vector<S> out(static_cast<std::size_t>(N * C)), dqkv(qkv.size());
      std::vector<A> lse(static_cast<std::size_t>(o_.batch * H * T));
      ops::attention_shape sh{o_.batch, T, H, H, 3 * C, 3 * C, 3 * C, C};
      const A scale = A(1) / std::sqrt(A(D));
      const S *q = qkv.data(), *k = q + C, *v = q + 2 * C;
      measure("attention", T, "fwd", dt,
              [&] { ops::attention_forward<D>(sys, q, k, v, out.data(), lse.data(), sh, scale); });
      measure("attention", T, "bwd", dt, [&] {
        ops::attention_backward<D>(sys, dout.data(), q, k, v, out.data(), lse.data(), sh, scale, dqkv.data(),
                                   dqkv.data() + C, dqkv.data() + 2 * C);
      });
    }
    linear("linear_proj", C, C);
    // ---- residual add ----
    {
      auto a = randv<S>(N * C, -1, 1, 15), b = randv<S>(N * C, -1, 1, 16);
      std::vector<S> y(a.size());
      measure("add", T, "fwd", dt, [&] { ops::add(sys, a.data(), b.data(), N * C, y.data()); });
    }
    linear("linear_fc", C, FF);
    // ---- GELU (tanh) on [N × 3072] ----
    {
      auto x = randv<S>(N * FF, -3, 3, 17), dy = randv<S>(N * FF, -1, 1, 18);
      std::vector<S> y(x.size()), dx(x.size());
      measure("gelu", T, "fwd", dt, [&] { ops::gelu_forward(sys, x.data(), N * FF, y.data()); });
      measure("gelu", T, "bwd", dt, [&] { ops::gelu_backward(sys, dy.data(), x.data(), N * FF, dx.data()); });
    }
    // ---- cross-entropy over the 50304-token vocabulary, mean over the N rows ----
    {
      auto logits = randv<S>(N * V, -4, 4, 19);
      auto targets = rand_tokens(N, 20);
      std::vector<S> dlogits(logits.size());
      std::vector<A> lse(static_cast<std::size_t>(N)), loss(lse.size());
      const ops::vocab_slice vs{V, 0, V, V};
      volatile A sink = 0;
      measure("cross_entropy", T, "fwd", dt, [&] {
        ops::cross_entropy_forward(sys, logits.data(), targets.data(), N, vs, lse.data(), loss.data());
        A mean = 0;
        for (i64 n = 0; n < N; ++n) mean += loss[static_cast<std::size_t>(n)];
        sink = mean / static_cast<A>(N);
      });
      measure("cross_entropy", T, "bwd", dt, [&] {
        ops::cross_entropy_backward(sys, logits.data(), targets.data(), lse.data(), N, vs,
                                    A(1) / static_cast<A>(N), dlogits.data());
      });
    }
  }

  /// One AdamW step over the 148 parameter tensors of GPT-2 small (124,475,904 values).
  template <class S>
  void adamw() {
    using G = ops::grad_t<S>;
    struct tensor {
      i64 n;
      bool decay;
    };
    std::vector<tensor> tensors{{V * C, true}, {MAXPOS * C, true}};
    for (i64 l = 0; l < LAYERS; ++l) {
      for (tensor t : {tensor{C, false}, tensor{C, false},                      // ln_1
                       tensor{3 * C * C, true}, tensor{3 * C, false},          // attn.c_attn
                       tensor{C * C, true}, tensor{C, false},                  // attn.c_proj
                       tensor{C, false}, tensor{C, false},                      // ln_2
                       tensor{FF * C, true}, tensor{FF, false},                // mlp.c_fc
                       tensor{C * FF, true}, tensor{C, false}})                // mlp.c_proj
        tensors.push_back(t);
    }
    tensors.push_back({C, false});
    tensors.push_back({C, false});  // ln_f
    i64 total = 0;
    for (auto t : tensors) total += t.n;
    auto param = randv<S>(total, -0.1f, 0.1f, 21);
    auto grad = randv<G>(total, -0.01f, 0.01f, 22);
    std::vector<G> m(static_cast<std::size_t>(total)), v(m.size()), master;
    if constexpr (!std::is_same_v<S, G>) {
      master.resize(m.size());
      for (std::size_t i = 0; i < master.size(); ++i) master[i] = static_cast<G>(static_cast<float>(param[i]));
    }
    ts::ops::math::adamw_params p{6e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1};
    measure("adamw", 0, "step", dtype_name<S>(), [&] {
      i64 off = 0;
      for (auto t : tensors) {
        ops::adamw_step(ts::host_system{}, param.data() + off, master.empty() ? nullptr : master.data() + off,
                        grad.data() + off, m.data() + off, v.data() + off, t.n, p, t.decay);
        off += t.n;
      }
      ++p.step;
    });
  }

 private:
  const options& o_;
};

}  // namespace

int main(int argc, char** argv) {
  ts::ops::host::openblas::restart_with_cpu_kernels();  // this CPU's OpenBLAS kernels (scripts/bench.sh
                                                            // gives PyTorch the same OPENBLAS_CORETYPE)
  CLI::App app{"tessera host operators, GPT-2 small shapes, forward and backward"};
  options o;
  app.add_option("--batch", o.batch, "batch size B")->check(CLI::PositiveNumber);
  app.add_option("--seq", o.seq, "sequence lengths T (≤ 1024)")->delimiter(',')->check(CLI::Range(1, 1024));
  app.add_flag("--quick", o.quick, "T ∈ {64, 256} only");
  app.add_flag("--no-bf16", o.no_bf16, "time fp32 only");
  app.add_option("--min-reps", o.min_reps, "timed calls at least")->check(CLI::PositiveNumber);
  app.add_option("--max-reps", o.max_reps, "timed calls at most")->check(CLI::PositiveNumber);
  app.add_option("--budget-ms", o.budget_ms, "time spent per measurement before stopping")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--part", o.part, "all, ops (the T-dependent operators) or adamw")
      ->check(CLI::IsMember({"all", "ops", "adamw"}));
  app.add_option("--json", o.json, "write the results here as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.quick) o.seq = {64, 256};
  o.max_reps = std::max(o.max_reps, o.min_reps);

  std::printf("tessera host operators: B = %lld, C = %lld, heads %lld × %d, ffn %lld, vocab %lld; "
              "%d OpenMP threads, %d OpenBLAS threads (%s kernels)\n",
              static_cast<long long>(o.batch), static_cast<long long>(C), static_cast<long long>(H), D,
              static_cast<long long>(FF), static_cast<long long>(V), omp_get_max_threads(),
              openblas_get_num_threads(), ts::ops::host::openblas::core().c_str());
  std::printf("%-14s %6s %4s %5s %12s %5s\n", "op", "T", "dir", "dtype", "median ms", "reps");
  bench b(o);
  if (o.part != "adamw")
    for (i64 T : o.seq) {
      b.block<float>(T);
      if (!o.no_bf16) b.block<ts::bf16>(T);
    }
  if (o.part != "ops") {
    b.adamw<float>();
    if (!o.no_bf16) b.adamw<ts::bf16>();
  }

  if (!o.json.empty()) {
    std::FILE* f = std::fopen(o.json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "bench_ops: cannot write %s\n", o.json.c_str());
      return 1;
    }
    std::fprintf(f, "{\"side\": \"tessera\", \"batch\": %lld, \"omp_threads\": %d, \"openblas_threads\": %d,\n",
                 static_cast<long long>(o.batch), omp_get_max_threads(), openblas_get_num_threads());
    std::fprintf(f, " \"results\": [\n");
    for (std::size_t i = 0; i < b.results.size(); ++i) {
      const record& r = b.results[i];
      std::fprintf(f,
                   "  {\"op\": \"%s\", \"T\": %lld, \"dir\": \"%s\", \"dtype\": \"%s\", \"ms\": %.6f, "
                   "\"min_ms\": %.6f, \"reps\": %d}%s\n",
                   r.op.c_str(), static_cast<long long>(r.T), r.dir.c_str(), r.dtype.c_str(), r.ms, r.min_ms, r.reps,
                   i + 1 < b.results.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  return 0;
}
