"""float32 hard_sigmoid, hard_swish and hard_swish' on every compiled variant.

With FMA (avx2, avx512) and parameters whose d = 1/alpha, c = beta d and c/d are floats
(PyTorch's 1/6, 1/2 and ONNX's 0.2, 0.5 among them) these run in float lanes
(actfast_vmath.h, "hard_sigmoid family"); otherwise, and on the baseline, in double,
rounded once. Over all 2^32 inputs (tools/exhaustive_f32.c) hard_sigmoid gives the
double formula (x + c)/d rounded to float bit for bit; hard_swish differs from the
double x (x + c)/d rounded to float at 5 (PyTorch's) and 7 (ONNX's) inputs, by one ulp
at 0.5 + 2e-8 ulp of the exact value; hard_swish' (dy = 1) is within 0.5 ulp except
next to its root (x = -1.5 for PyTorch's parameters), where the error is measured in
ulp of max(|f'|, 1), issue 11's convention. Checked here on every bit pattern of the
intervals around the kinks, the root and zero and on every 997th bit pattern, against
float64 references, with special values and no floating-point warning.
"""

from __future__ import annotations

import numpy as np
import pytest

import actfast
from _helpers import assert_ulp, bit_patterns

VARIANTS = actfast._dispatch.supported_variants()
# (alpha, beta): PyTorch's and ONNX's (float lanes), others that pass the float-lane test
# (d = 4, -4, 2) and two that do not (1/0.3 and 0.4/0.3 are not floats; b = 0 < 1/2).
FLOAT_PARAMS = [(1 / 6, 0.5), (0.2, 0.5), (0.25, 0.5), (-0.25, 0.5), (0.5, 0.75)]
DOUBLE_PARAMS = [(0.3, 0.4), (1.0, 0.0)]
# 0.5 ulp plus the float64 reference's own error
BOUND = 0.5 + 1e-6

# the kinks of PyTorch's (+-3) and ONNX's (+-2.5) parameters, the root of hard_swish' (-1.5,
# -1.25) and the inputs around 2^-16 where hard_swish's closest midpoints sit
X = bit_patterns((2.99, 3.01), (2.49, 2.51), (1.49, 1.51), (1.24, 1.26), (2.31e-5, 2.33e-5))


def _refs(x, alpha, beta):
    """The double formulas of _activations.pxd: hard_sigmoid, hard_swish, hard_swish'
    (dy = 1) and the root of hard_swish' (float64)."""
    xd = x.astype(np.float64)
    d = 1.0 / alpha
    c = beta * d
    u = (xd + c) / d
    k0, k1 = -c, (1.0 - beta) * d
    zero = xd <= k0 if alpha > 0 else xd >= k0
    one = xd >= k1 if alpha > 0 else xd <= k1
    with np.errstate(over="ignore", invalid="ignore"):
        sig = np.clip(u, 0.0, 1.0)
        swish = np.where(zero, 0.0, np.where(one, xd, xd * (xd + c) / d))
        grad = np.where(zero, 0.0, np.where(one, 1.0, (2 * xd + c) / d))
    return sig, swish, np.where(np.isnan(xd), np.nan, grad), -c / 2


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("alpha,beta", FLOAT_PARAMS + DOUBLE_PARAMS)
def test_bit_patterns(isa, alpha, beta):
    mod = actfast._dispatch.load_variant(isa)
    sig, swish, grad, root = _refs(X, alpha, beta)
    with np.errstate(all="raise"):
        got_sig = mod.hard_sigmoid(X, alpha, beta)
        got_swish = mod.hard_swish(X, alpha, beta)
        got_grad = mod.hard_swish_grad(X, np.ones_like(X), alpha, beta)
    label = f"{isa} alpha={alpha} beta={beta}"
    if (alpha, beta) in [(1 / 6, 0.5), (0.2, 0.5)]:
        # the double formula rounded once, bit for bit (all 2^32 inputs: exhaustive_f32)
        np.testing.assert_array_equal(got_sig.view(np.uint32), sig.astype(np.float32).view(np.uint32),
                                      err_msg=f"{label} hard_sigmoid")
    with np.errstate(invalid="ignore"):     # inf - inf in ulp_error (both inf: error 0)
        assert_ulp(got_sig, sig, np.float32, BOUND, X, f"{label} hard_sigmoid")
        assert_ulp(got_swish, swish, np.float32, BOUND, X, f"{label} hard_swish")
        near_root = np.abs(X.astype(np.float64) - root) < 0.5
        assert_ulp(got_grad, grad, np.float32, BOUND, X, f"{label} hard_swish_grad",
                   floor=np.where(near_root, 1.0, 0.0))
    # away from the root hard_swish' is good to 0.5 ulp of itself (2x + c in pair form)
    far = np.abs(X.astype(np.float64) - root) > 1e-3
    with np.errstate(invalid="ignore"):
        assert_ulp(got_grad[far], grad[far], np.float32, BOUND, X[far], f"{label} hard_swish_grad")


@pytest.mark.parametrize("isa", VARIANTS)
@pytest.mark.parametrize("alpha,beta", FLOAT_PARAMS + DOUBLE_PARAMS)
def test_special_values(isa, alpha, beta):
    mod = actfast._dispatch.load_variant(isa)
    d = 1.0 / alpha
    k0, k1 = np.float32(-beta * d), np.float32((1.0 - beta) * d)
    tiny = np.float32(2.0 ** -149)
    big = np.finfo(np.float32).max
    x = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0, tiny, -tiny, 1e-40, -1e-40, big, -big, k0, k1,
                  np.nextafter(k0, np.float32(-np.inf)), np.nextafter(k0, np.float32(np.inf)),
                  np.nextafter(k1, np.float32(-np.inf)), np.nextafter(k1, np.float32(np.inf))], np.float32)
    dy = np.full_like(x, 3.0)
    with np.errstate(all="raise"):
        sig = mod.hard_sigmoid(x, alpha, beta)
        swish = mod.hard_swish(x, alpha, beta)
        g = mod.hard_swish_grad(x, dy, alpha, beta)
        g_nan_dy = mod.hard_swish_grad(x, np.full_like(x, np.nan), alpha, beta)
    rs, rw, rg, _ = _refs(x, alpha, beta)
    # the double formulas' values, the sign of zero included (hard_swish(-0) = -0,
    # hard_swish(x <= the lower kink) = +0), at the kinks and next to them; hard_sigmoid's
    # zero up to its sign (the double formula's 0 / d at the lower kink is -0 for alpha < 0,
    # the float lanes' +0)
    np.testing.assert_array_equal((sig + np.float32(0)).view(np.uint32),
                                  (rs + 0.0).astype(np.float32).view(np.uint32))
    np.testing.assert_array_equal(swish.view(np.uint32), rw.astype(np.float32).view(np.uint32))
    lo_one = 1.0 if alpha > 0 else 0.0
    np.testing.assert_array_equal(sig[:2], [1.0 - lo_one, lo_one])
    np.testing.assert_array_equal(swish[:2], [0.0, np.inf] if alpha > 0 else [-np.inf, 0.0])
    assert np.isnan(sig[2]) and np.isnan(swish[2]) and np.isnan(g[2]) and np.isnan(g_nan_dy[2])
    # the gradient: 0 at and beyond the lower kink, dy at and beyond the upper one (even
    # a NaN dy gives 0 where the slope is 0), dy (2 alpha x + beta) in between
    np.testing.assert_array_equal(g[[11, 12]], [0.0, 3.0])
    assert g_nan_dy[11] == 0.0
    mid = ~np.isnan(rg) & (rg != 0) & (rg != 1)
    with np.errstate(invalid="ignore"):
        assert_ulp(g[mid], 3.0 * rg[mid], np.float32, BOUND, x[mid], f"{isa} hard_swish_grad dy=3")
    np.testing.assert_array_equal(g[~mid & ~np.isnan(rg)], 3.0 * rg[~mid & ~np.isnan(rg)])


@pytest.mark.parametrize("isa", VARIANTS)
def test_pytorch_defaults(isa):
    """PyTorch's float64 hardsigmoid / hardswish rounded to float32 (one rounding of the
    exact value where it is not a near tie) on the dense sample, and its backward."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    mod = actfast._dispatch.load_variant(isa)
    x = X[np.isfinite(X) & (np.abs(X) < 8)]
    t = torch.from_numpy(x.astype(np.float64))
    np.testing.assert_array_equal(mod.hard_sigmoid(x, 1 / 6, 0.5), F.hardsigmoid(t).numpy().astype(np.float32))
    sw = F.hardswish(t).numpy()
    assert_ulp(mod.hard_swish(x, 1 / 6, 0.5), sw, np.float32, BOUND, x, f"{isa} hard_swish vs torch")
    g = torch.ops.aten.hardswish_backward(torch.ones_like(t), t).numpy()
    far = np.abs(x + 1.5) > 1e-3
    assert_ulp(mod.hard_swish_grad(x, np.ones_like(x), 1 / 6, 0.5)[far], g[far], np.float32, BOUND, x[far],
               f"{isa} hard_swish_grad vs torch")
