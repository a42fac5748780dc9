"""float32 exp-family activations (elu', selu, selu', celu, celu') on every compiled
variant: within their bound on every bit pattern of the intervals where the stride-97
maxima of tools/exhaustive_f32.c sit and on every 997th bit pattern overall (both signs),
against a float64 reference; special values (+-0, +-inf, NaN, subnormals, the kink at 0,
non-default parameters) with no floating-point warning.

These float32 kernels compute in double and round once (celu and celu' take x / alpha as
x * (1 / alpha), without a division per element): <= 0.5001 ulp at stride 97, so the bound
here is 0.5 + 1e-3 ulp (subnormal results: tests/_helpers.py's absolute bound).
"""

from __future__ import annotations

import numpy as np
import pytest

import actfast

from _helpers import assert_ulp, bit_patterns

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
BOUND = 0.5 + 1e-3
VARIANTS = actfast._dispatch.supported_variants()
# float32's overflow threshold: a float64 reference at or beyond it rounds to +-inf.
F32_OVERFLOW = float(np.finfo(np.float32).max) * (1 + 2.0 ** -25)



def _in_float_range(ref):
    """The float64 reference as float32 sees it: past the overflow threshold, +-inf."""
    ref = np.asarray(ref, np.float64)
    return np.where(np.abs(ref) >= F32_OVERFLOW, np.copysign(np.inf, ref), ref)


def _celu_refs(x, alpha):
    xd = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        q = xd / float(np.float32(alpha))
        f = np.where(xd > 0, xd, float(np.float32(alpha)) * np.expm1(np.minimum(q, 800.0)))
        g = np.where(xd > 0, 1.0, np.exp(np.minimum(q, 800.0)))
    return _in_float_range(f), _in_float_range(g)


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("alpha", [1.0, 0.75, 3.0, -2.0, 1e-3])
def test_celu_bit_patterns(isa, alpha):
    """celu, celu' (stride-97 maxima for alpha = 1 at x = -0.206 and -0.307)."""
    mod = actfast._dispatch.load_variant(isa)
    x = bit_patterns((0.2, 0.21), (0.3, 0.31))
    f, g = _celu_refs(x, alpha)
    a = np.float32(alpha)
    with np.errstate(all="raise"):
        got_f = mod.celu(x, a)
        got_g = mod.celu_grad(x, np.ones_like(x), a)
    with np.errstate(invalid="ignore"):     # inf - inf in ulp_error (both inf: error 0)
        assert_ulp(got_f, f, np.float32, BOUND, x, f"{isa} celu alpha={alpha}")
        assert_ulp(got_g, g, np.float32, BOUND, x, f"{isa} celu_grad alpha={alpha}")


@pytest.mark.parametrize("isa", VARIANTS)
def test_elu_grad_selu_bit_patterns(isa):
    """elu' (alpha = 1, 1.25), selu and selu' with the double defaults."""
    mod = actfast._dispatch.load_variant(isa)
    x = bit_patterns((0.3, 0.31), (0.22, 0.23))
    xd = x.astype(np.float64)
    one = np.ones_like(x)
    neg = np.minimum(xd, 0.0)
    sa = SELU_SCALE * SELU_ALPHA
    with np.errstate(under="ignore"):
        e, em1 = np.exp(neg), np.expm1(neg)
    refs = [(f"elu_grad alpha={a}", lambda a=a: mod.elu_grad(x, one, np.float32(a)), np.where(xd > 0, 1.0, a * e))
            for a in (1.0, 1.25)]
    refs += [("selu", lambda: mod.selu(x, SELU_ALPHA, SELU_SCALE),
              _in_float_range(np.where(xd > 0, SELU_SCALE * xd, sa * em1))),
             ("selu_grad", lambda: mod.selu_grad(x, one, SELU_ALPHA, SELU_SCALE), np.where(xd > 0, SELU_SCALE, sa * e))]
    for label, call, ref in refs:
        with np.errstate(all="raise"):
            got = call()
        with np.errstate(invalid="ignore"):
            assert_ulp(got, ref, np.float32, BOUND, x, f"{isa} {label}")


@pytest.mark.parametrize("isa", VARIANTS)
def test_celu_special_values(isa):
    mod = actfast._dispatch.load_variant(isa)
    tiny = np.float32(2.0 ** -149)
    x = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0, tiny, -tiny, -1e-40, 3e38, -3e38], np.float32)
    one = np.ones_like(x)
    with np.errstate(all="raise"):
        f = mod.celu(x, np.float32(0.75))
        g = mod.celu_grad(x, one, np.float32(0.75))
        fn = mod.celu(x, np.float32(-2.0))
        gn = mod.celu_grad(x, one, np.float32(-2.0))
        gd = mod.celu_grad(x, np.full_like(x, 3.0), np.float32(0.75))
    # x = -inf: -alpha and 0 (alpha > 0); -inf and inf (alpha < 0: exp(x / alpha) grows).
    np.testing.assert_array_equal(f[[0, 1]], [-0.75, np.inf])
    np.testing.assert_array_equal(g[[0, 1]], [0.0, 1.0])
    np.testing.assert_array_equal(fn[[0, 1]], [-np.inf, np.inf])
    np.testing.assert_array_equal(gn[[0, 1]], [np.inf, 1.0])
    for r in (f, g, fn, gn):
        assert np.isnan(r[2])
    # the kink: celu(+-0) = +-0 (the sign of zero kept), celu'(0) = dy (x <= 0 side, exp(0))
    assert np.signbit(f[3]) and not np.signbit(f[4]) and f[3] == 0 and f[4] == 0
    np.testing.assert_array_equal(g[3:5], [1.0, 1.0])
    np.testing.assert_array_equal(gd[3:5], [3.0, 3.0])
    # subnormal x: celu(x) = x (alpha expm1(x / alpha) rounds to x), celu'(x) = 1
    np.testing.assert_array_equal(f[5:8], x[5:8])
    np.testing.assert_array_equal(g[5:8], [1.0, 1.0, 1.0])
    # large |x|: x itself above 0, -alpha (to float) below
    np.testing.assert_array_equal(f[8:10], [np.float32(3e38), -0.75])
    np.testing.assert_array_equal(g[8:10], [1.0, 0.0])
