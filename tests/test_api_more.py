"""threshold, hard_shrink, soft_shrink, tanh_shrink and squareplus: values against float64
(mpmath where the formula is inexact), gradients against finite differences, special
values, kinks, parameter errors, threads, layouts, the compiled variants, the dense layer
and the ONNX operators they correspond to.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import actfast

from _helpers import assert_ulp, op_callers, same_on_1_and_2_threads, ulp_error

mpmath = pytest.importorskip("mpmath")
mp = mpmath.mp

DTYPES = [np.float32, np.float64]
IDS = ["f32", "f64"]


# --------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------

def _mp_tanh_shrink(v: float):
    """x - tanh(x) at ~40 correct digits: the working precision grows with the digits
    that the subtraction cancels (3 / x^2 of them)."""
    x = mp.mpf(v)
    if x == 0:
        return mp.mpf(0)
    extra = max(0, int(-2 * math.log10(abs(v)))) + 10
    with mp.workdps(50 + extra):
        return x - mp.tanh(x)


def _mp_squareplus(v: float, b: float):
    with mp.workdps(50):
        x, bb = mp.mpf(v), mp.mpf(b)
        s = mp.sqrt(x * x + bb)
        return (x + s) / 2 if x >= 0 else bb / (2 * (s - x))


def _mp_squareplus_grad(v: float, b: float):
    with mp.workdps(50):
        x, bb = mp.mpf(v), mp.mpf(b)
        s = mp.sqrt(x * x + bb)
        if s == 0:
            return mp.mpf(0.5)
        return (1 + x / s) / 2 if x >= 0 else bb / (2 * s * (s - x))


def _mp_array(f, x, *args):
    out = np.empty(x.shape, np.float64)
    for i, v in enumerate(x.astype(np.float64).ravel()):
        if not math.isfinite(v):
            out.flat[i] = np.nan
        else:
            out.flat[i] = float(f(v, *args))
    return out


_CACHE: dict = {}


def ref(op, which, x, **p):
    """Forward (which=0) or derivative (which=1) reference in float64 at x."""
    key = (op, which, tuple(sorted(p.items())), x.dtype.str, x.tobytes())
    if key in _CACHE:
        return _CACHE[key]
    xd = x.astype(np.float64)
    if op == "threshold":
        th, val = p["threshold"], p["value"]
        r = np.where(xd <= th, val, xd) if which == 0 else np.where(xd > th, 1.0, 0.0)
    elif op == "hard_shrink":
        lam = p.get("lambd", 0.5)
        inside = (xd >= -lam) & (xd <= lam)
        r = np.where(inside, 0.0, xd) if which == 0 else np.where(inside, 0.0, 1.0)
    elif op == "soft_shrink":
        lam = p.get("lambd", 0.5)
        inside = (xd >= -lam) & (xd <= lam)
        r = np.where(xd > lam, xd - lam, np.where(xd < -lam, xd + lam, 0.0)) if which == 0 \
            else np.where(inside, 0.0, 1.0)
    elif op == "tanh_shrink":
        if which == 0:
            r = _mp_array(_mp_tanh_shrink, xd)
        else:
            r = _mp_array(lambda v: mp.tanh(mp.mpf(v)) ** 2, xd)
    elif op == "squareplus":
        b = p.get("b", 4.0)
        r = _mp_array(_mp_squareplus if which == 0 else _mp_squareplus_grad, xd, b)
    else:
        raise KeyError(op)
    _CACHE[key] = r
    return r


# op id -> (public name, params, kinks, float64 ulp bound forward / gradient)
OPS = {
    "threshold": ("threshold", {"threshold": 0.75, "value": -2.5}, [0.75], 0.0, 0.0),
    "threshold_inf": ("threshold", {"threshold": -np.inf, "value": 3.0}, [], 0.0, 0.0),
    "hard_shrink": ("hard_shrink", {}, [-0.5, 0.5], 0.0, 0.0),
    "hard_shrink_l": ("hard_shrink", {"lambd": 1.25}, [-1.25, 1.25], 0.0, 0.0),
    "soft_shrink": ("soft_shrink", {}, [-0.5, 0.5], 0.5, 0.0),
    "soft_shrink_l": ("soft_shrink", {"lambd": 0.375}, [-0.375, 0.375], 0.5, 0.0),
    "soft_shrink_0": ("soft_shrink", {"lambd": 0.0}, [0.0], 0.0, 0.0),
    # measured on the avx512 variant (bench/accuracy.py): tanh_shrink 2.1 / 3.4 ulp,
    # squareplus 1.5 / 2.5; the bounds leave room for the variants without fused fma
    "tanh_shrink": ("tanh_shrink", {}, [], 4.0, 5.0),
    "squareplus": ("squareplus", {}, [], 3.0, 4.0),
    "squareplus_b": ("squareplus", {"b": 0.25}, [], 3.0, 4.0),
    "squareplus_0": ("squareplus", {"b": 0.0}, [0.0], 0.5, 0.5),
}
OP_IDS = list(OPS)
F32_ULP = 1.0      # float32 is computed in double and rounded once: 0.5 measured


fwd, grad = op_callers(OPS)


def grid(dtype):
    """Dense in [-4, 4] (the polynomial/direct boundary of tanh_shrink at 1.5 included),
    log-spaced from the subnormals to near overflow, both signs, and the kinks."""
    info = np.finfo(dtype)
    lin = np.linspace(-4.0, 4.0, 1601)
    top = math.log10(float(info.max)) - 0.5
    bottom = math.log10(float(info.smallest_subnormal))
    logs = np.logspace(bottom, top, 700)
    near = np.array([1.5, np.nextafter(1.5, 0), np.nextafter(1.5, 2), 0.625, 1e-3, 2.0, 0.5, 0.375, 1.25, 0.75])
    pts = np.concatenate([lin, logs, -logs, near, -near, [0.0, -0.0, float(info.tiny), float(info.max)]])
    return pts.astype(dtype)


# --------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("op", OP_IDS)
def test_forward_accuracy(op, dtype):
    name, params, _, b64, _ = OPS[op]
    x = grid(dtype)
    with np.errstate(all="raise"):
        y = fwd(op)(x)
    assert y.dtype == dtype
    bound = F32_ULP if dtype == np.float32 else b64
    assert_ulp(y, ref(name, 0, x, **params), dtype, max(bound, 0.0), x, op)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("op", OP_IDS)
def test_grad_accuracy(op, dtype):
    name, params, _, _, b64 = OPS[op]
    x = grid(dtype)
    dy = np.random.default_rng(0).uniform(0.5, 2.0, x.shape).astype(dtype)
    with np.errstate(all="raise"):
        g = grad(op)(x, dy)
    assert g.dtype == dtype
    bound = F32_ULP if dtype == np.float32 else b64
    # float64: dy * f' is one more rounding than f'; float32 rounds once
    want = dy.astype(np.float64) * ref(name, 1, x, **params)
    assert_ulp(g, want, dtype, bound + (0.5 if dtype == np.float64 and b64 else 0.0), x, op + "_grad")


def test_tanh_shrink_has_no_cancellation_near_zero():
    x = np.array([1e-3, 1e-8, 1e-30, 1e-100, -1e-5, 2e-103], np.float64)
    y = actfast.tanh_shrink(x)
    assert_ulp(y, ref("tanh_shrink", 0, x), np.float64, 2.0, x, "tanh_shrink small")
    naive = x - np.tanh(x)
    assert np.max(ulp_error(naive, ref("tanh_shrink", 0, x), np.float64)) > 1e6  # what this guards against
    # float32 keeps full precision into the subnormals of its result
    x32 = np.float32([1e-3, 1e-6, 1e-12, 3e-15, -2e-13])
    assert_ulp(actfast.tanh_shrink(x32), ref("tanh_shrink", 0, x32), np.float32, 1.0, x32, "tanh_shrink f32 small")


def test_tanh_shrink_float32_dense_sweep():
    """Every 2^12-th float32 bit pattern up to 20 (200k inputs), on every variant: the
    double path (baseline) <= 0.5 ulp measured (bench/accuracy.py, every 256th pattern
    of all floats: 0.5 ulp); the float-lane path (avx2, avx512: af_tanh_shrinkf) <= 1 ulp,
    issue 11's bound (tools/exhaustive_f32.c: 0.908 ulp over all 2^32 inputs)."""
    bits = np.arange(0, np.float32(20.0).view(np.uint32), 1 << 12, dtype=np.uint32)
    x = bits.view(np.float32)
    xd = x.astype(np.longdouble)
    z = xd * xd
    # x - tanh(x) as an odd series in long double below 0.5 (24 terms), the difference above
    k = range(4, 52, 2)       # the x^(k-1) terms of tanh, k = 2n
    from fractions import Fraction
    B = [Fraction(1)]
    for m_ in range(1, 52):
        B.append(-sum(Fraction(math.comb(m_ + 1, j)) * B[j] for j in range(m_)) / (m_ + 1))
    coef = [-Fraction(2 ** kk * (2 ** kk - 1)) * B[kk] / math.factorial(kk) for kk in k]
    acc = np.zeros_like(xd)
    for c in reversed(coef):
        acc = acc * z + np.longdouble(c.numerator) / np.longdouble(c.denominator)
    r = np.where(np.abs(xd) < 0.5, xd * z * acc, xd - np.tanh(xd))
    for isa in actfast._dispatch.supported_variants():
        y = actfast._dispatch.load_variant(isa).tanh_shrink(x)
        err = ulp_error(y, r.astype(np.float64), np.float32)
        assert err.max() <= (0.5 + 1e-3 if isa == "baseline" else 1.0), (isa, x[np.argmax(err)])


def test_squareplus_no_cancellation_or_overflow():
    x = np.array([-1e10, -1e100, -1e200, -1.7e308, 1e200, 1.7e308, -3.0e150, 4e150])
    with np.errstate(all="raise"):
        y = actfast.squareplus(x)
        g = actfast.squareplus_grad(x, 1.0)
    assert_ulp(y, ref("squareplus", 0, x), np.float64, 3.0, x, "squareplus tails")
    assert_ulp(g, ref("squareplus", 1, x), np.float64, 4.0, x, "squareplus_grad tails")
    with np.errstate(all="ignore"):
        naive = (x + np.sqrt(x * x + 4)) / 2
    assert naive[0] == 0.0 and actfast.squareplus(-1e10) == pytest.approx(1e-10, rel=1e-15)
    assert np.isinf(naive[5]) and y[5] == 1.7e308      # x^2 overflows in the naive form
    # a huge b, and b with a huge x of either sign
    assert actfast.squareplus(0.0, b=1e308) == pytest.approx(math.sqrt(1e308) / 2, rel=1e-15)
    assert actfast.squareplus(-1e154, b=1e308) == pytest.approx(float(_mp_squareplus(-1e154, 1e308)), rel=1e-15)
    assert actfast.squareplus_grad(-1e154, 1.0, b=1e308) == pytest.approx(
        float(_mp_squareplus_grad(-1e154, 1e308)), rel=1e-14)
    # only x huge: b * 2^-1200 would underflow, the form for x < 0 does not
    v = -2.0 ** 501
    assert actfast.squareplus_grad(v, 1.0, b=2.0 ** 100) == pytest.approx(float(_mp_squareplus_grad(v, 2.0 ** 100)),
                                                                          rel=1e-14)
    # b = 0 is relu, with x^2 underflowing for tiny x
    t = np.array([1e-170, -1e-170, 5e-324, 0.0, -0.0])
    np.testing.assert_array_equal(actfast.squareplus(t, b=0.0), np.maximum(t, 0.0))
    np.testing.assert_array_equal(actfast.squareplus_grad(t, 1.0, b=0.0), [1.0, 0.0, 1.0, 0.5, 0.5])


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", OP_IDS)
def test_grad_matches_finite_differences(op):
    kinks = OPS[op][2]
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-6, 6, 400), rng.normal(0, 1, 200), [1.5, -1.5, 1e-3]])
    for k in kinks:
        x = x[np.abs(x - k) > 1e-4]
    h = 1e-6
    f = fwd(op)
    fd = (f(x + h) - f(x - h)) / (2 * h)
    np.testing.assert_allclose(grad(op)(x, np.ones_like(x)), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("op", OP_IDS)
def test_grad_scales_with_dy(op):
    x = np.linspace(-5, 5, 101)
    dy = np.linspace(-3, 3, 101)
    np.testing.assert_allclose(grad(op)(x, dy), dy * grad(op)(x, np.ones_like(x)), rtol=1e-15, atol=0)


def test_values_at_the_kinks_follow_pytorch():
    # threshold_backward, hardshrink_backward, softshrink_backward: 0 at the kinks
    assert actfast.threshold(0.75, 0.75, -1.0) == -1.0
    assert actfast.threshold_grad(0.75, 2.0, 0.75, -1.0) == 0.0
    assert actfast.threshold_grad(np.nextafter(0.75, 1), 2.0, 0.75, -1.0) == 2.0
    for lam in (0.5, 0.0, 2.0):
        for v in (lam, -lam):
            assert actfast.hard_shrink(v, lam) == 0.0
            assert actfast.soft_shrink(v, lam) == 0.0
            assert actfast.hard_shrink_grad(v, 3.0, lam) == 0.0
            assert actfast.soft_shrink_grad(v, 3.0, lam) == 0.0
    assert actfast.hard_shrink(np.nextafter(0.5, 1)) == np.nextafter(0.5, 1)
    assert actfast.hard_shrink_grad(np.nextafter(-0.5, -1), 3.0) == 3.0
    assert actfast.soft_shrink(-0.75, 0.5) == -0.25


def test_signed_zeros():
    # the shrinks' 0 is +0 (ONNX's Shrink); tanh_shrink is odd; squareplus(-0) = sqrt(b) / 2.
    for v in (-0.25, 0.25, -0.0, 0.0, -0.5):
        assert not np.signbit(actfast.soft_shrink(v)) and not np.signbit(actfast.hard_shrink(v))
        assert not np.signbit(actfast.soft_shrink(np.float32(v)))
    assert np.signbit(actfast.tanh_shrink(-0.0)) and not np.signbit(actfast.tanh_shrink(0.0))
    assert actfast.squareplus(-0.0) == 1.0 and actfast.squareplus(-0.0, b=9.0) == 1.5
    assert np.signbit(actfast.threshold(-0.0, -1.0, 5.0))       # kept: -0 > -1


# Limits at +-inf: (forward at -inf, forward at +inf, derivative at -inf, at +inf).
LIMITS = {
    "threshold": (-2.5, math.inf, 0.0, 1.0),
    "threshold_inf": (3.0, math.inf, 0.0, 1.0),
    "hard_shrink": (-math.inf, math.inf, 1.0, 1.0),
    "hard_shrink_l": (-math.inf, math.inf, 1.0, 1.0),
    "soft_shrink": (-math.inf, math.inf, 1.0, 1.0),
    "soft_shrink_l": (-math.inf, math.inf, 1.0, 1.0),
    "soft_shrink_0": (-math.inf, math.inf, 1.0, 1.0),
    "tanh_shrink": (-math.inf, math.inf, 1.0, 1.0),
    "squareplus": (0.0, math.inf, 0.0, 1.0),
    "squareplus_b": (0.0, math.inf, 0.0, 1.0),
    "squareplus_0": (0.0, math.inf, 0.0, 1.0),
}


@pytest.mark.parametrize("dtype", DTYPES + [np.float16], ids=IDS + ["f16"])
@pytest.mark.parametrize("op", OP_IDS)
def test_special_values(op, dtype):
    x = np.array([-np.inf, np.inf, np.nan, -0.0, 0.0], dtype=dtype)
    lo, hi, dlo, dhi = LIMITS[op]
    with np.errstate(all="raise"):       # every flag of a discarded lane is cleared
        y = fwd(op)(x)
        g = grad(op)(x, np.ones_like(x))
        g_nan_dy = grad(op)(np.array([3.0], dtype), np.array([np.nan], dtype))
    assert y.dtype == dtype and g.dtype == dtype
    np.testing.assert_array_equal(y[:2], np.array([lo, hi], dtype=dtype))
    np.testing.assert_array_equal(g[:2], np.array([dlo, dhi], dtype=dtype))
    assert np.isnan(y[2]) and np.isnan(g[2]), "NaN must propagate"
    assert np.isnan(g_nan_dy[0])          # every f' is non-zero at x = 3
    name, params = OPS[op][:2]
    r0 = ref(name, 0, np.array([0.0]), **params)[0]
    assert y[3] == r0 and y[4] == r0


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda x, o: actfast.hard_shrink(x, -0.1, out=o), ValueError, "lambd must be finite and >= 0"),
    (lambda x, o: actfast.soft_shrink(x, lambd=-1, out=o), ValueError, "lambd"),
    (lambda x, o: actfast.soft_shrink_grad(x, x, lambd=float("nan"), out=o), ValueError, "lambd must not be NaN"),
    (lambda x, o: actfast.hard_shrink_grad(x, x, math.inf, out=o), ValueError, "lambd"),
    (lambda x, o: actfast.squareplus(x, b=-4.0, out=o), ValueError, "b must be finite and >= 0"),
    (lambda x, o: actfast.squareplus_grad(x, x, b=float("nan"), out=o), ValueError, "b must not be NaN"),
    (lambda x, o: actfast.squareplus(x, b=math.inf, out=o), ValueError, "b must be finite"),
    (lambda x, o: actfast.threshold(x, float("nan"), 0.0, out=o), ValueError, "threshold must not be NaN"),
    (lambda x, o: actfast.threshold_grad(x, x, 0.0, float("nan"), out=o), ValueError, "value must not be NaN"),
    (lambda x, o: actfast.threshold(x, "0", 0.0, out=o), TypeError, "threshold must be a real number"),
    (lambda x, o: actfast.soft_shrink(x, [0.5], out=o), TypeError, "lambd"),
    (lambda x, o: actfast.tanh_shrink(x, out=o[:3]), ValueError, "broadcast"),
    (lambda x, o: actfast.squareplus(x.astype(complex), out=o), TypeError, "complex"),
    (lambda x, o: actfast.tanh_shrink_grad(x, np.ones(4), out=o), ValueError, "broadcast"),
])
def test_parameter_errors_leave_out_untouched(call, exc, match):
    x = np.linspace(-2, 2, 6)
    out = np.full(6, 42.0)
    with pytest.raises(exc, match=match):
        call(x, out)
    assert (out == 42.0).all()


def test_threshold_requires_its_parameters():
    with pytest.raises(TypeError):
        actfast.threshold(np.ones(3))   # no defaults, as torch.nn.functional.threshold
    assert actfast.threshold(np.float32(0.5), threshold=np.float64(0.25), value=np.int64(7)).dtype == np.float32


def test_aliases():
    assert actfast.hardshrink is actfast.hard_shrink
    assert actfast.softshrink is actfast.soft_shrink
    assert actfast.tanhshrink is actfast.tanh_shrink
    for name in ("threshold", "hard_shrink", "soft_shrink", "tanh_shrink", "squareplus", "hardshrink",
                 "softshrink", "tanhshrink", "threshold_grad", "squareplus_grad"):
        assert name in actfast.__all__, name
    for f in (actfast.threshold, actfast.hard_shrink_grad, actfast.soft_shrink, actfast.tanh_shrink,
              actfast.squareplus, actfast.squareplus_grad):
        assert "Parameters" in f.__doc__ and "out" in f.__doc__


# --------------------------------------------------------------------------------------
# ONNX: ThresholdedRelu and Shrink
# --------------------------------------------------------------------------------------

def _onnx_shrink(x, bias, lambd):
    # ONNX Shrink: x < -lambd -> x + bias; x > lambd -> x - bias; otherwise 0.
    return np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0.0))


def _onnx_thresholded_relu(x, alpha):
    # ONNX ThresholdedRelu: x for x > alpha, 0 otherwise.
    return np.where(x > alpha, x, 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_onnx_semantics(dtype):
    x = np.concatenate([np.linspace(-3, 3, 1201), [-0.5, 0.5, 1.0, -1.0]]).astype(dtype)
    for lam in (0.5, 1.0, 0.0):
        np.testing.assert_array_equal(actfast.hard_shrink(x, lam), _onnx_shrink(x, dtype(0), dtype(lam)))
        np.testing.assert_array_equal(actfast.soft_shrink(x, lam), _onnx_shrink(x, dtype(lam), dtype(lam)))
    for alpha in (1.0, 0.0, -0.5):
        np.testing.assert_array_equal(actfast.threshold(x, alpha, 0.0), _onnx_thresholded_relu(x, dtype(alpha)))


# --------------------------------------------------------------------------------------
# Arrays: dtypes, layouts, broadcasting, out, threads, variants
# --------------------------------------------------------------------------------------

def test_dtype_rules():
    for op in OP_IDS:
        x16 = np.linspace(-4, 4, 401).astype(np.float16)
        y16 = fwd(op)(x16)
        assert y16.dtype == np.float16, op
        np.testing.assert_array_equal(y16, fwd(op)(x16.astype(np.float32)).astype(np.float16), err_msg=op)
        g16 = grad(op)(x16, np.ones_like(x16))
        np.testing.assert_array_equal(g16, grad(op)(x16.astype(np.float32), np.float32(1)).astype(np.float16))
        xi = np.array([-3, -1, 0, 2], np.int32)
        assert fwd(op)(xi).dtype == np.float64
        np.testing.assert_array_equal(fwd(op)(xi), fwd(op)(xi.astype(np.float64)))
    assert isinstance(actfast.tanh_shrink(0.5), np.float64)
    assert isinstance(actfast.squareplus(np.float32(-2)), np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_layouts_strides_and_broadcasting(dtype):
    rng = np.random.default_rng(4)
    base = (rng.normal(size=(37, 41)) * 3).astype(dtype)
    views = {"C": base, "F": np.asfortranarray(base), "T": base.T, "step": base[::2, ::3],
             "neg": base[::-1, ::-2], "1d-step": base.ravel()[1::7]}
    for label, v in views.items():
        for op in OP_IDS:
            np.testing.assert_array_equal(fwd(op)(v), fwd(op)(np.ascontiguousarray(v)), err_msg=f"{op} {label}")
            dy = (v * 0.5 + 1).astype(dtype)
            np.testing.assert_array_equal(grad(op)(v, dy), grad(op)(np.ascontiguousarray(v), np.ascontiguousarray(dy)),
                                          err_msg=f"{op}_grad {label}")
    x = np.linspace(-3, 3, 7).astype(dtype)[:, None]
    dy = np.array([[1.0, -2.0, 0.5]], dtype)
    for op in OP_IDS:
        g = grad(op)(x, dy)
        assert g.shape == (7, 3)
        np.testing.assert_array_equal(g, grad(op)(np.broadcast_to(x, (7, 3)).copy(), np.broadcast_to(dy, (7, 3)).copy()))


def test_out_in_place_and_where():
    x = np.linspace(-3, 3, 1000)
    for op in OP_IDS:
        want = fwd(op)(x)
        y = x.copy()
        assert fwd(op)(y, out=y) is y
        np.testing.assert_array_equal(y, want)
        dy = np.full_like(x, 2.0)
        gw = grad(op)(x, dy)
        grad(op)(x, dy, out=dy)
        np.testing.assert_array_equal(dy, gw)
    out = np.full(4, 7.0)
    actfast.soft_shrink(np.array([-1.0, 2.0, -3.0, 4.0]), out=out, where=np.array([True, False, True, False]))
    np.testing.assert_array_equal(out, [-0.5, 7.0, -2.5, 7.0])


COST = {"threshold": "cheap", "hard_shrink": "cheap", "soft_shrink": "cheap", "tanh_shrink": "exp",
        "squareplus": "exp"}


def test_cost_classes():
    # the table at the top of src/_kernels.pyx.tp, as compiled
    table = dict((n, p) for n, p in actfast._dispatch.kernels.ELEMENTWISE)
    assert table["threshold"] == ["threshold", "value"] and table["squareplus"] == ["b"]
    assert table["hard_shrink"] == ["lambd"] and table["tanh_shrink"] == []


@pytest.mark.parametrize("op", ["threshold", "hard_shrink", "soft_shrink", "tanh_shrink", "squareplus"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_parallel_equals_serial_around_threshold(op, dtype):
    per = actfast._dispatch.kernels._get_min_per_thread()[COST[op]]
    t = 2 * per
    rng = np.random.default_rng(5)
    for n in sorted({1, 7, 63, 64, 65, 1023, t - 1, t, t + 1, 3 * per + 13}):
        x = (rng.normal(size=n) * 3).astype(dtype)
        dy = rng.normal(size=n).astype(dtype)
        y2, g2 = same_on_1_and_2_threads(lambda: (fwd(op)(x), grad(op)(x, dy)), f"n={n}")
    name, params = OPS[op][:2]
    if op in ("threshold", "hard_shrink", "soft_shrink"):   # exact ops: check the last batch fully
        np.testing.assert_array_equal(y2, ref(name, 0, x, **params).astype(dtype))


DEFAULTS = {"threshold": {}, "hard_shrink": {"lambd": 0.5}, "soft_shrink": {"lambd": 0.5}, "tanh_shrink": {},
            "squareplus": {"b": 4.0}}


@pytest.mark.parametrize("isa", actfast._dispatch.supported_variants())
def test_every_supported_variant_is_accurate(isa):
    mod = actfast._dispatch.load_variant(isa)
    kparams = dict(mod.ELEMENTWISE)
    for dtype in DTYPES:
        x = grid(dtype)
        for op, (name, params, _, b64, g64) in OPS.items():
            full = {**DEFAULTS[name], **params}
            pv = [full[k] for k in kparams[name]]
            y = getattr(mod, name)(x, *pv)
            g = getattr(mod, name + "_grad")(x, np.ones_like(x), *pv)
            fb = F32_ULP if dtype == np.float32 else b64
            gb = F32_ULP if dtype == np.float32 else g64
            assert_ulp(y, ref(name, 0, x, **params), dtype, fb, x, f"{isa} {op}")
            assert_ulp(g, ref(name, 1, x, **params), dtype, gb, x, f"{isa} {op}_grad")


# --------------------------------------------------------------------------------------
# The dense layer
# --------------------------------------------------------------------------------------

DENSE_CASES = [
    ("threshold", {"threshold": 0.1, "value": -2.0}), ("hard_shrink", {}), ("hard_shrink", {"lambd": 1.0}),
    ("soft_shrink", {"lambd": 0.3}), ("tanh_shrink", {}), ("squareplus", {}), ("squareplus", {"squareplus_b": 1.0}),
    ("hardshrink", {"lambd": 0.2}), ("softshrink", {}), ("tanhshrink", {}),
]
_ALIAS = {"hardshrink": "hard_shrink", "softshrink": "soft_shrink", "tanhshrink": "tanh_shrink"}


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize(("name", "params"), DENSE_CASES)
def test_dense_layer(name, params, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((33, 12)).astype(dtype)
    W = (rng.standard_normal((12, 9)) / 2).astype(dtype)
    b = rng.standard_normal(9).astype(dtype)
    y, z = actfast.dense(x, W, b, name, return_z=True, **params)
    f = getattr(actfast, _ALIAS.get(name, name))
    # dense's own b is the bias: squareplus's b is spelled squareplus_b there
    fparams = {("b" if k == "squareplus_b" else k): v for k, v in params.items()}
    np.testing.assert_array_equal(y, f(z, **fparams))      # the same kernel as the ufunc
    assert actfast.dense_saves(name, **params) == "z"
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dW, db = actfast.dense_grad(dy, x, W, z, name, **params)
    dz = getattr(actfast, _ALIAS.get(name, name) + "_grad")(z, dy, **fparams)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(db, dz.astype(np.float64).sum(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(dW, x.astype(np.float64).T @ dz, rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(dx, dz.astype(np.float64) @ W.astype(np.float64).T, rtol=tol * 10, atol=tol * 10)
    layer = actfast.Dense(12, 9, name, dtype=dtype, rng=0, **params)
    ly = layer.forward(x)
    np.testing.assert_array_equal(ly, f(x @ layer.W + layer.b, **fparams))
    layer.backward(dy)


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda x, W, o: actfast.dense(x, W, None, "soft_shrink", out=o, lambd=-0.3), ValueError, "lambd"),
    (lambda x, W, o: actfast.dense(x, W, None, "squareplus", out=o, squareplus_b=float("nan")), ValueError,
     "squareplus_b must not"),
    (lambda x, W, o: actfast.dense(x, W, None, "squareplus", out=o, squareplus_b=-1.0), ValueError,
     "squareplus_b must be finite and >= 0"),
    (lambda x, W, o: actfast.dense(x, W, None, "threshold", out=o), TypeError, "needs the parameter"),
    (lambda x, W, o: actfast.dense(x, W, None, "threshold", out=o, threshold=0.0), TypeError, "value"),
    (lambda x, W, o: actfast.dense(x, W, None, "threshold", out=o, threshold=float("nan"), value=0.0),
     ValueError, "threshold must not be NaN"),
    (lambda x, W, o: actfast.dense(x, W, None, "tanh_shrink", out=o, lambd=1.0), TypeError, "unexpected"),
])
def test_dense_parameter_errors(call, exc, match):
    x = np.ones((4, 3))
    W = np.ones((3, 2))
    out = np.full((4, 2), 9.0)
    with pytest.raises(exc, match=match):
        call(x, W, out)
    assert (out == 9.0).all()
