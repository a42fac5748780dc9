"""float32 tanh_shrink and tanh_shrink' (dy * tanh(x)^2) on every compiled variant.

With FMA (avx2, avx512) tanh_shrink is computed in float lanes (actfast_vmath.h,
af_tanh_shrinkf, <= 1 ulp over all 2^32 inputs: tools/exhaustive_f32.c); without it
(baseline) in double and rounded once. The gradient is computed in double and rounded
once on every variant (0.5 ulp: a float-lane version was no faster). Checked here
on every bit pattern of the intervals where the maxima sit, around the switches of the
float forms (0.25, 0.9, 1.4, 2^-32) and every 997th bit pattern, both signs, against a
float64 reference that does not cancel (the Taylor series of x - tanh x below 0.3).
"""

from __future__ import annotations

import numpy as np
import pytest

import actfast
from _helpers import assert_ulp, bit_patterns

VARIANTS = actfast._dispatch.supported_variants()
GRAD_BOUND = 0.5 + 1e-3        # the gradient: in double, rounded once

# x - tanh x = sum_k C[k] x^(2k+3), |x| < 0.3 (12 terms: the next is < 1e-18 of the sum)
C = [0.33333333333333333333, -0.13333333333333333333, 0.053968253968253968254,
     -0.021869488536155202822, 0.0088632355299021965689, -0.0035921280365724810169,
     0.0014558343870513182682, -0.00059002744094558598138, 0.00023912911424355248149,
     -0.000096915379569294503256, 0.000039278323883316834053, -0.000015918905069328964741]

X = bit_patterns((1.3e-4, 2.4e-4), (0.24, 0.26), (0.49, 0.52), (0.89, 0.91), (1.39, 1.41),
                 (2.2e-10, 2.4e-10), (3.0e-13, 4.2e-13))


def ref_tanh_shrink(x):
    xd = np.asarray(x, np.float64)
    z = xd * xd
    s = np.zeros_like(xd)
    for c in reversed(C):
        s = s * z + c
    with np.errstate(over="ignore", invalid="ignore"):
        series = xd * z * s
    return np.where(np.abs(xd) < 0.3, series, xd - np.tanh(xd))


def test_reference_does_not_cancel():
    """the series against mpmath at a few points where x - tanh x in float64 loses bits"""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 120          # x - tanh x itself cancels 2 log10(1/x) digits
    for v in (1e-20, 3e-7, 1e-3, 0.05, 0.29, -0.2):
        want = float(mp.mpf(v) - mp.tanh(mp.mpf(v)))
        assert abs(ref_tanh_shrink(np.float64(v)) - want) <= 1e-15 * abs(want)


@pytest.mark.parametrize("isa", VARIANTS)
def test_tanh_shrink_bit_patterns(isa):
    mod = actfast._dispatch.load_variant(isa)
    with np.errstate(all="raise"):
        got = mod.tanh_shrink(X)
    assert_ulp(got, ref_tanh_shrink(X), np.float32, 1.0, X, f"{isa} tanh_shrink")


@pytest.mark.parametrize("isa", VARIANTS)
def test_tanh_shrink_grad_bit_patterns(isa):
    """dy tanh^2 rounds once: dy of several scales (huge: no overflow of dy t; tiny: a
    subnormal product, the absolute bound of tests/_helpers.py)"""
    mod = actfast._dispatch.load_variant(isa)
    t2 = np.tanh(X.astype(np.float64)) ** 2
    for scale in (1.0, 3e37, 1e-30):
        dy = (np.random.default_rng(2).uniform(-2.0, 2.0, X.shape) * scale).astype(np.float32)
        with np.errstate(all="raise"):
            got = mod.tanh_shrink_grad(X, dy)
        assert_ulp(got, dy.astype(np.float64) * t2, np.float32, GRAD_BOUND, X, f"{isa} tanh_shrink_grad {scale}")


SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -1e-40, 1.2e-38,
                    2.3e-10, 3.5e-13, 1.4, -1.4, np.nextafter(np.float32(1.4), np.float32(2)), 0.9, 0.25,
                    22.0, 44.0, 100.0, 3.4e38, -3.4e38, 1e30, -1e30], np.float32)


@pytest.mark.parametrize("isa", VARIANTS)
def test_special_values_and_no_fp_flags(isa):
    mod = actfast._dispatch.load_variant(isa)
    sd = SPECIAL.astype(np.float64)
    with np.errstate(all="raise"):      # no flag from any lane, used or not
        y = mod.tanh_shrink(SPECIAL)
        g = mod.tanh_shrink_grad(SPECIAL, np.ones_like(SPECIAL))
        gm = mod.tanh_shrink_grad(SPECIAL, -np.ones_like(SPECIAL))
    fin = np.isfinite(sd)
    with np.errstate(invalid="ignore", over="ignore"):
        want = np.where(fin, ref_tanh_shrink(np.where(fin, sd, 0.0)), sd)
    assert np.array_equal(np.isnan(y), np.isnan(sd)) and np.array_equal(np.isnan(g), np.isnan(sd))
    assert np.array_equal(y[~fin], SPECIAL[~fin], equal_nan=True)          # +-inf, NaN
    assert_ulp(y[fin], want[fin], np.float32, 1.0, SPECIAL[fin], f"{isa} tanh_shrink special")
    # odd, with the sign of zero; tanh^2 -> 1 at +-inf
    assert np.array_equal(np.signbit(y[fin]), np.signbit(SPECIAL[fin]))
    t2 = np.tanh(np.where(np.isnan(sd), 0.0, sd)) ** 2
    assert_ulp(g[~np.isnan(sd)], t2[~np.isnan(sd)], np.float32, GRAD_BOUND, SPECIAL[~np.isnan(sd)],
               f"{isa} tanh_shrink_grad special")
    # the zero of dy t t carries dy's sign at x = +-0 (as dy * tanh(x)**2 does)
    assert not np.signbit(g[0]) and not np.signbit(g[1]) and np.signbit(gm[0]) and np.signbit(gm[1])
    # NaN in dy propagates; inf dy gives +-inf where tanh != 0
    x3 = np.float32([-3.0, 0.5, 3.0])
    assert np.isnan(mod.tanh_shrink_grad(x3, np.full(3, np.nan, np.float32))).all()
    with np.errstate(all="raise"):
        gi = mod.tanh_shrink_grad(x3, np.float32([np.inf, -np.inf, np.inf]))
    assert np.array_equal(gi, np.float32([np.inf, -np.inf, np.inf]))
