"""Gradients from the saved output, ``NAME_grad_from_output(y, dy)``, against float64
references of ``dy * f'(x)`` at the x that produced y, and against the gradients from
the input.

Accuracy: where f saturates the derivative is a small difference such as ``1 - y``,
whose error is absolute (about eps * |dy|) once y is rounded; elsewhere it is relative.
The bound is therefore ``8 eps |ref| + 4 eps |dy|`` in the result's dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc

import actfast
from _helpers import same_on_1_and_2_threads

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# name -> (params, f'(x) in float64, kinks where y rounds onto the kink's value)
CASES = {
    "relu": ({}, lambda x: (x > 0) * 1.0, [0.0]),
    "relu6": ({}, lambda x: ((x > 0) & (x < 6)) * 1.0, [0.0, 6.0]),
    "leaky_relu": ({"negative_slope": 0.2}, lambda x: np.where(x > 0, 1.0, 0.2), [0.0]),
    "leaky_relu_zero": ({"negative_slope": 0.0}, lambda x: (x > 0) * 1.0, [0.0]),
    "hard_tanh": ({"min_val": -2.0, "max_val": 1.5}, lambda x: ((x > -2) & (x < 1.5)) * 1.0, [-2.0, 1.5]),
    "hard_sigmoid": ({}, lambda x: ((x > -3) & (x < 3)) / 6.0, [-3.0, 3.0]),
    "elu": ({"alpha": 1.25}, lambda x: np.where(x > 0, 1.0, 1.25 * np.exp(np.minimum(x, 0))), [0.0]),
    "selu": ({}, lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0))), [0.0]),
    "celu": ({"alpha": 0.75}, lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / 0.75)), [0.0]),
    "celu_negative": ({"alpha": -2.0}, lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / -2.0)), [0.0]),
    "sigmoid": ({}, lambda x: sc.expit(x) * sc.expit(-x), []),
    "log_sigmoid": ({}, lambda x: sc.expit(-x), []),
    "softplus": ({"beta": 2.0, "threshold": 15.0}, lambda x: np.where(2 * x > 15, 1.0, sc.expit(2 * x)), [7.5]),
    "softplus_default": ({}, lambda x: np.where(x > 20, 1.0, sc.expit(x)), [20.0]),
    "tanh": ({}, lambda x: 1.0 / np.cosh(np.clip(x, -300, 300)) ** 2, []),
    "softsign": ({}, lambda x: 1.0 / (1.0 + np.abs(x)) ** 2, []),
}
DTYPES = [np.float32, np.float64]


def _name(case):
    return case.split("_zero")[0].split("_negative")[0].split("_default")[0]


def _fns(case):
    name = _name(case)
    return getattr(actfast, name), getattr(actfast, name + "_grad"), getattr(actfast, name + "_grad_from_output")


def _grid(dtype):
    lin = np.linspace(-25.0, 25.0, 20001)
    logs = np.logspace(-10, 30 if dtype == np.float32 else 200, 400)
    return np.concatenate([lin, logs, -logs, [0.0, -0.0]]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, dtype):
    params, deriv, kinks = CASES[case]
    f, _, g_out = _fns(case)
    x = _grid(dtype)
    dy = np.cos(np.arange(x.size)).astype(dtype) + dtype(1.5)
    with np.errstate(all="ignore"):
        ref = dy.astype(np.float64) * deriv(x.astype(np.float64))
    got = g_out(f(x, **params), dy, **params)
    assert got.dtype == dtype
    eps = float(np.finfo(dtype).eps)
    far = np.ones(x.size, bool)
    for k in kinks:   # y within an ulp of a kink's value may round onto it
        far &= np.abs(x.astype(np.float64) - k) > 1e-5 * max(1.0, abs(k))
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(np.float64) - ref)
    bound = 8 * eps * np.abs(ref) + 4 * eps * np.abs(dy.astype(np.float64))
    # Past the dtype's range the overflowed value is the right one.
    bad = far & ~((err <= bound) | (got == ref.astype(dtype)))
    assert not bad.any(), f"{case}: x={x[bad][:5]}, got={got[bad][:5]}, ref={ref[bad][:5]}"


@pytest.mark.parametrize("case", list(CASES))
def test_agrees_with_gradient_from_input(case):
    """Exactly at the kinks and away from saturation, both forms give the same value.
    softplus's kink is the one exception: just below its threshold the forward's
    output lies in the identity branch's range too, and from y the gradient there is
    taken as 1, off by at most sigmoid(-threshold)."""
    params, _, kinks = CASES[case]
    f, g_in, g_out = _fns(case)
    x = np.array(kinks + [-0.5, 0.25, 1.0, -1.75], np.float64)
    dy = np.full_like(x, 0.75)
    atol = 0.75 * sc.expit(-params.get("threshold", 20.0)) if _name(case) == "softplus" else 0
    np.testing.assert_allclose(g_out(f(x, **params), dy, **params), g_in(x, dy, **params), rtol=1e-13, atol=atol)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
@pytest.mark.parametrize("case", list(CASES))
def test_special_values(case, dtype):
    """NaN propagates from y; the outputs at +-inf give the limits of the gradient."""
    params, _, _ = CASES[case]
    f, g_in, g_out = _fns(case)
    x = np.array([np.nan, np.inf, -np.inf], dtype)
    dy = np.ones_like(x)
    with np.errstate(all="raise"):
        y = f(x, **params)
        got = g_out(y, dy, **params)
    assert got.dtype == dtype
    assert np.isnan(got[0])
    # leaky_relu(-inf) with slope 0 is NaN (0 * -inf, as PyTorch): nothing to recover.
    ok = ~np.isnan(y[1:])
    eps = float(np.finfo(dtype).eps)    # y is rounded to the dtype: an absolute error
    np.testing.assert_allclose(got[1:][ok], g_in(x[1:], dy[1:], **params)[ok], rtol=0, atol=4 * eps)


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda y, o: actfast.leaky_relu_grad_from_output(y, y, -0.1, out=o), ValueError, "negative_slope < 0"),
    (lambda y, o: actfast.elu_grad_from_output(y, y, -1.0, out=o), ValueError, "alpha < 0"),
    (lambda y, o: actfast.celu_grad_from_output(y, y, 0.0, out=o), ValueError, "non-zero"),
    (lambda y, o: actfast.softplus_grad_from_output(y, y, 0.0, out=o), ValueError, "beta"),
    (lambda y, o: actfast.hard_tanh_grad_from_output(y, y, 2.0, 1.0, out=o), ValueError, "min_val"),
    (lambda y, o: actfast.sigmoid_grad_from_output(y, y, out=o[:2]), ValueError, "shape"),
    (lambda y, o: actfast.elu_grad_from_output(y, y, float("nan"), out=o), ValueError, "NaN"),
    (lambda y, o: actfast.tanh_grad_from_output(y.astype(complex), y, out=o), TypeError, "complex"),
])
def test_bad_parameters_raise_and_leave_out_untouched(call, exc, match):
    y = np.linspace(-1, 1, 5)
    out = np.full(5, 7.0)
    with pytest.raises(exc, match=match):
        call(y, out)
    np.testing.assert_array_equal(out, 7.0)


def test_array_semantics():
    y = actfast.sigmoid(np.linspace(-4, 4, 12).reshape(3, 4))
    dy = np.arange(4.0)                       # broadcasts along rows
    ref = dy * y * (1 - y)
    np.testing.assert_allclose(actfast.sigmoid_grad_from_output(y, dy), ref, rtol=1e-15)
    d = np.broadcast_to(dy, y.shape).copy()
    r = actfast.sigmoid_grad_from_output(y, d, out=d)   # in place on dy
    assert r is d
    np.testing.assert_allclose(d, ref, rtol=1e-15)
    np.testing.assert_allclose(actfast.tanh_grad_from_output(y[:, ::-2], dy[::-2]),
                               dy[::-2] * (1 - y[:, ::-2] ** 2), rtol=1e-14)
    h = actfast.tanh_grad_from_output(np.float16(0.5), np.float16(2))
    assert h.dtype == np.float16 and float(h) == 1.5
    assert isinstance(actfast.relu_grad_from_output(1.0, 2.0), np.float64)


@pytest.mark.parametrize("case", ["sigmoid", "softplus", "relu"])
def test_parallel_equals_serial(case):
    params, _, _ = CASES[case]
    f, _, g_out = _fns(case)
    rng = np.random.default_rng(3)
    for n in (1, 2047, 8191, 65535, 65536 + 63, 300001):
        y = f(rng.normal(size=n).astype(np.float32) * 4, **params)
        dy = rng.normal(size=n).astype(np.float32)
        same_on_1_and_2_threads(lambda: (g_out(y, dy, **params),), f"n={n}")


def test_dense_backward_uses_the_same_kernel():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 20))
    W = rng.standard_normal((20, 30))
    y = actfast.dense(x, W, None, "tanh")
    dy = rng.standard_normal(y.shape)
    dx, dW, db = actfast.dense_grad(dy, x, W, y, "tanh")
    dz = actfast.tanh_grad_from_output(y, dy)
    np.testing.assert_allclose(db, dz.sum(0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dW, x.T @ dz, rtol=1e-12, atol=1e-12)
