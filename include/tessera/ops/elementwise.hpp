// tessera/ops/elementwise.hpp — the element-wise operators as TS_HD functors over a flat index.
//
// Each functor is one operator's whole per-element body; a backend runs it with
// `sys.for_each_index(n, f)` (an OpenMP loop on the host, thrust::for_each on CUDA), so the host
// tests run exactly the arithmetic the GPU runs. Functors hold raw pointers and sizes only (no class-type
// template arguments: they go straight into device code).
#pragma once
#include <cstdint>

#include "tessera/core/config.hpp"
#include "tessera/ops/math.hpp"

namespace tessera::ops::kernels {

using i64 = std::int64_t;

/// y = gelu(x)
template <class T> struct gelu_forward {
  const T* x; T* y;
  TS_HD void operator()(i64 i) const { y[i] = store<T>(math::gelu(load(x[i]))); }
};
/// dx = dy · gelu'(x)  (dx may alias dy)
template <class T> struct gelu_backward {
  const T* dy; const T* x; T* dx;
  TS_HD void operator()(i64 i) const { dx[i] = store<T>(load(dy[i]) * math::gelu_grad(load(x[i]))); }
};

/// out[r, c] = silu(gate[r, c]) · up[r, c]; gate/up rows are ld_in apart, out rows F apart.
template <class T> struct swiglu_forward {
  const T* gate; const T* up; T* out; i64 F; i64 ld_in;
  TS_HD void operator()(i64 i) const {
    const i64 r = i / F, c = i - r * F;
    out[i] = store<T>(math::silu(load(gate[r * ld_in + c])) * load(up[r * ld_in + c]));
  }
};
/// dgate, dup (rows ld_in apart) from dout (rows F apart).
template <class T> struct swiglu_backward {
  const T* dout; const T* gate; const T* up; T* dgate; T* dup; i64 F; i64 ld_in;
  TS_HD void operator()(i64 i) const {
    const i64 r = i / F, c = i - r * F, j = r * ld_in + c;
    const auto g = math::swiglu_backward(load(gate[j]), load(up[j]), load(dout[i]));
    dgate[j] = store<T>(g.dgate);
    dup[j] = store<T>(g.dup);
  }
};

/// out = a + b (residual add; out may alias a or b)
template <class T> struct add {
  const T* a; const T* b; T* out;
  TS_HD void operator()(i64 i) const { out[i] = store<T>(load(a[i]) + load(b[i])); }
};

/// x[r·ld + c] = x[r·ld + c]·s (in place) for the first `cols` columns of rows ld apart; i = r·cols + c
template <class T> struct scale_columns {
  T* x; acc_t<T> s; i64 cols, ld;
  TS_HD void operator()(i64 i) const {
    T* p = x + (i / cols) * ld + i % cols;
    *p = store<T>(load(*p) * s);
  }
};

/// x[r, c] += b[c] over rows of C elements (a tp-replicated bias after a reduction)
template <class T> struct add_bias_rows {
  T* x; const T* b; i64 C;
  TS_HD void operator()(i64 i) const { x[i] = store<T>(load(x[i]) + load(b[i % C])); }
};

/// RoPE over x laid out [B·T rows of ld elements], head h at column h·D; one index per (row, head, pair).
/// `table` holds cos then sin, each [T_max × D/2], in the accumulation type; positions start at pos0.
template <class T, bool Backward> struct rope {
  T* x; const acc_t<T>* cos_t; const acc_t<T>* sin_t; i64 T_len; i64 H; i64 half; i64 ld; i64 pos0;
  TS_HD void operator()(i64 i) const {
    const i64 p = i % half;
    const i64 rh = i / half;
    const i64 h = rh % H;
    const i64 row = rh / H;
    const i64 t = row % T_len + pos0;
    T* base = x + row * ld + h * 2 * half;
    const acc_t<T> c = cos_t[t * half + p], s = sin_t[t * half + p];
    const auto r = Backward ? math::rope_rotate_back(load(base[p]), load(base[p + half]), c, s)
                            : math::rope_rotate(load(base[p]), load(base[p + half]), c, s);
    base[p] = store<T>(r.a);
    base[p + half] = store<T>(r.b);
  }
};

/// Token embedding rows, vocab-parallel: out[n] = wte[tok − v0] if v0 ≤ tok < v0 + V_local, else 0
/// (the rows of other tp ranks contribute zero; the caller sums over tp).
template <class T> struct embedding_forward {
  const std::int32_t* tokens; const T* wte; T* out; i64 C; i64 v0; i64 V_local;
  TS_HD void operator()(i64 i) const {
    const i64 n = i / C, c = i - n * C;
    const i64 r = static_cast<i64>(tokens[n]) - v0;
    out[i] = (r >= 0 && r < V_local) ? wte[r * C + c] : store<T>(0.0f);
  }
};
/// x[b, t] += wpe[t + pos0] for rows n = b·T_len + t.
template <class T> struct add_position_embedding {
  const T* wpe; T* x; i64 C; i64 T_len; i64 pos0;
  TS_HD void operator()(i64 i) const {
    const i64 n = i / C, c = i - n * C;
    const i64 t = n % T_len + pos0;
    x[i] = store<T>(load(x[i]) + load(wpe[t * C + c]));
  }
};

/// One AdamW step on element i. With `master` set, the fp32 master weight is updated and the stored
/// (bf16) parameter is its rounding; otherwise the parameter itself is updated.
template <class T, class G> struct adamw {
  T* param; G* master; const G* grad; G* m; G* v; math::adamw_scalars<G> s;
  TS_HD void operator()(i64 i) const {
    const G w = master ? master[i] : static_cast<G>(load(param[i]));
    G mi = m[i], vi = v[i];
    const G nw = math::adamw_update(w, grad[i], mi, vi, s);
    m[i] = mi;
    v[i] = vi;
    if (master) master[i] = nw;
    param[i] = store<T>(nw);
  }
};

}  // namespace tessera::ops::kernels
