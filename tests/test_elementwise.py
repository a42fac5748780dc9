"""Elementwise activations and their gradients against float64 references.

Accuracy is measured in ULP of the result's dtype. For gradients whose derivative is a
sum of terms that cancel near a root (gelu, silu, mish, hard_swish ...), the error is
measured relative to max(|ref|, 1): an absolute bound of a few ulp(1) there. The
exhaustive accuracy figures are produced by bench/accuracy.py; these tests guard the
bounds on a dense grid plus the edge values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sc

import actfast
from _helpers import assert_ulp, bit_patterns, op_callers, same_on_1_and_2_threads, ulp_error

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_K = math.sqrt(2.0 / math.pi)


def _softplus_ref(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0.0, beta * x) / beta)


def _gelu_tanh_u2(x):
    return 2.0 * GELU_K * (x + 0.044715 * x**3)


def _mish_t(x):
    return np.tanh(np.logaddexp(0.0, x))


def _gelu_tanh_derivative(x):
    # Beyond |x| = 1e4 the derivative is its limit (0 or 1) to double precision, and the
    # formula's x**3 would overflow.
    xs = np.clip(x, -1e4, 1e4)
    u2 = _gelu_tanh_u2(xs)
    d = sc.expit(u2) + xs * sc.expit(u2) * sc.expit(-u2) * 2.0 * GELU_K * (1.0 + 3 * 0.044715 * xs * xs)
    return np.where(np.abs(x) > 1e4, (x > 0) * 1.0, d)


def _sech2(x):
    with np.errstate(over="ignore"):
        return 1.0 / np.cosh(x) ** 2


# name -> (public name, params, forward reference f(x), derivative reference f'(x),
#          kinks (finite differences skip them), floor for the relative error of the grad)
OPS = {
    "relu": ("relu", {}, lambda x: np.maximum(x, 0.0), lambda x: (x > 0) * 1.0, [0.0], 0.0),
    "relu6": ("relu6", {}, lambda x: np.clip(x, 0.0, 6.0), lambda x: ((x > 0) & (x < 6)) * 1.0, [0.0, 6.0], 0.0),
    "leaky_relu": ("leaky_relu", {"negative_slope": 0.125}, lambda x: np.where(x > 0, x, 0.125 * x),
                   lambda x: np.where(x > 0, 1.0, 0.125), [0.0], 0.0),
    "hard_tanh": ("hard_tanh", {"min_val": -2.0, "max_val": 1.5}, lambda x: np.clip(x, -2.0, 1.5),
                  lambda x: ((x > -2.0) & (x < 1.5)) * 1.0, [-2.0, 1.5], 0.0),
    "hard_sigmoid": ("hard_sigmoid", {}, lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
                     lambda x: ((x > -3) & (x < 3)) / 6.0, [-3.0, 3.0], 0.0),
    "hard_swish": ("hard_swish", {}, lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
                   lambda x: np.where(x <= -3, 0.0, np.where(x < 3, x / 3.0 + 0.5, 1.0)), [-3.0, 3.0], 1.0),
    "softsign": ("softsign", {}, lambda x: x / (1.0 + np.abs(x)), lambda x: (1.0 / (1.0 + np.abs(x))) ** 2, [], 0.0),
    "elu": ("elu", {"alpha": 1.25}, lambda x: np.where(x > 0, x, 1.25 * np.expm1(np.minimum(x, 0))),
            lambda x: np.where(x > 0, 1.0, 1.25 * np.exp(np.minimum(x, 0))), [0.0], 0.0),
    "selu": ("selu", {}, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0))), [0.0], 0.0),
    "celu": ("celu", {"alpha": 0.75}, lambda x: np.where(x > 0, x, 0.75 * np.expm1(np.minimum(x, 0) / 0.75)),
             lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / 0.75)), [0.0], 0.0),
    "sigmoid": ("sigmoid", {}, sc.expit, lambda x: sc.expit(x) * sc.expit(-x), [], 0.0),
    "log_sigmoid": ("log_sigmoid", {}, sc.log_expit, lambda x: sc.expit(-x), [], 0.0),
    "silu": ("silu", {}, lambda x: x * sc.expit(x), lambda x: sc.expit(x) * (1.0 + x * sc.expit(-x)), [], 1.0),
    "softplus": ("softplus", {"beta": 2.0, "threshold": 15.0}, lambda x: _softplus_ref(x, 2.0, 15.0),
                 lambda x: np.where(2.0 * x > 15.0, 1.0, sc.expit(2.0 * x)), [7.5], 0.0),
    "softplus_default": ("softplus", {}, _softplus_ref, lambda x: np.where(x > 20.0, 1.0, sc.expit(x)), [20.0], 0.0),
    "mish": ("mish", {}, lambda x: x * _mish_t(x),
             lambda x: _mish_t(x) + x * sc.expit(x) * _sech2(np.logaddexp(0.0, x)), [], 1.0),
    "tanh": ("tanh", {}, np.tanh, _sech2, [], 0.0),
    "gelu": ("gelu", {}, lambda x: x * sc.ndtr(x),
             lambda x: sc.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), [], 1.0),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}, lambda x: x * sc.expit(_gelu_tanh_u2(x)),
                  lambda x: _gelu_tanh_derivative(x), [], 1.0),
}
OP_IDS = list(OPS)

# Accuracy bounds (ULP of the result dtype) on the grid below. float32 activations are
# computed in double and rounded once (<= 0.5 ulp measured, 1 allowed), except float32
# tanh, computed in float lanes where FMA exists (0.982 ulp over all 2^32 inputs, see
# test_float32_tanh_bit_patterns), and sigmoid, sigmoid', log_sigmoid', softplus', tanh'
# and elu (float lanes with FMA, 0.78 / 0.61 ulp over all 2^32 inputs); the float64 bounds
# are those measured by bench/accuracy.py on 1e8 inputs, rounded up (mish and the tanh
# form of gelu's gradient are the worst, near the roots of their derivatives).
FWD_ULP = {np.float32: 1.0, np.float64: 6.0}
GRAD_ULP = {np.float32: 1.0, np.float64: 10.0}
# Parameters are binary-exact (0.125, 1.25, 0.75) so that float32 and the reference use
# the same values. Two float64 exceptions: celu' = exp(x / alpha) inherits the rounding
# of x / alpha, up to |x / alpha| / 2 ulp (107 ulp at x = -245 with alpha = 0.75; with the
# default alpha = 1 the quotient is exact); the tanh form of gelu
# loses precision where its result nears the underflow threshold (x < -20, y ~ 1e-305).
FWD_ULP_OVERRIDE = {"gelu_tanh": {np.float32: 1.0, np.float64: 128.0}}
GRAD_ULP_OVERRIDE = {"celu": {np.float32: 1.0, np.float64: 192.0}}


def fwd_bound(op, dtype):
    return FWD_ULP_OVERRIDE.get(op, FWD_ULP)[dtype]


def grad_bound(op, dtype):
    return GRAD_ULP_OVERRIDE.get(op, GRAD_ULP)[dtype]
fwd, grad = op_callers(OPS)


def _mp_refs():
    """High-precision references where a float64 NumPy reference is itself inexact: the
    rounding of an inner argument (x / sqrt 2, the cubic of gelu's tanh form, x / alpha)
    is amplified by exp's condition number in the tails. The constants are the double
    values the kernels use, so these define the same functions."""
    mpmath = pytest.importorskip("mpmath")
    mp = mpmath.mp
    k = mpmath.mpf(GELU_K)
    c = mpmath.mpf(0.044715)
    alpha = mpmath.mpf(0.75)

    def sig(u):
        return 1 / (1 + mpmath.exp(-u))

    def gelu_tanh_f(x):
        return x * sig(2 * k * (x + c * x**3))

    def gelu_tanh_d(x):
        if abs(x) > 1e4:
            return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)
        u2 = 2 * k * (x + c * x**3)
        s = sig(u2)
        return s + x * s * (1 - s) * 2 * k * (1 + 3 * c * x * x)

    return {
        "gelu": (lambda x: x * mpmath.ncdf(x), lambda x: mpmath.ncdf(x) + x * mpmath.npdf(x)),
        "gelu_tanh": (gelu_tanh_f, gelu_tanh_d),
        "celu": (lambda x: x if x > 0 else alpha * mpmath.expm1(x / alpha),
                 lambda x: mpmath.mpf(1) if x > 0 else mpmath.exp(x / alpha)),
    }, mp


_MP_CACHE = {}


def precise_ref(op, which, x):
    """Forward (which=0) or derivative (which=1) reference: mpmath at 40 digits for the
    ops in _mp_refs, the float64 NumPy formula otherwise."""
    np_ref = OPS[op][2 + which]
    if x.dtype != np.float64 or op not in ("gelu", "gelu_tanh", "celu"):
        with np.errstate(all="ignore"):
            return np_ref(x.astype(np.float64))
    key = (op, which, x.tobytes())
    if key not in _MP_CACHE:
        refs, mp = _mp_refs()
        f = refs[op][which]
        with mp.workdps(40):
            # Beyond |x| = 1e4 every one of these is its linear or constant limit,
            # which the float64 formula gets right (and mpmath's erfc overflows there).
            use = np.isfinite(x) & (np.abs(x) < 1e4)
            out = np.array([float(f(mp.mpf(float(v)))) if u else np.nan for v, u in zip(x, use)])
        with np.errstate(all="ignore"):
            fallback = np_ref(x.astype(np.float64))
        _MP_CACHE[key] = np.where(use, out, fallback)
    return _MP_CACHE[key]


def grid(dtype):
    """Dense in [-12, 12], log-spaced out to near overflow, plus edge values."""
    info = np.finfo(dtype)
    lin = np.linspace(-12.0, 12.0, 4801)
    top = math.log10(float(info.max)) - 1
    logs = np.logspace(-12, top, 600)
    tiny = [float(info.tiny), float(info.smallest_subnormal), 0.0, 1e-30, 1e-8]
    pts = np.concatenate([lin, logs, -logs, tiny, [-t for t in tiny], [-0.0]])
    return pts.astype(dtype)


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("op", OP_IDS)
def test_forward_accuracy(op, dtype):
    x = grid(dtype)
    ref = precise_ref(op, 0, x)
    y = fwd(op)(x)
    assert y.dtype == dtype
    assert_ulp(y, ref, dtype, fwd_bound(op, dtype), x, op)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("op", OP_IDS)
def test_grad_accuracy(op, dtype):
    x = grid(dtype)
    rng = np.random.default_rng(0)
    dy = rng.uniform(0.5, 2.0, x.shape).astype(dtype)
    floor = OPS[op][5]
    ref = dy.astype(np.float64) * precise_ref(op, 1, x)
    g = grad(op)(x, dy)
    assert g.dtype == dtype
    assert_ulp(g, ref, dtype, grad_bound(op, dtype), x, op + "_grad", floor)


@pytest.mark.parametrize("op", OP_IDS)
def test_grad_matches_finite_differences(op):
    _, _, _, _, kinks, _ = OPS[op]
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-8, 8, 400), rng.normal(0, 1, 200)])
    h = 1e-6
    # Keep away from kinks, where the derivative is a convention, not a limit.
    for k in kinks:
        x = x[np.abs(x - k) > 1e-4]
    f = fwd(op)
    fd = (f(x + h) - f(x - h)) / (2 * h)
    g = grad(op)(x, np.ones_like(x))
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("op", OP_IDS)
def test_grad_scales_with_dy(op):
    x = np.linspace(-5, 5, 101)
    dy = np.linspace(-3, 3, 101)
    g1 = grad(op)(x, np.ones_like(x))
    np.testing.assert_allclose(grad(op)(x, dy), dy * g1, rtol=1e-15, atol=0)


# Limits at +-inf: (forward at -inf, forward at +inf, derivative at -inf, at +inf).
LIMITS = {
    "relu": (0.0, math.inf, 0.0, 1.0),
    "relu6": (0.0, 6.0, 0.0, 0.0),
    "leaky_relu": (-math.inf, math.inf, 0.125, 1.0),
    "hard_tanh": (-2.0, 1.5, 0.0, 0.0),
    "hard_sigmoid": (0.0, 1.0, 0.0, 0.0),
    "hard_swish": (0.0, math.inf, 0.0, 1.0),
    "softsign": (-1.0, 1.0, 0.0, 0.0),
    "elu": (-1.25, math.inf, 0.0, 1.0),
    "selu": (-SELU_SCALE * SELU_ALPHA, math.inf, 0.0, SELU_SCALE),
    "celu": (-0.75, math.inf, 0.0, 1.0),
    "sigmoid": (0.0, 1.0, 0.0, 0.0),
    "log_sigmoid": (-math.inf, 0.0, 1.0, 0.0),
    "silu": (0.0, math.inf, 0.0, 1.0),
    "softplus": (0.0, math.inf, 0.0, 1.0),
    "softplus_default": (0.0, math.inf, 0.0, 1.0),
    "mish": (0.0, math.inf, 0.0, 1.0),
    "tanh": (-1.0, 1.0, 0.0, 0.0),
    "gelu": (0.0, math.inf, 0.0, 1.0),
    "gelu_tanh": (0.0, math.inf, 0.0, 1.0),
}


@pytest.mark.parametrize("dtype", DTYPES + [np.float16], ids=["f32", "f64", "f16"])
@pytest.mark.parametrize("op", OP_IDS)
def test_special_values(op, dtype):
    x = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0], dtype=dtype)
    lo, hi, dlo, dhi = LIMITS[op]
    # Every flag a discarded vector lane might raise must be cleared: no warnings.
    with np.errstate(all="raise"):
        y = fwd(op)(x)
        g = grad(op)(x, np.ones_like(x))
        g_nan_dy = grad(op)(np.array([1.0], dtype), np.array([np.nan], dtype))
    assert y.dtype == dtype and g.dtype == dtype
    np.testing.assert_array_equal(y[:2], np.array([lo, hi], dtype=dtype))
    np.testing.assert_array_equal(g[:2], np.array([dlo, dhi], dtype=dtype))
    assert np.isnan(y[2]) and np.isnan(g[2]), "NaN must propagate"
    assert np.isnan(g_nan_dy[0]) or OPS[op][3](np.array([1.0]))[0] == 0
    ref0 = dtype(OPS[op][2](np.array([0.0]))[0])
    assert y[3] == ref0 and y[4] == ref0


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("op", OP_IDS)
def test_no_overflow_for_huge_inputs(op, dtype):
    info = np.finfo(dtype)
    x = np.array([info.min, -1e30, -1000.0, -88.0, 88.0, 1000.0, 1e30, info.max], dtype=dtype)
    with np.errstate(all="raise"):
        y = fwd(op)(x)
        g = grad(op)(x, np.ones_like(x))
    assert not np.isnan(y).any() and not np.isnan(g).any()
    with np.errstate(all="ignore"):
        ref = OPS[op][2](x.astype(np.float64))
    finite = np.isfinite(ref) & (np.abs(ref) < float(info.max))
    np.testing.assert_allclose(y[finite], ref[finite].astype(dtype), rtol=4 * float(info.eps), atol=0)


def test_relu_signed_zero_and_kinks():
    assert np.signbit(actfast.relu(np.array([-0.0])))[0] == np.False_
    assert actfast.relu_grad(0.0, 1.0) == 0.0          # PyTorch: relu'(0) = 0
    assert actfast.elu_grad(0.0, 1.0, alpha=2.0) == 2.0  # PyTorch: elu'(0) = alpha
    assert actfast.leaky_relu_grad(0.0, 1.0) == pytest.approx(0.01)
    # PyTorch 2.x: 0 at -3 and 1 at 3 (the middle slope only strictly between).
    assert actfast.hard_swish_grad(-3.0, 1.0) == 0.0
    assert actfast.hard_swish_grad(3.0, 1.0) == 1.0
    assert actfast.hard_tanh_grad(1.0, 1.0) == 0.0
    assert actfast.relu6_grad(6.0, 1.0) == 0.0


def test_gelu_negative_tail_no_cancellation():
    # 0.5 * x * (1 + erf(x / sqrt 2)) is off by ~1.7e7 ulp here in float32.
    x = np.array([-8.3, -10.0, -12.0], dtype=np.float32)
    ref = x.astype(np.float64) * sc.ndtr(x.astype(np.float64))
    assert_ulp(actfast.gelu(x), ref, np.float32, fwd_bound("gelu", np.float32), x, "gelu")
    naive = 0.5 * x * (1 + sc.erf(x / np.float32(np.sqrt(2))))
    assert np.max(ulp_error(naive, ref, np.float32)) > 1e6   # what this test guards against


def test_float16_is_computed_in_float32_and_rounded_once():
    x16 = np.linspace(-6, 6, 2001).astype(np.float16)
    for op in ("sigmoid", "gelu", "leaky_relu", "softplus"):
        y16 = fwd(op)(x16)
        assert y16.dtype == np.float16
        np.testing.assert_array_equal(y16, fwd(op)(x16.astype(np.float32)).astype(np.float16))
        g16 = grad(op)(x16, np.ones_like(x16))
        assert g16.dtype == np.float16
        np.testing.assert_array_equal(g16, grad(op)(x16.astype(np.float32), np.float32(1)).astype(np.float16))


def test_float16_conversion_exhaustive():
    # Every float16 bit pattern survives half -> float -> half through the kernels.
    h = np.arange(65536, dtype=np.uint16).view(np.float16)
    y = actfast.hard_tanh(h, -np.inf, np.inf)
    finite = ~np.isnan(h)
    np.testing.assert_array_equal(y[finite].view(np.uint16), h[finite].view(np.uint16))
    assert np.isnan(y[~finite]).all()
    # float -> half rounding (nearest even, overflow to inf, subnormals) against NumPy.
    f = np.random.default_rng(2).uniform(-70000, 70000, 20000).astype(np.float32)
    f = np.concatenate([f, np.float32(2.0) ** -np.arange(10, 30, dtype=np.float32),
                        np.float32([65519.99, 65520.0, 65504.0, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8])])
    with np.errstate(over="ignore"):
        f16 = f.astype(np.float16)                        # NumPy's rounding, the reference
    with np.errstate(over="ignore"):  # NumPy's own cast warns for values past 65504
        got = actfast.leaky_relu(f, 1.0, out=np.empty(f.shape, np.float16))  # float32 loop, cast on output
    np.testing.assert_array_equal(got.view(np.uint16), f16.view(np.uint16))
    # float16 loop: the float32 result is rounded by our own converter
    got16 = actfast.hard_tanh(f16, -np.inf, np.inf)
    np.testing.assert_array_equal(got16.view(np.uint16), f16.view(np.uint16))
    s = actfast.sigmoid(f16)
    np.testing.assert_array_equal(s, actfast.sigmoid(f16.astype(np.float32)).astype(np.float16))
    # our float -> half rounding on values that are not half-representable
    g = actfast.leaky_relu(f16, np.float32(1.0 / 3.0))
    with np.errstate(over="ignore"):
        want = (f16.astype(np.float32) * np.where(f16 > 0, 1, np.float32(1.0 / 3.0))).astype(np.float16)
    np.testing.assert_array_equal(g.view(np.uint16), want.view(np.uint16))


@pytest.mark.parametrize("dtype, expected", [
    (np.int8, np.float64), (np.int16, np.float64), (np.int64, np.float64), (np.uint8, np.float64),
    (np.bool_, np.float64), (np.float16, np.float16), (np.float32, np.float32), (np.float64, np.float64),
])
def test_dtype_rules(dtype, expected):
    x = np.array([-2, 0, 3]).astype(dtype)
    for op in ("relu", "leaky_relu", "gelu"):
        y = fwd(op)(x)
        assert y.dtype == expected, (op, dtype)
        np.testing.assert_allclose(y.astype(np.float64), OPS[op][2](x.astype(np.float64)), rtol=1e-3)
        assert grad(op)(x, x).dtype == expected


def test_float32_stays_float32_with_numpy_float64_parameters():
    x = np.ones(3, dtype=np.float32)
    assert actfast.leaky_relu(x, np.float64(0.2)).dtype == np.float32
    assert actfast.softplus(x, beta=np.float64(2), threshold=np.int64(10)).dtype == np.float32


def test_mixed_dtypes_promote_like_numpy():
    x32 = np.ones(3, np.float32)
    assert actfast.relu_grad(x32, np.ones(3, np.float64)).dtype == np.float64
    assert actfast.relu_grad(x32, 2.0).dtype == np.float32


def test_scalars_give_numpy_scalars():
    for value in (1.5, np.float64(1.5), np.array(1.5)):
        y = actfast.sigmoid(value)
        assert isinstance(y, np.float64) and y == pytest.approx(sc.expit(1.5))
    y32 = actfast.relu(np.float32(-1))
    assert isinstance(y32, np.float32) and y32 == 0
    assert isinstance(actfast.relu_grad(1.0, 2.0), np.float64)
    assert actfast.relu(3) == 3.0 and isinstance(actfast.relu(3), np.float64)
    assert actfast.relu([-1, 2]).tolist() == [0.0, 2.0]


@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0, 2), (), (1,), (7,), (17,), (1023,), (3, 5, 7)])
def test_shapes(shape):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape) * 4
    y = actfast.silu(x)
    assert np.shape(y) == shape
    np.testing.assert_allclose(y, x * sc.expit(x), rtol=1e-14)
    g = actfast.silu_grad(x, x)
    assert np.shape(g) == shape


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_layouts_and_strides(dtype):
    rng = np.random.default_rng(4)
    base = (rng.normal(size=(37, 41)) * 5).astype(dtype)
    views = {
        "C": base,
        "F": np.asfortranarray(base),
        "T": base.T,
        "step2": base[::2, ::3],
        "neg": base[::-1, ::-2],
        "1d-neg": base.ravel()[::-1],
        "1d-step": base.ravel()[1::7],
    }
    for label, v in views.items():
        for op in ("relu", "leaky_relu", "gelu", "softplus", "hard_tanh"):
            ref = fwd(op)(np.ascontiguousarray(v))
            got = fwd(op)(v)
            np.testing.assert_array_equal(got, ref, err_msg=f"{op} on {label}")
            dy = (v * 0.5 + 1).astype(dtype)
            np.testing.assert_array_equal(grad(op)(v, dy), grad(op)(np.ascontiguousarray(v), np.ascontiguousarray(dy)),
                                          err_msg=f"{op}_grad on {label}")


def test_broadcasting_x_and_dy():
    x = np.linspace(-3, 3, 5)[:, None]
    dy = np.array([[1.0, -2.0, 0.5]])
    g = actfast.gelu_grad(x, dy)
    assert g.shape == (5, 3)
    np.testing.assert_allclose(g, actfast.gelu_grad(np.broadcast_to(x, (5, 3)), np.broadcast_to(dy, (5, 3))))
    g2 = actfast.sigmoid_grad(x, 2.0)
    np.testing.assert_allclose(g2, 2 * actfast.sigmoid_grad(x, 1.0))


def test_out_and_in_place():
    x = np.linspace(-3, 3, 1000)
    expected = actfast.elu(x)
    out = np.empty_like(x)
    r = actfast.elu(x, out=out)
    assert r is out
    np.testing.assert_array_equal(out, expected)
    y = x.copy()
    actfast.elu(y, out=y)
    np.testing.assert_array_equal(y, expected)
    dy = np.ones_like(x) * 3
    g_expected = actfast.elu_grad(x, dy)
    actfast.elu_grad(x, dy, out=dy)
    np.testing.assert_array_equal(dy, g_expected)
    # a strided view as out
    big = np.zeros(2000)
    actfast.relu(x, out=big[::2])
    np.testing.assert_array_equal(big[::2], np.maximum(x, 0))
    assert not big[1::2].any()


def test_out_cast_same_kind():
    x = np.linspace(-1, 1, 10)
    out32 = np.empty(10, np.float32)
    actfast.sigmoid(x, out=out32)
    np.testing.assert_allclose(out32, sc.expit(x), rtol=1e-6)


def test_where():
    x = np.array([-1.0, 2.0, -3.0, 4.0])
    out = np.full(4, 7.0)
    actfast.relu(x, out=out, where=x > 0)
    np.testing.assert_array_equal(out, [7.0, 2.0, 7.0, 4.0])


class _Wrapped:
    """A minimal duck array: proves that calls dispatch through __array_ufunc__."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        unwrapped = [i.a if isinstance(i, _Wrapped) else i for i in inputs]
        return _Wrapped(getattr(ufunc, method)(*unwrapped, **kwargs))


def test_array_ufunc_protocol_is_honoured():
    w = actfast.leaky_relu(_Wrapped([-1.0, 1.0]), negative_slope=0.5)
    assert isinstance(w, _Wrapped)
    np.testing.assert_array_equal(w.a, [-0.5, 1.0])
    g = actfast.gelu_grad(_Wrapped([0.0]), 1.0)
    assert isinstance(g, _Wrapped) and g.a[0] == pytest.approx(0.5)


def test_dask_stays_lazy():
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.linspace(-2, 2, 100), chunks=25)
    y = actfast.sigmoid(x)
    assert isinstance(y, da.Array)
    np.testing.assert_allclose(y.compute(), sc.expit(np.linspace(-2, 2, 100)))


# ------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    np.array([1 + 2j]), np.array([object()], dtype=object), np.array(["a"]),
    np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([1], dtype="timedelta64[s]"),
])
@pytest.mark.parametrize("op", ["relu", "gelu", "leaky_relu"])
def test_unsupported_dtypes_raise_type_error_naming_dtype(op, bad):
    with pytest.raises(TypeError, match=str(bad.dtype).split("[")[0]):
        fwd(op)(bad)
    with pytest.raises(TypeError, match=str(bad.dtype).split("[")[0]):
        grad(op)(bad, np.ones(1))


def test_longdouble_raises():
    x = np.ones(2, dtype=np.longdouble)
    if np.finfo(np.longdouble).nmant == np.finfo(np.float64).nmant:
        pytest.skip("longdouble is double here")
    with pytest.raises(TypeError, match="longdouble|float128|float96"):
        actfast.relu(x)


def test_bad_out_leaves_it_untouched():
    x = np.linspace(-1, 1, 6)
    out = np.full(5, 42.0)
    with pytest.raises(ValueError):
        actfast.relu(x, out=out)
    assert (out == 42.0).all()
    out_int = np.full(6, 42)
    with pytest.raises(TypeError, match="int64|cast"):
        actfast.sigmoid(x, out=out_int)
    assert (out_int == 42).all()
    out_ok = np.full(6, 42.0)
    with pytest.raises(ValueError):
        actfast.hard_tanh(x, 2.0, 1.0, out=out_ok)
    assert (out_ok == 42.0).all()
    with pytest.raises(ValueError):
        actfast.gelu(x, approximate="exact", out=out_ok)
    assert (out_ok == 42.0).all()
    with pytest.raises(ValueError):
        actfast.relu_grad(x, np.ones(4), out=out_ok)
    assert (out_ok == 42.0).all()


@pytest.mark.parametrize("call, exc, match", [
    (lambda: actfast.leaky_relu(1.0, "0.1"), TypeError, "negative_slope must be a real number"),
    (lambda: actfast.leaky_relu(1.0, [0.1]), TypeError, "negative_slope"),
    (lambda: actfast.elu(1.0, alpha=None), TypeError, "alpha"),
    (lambda: actfast.elu(1.0, alpha=float("nan")), ValueError, "alpha must not be NaN"),
    (lambda: actfast.celu(1.0, alpha=0.0), ValueError, "alpha must be non-zero"),
    (lambda: actfast.softplus(1.0, beta=0), ValueError, "beta must be non-zero"),
    (lambda: actfast.hard_tanh(1.0, 1.0, -1.0), ValueError, "min_val"),
    (lambda: actfast.gelu(1.0, approximate="erf"), ValueError, "approximate must be 'none' or 'tanh'"),
    (lambda: actfast.gelu_grad(1.0, 1.0, approximate=None), ValueError, "approximate"),
    (lambda: actfast.relu(1.0, True), TypeError, "positional"),
])
def test_parameter_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------------------
# Threads: sizes around the parallel threshold give the serial result bit for bit
# ------------------------------------------------------------------------------------

def _threshold_sizes(per_thread):
    t = 2 * per_thread   # the first size that goes parallel with 2 threads
    return sorted({0, 1, 7, 17, 63, 64, 65, 1023, t - 1, t, t + 1, 3 * per_thread + 13})


COST_OF = {"relu": "cheap", "sigmoid": "exp", "gelu": "erf", "softplus": "exp", "hard_swish": "cheap"}


@pytest.mark.parametrize("op", list(COST_OF))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_parallel_equals_serial_around_threshold(op, dtype):
    k = actfast._dispatch.kernels
    per = k._get_min_per_thread()[COST_OF[op]]
    rng = np.random.default_rng(5)
    for n in _threshold_sizes(per):
        x = (rng.normal(size=n) * 6).astype(dtype)
        dy = rng.normal(size=n).astype(dtype)
        y2, g2 = same_on_1_and_2_threads(lambda: (fwd(op)(x), grad(op)(x, dy)), f"n={n}")
        assert_ulp(y2, precise_ref(op, 0, x), dtype, fwd_bound(op, dtype), x, f"{op} n={n}")


def test_small_threshold_forces_parallel_paths():
    # With a tiny threshold every size goes parallel: the split must cover the range
    # exactly (no element skipped or written twice), for odd sizes and tails too.
    k = actfast._dispatch.kernels
    saved = k._get_min_per_thread()
    try:
        for cost in saved:
            k._set_min_per_thread(cost, 1)
        for n in (2, 3, 5, 63, 64, 65, 127, 129, 1001):
            x = np.random.default_rng(n).normal(size=n) * 3
            rows = x.reshape(1, -1).repeat(3, 0)
            with actfast.num_threads(1):
                serial = [actfast.tanh(x), actfast.sigmoid(x), actfast.relu_grad(x, x), actfast.softmax(rows)]
            with actfast.num_threads(2):
                parallel = [actfast.tanh(x), actfast.sigmoid(x), actfast.relu_grad(x, x), actfast.softmax(rows)]
            for a, b in zip(serial, parallel):
                np.testing.assert_array_equal(a, b, err_msg=f"n={n}")
            np.testing.assert_allclose(parallel[1], sc.expit(x), rtol=1e-14)
            np.testing.assert_allclose(parallel[3], sc.softmax(rows, axis=-1), rtol=1e-13)
    finally:
        for cost, v in saved.items():
            k._set_min_per_thread(cost, v)
    with pytest.raises(ValueError):
        k._set_min_per_thread("cheap", 0)
    with pytest.raises(ValueError):
        k._set_min_per_thread("nonsense", 10)


def _raw_params(name, params):
    """The positional parameters of the raw ufunc: the public function's defaults,
    overridden by ``params``."""
    import inspect

    sig = inspect.signature(getattr(actfast, name))
    skip = {"x", "out", "where", "approximate"}
    values = [params.get(p.name, p.default) for p in sig.parameters.values() if p.name not in skip]
    if name == "silu" and values == [1.0]:
        return []      # silu's default beta runs the kernel without it (PARAM_VARIANTS)
    return values


@pytest.mark.parametrize("isa", actfast._dispatch.supported_variants())
def test_every_supported_variant_is_accurate(isa):
    mod = actfast._dispatch.load_variant(isa)
    assert mod.ISA == isa
    for dtype in DTYPES:
        x = grid(dtype)
        for op, (name, params, _, _, _, floor) in OPS.items():
            uf = getattr(mod, "gelu_tanh" if op == "gelu_tanh" else name)
            ufg = getattr(mod, ("gelu_tanh" if op == "gelu_tanh" else name) + "_grad")
            pv = _raw_params(name, params)
            ref = precise_ref(op, 0, x)
            dref = precise_ref(op, 1, x)
            assert_ulp(uf(x, *pv), ref, dtype, fwd_bound(op, dtype), x, f"{isa} {op}")
            assert_ulp(ufg(x, np.ones_like(x), *pv), dref, dtype, grad_bound(op, dtype), x, f"{isa} {op}_grad", floor)


@pytest.mark.parametrize("isa", actfast._dispatch.supported_variants())
def test_float32_tanh_bit_patterns(isa):
    """float32 tanh (float lanes with FMA, double without) within 1 ulp on every bit
    pattern of [0.75, 1.25], where both of its branches are at their worst (the
    exhaustive maximum is 0.982 ulp at x = 0.9062), and on every 997th bit pattern."""
    mod = actfast._dispatch.load_variant(isa)
    x = bit_patterns((0.75, 1.25))
    ref = np.tanh(x.astype(np.float64))
    assert_ulp(mod.tanh(x), ref, np.float32, 1.0, x, f"{isa} tanh")


@pytest.mark.parametrize("isa", actfast._dispatch.supported_variants())
def test_float32_sigmoid_family_bit_patterns(isa):
    """float32 sigmoid, sigmoid', log_sigmoid', softplus' and tanh' (float lanes with FMA,
    double without) within 1 ulp on every bit pattern where the result turns subnormal
    (|x| in [86.5, 88.5], where the exhaustive maximum of 0.78 ulp is; [43, 45] for tanh'),
    and on every 997th bit pattern."""
    mod = actfast._dispatch.load_variant(isa)
    x = bit_patterns((86.5, 88.5))
    xd = x.astype(np.float64)
    one = np.ones_like(x)
    s, sm = sc.expit(xd), sc.expit(-xd)
    assert_ulp(mod.sigmoid(x), s, np.float32, 1.0, x, f"{isa} sigmoid")
    assert_ulp(mod.sigmoid_grad(x, one), s * sm, np.float32, 1.0, x, f"{isa} sigmoid_grad")
    assert_ulp(mod.log_sigmoid_grad(x, one), sm, np.float32, 1.0, x, f"{isa} log_sigmoid_grad")
    sp = np.where(xd > 20, 1.0, s)
    assert_ulp(mod.softplus_grad(x, one, 1.0, 20.0), sp, np.float32, 1.0, x, f"{isa} softplus_grad")
    x = bit_patterns((43.0, 45.0))
    with np.errstate(over="ignore"):
        ref = 1.0 / np.cosh(x.astype(np.float64)) ** 2
    assert_ulp(mod.tanh_grad(x, np.ones_like(x)), ref, np.float32, 1.0, x, f"{isa} tanh_grad")


def test_variants_agree_with_dispatched():
    x = np.linspace(-20, 20, 10001)
    chosen = actfast._dispatch.kernels
    for isa in actfast._dispatch.supported_variants():
        mod = actfast._dispatch.load_variant(isa)
        for name in ("relu", "hard_swish", "leaky_relu"):
            args = {"leaky_relu": (0.01,), "hard_swish": (1 / 6, 0.5)}.get(name, ())
            np.testing.assert_array_equal(getattr(mod, name)(x, *args), getattr(chosen, name)(x, *args))
