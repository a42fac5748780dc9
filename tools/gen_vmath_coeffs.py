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
