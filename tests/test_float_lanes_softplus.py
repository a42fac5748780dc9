"""float32 softplus, log_sigmoid, silu', mish' and swiglu's dgate in float lanes.

With FMA (the avx2 and avx512 variants) these are computed in float lanes from the
exponential as a float pair (actfast_vmath.h, "softplus family"); without it (baseline)
in double and rounded once. Either way <= 1 ulp over all 2^32 inputs
(tools/exhaustive_f32.c: 0.74-0.78 ulp, the maxima in the subnormal tails). silu, mish
and swiglu's forward and dvalue stay in double (their float-lane forms were slower), and
are checked here too. Every compiled variant is checked on every bit pattern of the
intervals where the maxima sit and on every 997th bit pattern, against float64
references, with the root convention of the exhaustive check for the gradients (within
0.5 of a root of f', the error in ulp of max(|f'|, 1)).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc

import actfast
from _helpers import assert_ulp, bit_patterns

VARIANTS = actfast._dispatch.supported_variants()
SILU_ROOT = -1.2784645427610738
MISH_ROOT = -1.1919942



# the subnormal tails (|x| 86.5-92.5: softplus, log_sigmoid, silu', mish', swiglu's dgate),
# tiny inputs whose result nears 2^-126, and silu''s and mish''s roots
X = bit_patterns((86.5, 92.5), (1.9e-38, 2.0e-38), (1.268, 1.289), (1.182, 1.202))
XD = X.astype(np.float64)


def check(got, ref, x, label, floor=0.0):
    """assert_ulp within 1 ulp, where a reference past float32's range must give inf."""
    ref = np.asarray(ref, np.float64)
    with np.errstate(over="ignore"):
        r32 = ref.astype(np.float32)
    inf = np.isinf(r32) & ~np.isinf(ref)
    assert np.array_equal(got[inf], r32[inf]), f"{label}: no overflow to inf"
    same = inf | (got == ref)               # (equal infinities: no inf - inf below)
    assert_ulp(np.where(same, 0, got), np.where(same, 0, ref), np.float32, 1.0, x, label, floor)


def _sigmoid_slope_parts(x):
    return sc.expit(x), sc.expit(-x)


def ref_softplus(x, beta, threshold):
    with np.errstate(over="ignore"):
        b = np.float32(beta) * x.astype(np.float32)      # PyTorch's float compare
    xd = x.astype(np.float64)
    return np.where(b > threshold, xd, np.logaddexp(0.0, float(np.float32(beta)) * xd) / float(np.float32(beta)))


def ref_silu_grad(t):
    s, sm = _sigmoid_slope_parts(t)
    return s + t * s * sm


def ref_mish(x):
    return x * np.tanh(np.logaddexp(0.0, x))


def ref_mish_grad(x):
    sp = np.logaddexp(0.0, x)
    with np.errstate(over="ignore"):
        sech2 = 1.0 / np.cosh(sp) ** 2
    return np.tanh(sp) + x * sc.expit(x) * sech2


def near(x, root):
    return np.where(np.abs(x - root) < 0.5, 1.0, 0.0)


@pytest.mark.parametrize("isa", VARIANTS)
def test_softplus_log_sigmoid_bit_patterns(isa):
    mod = actfast._dispatch.load_variant(isa)
    for beta in (1.0, 2.0, 0.3):
        check(mod.softplus(X, beta, 20.0), ref_softplus(X, beta, 20.0), X,
                   f"{isa} softplus beta={beta}")
    check(mod.log_sigmoid(X), -np.logaddexp(0.0, -XD), X, f"{isa} log_sigmoid")


@pytest.mark.parametrize("isa", VARIANTS)
def test_silu_bit_patterns(isa):
    mod = actfast._dispatch.load_variant(isa)
    one = np.ones_like(X)
    check(mod.silu_grad(X, one), ref_silu_grad(XD), X, f"{isa} silu_grad",
               floor=near(XD, SILU_ROOT))
    for beta in (1.5, 0.3, -0.5):
        check(mod.silu_beta_grad(X, one, beta), ref_silu_grad(beta * XD), X,
                   f"{isa} silu_grad beta={beta}", floor=near(beta * XD, SILU_ROOT))


@pytest.mark.parametrize("isa", VARIANTS)
def test_mish_bit_patterns(isa):
    mod = actfast._dispatch.load_variant(isa)
    check(mod.mish(X), ref_mish(XD), X, f"{isa} mish")
    check(mod.mish_grad(X, np.ones_like(X)), ref_mish_grad(XD), X, f"{isa} mish_grad",
               floor=near(XD, MISH_ROOT))


@pytest.mark.parametrize("isa", VARIANTS)
def test_swiglu_bit_patterns(isa):
    """value * silu(gate) and its (dgate, dvalue): the products dy * value and gate *
    value enter as exact pairs, so the results round once (values of several scales,
    the huge and tiny ones where a rounded product would overflow or lose its low part)."""
    mod = actfast._dispatch.load_variant(isa)
    g = X[::7]
    gd = g.astype(np.float64)
    for scale in (1.0, 3e30, 3e-30):
        v = (np.random.default_rng(0).uniform(0.5, 2.0, g.shape) * scale).astype(np.float32)
        dy = np.random.default_rng(1).uniform(-2.0, 2.0, g.shape).astype(np.float32)
        vd, dyd = v.astype(np.float64), dy.astype(np.float64)
        check(mod.swiglu(g, v), vd * gd * sc.expit(gd), g, f"{isa} swiglu {scale}")
        dg, dv = mod.swiglu_grad(g, v, dy)
        check(dg, dyd * vd * ref_silu_grad(gd), g, f"{isa} swiglu dgate {scale}",
                   floor=near(gd, SILU_ROOT) * np.abs(dyd * vd))
        check(dv, dyd * gd * sc.expit(gd), g, f"{isa} swiglu dvalue {scale}")
        beta = 1.75
        check(mod.swiglu_beta(g, v, beta), vd * gd * sc.expit(beta * gd), g,
                   f"{isa} swiglu beta {scale}")
        dg, dv = mod.swiglu_beta_grad(g, v, dy, beta)
        check(dg, dyd * vd * ref_silu_grad(beta * gd), g, f"{isa} swiglu beta dgate {scale}",
                   floor=near(beta * gd, SILU_ROOT) * np.abs(dyd * vd))
        check(dv, dyd * gd * sc.expit(beta * gd), g, f"{isa} swiglu beta dvalue {scale}")


SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -1e-40, 1.2e-38,
                    3.4e38, -3.4e38, 1e30, -1e30, 88.0, -88.0, -104.0, -150.0, -200.0, -300.0,
                    20.0, np.nextafter(np.float32(20.0), np.float32(30.0)), 250.0, 1000.0],
                   np.float32)
SD = SPECIAL.astype(np.float64)


def _check_special(got, want, label):
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"{label}: NaN where {got[np.isnan(got) != nan]}"
    check(np.where(nan, 0, got), np.where(nan, 0, want), SPECIAL, label)


def _special_cases(mod):
    """(label, call, reference) for the special inputs; references computed here."""
    one = np.ones_like(SPECIAL)
    cases = []
    for beta, threshold in ((1.0, 20.0), (2.0, 20.0), (0.5, 20.0), (10.0, 5.0), (1.0, np.inf),
                            (0.3, 20.0), (-1.0, 20.0)):
        cases.append((f"softplus {beta} {threshold}", lambda b=beta, t=threshold: mod.softplus(SPECIAL, b, t),
                      ref_softplus(SPECIAL, beta, threshold)))
    cases.append(("log_sigmoid", lambda: mod.log_sigmoid(SPECIAL),
                  np.where(SD == np.inf, 0.0, -np.logaddexp(0.0, -SD))))
    silu_ref = np.where(SD == -np.inf, 0.0, SD * sc.expit(SD))
    cases.append(("silu", lambda: mod.silu(SPECIAL), silu_ref))
    grad_ref = np.where(np.isinf(SD), (SD > 0).astype(float), ref_silu_grad(np.where(np.isinf(SD), 0, SD)))
    cases.append(("silu_grad", lambda: mod.silu_grad(SPECIAL, one), grad_ref))
    for beta in (1.5, -0.5, 0.3):
        b = beta * SD
        cases.append((f"silu beta={beta}", lambda bb=beta: mod.silu_beta(SPECIAL, bb),
                      np.where(b == -np.inf, 0.0, SD * sc.expit(b))))
        g = np.where(np.isinf(b), (b > 0).astype(float), ref_silu_grad(np.where(np.isinf(b), 0, b)))
        cases.append((f"silu_grad beta={beta}", lambda bb=beta: mod.silu_beta_grad(SPECIAL, one, bb), g))
    # beta = 0: x / 2 and silu'(0) = 1/2, also at +-inf; NaN stays NaN
    cases.append(("silu beta=0", lambda: mod.silu_beta(SPECIAL, 0.0), SD / 2))
    cases.append(("silu_grad beta=0", lambda: mod.silu_beta_grad(SPECIAL, one, 0.0),
                  np.where(np.isnan(SD), np.nan, 0.5)))
    mish_ref = np.where(SD == -np.inf, 0.0, np.where(SD == np.inf, np.inf, ref_mish(np.where(np.isinf(SD), 0, SD))))
    cases.append(("mish", lambda: mod.mish(SPECIAL), mish_ref))
    mg = np.where(np.isinf(SD), (SD > 0).astype(float), ref_mish_grad(np.where(np.isinf(SD), 0, SD)))
    cases.append(("mish_grad", lambda: mod.mish_grad(SPECIAL, one), mg))
    # swiglu with finite values (an infinite value times a 0 gate is NaN, as PyTorch)
    v = np.full_like(SPECIAL, 1.5)
    cases.append(("swiglu", lambda: mod.swiglu(SPECIAL, v), 1.5 * silu_ref))
    cases.append(("swiglu dgate", lambda: mod.swiglu_grad(SPECIAL, v, one)[0], 1.5 * grad_ref))
    cases.append(("swiglu dvalue", lambda: mod.swiglu_grad(SPECIAL, v, one)[1], silu_ref))
    # huge and tiny dy: the product with the derivative rounds once
    for dy in (3e38, -3e38, 1e-45, 1e-30):
        d = np.full_like(SPECIAL, dy)
        k = np.float64(np.float32(dy))
        cases.append((f"silu_grad dy={dy}", lambda d=d: mod.silu_grad(SPECIAL, d), k * grad_ref))
        cases.append((f"mish_grad dy={dy}", lambda d=d: mod.mish_grad(SPECIAL, d), k * mg))
    return cases


@pytest.mark.parametrize("isa", VARIANTS)
def test_special_values_and_no_fp_flags(isa):
    mod = actfast._dispatch.load_variant(isa)
    with np.errstate(all="ignore"):
        cases = _special_cases(mod)
    for label, call, want in cases:
        with np.errstate(all="raise"):      # no flag from any lane, used or not
            got = call()
        _check_special(got, want, f"{isa} {label}")
    # NaN in dy propagates
    nan = np.full(3, np.nan, np.float32)
    x3 = np.float32([-3.0, 0.5, 3.0])
    assert np.isnan(mod.silu_grad(x3, nan)).all() and np.isnan(mod.mish_grad(x3, nan)).all()
