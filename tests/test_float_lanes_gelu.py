"""float32 gelu, gelu', gelu_tanh and gelu_tanh' (af_geluf & co. in actfast_vmath.h: float
lanes with FMA, double without) within 1 ulp for every compiled variant.

Each op is checked on every bit pattern of the interval where its exhaustive maximum sits
(tools/exhaustive_f32.c: the subnormal tail for gelu and gelu', x near -10 for the tanh
form, where the error of the argument 2u is amplified most) and on every 997th bit
pattern of both signs, against float64 references from SciPy. The convention is that of
tools/exhaustive_f32.c: ulp of the float32 result (subnormal spacing below the normal
range), and within 0.5 of the negative root of a gradient, ulp of max(|f'|, 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sc

import actfast
from _helpers import assert_ulp, bit_patterns, ulp_error

C2 = 2.0 * math.sqrt(2.0 / math.pi)      # 2 sqrt(2/pi): 1 + tanh(u) = 2 sigmoid(2u)
ROOT_GELU_GRAD = -0.7517915246935645      # AF_ROOT_GELU_GRAD_HI
ROOT_GELU_TANH_GRAD = -0.7524614220710163   # AF_ROOT_GELU_TANH_GRAD_HI

VARIANTS = actfast._dispatch.supported_variants()


def _gelu(x):
    with np.errstate(invalid="ignore"):
        y = 0.5 * x * sc.erfc(-x / math.sqrt(2.0))
    return np.where(np.isneginf(x), 0.0, y)


def _gelu_grad(x):
    with np.errstate(invalid="ignore", over="ignore"):
        g = sc.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return np.where(np.isinf(x), (x > 0).astype(np.float64), g)


def _t(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return C2 * (x + 0.044715 * x**3)


def _gelu_tanh(x):
    with np.errstate(invalid="ignore"):
        y = x * sc.expit(_t(x))
    return np.where(np.isneginf(x), 0.0, y)


def _gelu_tanh_grad(x):
    t = _t(x)
    with np.errstate(over="ignore", invalid="ignore"):
        k = C2 * x * (1.0 + 3.0 * 0.044715 * x * x)
        g = sc.expit(t) * (1.0 + k * sc.expit(-t))
    return np.where(np.isinf(x), (x > 0).astype(np.float64), g)


# op -> (reference, root of f' or None, interval of |x| (negative x) checked bit by bit)
OPS = {
    "gelu": (_gelu, None, (12.9, 13.5)),
    "gelu_grad": (_gelu_grad, ROOT_GELU_GRAD, (13.0, 13.5)),
    "gelu_tanh": (_gelu_tanh, None, (9.9, 10.4)),
    "gelu_tanh_grad": (_gelu_tanh_grad, ROOT_GELU_TANH_GRAD, (10.0, 10.5)),
}


def _call(mod, op, x, dy=None):
    f = getattr(mod, op)
    if op.endswith("_grad"):
        return f(x, np.ones_like(x) if dy is None else dy)
    return f(x)


def _check(got, ref, x, root, label):
    floor = np.where(np.abs(x.astype(np.float64) - root) < 0.5, 1.0, 0.0) if root is not None else 0.0
    assert_ulp(got, ref, np.float32, 1.0, x, label, floor)
    # assert_ulp bounds subnormal results loosely; the float-lane code rounds them to
    # within 1 subnormal spacing as well.
    tiny = np.abs(ref) < float(np.finfo(np.float32).tiny)
    if tiny.any():
        e = ulp_error(got[tiny], ref[tiny], np.float32)
        worst = int(np.argmax(e))
        assert e[worst] <= 1.0, f"{label}: {e[worst]:.2f} subnormal ulp at x={x[tiny][worst]!r}"



@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("op", list(OPS))
def test_float32_gelu_family_bit_patterns(isa, op):
    mod = actfast._dispatch.load_variant(isa)
    ref_fn, root, (lo, hi) = OPS[op]
    x = bit_patterns((lo, hi))
    _check(_call(mod, op, x), ref_fn(x.astype(np.float64)), x, root, f"{isa} {op}")


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("op", ["gelu_grad", "gelu_tanh_grad"])
def test_float32_gelu_grads_scale_dy_once(isa, op):
    # dy enters as fma(dy, hi, dy lo): dy * f'(x) is rounded once, for any dy.
    mod = actfast._dispatch.load_variant(isa)
    ref_fn, root, _ = OPS[op]
    x = np.arange(0, 0x7F800000, 4999, dtype=np.uint32).view(np.float32)
    x = np.concatenate([-x, x])
    dy = np.random.default_rng(0).uniform(-3.0, 3.0, x.shape).astype(np.float32)
    ref = dy.astype(np.float64) * ref_fn(x.astype(np.float64))
    floor = np.abs(dy.astype(np.float64)) if root is not None else 0.0
    if root is not None:
        floor = np.where(np.abs(x.astype(np.float64) - root) < 0.5, floor, 0.0)
    assert_ulp(_call(mod, op, x, dy), ref, np.float32, 1.0, x, f"{isa} {op} dy", floor)


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("dy", [1e30, -3.4028235e38])
def test_float32_gelu_grad_huge_dy_in_the_deep_tail(isa, dy):
    # x < -16.4 scales by 2^n2 with n2 < -126 (two factors there): only a huge dy leaves
    # a nonzero, subnormal result, which must still be dy * gelu'(x) rounded once.
    mod = actfast._dispatch.load_variant(isa)
    lo, hi = np.array([16.0, 20.5], np.float32).view(np.uint32)
    x = -np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32)
    d = np.full(x.shape, dy, np.float32)
    ref = d.astype(np.float64) * _gelu_grad(x.astype(np.float64))
    assert (np.abs(ref) > 1e-44).sum() > 1000          # the case is exercised
    _check(_call(mod, "gelu_grad", x, d), ref, x, None, f"{isa} gelu_grad dy={dy}")


SPECIAL = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0, 1e-45, -1e-45, 1e-40, -1e-40,
                    1.1754944e-38, -1.1754944e-38, 1e-30, -1e-30, 0.75, -0.75, 13.2, -13.2,
                    14.5, -14.5, 20.0, -20.0, 88.0, -88.0, 1e4, -1e4, 1e30, -1e30,
                    3.4028235e38, -3.4028235e38], np.float32)


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("op", list(OPS))
def test_float32_gelu_family_special_values(isa, op):
    mod = actfast._dispatch.load_variant(isa)
    ref_fn, root, _ = OPS[op]
    x = SPECIAL
    # every flag a discarded lane might raise is cleared by the loop: no warnings
    with np.errstate(all="raise"):
        y = _call(mod, op, x)
        g = _call(mod, op, np.repeat(x, 17))  # long enough for the vector loop body
    assert y.dtype == np.float32
    np.testing.assert_array_equal(g.reshape(-1, 17), np.repeat(y, 17).reshape(-1, 17))
    assert np.isnan(y[2]), "NaN must propagate"
    ref = ref_fn(x.astype(np.float64))
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(y[np.isinf(ref)], ref[np.isinf(ref)].astype(np.float32))
    lim = {"gelu": (0.0, np.inf), "gelu_tanh": (0.0, np.inf), "gelu_grad": (0.0, 1.0),
           "gelu_tanh_grad": (0.0, 1.0)}[op]
    np.testing.assert_array_equal(y[:2], np.array(lim, np.float32))
    _check(y[fin], ref[fin], x[fin], root, f"{isa} {op} special")
    if not op.endswith("_grad"):
        assert y[3] == 0.0 and y[4] == 0.0
    else:
        assert y[3] == 0.5 and y[4] == 0.5
