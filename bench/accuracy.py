"""Accuracy of every actfast activation and gradient, in ULP of the output dtype.

    python bench/accuracy.py                 # everything: float32 over all 2^32 inputs,
                                             # float64 on 1e8 random + edge inputs
    python bench/accuracy.py --quick         # float32 every 251st bit pattern, float64 2e6
    python bench/accuracy.py --ops sigmoid,gelu_grad --dtype float32 --stride 16

What is measured
----------------
* The error of a result y is |y - ref| / ulp(ref), ulp taken in the output dtype at the
  reference value (subnormal spacing below the normal range). Equal NaN / equal
  infinities count 0; a NaN or inf where the reference has none (or the reverse) is
  reported as inf.
* Gradients ``NAME_grad(x, dy)`` are tested with dy = 1, against f'(x).
* float32: every bit pattern (or every --stride-th) against a float64 reference written
  with NumPy/SciPy in forms that do not cancel (gelu with scipy.special.ndtr, tanh'
  as 1/cosh^2, mish' with sech^2 of softplus, ...). The float64 reference itself is
  good to ~1e-15 relative except near zeros of a derivative; the worst points are
  therefore re-checked against mpmath (column "mp@max": the largest error at the 48 worst
  points of actfast, against mpmath at 40 digits).
* float64: random inputs (uniform on several ranges, and random bit patterns, so all
  magnitudes) plus an edge list, against a reference evaluated in np.longdouble (x86
  80-bit, 64-bit significand: 11 extra bits) with the same formulas; gelu and gelu_grad
  have no long-double ndtr and are checked against mpmath on a subset (--mp-n points).
  Within 0.01 of the negative root of silu', mish', gelu' and gelu_tanh' the long-double
  formulas cancel as well; the reference there is mpmath.
  The worst points are re-checked against mpmath as above.
* For comparison: the idiomatic NumPy/SciPy expression in the input dtype, and PyTorch
  (torch.nn.functional forward, autograd for gradients) when torch is importable.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.special as sc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import actfast as af  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except Exception:  # noqa: BLE001
    torch = None

try:
    import mpmath as mp
except Exception:  # noqa: BLE001
    mp = None

SELU_A = 1.6732632423543772848170429916717
SELU_S = 1.0507009873554804934193349852946
GT_C = 0.044715

# ----------------------------------------------------------------------------------------
# Reference math, generic over a namespace: float64 (NumPy/SciPy), long double, mpmath.
# ----------------------------------------------------------------------------------------


class NP64:
    name = "float64"
    exp, expm1, log1p, tanh, cosh, sqrt = np.exp, np.expm1, np.log1p, np.tanh, np.cosh, np.sqrt
    ndtr = staticmethod(sc.ndtr)
    expit = staticmethod(sc.expit)
    sqrt2pi = math.sqrt(2 * math.pi)
    sqrt2_pi = math.sqrt(2 / math.pi)
    one = 1.0

    @staticmethod
    def c(v):
        return float(v)


class LD(NP64):
    name = "longdouble"
    ndtr = None

    @staticmethod
    def expit(x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))

    sqrt2pi = np.sqrt(np.longdouble(2) * np.arccos(np.longdouble(-1)))
    sqrt2_pi = np.sqrt(np.longdouble(2) / np.arccos(np.longdouble(-1)))
    one = np.longdouble(1)

    @staticmethod
    def c(v):
        return np.longdouble(str(v))


if mp is not None:
    mp.mp.dps = 40

    def _u(f):
        return np.frompyfunc(f, 1, 1)

    class MP:
        name = "mpmath"
        exp, expm1, log1p, tanh, cosh = _u(mp.exp), _u(mp.expm1), _u(mp.log1p), _u(mp.tanh), _u(mp.cosh)
        sqrt = _u(mp.sqrt)
        ndtr = _u(lambda v: mp.ncdf(v) if abs(v) < 1e6 else (mp.mpf(1) if v > 0 else mp.mpf(0)))
        expit = _u(lambda v: 1 / (1 + mp.exp(-v)))
        sqrt2pi = mp.sqrt(2 * mp.pi)
        sqrt2_pi = mp.sqrt(2 / mp.pi)
        one = mp.mpf(1)

        @staticmethod
        def c(v):
            return mp.mpf(str(v))


def _w(c, a, b):
    return np.where(c, a, b)


def _sp(m, x):  # softplus without threshold, no cancellation
    return _w(x > 0, x + m.log1p(m.exp(-abs(x))), m.log1p(m.exp(-abs(x))))


def _gt_u2(m, x):
    return 2 * m.sqrt2_pi * (x + m.c(GT_C) * x * x * x)


def _big(x):
    return abs(x) > 1e4


def _tanh_series_coeffs(n=24):
    """x - tanh(x) = sum_k a_k x^(2k+1), k >= 1, as exact fractions (from Bernoulli numbers:
    tanh x = sum_n 2^2n (2^2n - 1) B_2n x^(2n-1) / (2n)!)."""
    from fractions import Fraction
    B = [Fraction(1)]
    for m_ in range(1, 2 * n + 3):
        B.append(-sum(Fraction(math.comb(m_ + 1, j)) * B[j] for j in range(m_)) / (m_ + 1))
    return [-Fraction(2 ** (2 * k) * (2 ** (2 * k) - 1)) * B[2 * k] / math.factorial(2 * k) for k in range(2, n + 2)]


_TS_COEFFS = _tanh_series_coeffs()


def _tanh_shrink(m, x):
    # x - tanh(x) cancels near 0: an odd series for |x| < 0.5 (24 terms: ~1e-22 relative),
    # the difference above (condition number < 13 there).
    z = x * x
    acc = 0 * x
    for c in reversed(_TS_COEFFS):
        acc = acc * z + m.c(c.numerator) / m.c(c.denominator)
    return _w(abs(x) < 0.5, x * z * acc, x - m.tanh(x))


def _squareplus(m, x, b=4):
    # b = 4: (x + s) / 2, s = sqrt(x^2 + b); b / (2 (s - x)) for x < 0 (no cancellation).
    s = m.sqrt(x * x + b)
    return _w(x >= 0, (x + s) / 2, b / (2 * (s - x)))


def _squareplus_grad(m, x, b=4):
    s = m.sqrt(x * x + b)
    return _w(x > 1e150, m.one, _w(x >= 0, (x + s) / (2 * s), b / (2 * s * (s - x))))


REF = {
    "relu": lambda m, x: _w(x > 0, x, 0 * x),
    "relu_grad": lambda m, x: _w(x > 0, m.one, 0 * m.one),
    "relu6": lambda m, x: _w(x < 0, 0 * x, _w(x > 6, 6 * m.one, x)),
    "relu6_grad": lambda m, x: _w((x > 0) & (x < 6), m.one, 0 * m.one),
    "leaky_relu": lambda m, x, s: _w(x > 0, x, x * s),
    "leaky_relu_grad": lambda m, x, s: _w(x > 0, m.one, s + 0 * x),
    "hard_tanh": lambda m, x: _w(x < -1, -m.one, _w(x > 1, m.one, x)),
    "hard_tanh_grad": lambda m, x: _w((x > -1) & (x < 1), m.one, 0 * m.one),
    "hard_sigmoid": lambda m, x: _w(x < -3, 0 * m.one, _w(x > 3, m.one, (x + 3) / 6)),
    "hard_sigmoid_grad": lambda m, x: _w((x > -3) & (x < 3), m.one / 6, 0 * m.one),
    "hard_swish": lambda m, x: _w(x <= -3, 0 * m.one, _w(x >= 3, x, x * (x + 3) / 6)),
    "hard_swish_grad": lambda m, x: _w(x < -3, 0 * m.one, _w(x <= 3, (x + m.one * 3 / 2) / 3, m.one)),
    "softsign": lambda m, x: x / (1 + abs(x)),
    "softsign_grad": lambda m, x: 1 / ((1 + abs(x)) * (1 + abs(x))),
    "elu": lambda m, x: _w(x > 0, x, m.expm1(_w(x > 0, 0 * x, x))),
    "elu_grad": lambda m, x: _w(x > 0, m.one, m.exp(_w(x > 0, 0 * x, x))),
    "selu": lambda m, x: m.c(SELU_S) * _w(x > 0, x, m.c(SELU_A) * m.expm1(_w(x > 0, 0 * x, x))),
    "selu_grad": lambda m, x: m.c(SELU_S) * _w(x > 0, m.one, m.c(SELU_A) * m.exp(_w(x > 0, 0 * x, x))),
    "celu": lambda m, x: _w(x > 0, x, m.expm1(_w(x > 0, 0 * x, x))),
    "celu_grad": lambda m, x: _w(x > 0, m.one, m.exp(_w(x > 0, 0 * x, x))),
    "sigmoid": lambda m, x: m.expit(x),
    "sigmoid_grad": lambda m, x: m.expit(x) * m.expit(-x),
    "log_sigmoid": lambda m, x: -_sp(m, -x),
    "log_sigmoid_grad": lambda m, x: m.expit(-x),
    "silu": lambda m, x: _w(x < -1e4, 0 * m.one, x * m.expit(x)),
    "silu_grad": lambda m, x: _w(_big(x), _w(x > 0, m.one, 0 * m.one), m.expit(x) * (1 + x * m.expit(-x))),
    "softplus": lambda m, x: _w(x > 20, x, _sp(m, x)),
    "softplus_grad": lambda m, x: _w(x > 20, m.one, m.expit(x)),
    "mish": lambda m, x: _w(x < -1e4, 0 * m.one, x * m.tanh(_sp(m, x))),
    "mish_grad": lambda m, x: _w(_big(x), _w(x > 0, m.one, 0 * m.one),
                                 m.tanh(_sp(m, x)) + x * m.expit(x) / (m.cosh(_sp(m, x)) ** 2)),
    "tanh": lambda m, x: m.tanh(x),
    "tanh_grad": lambda m, x: 1 / m.cosh(_w(abs(x) > 1e4, 1e4 * m.one, x)) ** 2,
    "gelu": lambda m, x: _w(x < -1e4, 0 * m.one, x * m.ndtr(x)),
    "gelu_grad": lambda m, x: _w(_big(x), _w(x > 0, m.one, 0 * m.one),
                                 m.ndtr(x) + x * m.exp(-x * x / 2) / m.sqrt2pi),
    "gelu_tanh": lambda m, x: _w(x < -1e4, 0 * m.one, x * m.expit(_w(_big(x), x, _gt_u2(m, x)))),
    "gelu_tanh_grad": lambda m, x: _w(_big(x), _w(x > 0, m.one, 0 * m.one), _gelu_tanh_grad(m, _w(_big(x), 0 * x, x))),
    "tanh_shrink": _tanh_shrink,
    "tanh_shrink_grad": lambda m, x: m.tanh(x) ** 2,
    "squareplus": _squareplus,
    "squareplus_grad": _squareplus_grad,
    # threshold(x, 0.5, -2), hard_shrink and soft_shrink with lambd = 0.5 (SHRINK_ARGS)
    "threshold": lambda m, x: _w(x <= 0.5, -2 * m.one, x),
    "threshold_grad": lambda m, x: _w(x > 0.5, m.one, 0 * m.one),
    "hard_shrink": lambda m, x: _w((x >= -0.5) & (x <= 0.5), 0 * m.one, x),
    "hard_shrink_grad": lambda m, x: _w((x >= -0.5) & (x <= 0.5), 0 * m.one, m.one),
    "soft_shrink": lambda m, x: _w(x > 0.5, x - 0.5, _w(x < -0.5, x + 0.5, 0 * m.one)),
    "soft_shrink_grad": lambda m, x: _w((x >= -0.5) & (x <= 0.5), 0 * m.one, m.one),
}


# Negative roots of derivatives: near them the long-double reference cancels too, so for
# float64 the reference within ROOT_NEAR of a root is computed with mpmath instead.
ROOTS = {"gelu_grad": -0.7517915246935645, "silu_grad": -1.2784645427610737,
         "mish_grad": -1.1924312145154952, "gelu_tanh_grad": -0.7524614220710163}
ROOT_NEAR = 0.01


def _gelu_tanh_grad(m, x):
    u2 = _gt_u2(m, x)
    return m.expit(u2) + x * m.expit(u2) * m.expit(-u2) * 2 * m.sqrt2_pi * (1 + 3 * m.c(GT_C) * x * x)


# ----------------------------------------------------------------------------------------
# The functions under test, NumPy idioms and PyTorch
# ----------------------------------------------------------------------------------------

PARAMS = {"leaky_relu": 0.01}
# The parameters of the ops that have no defaults worth testing alone (exact in both dtypes).
SHRINK_ARGS = {"threshold": (0.5, -2.0), "hard_shrink": (0.5,), "soft_shrink": (0.5,)}
BASE = ["relu", "relu6", "leaky_relu", "hard_tanh", "hard_sigmoid", "hard_swish", "softsign", "elu",
        "selu", "celu", "sigmoid", "log_sigmoid", "silu", "softplus", "mish", "tanh", "gelu", "gelu_tanh",
        "tanh_shrink", "squareplus", "threshold", "hard_shrink", "soft_shrink"]
ALL_OPS = [n for b in BASE for n in (b, b + "_grad")]


def actfast_fn(op):
    base = op[:-5] if op.endswith("_grad") else op
    grad = op.endswith("_grad")
    if base == "gelu_tanh":
        f = af.gelu_grad if grad else af.gelu
        return (lambda x: f(x, np.ones_like(x), approximate="tanh")) if grad else (lambda x: f(x, approximate="tanh"))
    f = getattr(af, op)
    extra = SHRINK_ARGS.get(base, ())
    return (lambda x: f(x, np.ones_like(x), *extra)) if grad else (lambda x: f(x, *extra))


def numpy_fn(op):
    """The idiomatic NumPy/SciPy expression, computed in the input dtype."""
    erf = sc.erf

    def s(x):
        return 1 / (1 + np.exp(-x))

    def sp(x):
        return np.logaddexp(x.dtype.type(0), x)

    r2 = 1 / math.sqrt(2)
    c = math.sqrt(2 / math.pi)
    table = {
        "relu": lambda x: np.maximum(x, 0),
        "relu_grad": lambda x: np.where(x > 0, x.dtype.type(1), x.dtype.type(0)),
        "relu6": lambda x: np.clip(x, 0, 6),
        "relu6_grad": lambda x: np.where((x > 0) & (x < 6), x.dtype.type(1), x.dtype.type(0)),
        "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
        "leaky_relu_grad": lambda x: np.where(x > 0, x.dtype.type(1), x.dtype.type(0.01)),
        "hard_tanh": lambda x: np.clip(x, -1, 1),
        "hard_tanh_grad": lambda x: np.where((x > -1) & (x < 1), x.dtype.type(1), x.dtype.type(0)),
        "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
        "hard_sigmoid_grad": lambda x: np.where((x > -3) & (x < 3), x.dtype.type(1 / 6), x.dtype.type(0)),
        "hard_swish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
        "hard_swish_grad": lambda x: np.where(x < -3, 0, np.where(x <= 3, x / 3 + 0.5, 1)).astype(x.dtype),
        "softsign": lambda x: x / (1 + np.abs(x)),
        "softsign_grad": lambda x: 1 / (1 + np.abs(x)) ** 2,
        "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
        "elu_grad": lambda x: np.where(x > 0, x.dtype.type(1), np.exp(x)),
        "selu": lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)),
        "selu_grad": lambda x: SELU_S * np.where(x > 0, x.dtype.type(1), SELU_A * np.exp(x)),
        "celu": lambda x: np.where(x > 0, x, np.expm1(x)),
        "celu_grad": lambda x: np.where(x > 0, x.dtype.type(1), np.exp(x)),
        "sigmoid": s,
        "sigmoid_grad": lambda x: s(x) * (1 - s(x)),
        "log_sigmoid": lambda x: -np.logaddexp(x.dtype.type(0), -x),
        "log_sigmoid_grad": lambda x: 1 - s(x),
        "silu": lambda x: x * s(x),
        "silu_grad": lambda x: s(x) * (1 + x * (1 - s(x))),
        "softplus": sp,
        "softplus_grad": s,
        "mish": lambda x: x * np.tanh(sp(x)),
        "mish_grad": lambda x: np.tanh(sp(x)) + x * s(x) * (1 - np.tanh(sp(x)) ** 2),
        "tanh": np.tanh,
        "tanh_grad": lambda x: 1 - np.tanh(x) ** 2,
        "gelu": lambda x: 0.5 * x * (1 + erf(x * r2)),
        "gelu_grad": lambda x: 0.5 * (1 + erf(x * r2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi),
        "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(c * (x + GT_C * x ** 3))),
        "gelu_tanh_grad": lambda x: (lambda t: 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * GT_C * x * x))(
            np.tanh(c * (x + GT_C * x ** 3))),
        "tanh_shrink": lambda x: x - np.tanh(x),
        "tanh_shrink_grad": lambda x: np.tanh(x) ** 2,
        "squareplus": lambda x: (x + np.sqrt(x * x + 4)) / 2,
        "squareplus_grad": lambda x: (1 + x / np.sqrt(x * x + 4)) / 2,
        "threshold": lambda x: np.where(x <= 0.5, x.dtype.type(-2), x),
        "threshold_grad": lambda x: np.where(x > 0.5, x.dtype.type(1), x.dtype.type(0)),
        "hard_shrink": lambda x: np.where(np.abs(x) <= 0.5, x.dtype.type(0), x),
        "hard_shrink_grad": lambda x: np.where(np.abs(x) <= 0.5, x.dtype.type(0), x.dtype.type(1)),
        "soft_shrink": lambda x: np.sign(x) * np.maximum(np.abs(x) - x.dtype.type(0.5), 0),
        "soft_shrink_grad": lambda x: np.where(np.abs(x) <= 0.5, x.dtype.type(0), x.dtype.type(1)),
    }
    return table[op]


def torch_fn(op):
    if torch is None:
        return None
    base = op[:-5] if op.endswith("_grad") else op
    fw = {
        "relu": F.relu, "relu6": F.relu6, "leaky_relu": lambda t: F.leaky_relu(t, 0.01),
        "hard_tanh": F.hardtanh, "hard_sigmoid": F.hardsigmoid, "hard_swish": F.hardswish,
        "softsign": F.softsign, "elu": F.elu, "selu": F.selu, "celu": F.celu, "sigmoid": torch.sigmoid,
        "log_sigmoid": F.logsigmoid, "silu": F.silu, "softplus": F.softplus, "mish": F.mish,
        "tanh": torch.tanh, "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
        "tanh_shrink": F.tanhshrink, "threshold": lambda t: F.threshold(t, 0.5, -2.0),
        "hard_shrink": lambda t: F.hardshrink(t, 0.5), "soft_shrink": lambda t: F.softshrink(t, 0.5),
    }.get(base)
    if fw is None:       # no PyTorch op (squareplus)
        return None
    if not op.endswith("_grad"):
        return lambda x: fw(torch.from_numpy(x)).numpy()

    def g(x):
        t = torch.from_numpy(x.copy()).requires_grad_(True)
        (gr,) = torch.autograd.grad(fw(t), t, torch.ones_like(t))
        return gr.numpy()
    return g


# ----------------------------------------------------------------------------------------
# ULP measurement
# ----------------------------------------------------------------------------------------


def ulp_err(y, ref, dtype, root=None, x=None):
    """|y - ref| in ulps of dtype at ref; y in dtype, ref in float64 or longdouble.

    With ``root`` (a root of the op's f'), within 0.5 of it the error is measured in ulps
    of max(|ref|, 1) (issue 11's convention: a derivative near its root is small only
    because of cancellation in f' itself)."""
    fi = np.finfo(dtype)
    y = y.astype(ref.dtype)
    with np.errstate(all="ignore"):
        scale = np.abs(ref)
        if root is not None:
            scale = np.where((np.abs(x.astype(ref.dtype) - root) < 0.5) & (scale < 1), 1, scale)
        if ref.dtype == np.float64:
            # ulp from the exponent bits (frexp and ldexp are two slow passes each)
            e = (scale.view(np.uint64) >> np.uint64(52)).astype(np.int64) - 1023
            e = np.maximum(e, fi.minexp) - fi.nmant
            ulp = ((e + 1023).astype(np.uint64) << np.uint64(52)).view(np.float64)
        else:
            _, e = np.frexp(scale)
            e = np.maximum(e - 1, fi.minexp) - (fi.nmant)
            ulp = np.ldexp(np.ones_like(scale), e)
        err = np.abs(y - ref) / ulp
        # NaN and infinities, rare: fixed up where they are
        special = np.flatnonzero(~np.isfinite(err) | np.isinf(y) | (np.abs(ref) > fi.max))
        if special.size:
            ys, rs = y[special], ref[special]
            rr = rs.astype(dtype).astype(ref.dtype)       # ref rounded to the output dtype
            nan_y, nan_r = np.isnan(ys), np.isnan(rs)
            es = np.where(nan_y | nan_r, np.where(nan_y & nan_r, 0, np.inf), err[special])
            inf_case = (np.isinf(ys) | np.isinf(rr)) & ~(nan_y | nan_r)
            es = np.where(inf_case, np.where(ys == rr, 0, np.inf), es)
            err[special] = es
    return err.astype(np.float64)


class Acc:
    def __init__(self):
        self.max = -1.0
        self.x = None
        self.top = []  # (err, x) worst points

    def add(self, err, x, keep=48):
        if err.size == 0:
            return
        i = int(np.argmax(err))
        if len(self.top) >= keep and err[i] <= self.top[-1][0]:
            return                      # nothing here among the worst kept so far
        k = min(keep, err.size)
        idx = np.argpartition(err, -k)[-k:]
        for i in idx:
            self.top.append((float(err[i]), x[i]))
        self.top = sorted(self.top, key=lambda t: -t[0])[:keep]
        if err[i] > self.max:
            self.max, self.x = float(err[i]), x[i]


def fmt(a: Acc):
    if a is None or a.x is None:
        return "-", ""
    v = "inf" if math.isinf(a.max) else f"{a.max:.3g}"
    return v, f"{float(a.x):.9g}"


def ref_values(op, m, x, dtype):
    """Reference for op at x (float64 or longdouble array; inf replaced by huge finite)."""
    base = op[:-5] if op.endswith("_grad") else op
    f = REF[op]
    with np.errstate(all="ignore"):
        if base == "leaky_relu":
            r = f(m, x, x.dtype.type(float(dtype(PARAMS["leaky_relu"]))))
        else:
            r = f(m, x)
        # NaN in x propagates to the value and to the gradient (actfast's rule)
        nan = np.flatnonzero(np.isnan(x))
        if nan.size == 0:
            return r
        r = np.array(np.broadcast_to(r, x.shape), dtype=x.dtype)
        r[nan] = x[nan]
        return r


MPNS = MP if mp is not None else None


def mp_ref(op, xs, dtype):
    """mpmath reference at points xs (output dtype), as long doubles."""
    huge = mp.mpf(10) ** 400
    xo = np.array([(huge if v > 0 else -huge) if np.isinf(v) else mp.mpf(0) if np.isnan(v) else mp.mpf(float(v))
                   for v in xs], dtype=object)
    # leaky_relu's slope is the dtype-rounded 0.01 that the kernel sees
    if op.startswith("leaky_relu"):
        s = mp.mpf(float(dtype(PARAMS["leaky_relu"])))
        r = REF[op](MP, xo, s)
    else:
        r = REF[op](MP, xo)
    out = []
    for v, x in zip(r, xs):
        if np.isnan(x):
            out.append(np.longdouble("nan"))
        else:
            out.append(np.longdouble(mp.nstr(v, 30)))
    return np.array(out, dtype=np.longdouble)


def confirm(op, acc: Acc, dtype):
    """Re-check the worst points against mpmath; returns the max error there."""
    if mp is None or not acc.top:
        return None
    xs = np.array([t[1] for t in acc.top], dtype=dtype)
    y = actfast_fn(op)(xs)
    ref = mp_ref(op, xs, dtype)
    root = ROOTS.get(op) if dtype == np.float32 else None
    return float(np.max(ulp_err(y, ref, dtype, root, xs)))


# ----------------------------------------------------------------------------------------
# Input generators
# ----------------------------------------------------------------------------------------

F32_CHUNK = 1 << 20   # 8 MB float64 temporaries: the NumPy passes stay in cache


def f32_chunk_starts(stride, chunk=F32_CHUNK):
    return range(0, 1 << 32, chunk * stride)


def f32_chunk(start, stride, chunk=F32_CHUNK):
    stop = min(1 << 32, start + chunk * stride)
    return np.arange(start, stop, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)


def f32_chunks(stride, chunk=F32_CHUNK):
    for start in f32_chunk_starts(stride, chunk):
        yield f32_chunk(start, stride, chunk)


EDGE64 = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308, 1e-300, -1e-300,
          1e-17, -1e-17, 1e-8, -1e-8, 0.5, -0.5, 0.25, -0.25, 0.625, -0.625, 1, -1, 3, -3, 6, -6, 20, -20,
          19.999999999999996, 20.000000000000004, 27.5, -27.5, 37.5, -37.5, 38.5, -38.5, 40, -40,
          -0.7517915247, -1.1919940798, -1.2784645427, 709.782712893384, 709.79, -745.1332191019411,
          -745.14, -708.39, 1e4, -1e4, 1e4 + 1e-12, 1e154, -1e154, 1e300, -1e300, 1.7976931348623157e308,
          -1.7976931348623157e308, np.inf, -np.inf, np.nan]


def f64_chunks(n, seed=12345, chunk=1 << 22):
    rng = np.random.default_rng(seed)
    yield np.array(EDGE64 + [np.nextafter(v, w) for v in EDGE64 if np.isfinite(v) for w in (-np.inf, np.inf)],
                   dtype=np.float64)
    done = 0
    k = 0
    ranges = [1.0, 4.0, 12.0, 40.0, 750.0]
    while done < n:
        m = min(chunk, n - done)
        if k % 3 == 2:   # random bit patterns: every magnitude, both signs
            x = rng.integers(0, 1 << 64, m, dtype=np.uint64).view(np.float64)
            x = x[np.isfinite(x)]
        else:
            r = ranges[k % len(ranges)]
            x = rng.uniform(-r, r, m)
        done += m
        k += 1
        yield x


# ----------------------------------------------------------------------------------------


def measure(op, dtype, args, chunks):
    """The error accumulators of actfast (and the peers) over ``chunks`` of inputs."""
    fa, fn, ft = actfast_fn(op), numpy_fn(op), (torch_fn(op) if args.torch else None)
    accs = {"actfast": Acc(), "numpy": Acc(), "torch": Acc() if ft else None}
    n = 0
    base = op[:-5] if op.endswith("_grad") else op
    m = NP64 if dtype == np.float32 else LD
    use_mp64 = dtype == np.float64 and base == "gelu"
    root = ROOTS.get(op) if dtype == np.float32 else None
    for x in chunks:
        with np.errstate(all="ignore"):
            if use_mp64:
                ref = mp_ref(op, x, np.float64)
            else:
                xr = x.astype(np.float64 if dtype == np.float32 else np.longdouble)
                big = 1e300 if dtype == np.float32 else np.longdouble("1e4000")
                inf = np.flatnonzero(np.isinf(xr))
                xr[inf] = np.copysign(big, xr[inf])
                ref = ref_values(op, m, xr, dtype)
                if np.shape(ref) != x.shape or np.asarray(ref).dtype != xr.dtype:
                    ref = np.broadcast_to(ref, x.shape).astype(xr.dtype)
                if dtype == np.float64 and op in ROOTS and mp is not None:
                    near = np.abs(x - ROOTS[op]) < ROOT_NEAR
                    if near.any():
                        ref = ref.copy()
                        ref[near] = mp_ref(op, x[near], np.float64)
            y = fa(x)
            accs["actfast"].add(ulp_err(y, ref, dtype, root, x), x)
            if args.compare:
                accs["numpy"].add(ulp_err(np.asarray(fn(x)).astype(dtype), ref, dtype, root, x), x)
                if ft:
                    accs["torch"].add(ulp_err(ft(x).astype(dtype), ref, dtype, root, x), x)
        n += x.size
    return n, accs


def _measure_f32_starts(job):
    """A worker's share of the float32 bit patterns (for --jobs > 1)."""
    op, args, starts = job
    return measure(op, np.float32, args, (f32_chunk(s, args.stride) for s in starts))


def merge(parts):
    n = sum(p[0] for p in parts)
    accs = parts[0][1]
    for _, other in parts[1:]:
        for k, acc in accs.items():
            if acc is None:
                continue
            o = other[k]
            acc.top = sorted(acc.top + o.top, key=lambda t: -t[0])[:48]
            if o.max > acc.max:
                acc.max, acc.x = o.max, o.x
    return n, accs


def run(op, dtype, args):
    t0 = time.time()
    base = op[:-5] if op.endswith("_grad") else op
    if dtype == np.float32 and args.jobs > 1:
        # interleaved shares, so that every worker gets its part of every range of x
        starts = list(f32_chunk_starts(args.stride))
        jobs = [(op, args, starts[j::args.jobs * 4]) for j in range(args.jobs * 4)]
        import multiprocessing as mproc
        with mproc.get_context("fork").Pool(args.jobs) as pool:
            n, accs = merge(pool.map(_measure_f32_starts, jobs, chunksize=1))
    else:
        if dtype == np.float32:
            chunks = f32_chunks(args.stride)
        elif base == "gelu":       # no long-double ndtr: mpmath on a subset
            chunks = f64_chunks(args.mp_n, seed=777, chunk=1 << 14)
        else:
            chunks = f64_chunks(args.n64)
        n, accs = measure(op, dtype, args, chunks)
    conf = confirm(op, accs["actfast"], dtype) if args.confirm else None
    return n, accs, conf, time.time() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="float32 every 251st pattern; float64 2e6 points")
    p.add_argument("--ops", default="", help="comma list (e.g. sigmoid,gelu_grad); default all")
    p.add_argument("--dtype", default="both", choices=["float32", "float64", "both"])
    p.add_argument("--stride", type=int, default=None, help="float32: test every STRIDE-th bit pattern")
    p.add_argument("--n64", type=float, default=None, help="float64: number of random inputs (default 1e8)")
    p.add_argument("--mp-n", type=float, default=None, help="float64 gelu*: mpmath points (default 2e5)")
    p.add_argument("--no-compare", dest="compare", action="store_false", help="skip NumPy/PyTorch")
    p.add_argument("--no-torch", dest="torch", action="store_false")
    p.add_argument("--no-confirm", dest="confirm", action="store_false", help="skip mpmath re-check")
    p.add_argument("--threads", type=int, default=1, help="actfast threads per process (default 1)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="float32: worker processes sharing the bit patterns (default: the CPU count)")
    args = p.parse_args()
    args.stride = args.stride or (251 if args.quick else 1)
    args.n64 = int(args.n64 or (2e6 if args.quick else 1e8))
    args.mp_n = int(args.mp_n or (2e4 if args.quick else 2e5))
    args.torch = args.torch and torch is not None
    if torch is not None:
        torch.set_num_threads(1)
    af.set_num_threads(args.threads)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()] or ALL_OPS
    bad = [o for o in ops if o not in REF]
    if bad:
        p.error(f"unknown ops {bad}; known: {ALL_OPS}")
    dtypes = {"float32": [np.float32], "float64": [np.float64], "both": [np.float32, np.float64]}[args.dtype]
    print(f"actfast {af.__version__} variant={af._isa}  numpy {np.__version__}  "
          f"torch {torch.__version__ if torch is not None else '-'}  "
          f"float32 stride {args.stride}  float64 n={args.n64:.3g} (gelu*: mpmath n={args.mp_n:.3g})", flush=True)
    hdr = (f"{'op':18s} {'dtype':8s} {'n':>11s} | {'actfast':>8s} {'at x':>16s} {'mp@max':>7s} | "
           f"{'numpy':>8s} {'at x':>16s} | {'torch':>8s} {'at x':>16s} | {'sec':>5s}")
    print(hdr)
    print("-" * len(hdr), flush=True)
    for dt in dtypes:
        for op in ops:
            n, accs, conf, sec = run(op, dt, args)
            a, ax = fmt(accs["actfast"])
            nn, nx = fmt(accs["numpy"]) if args.compare else ("-", "")
            tt, tx = fmt(accs["torch"]) if accs["torch"] else ("-", "")
            cs = "-" if conf is None else ("inf" if math.isinf(conf) else f"{conf:.3g}")
            print(f"{op:18s} {np.dtype(dt).name:8s} {n:11d} | {a:>8s} {ax:>16s} {cs:>7s} | {nn:>8s} {nx:>16s} | "
                  f"{tt:>8s} {tx:>16s} | {sec:5.0f}", flush=True)


if __name__ == "__main__":
    main()
