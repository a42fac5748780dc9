"""Polynomial coefficients for src/actfast_vmath.h (run with mpmath installed).

Each approximation is a Chebyshev interpolant computed by mpmath.chebyfit at 60 digits
(near-minimax); the printed error is mpmath's estimate of the max absolute error of the
polynomial itself, before any floating-point evaluation error.
"""
import mpmath as mp

mp.mp.dps = 60


OUT = []


def literals(c, T):
    """C literals of the coefficients c (ascending) for type T ("float" or "double")."""
    suf = "f" if T == "float" else ""
    lit = [mp.nstr(ci, 9 if T == "float" else 21, min_fixed=-1, max_fixed=1) for ci in c]
    return [s + (".0" if ("." not in s and "e" not in s) else "") + suf for s in lit]


def horner(lit, var, fma="AF_FMA"):
    """The C expression of the polynomial with coefficient literals lit (ascending) in var."""
    expr = lit[-1]
    for s in reversed(lit[:-1]):
        expr = f"{fma}({var}, {expr}, {s})"
    return expr


def fit(name, f, a, b, deg, T):
    """A C function NAME(t) evaluating the fitted polynomial by Horner's rule."""
    c, err = mp.chebyfit(f, [a, b], deg + 1, error=True)
    c = c[::-1]  # ascending order
    expr = horner(literals(c, T), "t", "AF_FMAF" if T == "float" else "AF_FMA")
    OUT.append(f"/* degree {deg} on [{mp.nstr(a, 8)}, {mp.nstr(b, 8)}]; approximation error {mp.nstr(err, 3)} */")
    OUT.append(f"AF_INLINE {T} {name}({T} t) {{ return {expr}; }}")
    OUT.append("")


ln2h = mp.log(2) / 2
def sq(z):
    return mp.sqrt(z)


def expq(r):  # (exp(r) - 1 - r) / r^2
    if abs(r) < mp.mpf("1e-20"):
        return mp.mpf(1) / 2 + r / 6
    return (mp.exp(r) - 1 - r) / r**2


def logs(z):  # log(1+f) = 2s + s*z*S(z), s = f/(2+f), z = s^2
    if z < mp.mpf("1e-30"):
        return mp.mpf(2) / 3 + 2 * z / 5
    s = sq(z)
    return (2 * mp.atanh(s) / s - 2) / z


def tanht(z):  # tanh(x) = x + x*z*T(z), z = x^2
    if z < mp.mpf("1e-30"):
        return -mp.mpf(1) / 3 + 2 * z / 15
    x = sq(z)
    return (mp.tanh(x) / x - 1) / z


def erfp(z):  # erf(y) = y * P(z), z = y^2
    if z < mp.mpf("1e-30"):
        return 2 / mp.sqrt(mp.pi)
    y = sq(z)
    return mp.erf(y) / y


# Weideman's map for erfcx(y) = exp(y^2) erfc(y), y >= 0:
# erfcx(y) = d/sqrt(pi) + 2 d^2 p(Z), d = 1/(L + y), Z = (L - y) d.
L = mp.mpf(3)


def wp(Z):
    y = L * (1 - Z) / (1 + Z)
    d = 1 / (L + y)
    return (mp.erfc(y) * mp.exp(y * y) - d / mp.sqrt(mp.pi)) / (2 * d * d)



ln2h_w = ln2h * mp.mpf("1.01")
zmax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2 * mp.mpf("1.01")
fit("af__poly_expf", expq, -ln2h_w, ln2h_w, 5, "float")
fit("af__poly_exp", expq, -ln2h_w, ln2h_w, 10, "double")
fit("af__poly_exp_lite", expq, -ln2h_w, ln2h_w, 6, "double")
fit("af__poly_logf", logs, 0, zmax, 3, "float")
fit("af__poly_log", logs, 0, zmax, 7, "double")
# float: on |x| < 1 (af_tanhf switches there; exhaustive 0.98 ulp with FMA, see actfast_vmath.h)
fit("af__poly_tanhf", tanht, 0, 1, 8, "float")
fit("af__poly_tanh", tanht, 0, mp.mpf("0.625") ** 2, 12, "double")
fit("af__poly_tanh_lite", tanht, 0, mp.mpf("0.625") ** 2, 7, "double")
fit("af__poly_erf", erfp, 0, mp.mpf("0.25"), 10, "double")
fit("af__poly_erf_lite", erfp, 0, mp.mpf("0.25"), 6, "double")
ymin, ymax = mp.mpf("0.25"), mp.mpf("27.5")
zlo, zhi = (L - ymax) / (L + ymax), (L - ymin) / (L + ymin)
fit("af__poly_erfcx", wp, zlo, zhi, 22, "double")
fit("af__poly_erfcx_lite", wp, zlo, zhi, 13, "double")


# Derivatives near their negative roots (used in double, where the closed forms cancel):
# f'(x) = t g(t), t = (x - RH) - RL, |t| <= ROOT_W, g a Chebyshev fit of f'(root + t)/t.
ROOT_W = mp.mpf(3) / 4
ROOT_DEG = 22


def _sig(v):
    return 1 / (1 + mp.exp(-v))


def _gelu_d(v):
    return mp.ncdf(v) + v * mp.npdf(v)


def _silu_d(v):
    s = _sig(v)
    return s * (1 + v * (1 - s))


def _mish_d(v):
    t = mp.tanh(mp.log1p(mp.exp(v)))
    return t + v * _sig(v) * (1 - t * t)


C2 = 2 * mp.sqrt(2 / mp.pi)
GA = mp.mpf("0.044715")


def _gelu_tanh_d(v):
    u2 = C2 * (v + GA * v**3)
    s = _sig(u2)
    return s + v * s * (1 - s) * C2 * (1 + 3 * GA * v * v)


for nm, f, guess in [("gelu_grad", _gelu_d, -0.75), ("silu_grad", _silu_d, -1.28),
                     ("mish_grad", _mish_d, -1.19), ("gelu_tanh_grad", _gelu_tanh_d, -0.75)]:
    r = mp.findroot(f, guess)
    rh = float(r)
    rl = float(r - rh)
    fr1 = mp.diff(f, r)

    def g(t, f=f, r=r, fr1=fr1):  # f(r + t) / t, smooth through t = 0
        return fr1 if abs(t) < mp.mpf(10) ** -30 else f(r + t) / t

    c, err = mp.chebyfit(g, [-ROOT_W, ROOT_W], ROOT_DEG + 1, error=True)
    c = c[::-1]
    expr = horner([mp.nstr(ci, 21) for ci in c], "t")
    OUT.append(f"/* {nm}: root {mp.nstr(r, 25)}; f'(root + t) = t g(t), g of degree {ROOT_DEG} on"
               f" |t| <= {mp.nstr(ROOT_W, 5)}, max abs error of g {mp.nstr(err, 3)} (|g| ~ {mp.nstr(abs(fr1), 3)}) */")
    OUT.append(f"#define AF_ROOT_{nm.upper()}_HI {rh!r}")
    OUT.append(f"#define AF_ROOT_{nm.upper()}_LO {rl!r}")
    OUT.append(f"#define AF_ROOT_{nm.upper()}_W {float(ROOT_W)!r}")
    OUT.append(f"AF_INLINE double af__root_{nm}(double t) {{ return t * {expr}; }}")
    OUT.append("")


# tanh_shrink(x) = x - tanh(x) = x^3 G(x^2) for |x| <= TS_C (_activations.pxd): the
# difference cancels near 0, so G = (x - tanh x) / x^3 is fitted, as a polynomial in
# s = x^2 - TS_Z0 centred on the interval (G is completely monotone: the centred
# coefficients alternate, and Horner's rule loses at most a factor G(0) / G(TS_C^2) < 2).
TS_C = mp.mpf("1.5")
TS_Z0 = TS_C**2 / 2


def _tanh_shrink_g(s):
    z = TS_Z0 + s
    if z < mp.mpf("1e-30"):
        return mp.mpf(1) / 3 - 2 * z / 15
    x = mp.sqrt(z)
    return (x - mp.tanh(x)) / x**3


for nm, deg in (("af__poly_tanh_shrink", 22), ("af__poly_tanh_shrink_lite", 14)):
    c, err = mp.chebyfit(_tanh_shrink_g, [-TS_Z0, TS_Z0], deg + 1, error=True)
    c = c[::-1]
    expr = horner(literals(c, "double"), "s")
    OUT.append(f"/* tanh_shrink: (x - tanh x) / x^3 = g(s), s = x^2 - {mp.nstr(TS_Z0, 8)}, for |x| <= {mp.nstr(TS_C, 5)};"
               f" degree {deg}, approximation error {mp.nstr(err, 3)} (g ~ 0.18 .. 0.33) */")
    OUT.append(f"AF_INLINE double {nm}(double s) {{ return {expr}; }}")
    OUT.append("")
OUT.append(f"#define AF_TANH_SHRINK_C {float(TS_C)!r}")
OUT.append(f"#define AF_TANH_SHRINK_Z0 {float(TS_Z0)!r}")
OUT.append("")


# ---- float32 gelu family (af__gelu_rf in actfast_vmath.h) -----------------------------
# R(a) = erfcx(a / sqrt2) / 2 for a in [0, 20], as d C with d = 1 / (1 + a): C = R (1 + a)
# varies by only 5% on the head a < GELU_A0 (a polynomial in t = a - GELU_AM) and by 21%
# on the tail (a polynomial in t = d - GELU_DM), so Horner's rule in float loses little.
# float coefficients: a weighted least-squares fit (Lawson-reweighted towards minimax
# relative error) whose coefficients are rounded to float one at a time from the highest
# degree, the rest refitted after each; the leading ones (c0; c0 and c1 on the tail)
# stay float pairs. numpy does the linear algebra; the references are mpmath's.
def _fit_float(v, f, vm, deg, pairs):
    import numpy as np
    v = np.array([float(q) for q in v])
    f = np.array([float(q) for q in f])
    t = v - vm
    h = float(np.max(np.abs(t)))
    w = 1 / f
    V = np.vander(t / h, deg + 1, increasing=True)
    lw = np.ones_like(t)
    for _ in range(6):
        c, *_ = np.linalg.lstsq(V * (w * lw)[:, None], f * w * lw, rcond=None)
        e = np.abs(V @ c - f) * w
        lw = lw * np.sqrt(e / e.max()) + 1e-3
    coef = list(c / h ** np.arange(deg + 1))
    fixed = {}
    for k in range(deg, pairs - 1, -1):
        fixed[k] = float(np.float32(coef[k]))
        free = [j for j in range(deg + 1) if j not in fixed]
        resid = f - sum(fixed[j] * t**j for j in fixed)
        A = np.stack([t**j for j in free], 1)
        cc, *_ = np.linalg.lstsq(A * w[:, None], resid * w, rcond=None)
        for j, cj in zip(free, cc):
            coef[j] = float(cj)
    for j, q in fixed.items():
        coef[j] = q
    val = np.polynomial.polynomial.polyval(t, coef)
    return coef, float(np.max(np.abs(val / f - 1)))


def _f32lit(q):
    import numpy as np
    return "%.9ef" % np.float32(q)


def _f32pair(q):
    import numpy as np
    hi = np.float32(q)
    return _f32lit(hi), _f32lit(q - float(hi))


def _gelu_R(a):
    y = mp.mpf(a) / mp.sqrt(2)
    return mp.exp(y * y) * mp.erfc(y) / 2


GELU_A0, GELU_AMAX, GELU_NODES = 2.0, 20.0, 3000
GELU_HEAD_DEG, GELU_TAIL_DEG = 12, 10
_nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / GELU_NODES) for k in range(GELU_NODES)]
_ah = [GELU_A0 / 2 * (1 + q) for q in _nodes]
_gelu_am = GELU_A0 / 2
_ch, _eh = _fit_float(_ah, [_gelu_R(a) * (1 + a) for a in _ah], _gelu_am, GELU_HEAD_DEG, 1)
_d0, _d1 = 1 / (1 + mp.mpf(GELU_AMAX)), 1 / (1 + mp.mpf(GELU_A0))
_dd = [(_d0 + _d1) / 2 + (_d1 - _d0) / 2 * q for q in _nodes]
_gelu_dm = float(__import__("numpy").float32(float((_d0 + _d1) / 2)))
_ct, _et = _fit_float(_dd, [_gelu_R(1 / d - 1) / d for d in _dd], _gelu_dm, GELU_TAIL_DEG, 2)
OUT.append(f"/* gelu family: C = erfcx(a/sqrt2)/2 * (1 + a); head a in [0, {GELU_A0}]: C = H0 + t P(t), t = a - AM,"
           f" degree {GELU_HEAD_DEG}, relative error {_eh:.2g}; tail a in [{GELU_A0}, {GELU_AMAX}]: C = T0 + T1 t +"
           f" t^2 Q(t), t = 1/(1 + a) - DM, degree {GELU_TAIL_DEG}, relative error {_et:.2g} (float coefficients) */")
OUT.append(f"#define AF__GELU_A0 {GELU_A0!r}f")
OUT.append(f"#define AF__GELU_AM {_gelu_am!r}f")
OUT.append(f"#define AF__GELU_DM {_f32lit(_gelu_dm)}")
OUT.append("#define AF__GELU_H0 %s\n#define AF__GELU_H0L %s" % _f32pair(_ch[0]))
OUT.append(f"AF_INLINE float af__gelu_headf(float t) {{ return {horner([_f32lit(q) for q in _ch[1:]], 't', 'AF_FMAF')}; }}")
OUT.append("#define AF__GELU_T0 %s\n#define AF__GELU_T0L %s" % _f32pair(_ct[0]))
OUT.append("#define AF__GELU_T1 %s\n#define AF__GELU_T1L %s" % _f32pair(_ct[1]))
OUT.append(f"AF_INLINE float af__gelu_tailf(float t) {{ return {horner([_f32lit(q) for q in _ct[2:]], 't', 'AF_FMAF')}; }}")
# float pairs of the constants of the gelu family
for nm, q in (("RSQRT2PIF", 1 / mp.sqrt(2 * mp.pi)), ("GELU_CF", 2 * mp.sqrt(2 / mp.pi)),
              ("GELU_BF", mp.mpf("0.044715")), ("GELU_B3F", 3 * mp.mpf("0.044715"))):
    import numpy as _np
    _hi = _np.float32(float(q))
    OUT.append(f"#define AF__{nm} {_f32lit(_hi)}\n#define AF__{nm}_LO {_f32lit(float(q - mp.mpf(float(_hi))))}")
OUT.append("")
# ---- end of the float32 gelu family ------------------------------------------------------


# ---- float32 tanh_shrink (af_tanh_shrinkf in actfast_vmath.h) ---------------------------
# g(z) = (x - tanh x) / x^3, z = x^2, on |x| <= TSF_A in float lanes: two pieces split at
# |x| = TSF_SPLIT, each g = G0 + s (G1 + s Q(s)), s = z - Z0, in the float-coefficient fit
# of the gelu family with G0 and G1 kept as float pairs. Why two pieces: the float
# roundings of s, Q and the products fall on the part s (G1 + ...) of g, which is at most
# 15% of g on either piece (29% on one piece over the whole range: 1.3 ulp); why pairs:
# G1 rounded to float alone is 0.15 ulp of the result. Z1 = 1.375 makes s exact on the
# upper piece (Sterbenz, z in [0.81, 1.96]).
TSF_A, TSF_SPLIT, TSF_DEG, TSF_NODES = 1.4, 0.9, 7, 3000
TSF_Z0 = (0.4, 1.375)


def _tsf_g(z):
    return _tanh_shrink_g(z - TS_Z0)


_tsf = []
for lo, hi, zc in ((mp.mpf(0), mp.mpf(TSF_SPLIT) ** 2, TSF_Z0[0]), (mp.mpf(TSF_SPLIT) ** 2, mp.mpf(TSF_A) ** 2, TSF_Z0[1])):
    _zz = [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / TSF_NODES) for k in range(TSF_NODES)]
    _c, _e = _fit_float(_zz, [_tsf_g(q) for q in _zz], float(__import__("numpy").float32(zc)), TSF_DEG, 2)
    _tsf.append((_c, _e))


def _tsf_sel(j):
    return f"up ? {_f32lit(_tsf[1][0][j])} : {_f32lit(_tsf[0][0][j])}"


OUT.append(f"/* tanh_shrink (float): (x - tanh x) / x^3 = G0 + s (G1 + s Q(s)), s = x^2 - Z0, on |x| < {TSF_SPLIT}"
           f" (up = 0: Z0 = {TSF_Z0[0]}, relative error {_tsf[0][1]:.2g}) and {TSF_SPLIT} <= |x| <= {TSF_A}"
           f" (up = 1: Z0 = {TSF_Z0[1]}, relative error {_tsf[1][1]:.2g}); degree {TSF_DEG}, float coefficients,"
           " G0 and G1 float pairs */")
OUT.append(f"#define AF__TSHF_A {TSF_A!r}f")
OUT.append(f"#define AF__TSHF_SPLIT {TSF_SPLIT!r}f")
OUT.append(f"AF_INLINE float af__tshf_z0(int up) {{ return up ? {_f32lit(TSF_Z0[1])} : {_f32lit(TSF_Z0[0])}; }}")
_g01 = []
for j, nm in ((0, "g0"), (1, "g1")):
    _h = [__import__("numpy").float32(c[j]) for c, _ in _tsf]
    _l = [float(c[j]) - float(h) for (c, _), h in zip(_tsf, _h)]
    _g01.append(f"    *{nm} = up ? {_f32lit(_h[1])} : {_f32lit(_h[0])};\n"
                f"    *{nm}l = up ? {_f32lit(_l[1])} : {_f32lit(_l[0])};")
_q = f"({_tsf_sel(TSF_DEG)})"
for j in range(TSF_DEG - 1, 1, -1):
    _q = f"AF_FMAF(s, {_q}, {_tsf_sel(j)})"
OUT.append("AF_INLINE float af__poly_tanh_shrinkf(float s, int up, float *g0, float *g0l, float *g1, float *g1l)\n{\n"
           + "\n".join(_g01) + f"\n    return {_q};\n}}")
OUT.append("")
# ---- end of the float32 tanh_shrink ------------------------------------------------------

print("""/*
 * Generated by tools/gen_vmath_coeffs.py (mpmath Chebyshev fits); do not edit by hand.
 * Polynomials used by actfast_vmath.h. AF_INLINE, AF_FMA and AF_FMAF come from actfast_inline.h.
 */
#ifndef ACTFAST_VMATH_POLY_H
#define ACTFAST_VMATH_POLY_H

#include "actfast_inline.h"
""")
print("\n".join(OUT))
print("#endif /* ACTFAST_VMATH_POLY_H */")
