"""Gated linear units (glu, swiglu, geglu, reglu) and their two-output gradients.

Accuracy in ULP against mpmath (float64) or float64 formulas (float32); PyTorch
autograd in float64 for the conventions; finite differences; the ufunc machinery
(shapes, strides, broadcasting, out=, where=, dtypes, threads) as for the elementwise
activations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sc

import actfast
from _helpers import assert_ulp, same_on_1_and_2_threads

GELU_K = math.sqrt(2.0 / math.pi)
DTYPES = [np.float32, np.float64]
K = actfast._dispatch.kernels


# --------------------------------------------------------------------------------------
# The units as (gate function, its derivative), float64 NumPy and mpmath
# --------------------------------------------------------------------------------------

def _gelu_tanh_np(x):
    xs = np.clip(x, -1e4, 1e4)
    u2 = 2 * GELU_K * (xs + 0.044715 * xs**3)
    return np.where(np.isneginf(x), 0.0, x * sc.expit(u2))


def _gelu_tanh_d_np(x):
    xs = np.clip(x, -1e4, 1e4)
    u2 = 2 * GELU_K * (xs + 0.044715 * xs**3)
    d = sc.expit(u2) + xs * sc.expit(u2) * sc.expit(-u2) * 2 * GELU_K * (1 + 3 * 0.044715 * xs * xs)
    return np.where(np.abs(x) > 1e4, (x > 0) * 1.0, d)


def _swish_np(beta):
    def g(x):
        return np.where(np.isneginf(beta * x), 0.0, x * sc.expit(beta * x))

    def dg(x):
        t = beta * x
        return sc.expit(t) * (1 + t * sc.expit(-t))
    return g, dg


# unit -> (public forward, public grad, params, g, g', kinks, floor of the dgate error)
UNITS = {
    "glu": (None, None, {}, sc.expit, lambda x: sc.expit(x) * sc.expit(-x), [], 0.0),
    "swiglu": ("swiglu", "swiglu_grad", {}, *_swish_np(1.0), [], 1.0),
    "swiglu_beta": ("swiglu", "swiglu_grad", {"beta": 1.75}, *_swish_np(1.75), [], 1.0),
    "swiglu_neg_beta": ("swiglu", "swiglu_grad", {"beta": -0.5}, *_swish_np(-0.5), [], 1.0),
    "geglu": ("geglu", "geglu_grad", {}, lambda x: np.where(np.isneginf(x), 0.0, x * sc.ndtr(x)),
              lambda x: sc.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), [], 1.0),
    "geglu_tanh": ("geglu", "geglu_grad", {"approximate": "tanh"}, _gelu_tanh_np, _gelu_tanh_d_np, [], 1.0),
    "reglu": ("reglu", "reglu_grad", {}, lambda x: np.maximum(x, 0.0), lambda x: (x > 0) * 1.0, [0.0], 0.0),
}
UNIT_IDS = list(UNITS)


def fwd(unit, gate, value, **kw):
    name, _, params, *_ = UNITS[unit]
    if name is None:       # glu: value is the first half, gate the second
        return actfast.glu(np.concatenate([value, gate], axis=-1), **kw)
    return getattr(actfast, name)(gate, value, **params, **kw)


def grad(unit, gate, value, dy, **kw):
    _, gname, params, *_ = UNITS[unit]
    if gname is None:
        n = np.shape(gate)[-1]
        dx = actfast.glu_grad(np.concatenate([value, gate], axis=-1), dy, **kw)
        return dx[..., n:], dx[..., :n]
    return getattr(actfast, gname)(gate, value, dy, **params, **kw)


_MP_CACHE: dict = {}


def _mp_gate(unit):
    """(g, g') in mpmath, written without cancellation (1 - sigmoid(x) as sigmoid(-x)):
    at 30 digits 1 - sigmoid(76) would be 0."""
    import mpmath as mp

    def sig(t):
        return 1 / (1 + mp.exp(-t))

    def swish(beta):
        return (lambda x: x * sig(beta * x),
                lambda x: sig(beta * x) * (1 + beta * x * sig(-beta * x)))

    def phi_cdf(x):
        return mp.erfc(-x / mp.sqrt(2)) / 2

    def u2(x):
        return 2 * mp.sqrt(2 / mp.pi) * (x + mp.mpf("0.044715") * x**3)

    def gt_d(x):
        s = sig(u2(x))
        return s + x * s * sig(-u2(x)) * 2 * mp.sqrt(2 / mp.pi) * (1 + 3 * mp.mpf("0.044715") * x * x)

    return {
        "glu": (sig, lambda x: sig(x) * sig(-x)),
        "swiglu": swish(1),
        "swiglu_beta": swish(mp.mpf(1.75)),
        "swiglu_neg_beta": swish(mp.mpf(-0.5)),
        "geglu": (lambda x: x * phi_cdf(x), lambda x: phi_cdf(x) + x * mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)),
        "geglu_tanh": (lambda x: x * sig(u2(x)), gt_d),
        "reglu": (lambda x: max(x, 0), lambda x: mp.mpf(1 if x > 0 else 0)),
    }[unit]


def reference(unit, gate, value, dy):
    """(forward, dgate, dvalue) in float64: mpmath (30 digits, products included) for
    float64 input, the float64 formulas for float32 input."""
    gate64, value64, dy64 = (np.asarray(a, np.float64) for a in (gate, value, dy))
    _, _, _, g, dg, _, _ = UNITS[unit]
    with np.errstate(all="ignore"):
        np_ref = (g(gate64) * value64, dy64 * value64 * dg(gate64), dy64 * g(gate64))
    if np.asarray(gate).dtype != np.float64:
        return np_ref
    key = (unit, gate64.tobytes(), value64.tobytes(), dy64.tobytes())
    if key not in _MP_CACHE:
        import mpmath as mp
        f, df = _mp_gate(unit)
        out = np.empty((3, gate64.size))
        # mpmath's functions overflow beyond |x| = 1e4, where every g is its limit and
        # the float64 formula is right.
        with mp.workdps(30):
            for i, (a, v, d) in enumerate(zip(gate64.ravel(), value64.ravel(), dy64.ravel())):
                if not (math.isfinite(a) and abs(a) < 1e4 and abs(a * (1.75 if "beta" in unit else 1)) < 1e4):
                    out[:, i] = np.nan
                    continue
                ga, da = f(mp.mpf(float(a))), df(mp.mpf(float(a)))
                mv, md = mp.mpf(float(v)), mp.mpf(float(d))
                out[:, i] = float(ga * mv), float(md * mv * da), float(md * ga)
        out = out.reshape((3,) + gate64.shape)
        _MP_CACHE[key] = tuple(np.where(np.isnan(o), r, o) for o, r in zip(out, np_ref))
    return _MP_CACHE[key]


def grid(dtype, n_lin=2001):
    """Dense in [-12, 12], log-spaced out to near overflow, and the small values."""
    info = np.finfo(dtype)
    lin = np.linspace(-12.0, 12.0, n_lin)
    logs = np.logspace(-12, math.log10(float(info.max)) - 1, 300)
    tiny = [float(info.tiny), float(info.smallest_subnormal), 0.0, 1e-30, 1e-8]
    return np.concatenate([lin, logs, -logs, tiny, [-t for t in tiny], [-0.0]]).astype(dtype)


def values_for(gate, seed=0):
    rng = np.random.default_rng(seed)
    v = (rng.uniform(0.5, 2.0, gate.shape) * rng.choice([-1.0, 1.0], gate.shape)).astype(gate.dtype)
    dy = rng.uniform(0.5, 2.0, gate.shape).astype(gate.dtype)
    return v, dy


# float32: geglu (both forms' exact-erf one), and the gate gradients of swiglu and geglu
# in float lanes where there is FMA (<= 0.8 ulp, see tests/test_float_lanes_*.py), the
# rest computed in double and rounded once (0.50 ulp); float64: the gate function's few ulp and a product (measured <= 4 ulp, 5
# for geglu's dvalue on the baseline variant, whose erfc has no FMA). The elementwise
# tests allow 6 (forward) and 10 (gradients) in float64.
FWD_ULP = {np.float32: 1.0, np.float64: 6.0}
GRAD_ULP = {np.float32: 1.0, np.float64: 6.0}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("unit", UNIT_IDS)
def test_forward_accuracy(unit, dtype):
    gate = grid(dtype, 2001 if dtype == np.float32 else 601)
    value, dy = values_for(gate)
    ref, _, _ = reference(unit, gate, value, dy)
    y = fwd(unit, gate, value)
    assert y.dtype == dtype
    assert_ulp(y, ref, dtype, FWD_ULP[dtype], gate, unit)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("unit", UNIT_IDS)
def test_grad_accuracy(unit, dtype):
    gate = grid(dtype, 2001 if dtype == np.float32 else 601)
    value, dy = values_for(gate)
    _, ref_dg, ref_dv = reference(unit, gate, value, dy)
    dg, dv = grad(unit, gate, value, dy)
    assert dg.dtype == dtype and dv.dtype == dtype
    floor = UNITS[unit][6]
    # dgate cancels near a root of g' (swish, gelu): bounded relative to |dy * value|.
    assert_ulp(dg, ref_dg, dtype, GRAD_ULP[dtype], gate, unit + " dgate",
               floor * np.abs(dy.astype(np.float64) * value) if floor else 0.0)
    assert_ulp(dv, ref_dv, dtype, GRAD_ULP[dtype], gate, unit + " dvalue")


@pytest.mark.parametrize("unit", UNIT_IDS)
def test_grad_matches_finite_differences(unit):
    rng = np.random.default_rng(1)
    gate = np.concatenate([rng.uniform(-8, 8, 300), rng.normal(0, 1, 100)])
    for k in UNITS[unit][5]:
        gate = gate[np.abs(gate - k) > 1e-4]
    value = rng.normal(0, 2, gate.shape)
    dy = rng.normal(0, 1, gate.shape)
    h = 1e-6
    fd_gate = dy * (fwd(unit, gate + h, value) - fwd(unit, gate - h, value)) / (2 * h)
    fd_value = dy * (fwd(unit, gate, value + h) - fwd(unit, gate, value - h)) / (2 * h)
    dg, dv = grad(unit, gate, value, dy)
    np.testing.assert_allclose(dg, fd_gate, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dv, fd_value, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------------
# PyTorch autograd, float64
# --------------------------------------------------------------------------------------

def _torch_unit(unit, torch, F):
    params = UNITS[unit][2]
    if unit.startswith("swiglu"):
        beta = params.get("beta", 1.0)
        if beta == 1.0:
            return lambda g, v: F.silu(g) * v
        return lambda g, v: g * torch.sigmoid(beta * g) * v
    if unit.startswith("geglu"):
        return lambda g, v: F.gelu(g, approximate=params.get("approximate", "none")) * v
    if unit == "reglu":
        return lambda g, v: F.relu(g) * v
    return lambda g, v: F.glu(torch.cat([v, g], dim=-1), dim=-1)


@pytest.mark.parametrize("unit", UNIT_IDS)
def test_matches_torch_autograd(unit):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    gate = np.concatenate([rng.normal(0, 3, (6, 50)), np.array([[0.0, -0.0, 1e-300, -1e-300, 30.0] * 10])])
    value = rng.normal(0, 2, gate.shape)
    dy = rng.normal(0, 1, gate.shape)
    tg = torch.from_numpy(gate).requires_grad_()
    tv = torch.from_numpy(value).requires_grad_()
    ty = _torch_unit(unit, torch, F)(tg, tv)
    ty.backward(torch.from_numpy(dy))
    y = fwd(unit, gate, value)
    dg, dv = grad(unit, gate, value, dy)
    # PyTorch's own formulas lose relative accuracy in the tails (gelu's 1 + erf, s (1 - s)),
    # by up to ~3e-15 absolute: the accuracy tests above use mpmath; this one the conventions.
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dg, tg.grad.numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dv, tv.grad.numpy(), rtol=1e-14, atol=1e-15)
    # The kink gate = +-0 as PyTorch (relu'(0) = 0).
    z = np.array([0.0, -0.0])
    ones = np.ones(2)
    tz = torch.from_numpy(z).requires_grad_()
    _torch_unit(unit, torch, F)(tz, torch.from_numpy(ones)).backward(torch.from_numpy(ones))
    np.testing.assert_array_equal(grad(unit, z, ones, ones)[0], tz.grad.numpy())


@pytest.mark.parametrize("axis", [0, 1, -1, 2, -3])
def test_glu_axis_matches_torch(axis):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, (4, 6, 8))
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.glu(tx, dim=axis)
    dy = rng.normal(0, 1, tuple(ty.shape))
    ty.backward(torch.from_numpy(dy))
    y = actfast.glu(x, axis=axis)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-14, atol=1e-15)
    dx = actfast.glu_grad(x, dy, axis=axis)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------------------
# Special values
# --------------------------------------------------------------------------------------

INF, NAN = math.inf, math.nan
# unit -> g and g' at gate = -inf, +inf
LIMITS = {
    "glu": (0.0, 1.0, 0.0, 0.0),
    "swiglu": (0.0, INF, 0.0, 1.0),
    "swiglu_beta": (0.0, INF, 0.0, 1.0),
    "swiglu_neg_beta": (-INF, 0.0, 1.0, 0.0),
    "geglu": (0.0, INF, 0.0, 1.0),
    "geglu_tanh": (0.0, INF, 0.0, 1.0),
    "reglu": (0.0, INF, 0.0, 1.0),
}


@pytest.mark.parametrize("dtype", DTYPES + [np.float16], ids=["f32", "f64", "f16"])
@pytest.mark.parametrize("unit", UNIT_IDS)
def test_special_values(unit, dtype):
    glo, ghi, dlo, dhi = LIMITS[unit]
    gate = np.array([-INF, INF, NAN, 1.0, -INF, 0.5], dtype)
    value = np.array([2.0, 2.0, 2.0, NAN, INF, 3.0], dtype)
    dy = np.array([3.0, 3.0, 3.0, 3.0, 1.0, NAN], dtype)
    with np.errstate(all="raise"):     # no flag of a discarded lane may escape
        y = fwd(unit, gate, value)
        dg, dv = grad(unit, gate, value, dy)
    np.testing.assert_array_equal(y[:3], np.array([glo * 2, ghi * 2, NAN], dtype))
    np.testing.assert_array_equal(dg[:3], np.array([3 * 2 * dlo, 3 * 2 * dhi, NAN], dtype))
    np.testing.assert_array_equal(dv[:3], np.array([3 * glo, 3 * ghi, NAN], dtype))
    # A NaN value poisons the forward and dgate, not dvalue (which does not read it).
    assert np.isnan(y[3]) and np.isnan(dg[3]) and np.isfinite(dv[3])
    # An infinite value times g(-inf) = 0 is NaN, as in PyTorch; a NaN dy poisons both grads.
    if glo == 0:
        assert np.isnan(y[4])
    assert np.isnan(dv[5]) and np.isnan(dg[5])


def test_reglu_kink_ignores_infinite_value_like_torch():
    # threshold_backward: dgate is 0 where gate <= 0 whatever dy * value is.
    gate = np.array([0.0, -1.0, -0.0, NAN])
    dg, dv = actfast.reglu_grad(gate, np.array([INF, NAN, INF, 1.0]), np.ones(4))
    np.testing.assert_array_equal(dg[:3], 0.0)
    assert np.isnan(dg[3]) and np.isnan(dv[3])


def test_swiglu_beta_zero_and_huge_gates():
    gate = np.array([-INF, -3.0, 0.0, 5.0, INF])
    value = np.full(5, 2.0)
    with np.errstate(all="raise"):
        y = actfast.swiglu(gate, value, beta=0.0)       # gate / 2 * value
        dg, dv = actfast.swiglu_grad(gate, value, np.ones(5), beta=0.0)
    np.testing.assert_array_equal(y, gate)
    np.testing.assert_array_equal(dg, np.ones(5))
    np.testing.assert_array_equal(dv, gate / 2)
    # float32: no overflow inside (computed in double) for any finite float.
    big = np.array([3e38, -3e38, 1e-45], np.float32)
    with np.errstate(all="raise"):
        y = actfast.swiglu(big, np.float32(1.0))
    np.testing.assert_array_equal(y, np.array([3e38, 0.0, 5e-46], np.float32))


# --------------------------------------------------------------------------------------
# Shapes, strides, broadcasting, threads
# --------------------------------------------------------------------------------------

def _threshold_sizes(per_thread):
    t = 2 * per_thread
    return sorted({0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 1023, t - 1, t, t + 1, 3 * per_thread + 13})


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("unit", ["swiglu_beta", "geglu", "reglu", "glu"])
def test_sizes_and_threads(unit, dtype):
    cost = {"swiglu_beta": "exp", "geglu": "erf", "reglu": "cheap", "glu": "exp"}[unit]
    per = K._get_min_per_thread()[cost]
    rng = np.random.default_rng(5)
    for n in _threshold_sizes(per):
        gate = (rng.normal(size=n) * 6).astype(dtype)
        value, dy = values_for(gate, n)
        y, dg, dv = same_on_1_and_2_threads(lambda: (fwd(unit, gate, value), *grad(unit, gate, value, dy)),
                                            f"{unit} n={n}")
        assert y.shape == dg.shape == dv.shape == (n,)
        ref = reference(unit, gate, value, dy) if dtype == np.float32 or n < 200 else None
        if ref is not None:
            assert_ulp(y, ref[0], dtype, FWD_ULP[dtype], gate, f"{unit} n={n}")
            assert_ulp(dv, ref[2], dtype, GRAD_ULP[dtype], gate, f"{unit} dvalue n={n}")


def test_small_threshold_forces_parallel_paths():
    saved = K._get_min_per_thread()
    try:
        for cost in saved:
            K._set_min_per_thread(cost, 1)
        for n in (2, 3, 5, 63, 65, 129, 1001):
            gate = np.random.default_rng(n).normal(size=n) * 3
            value, dy = values_for(gate, n)
            same_on_1_and_2_threads(lambda: (actfast.swiglu(gate, value), *actfast.swiglu_grad(gate, value, dy),
                                             actfast.reglu(gate, value), *actfast.geglu_grad(gate, value, dy)),
                                    f"n={n}")
    finally:
        for cost, v in saved.items():
            K._set_min_per_thread(cost, v)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_layouts_and_strides(dtype):
    rng = np.random.default_rng(4)
    g = (rng.normal(size=(37, 41)) * 5).astype(dtype)
    v = rng.normal(size=(37, 41)).astype(dtype)
    d = rng.normal(size=(37, 41)).astype(dtype)
    views = {
        "F": lambda a: np.asfortranarray(a),
        "T": lambda a: a.T,
        "step": lambda a: a[::2, ::3],
        "neg": lambda a: a[::-1, ::-2],
        "1d-neg": lambda a: a.ravel()[::-1],
    }
    for label, view in views.items():
        gv, vv, dv_ = view(g), view(v), view(d)
        c = [np.ascontiguousarray(a) for a in (gv, vv, dv_)]
        for unit in ("swiglu_beta", "geglu_tanh", "reglu"):
            np.testing.assert_array_equal(fwd(unit, gv, vv), fwd(unit, c[0], c[1]), err_msg=f"{unit} {label}")
            for got, want in zip(grad(unit, gv, vv, dv_), grad(unit, *c)):
                np.testing.assert_array_equal(got, want, err_msg=f"{unit}_grad {label}")
        # Mixed: only one operand strided.
        np.testing.assert_array_equal(actfast.geglu(gv, c[1]), actfast.geglu(c[0], c[1]))
    # glu of a non-contiguous array, along each axis.
    x = rng.normal(size=(8, 12))[::-1, ::2]
    for axis in (0, 1):
        np.testing.assert_array_equal(actfast.glu(x, axis=axis), actfast.glu(np.ascontiguousarray(x), axis=axis))
        dy = np.ones(actfast.glu(x, axis=axis).shape)
        np.testing.assert_array_equal(actfast.glu_grad(x, dy, axis=axis),
                                      actfast.glu_grad(np.ascontiguousarray(x), dy, axis=axis))


def test_broadcasting():
    rng = np.random.default_rng(6)
    gate = rng.normal(size=(3, 1, 5))
    value = rng.normal(size=(1, 4, 5))
    dy = rng.normal(size=(4, 1))
    bg, bv, bd = np.broadcast_arrays(gate, value, dy)
    y = actfast.swiglu(gate, value, beta=1.5)
    assert y.shape == (3, 4, 5)
    np.testing.assert_array_equal(y, actfast.swiglu(bg.copy(), bv.copy(), beta=1.5))
    dg, dv = actfast.geglu_grad(gate, value, dy)
    assert dg.shape == dv.shape == (3, 4, 5)
    rg, rv = actfast.geglu_grad(bg.copy(), bv.copy(), bd.copy())
    np.testing.assert_array_equal(dg, rg)
    np.testing.assert_array_equal(dv, rv)
    # A scalar value and dy.
    np.testing.assert_array_equal(actfast.reglu(gate, 2.0), np.maximum(gate, 0) * 2.0)
    assert actfast.reglu(np.float32(3), 2.0).dtype == np.float32
    # glu_grad's dy broadcasts to the forward result's shape.
    x = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(actfast.glu_grad(x, np.ones((1, 2))), actfast.glu_grad(x, np.ones((3, 2))))


def test_scalars_and_zero_size():
    y = actfast.swiglu(1.0, 2.0)
    assert isinstance(y, np.float64) and y == pytest.approx(2 * sc.expit(1.0))
    dg, dv = actfast.reglu_grad(np.float32(1), np.float32(2), np.float32(3))
    assert isinstance(dg, np.float32) and (dg, dv) == (6.0, 3.0)
    e = np.empty((0, 4))
    assert actfast.geglu(e, e).shape == (0, 4)
    assert [a.shape for a in actfast.swiglu_grad(e, e, e)] == [(0, 4), (0, 4)]
    assert actfast.glu(e).shape == (0, 2)
    assert actfast.glu_grad(e, np.empty((0, 2))).shape == (0, 4)
    assert actfast.glu(np.empty((3, 0))).shape == (3, 0)


# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", UNIT_IDS)
def test_float16_is_float32_rounded_once(unit):
    rng = np.random.default_rng(7)
    # Beyond one float16 chunk (256) and strided.
    gate = (rng.normal(size=1001) * 4).astype(np.float16)
    value, dy = values_for(gate, 1)
    f32 = [a.astype(np.float32) for a in (gate, value, dy)]
    y = fwd(unit, gate, value)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, fwd(unit, f32[0], f32[1]).astype(np.float16))
    for got, want in zip(grad(unit, gate, value, dy), grad(unit, *f32)):
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, want.astype(np.float16))
    g2, v2, d2 = gate[::-3], value[::-3], dy[::-3]
    np.testing.assert_array_equal(fwd(unit, g2, v2), fwd(unit, g2.astype(np.float32), v2.astype(np.float32))
                                  .astype(np.float16))
    for got, want in zip(grad(unit, g2, v2, d2), grad(unit, *(a.astype(np.float32) for a in (g2, v2, d2)))):
        np.testing.assert_array_equal(got, want.astype(np.float16))


@pytest.mark.parametrize("unit", ["swiglu", "geglu_tanh", "reglu", "glu"])
def test_bfloat16(unit):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = np.dtype(ml_dtypes.bfloat16)
    rng = np.random.default_rng(8)
    gate = (rng.normal(size=300) * 4).astype(bf16)
    value, dy = (rng.normal(size=300).astype(bf16) for _ in range(2))
    f32 = [a.astype(np.float32) for a in (gate, value, dy)]
    y = fwd(unit, gate, value)
    assert y.dtype == bf16
    np.testing.assert_array_equal(y.astype(np.float32), fwd(unit, f32[0], f32[1]).astype(bf16).astype(np.float32))
    for got, want in zip(grad(unit, gate, value, dy), grad(unit, *f32)):
        assert got.dtype == bf16
        np.testing.assert_array_equal(got.astype(np.float32), want.astype(bf16).astype(np.float32))
    out = (np.empty(300, bf16), np.empty(300, bf16))
    if unit != "glu":
        res = grad(unit, gate, value, dy, out=out)
        assert res[0] is out[0] and res[1] is out[1]
        np.testing.assert_array_equal(out[0].astype(np.float32), grad(unit, gate, value, dy)[0].astype(np.float32))


def test_integer_and_mixed_dtypes():
    gi = np.arange(-3, 4)
    y = actfast.swiglu(gi, gi)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, actfast.swiglu(gi.astype(float), gi.astype(float)))
    dg, dv = actfast.reglu_grad(gi.astype(np.int8), np.ones(7, np.int16), np.ones(7, bool))
    assert dg.dtype == dv.dtype == np.float64
    assert actfast.glu(np.arange(6).reshape(3, 2)).dtype == np.float64
    assert actfast.glu_grad(np.arange(6).reshape(3, 2), np.ones((3, 1), np.int32)).dtype == np.float64
    # Mixed float precisions promote like NumPy.
    assert actfast.geglu(np.ones(3, np.float32), np.ones(3)).dtype == np.float64
    assert actfast.glu_grad(np.ones(4, np.float32), np.ones(2)).dtype == np.float64
    assert actfast.glu_grad(np.ones(4, np.float32), 1.0).dtype == np.float32
    assert actfast.swiglu(np.ones(3, np.float32), 2.0, beta=np.float64(1.5)).dtype == np.float32


# --------------------------------------------------------------------------------------
# out=, where=, errors
# --------------------------------------------------------------------------------------

def test_out_and_in_place():
    rng = np.random.default_rng(9)
    g, v, d = (rng.normal(size=50) for _ in range(3))
    ref = actfast.swiglu(g, v)
    out = np.empty(50)
    assert actfast.swiglu(g, v, out=out) is out
    np.testing.assert_array_equal(out, ref)
    gg = g.copy()
    actfast.swiglu(gg, v, out=gg)
    np.testing.assert_array_equal(gg, ref)
    rdg, rdv = actfast.geglu_grad(g, v, d)
    o1, o2 = np.empty(50), np.empty(50)
    res = actfast.geglu_grad(g, v, d, out=(o1, o2))
    assert res[0] is o1 and res[1] is o2
    np.testing.assert_array_equal(o1, rdg)
    np.testing.assert_array_equal(o2, rdv)
    # In place: dgate over gate, dvalue over value.
    gg, vv = g.copy(), v.copy()
    actfast.geglu_grad(gg, vv, d, out=(gg, vv))
    np.testing.assert_array_equal(gg, rdg)
    np.testing.assert_array_equal(vv, rdv)
    # One output given, the other allocated.
    o2 = np.empty(50)
    a, b = actfast.geglu_grad(g, v, d, out=(None, o2))
    assert b is o2
    np.testing.assert_array_equal(a, rdg)
    # float32 into a float64 out (same_kind casting).
    o64 = np.empty(50)
    actfast.reglu(g.astype(np.float32), v.astype(np.float32), out=o64)
    np.testing.assert_array_equal(o64, actfast.reglu(g.astype(np.float32), v.astype(np.float32)).astype(np.float64))
    # glu / glu_grad: out, and glu_grad in place over x.
    x = rng.normal(size=(5, 8))
    o = np.empty((5, 4))
    assert actfast.glu(x, out=o) is o
    np.testing.assert_array_equal(o, actfast.glu(x))
    dy = rng.normal(size=(5, 4))
    ref = actfast.glu_grad(x, dy)
    ox = np.empty((5, 8))
    assert actfast.glu_grad(x, dy, out=ox) is ox
    np.testing.assert_array_equal(ox, ref)
    xx = x.copy()
    actfast.glu_grad(xx, dy, out=xx)
    np.testing.assert_array_equal(xx, ref)


def test_where():
    g = np.linspace(-3, 3, 8)
    v = np.full(8, 2.0)
    mask = np.arange(8) % 2 == 0
    out = np.full(8, 7.0)
    actfast.reglu(g, v, out=out, where=mask)
    np.testing.assert_array_equal(out, np.where(mask, np.maximum(g, 0) * 2, 7.0))
    o1, o2 = np.full(8, 7.0), np.full(8, 8.0)
    actfast.swiglu_grad(g, v, np.ones(8), out=(o1, o2), where=mask)
    rdg, rdv = actfast.swiglu_grad(g, v, np.ones(8))
    np.testing.assert_array_equal(o1, np.where(mask, rdg, 7.0))
    np.testing.assert_array_equal(o2, np.where(mask, rdv, 8.0))
    x = np.linspace(-2, 2, 16).reshape(2, 8)
    out = np.full((2, 4), 5.0)
    m = np.array([True, False, True, False])
    actfast.glu(x, out=out, where=m)
    np.testing.assert_array_equal(out, np.where(m, actfast.glu(x), 5.0))
    ox = np.full((2, 8), 5.0)
    actfast.glu_grad(x, np.ones((2, 4)), out=ox, where=m)
    ref = actfast.glu_grad(x, np.ones((2, 4)))
    np.testing.assert_array_equal(ox, np.where(np.concatenate([m, m]), ref, 5.0))


# Each call gets o, a (2, 4) array, and f, a (4,) one, both full of 42: after the error
# neither may have been written.
@pytest.mark.parametrize("call, exc, match", [
    (lambda o, f: actfast.glu(np.ones((2, 5)), out=o), ValueError, "even"),
    (lambda o, f: actfast.glu(np.ones((3, 4)), axis=0, out=o), ValueError, "even"),
    (lambda o, f: actfast.glu_grad(np.ones((2, 5)), np.ones((2, 2)), out=o), ValueError, "even"),
    (lambda o, f: actfast.glu(np.float64(1.0), out=o), ValueError, "0-d"),
    (lambda o, f: actfast.glu(np.ones((2, 4)), axis=2, out=o), np.exceptions.AxisError, "out of bounds"),
    (lambda o, f: actfast.glu(np.ones((2, 4)), axis=1.0, out=o), TypeError, "axis"),
    (lambda o, f: actfast.glu(np.ones((2, 4), complex), out=o[:, :2]), TypeError, "complex"),
    (lambda o, f: actfast.glu_grad(np.ones((2, 4)), np.ones((2, 3)), out=o), ValueError, "dy has shape"),
    (lambda o, f: actfast.glu_grad(np.ones((2, 4)), np.ones((2, 2)), out=o[:, :3]), ValueError, "out has shape"),
    (lambda o, f: actfast.glu_grad(np.ones((2, 4)), np.ones((2, 2)), out=[o]), TypeError, "NumPy array"),
    (lambda o, f: actfast.glu_grad(np.ones((2, 4)), np.ones((2, 2), complex), out=o), TypeError, "complex"),
    (lambda o, f: actfast.swiglu(np.ones(4), np.ones(3), out=f), ValueError, "broadcast"),
    (lambda o, f: actfast.swiglu(np.ones(4), np.ones(4), beta=math.nan, out=f), ValueError, "NaN"),
    (lambda o, f: actfast.swiglu(np.ones(4), np.ones(4), beta=math.inf, out=f), ValueError, "finite"),
    (lambda o, f: actfast.swiglu(np.ones(4), np.ones(4), beta="1", out=f), TypeError, "beta"),
    (lambda o, f: actfast.geglu(np.ones(4), np.ones(4), approximate="fast", out=f), ValueError, "approximate"),
    (lambda o, f: actfast.geglu(np.ones(4), np.ones(4), approximate=True, out=f), ValueError, "approximate"),
    (lambda o, f: actfast.reglu(np.ones(4, complex), np.ones(4), out=f), TypeError, "complex"),
    (lambda o, f: actfast.swiglu_grad(np.ones(4), np.ones(4), np.ones(4), beta=math.nan, out=(f, o[0])),
     ValueError, "NaN"),
    (lambda o, f: actfast.geglu_grad(np.ones(4), np.ones(4), np.ones(3), out=(f, o[0])), ValueError, "broadcast"),
    (lambda o, f: actfast.geglu_grad(np.ones(4), np.ones(4), np.ones(4), approximate="x", out=(f, o[0])),
     ValueError, "approximate"),
    (lambda o, f: actfast.reglu_grad(np.ones(4), np.ones(4), np.ones(4), out=f), TypeError, "tuple"),
    (lambda o, f: actfast.reglu_grad(np.ones(4, complex), np.ones(4), np.ones(4), out=(f, o[0])), TypeError,
     "complex"),
    (lambda o, f: actfast.reglu_grad(np.ones(4), np.ones(4), np.ones(4), out=(f, o[0, :3])), ValueError, "shape"),
])
def test_errors_leave_out_untouched(call, exc, match):
    o = np.full((2, 4), 42.0)
    f = np.full(4, 42.0)
    with pytest.raises(exc, match=match):
        call(o, f)
    assert (o == 42.0).all() and (f == 42.0).all()


def test_docstrings_state_the_formula():
    for f in (actfast.swiglu, actfast.geglu, actfast.reglu):
        assert "Parameters" in f.__doc__ and "value" in f.__doc__ and "where" in f.__doc__
    assert "sigmoid(beta * gate)" in actfast.swiglu.__doc__
    assert "gelu(gate) * value" in actfast.geglu.__doc__
    assert "relu(gate) * value" in actfast.reglu.__doc__
    assert "sigmoid(b)" in actfast.glu.__doc__ and "even" in actfast.glu.__doc__
    for f in (actfast.swiglu_grad, actfast.geglu_grad, actfast.reglu_grad):
        assert "(dgate, dvalue)" in f.__doc__ and "one pass" in f.__doc__
    for name in ("glu", "glu_grad", "swiglu", "swiglu_grad", "geglu", "geglu_grad", "reglu", "reglu_grad"):
        assert name in actfast.__all__
    assert K.swiglu_grad.nin == 3 and K.swiglu_grad.nout == 2              # beta = 1
    assert K.swiglu_beta_grad.nin == 4 and K.swiglu_beta_grad.nout == 2    # any other beta
    assert K.reglu.nin == 2 and K.reglu.nout == 1


@pytest.mark.parametrize("isa", actfast._dispatch.supported_variants())
def test_every_supported_variant_is_accurate(isa):
    mod = actfast._dispatch.load_variant(isa)
    for dtype in DTYPES:
        gate = grid(dtype, 401)
        value, dy = values_for(gate)
        for unit, kname, params in (("glu", "glu_pair", ()), ("swiglu_beta", "swiglu_beta", (1.75,)),
                                    ("swiglu", "swiglu", ()), ("geglu", "geglu", ()), ("geglu_tanh", "geglu_tanh", ()),
                                    ("reglu", "reglu", ())):
            ref, rdg, rdv = reference(unit, gate, value, dy)
            assert_ulp(getattr(mod, kname)(gate, value, *params), ref, dtype, FWD_ULP[dtype], gate, f"{isa} {unit}")
            dg, dv = getattr(mod, kname + "_grad")(gate, value, dy, *params)
            floor = UNITS[unit][6] * np.abs(dy.astype(np.float64) * value)
            assert_ulp(dg, rdg, dtype, GRAD_ULP[dtype], gate, f"{isa} {unit} dgate", floor)
            assert_ulp(dv, rdv, dtype, GRAD_ULP[dtype], gate, f"{isa} {unit} dvalue")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 512), (3, 50, 400), (8, 2048)])
def test_glu_row_path_is_the_ufunc_bit_for_bit(dtype, shape):
    """glu/glu_grad on a C-contiguous x along its last axis run the dense layer's row loop
    on the pool (actfast._gated._packed_halves); the results are the ufunc's, on 1 and
    2 threads, with and without out=."""
    from _helpers import same_on_1_and_2_threads

    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype) * 4
    n = shape[-1] // 2
    dy = rng.standard_normal(shape[:-1] + (n,)).astype(dtype)
    k = actfast._dispatch.kernels
    want_y = k.glu_pair(x[..., n:], x[..., :n])
    want_dx = actfast.glu_grad(x, dy, where=np.ones(dy.shape, bool))      # where= takes the ufunc path

    def run():
        out_y, out_dx = np.full(dy.shape, np.nan, dtype), np.full(shape, np.nan, dtype)
        return (actfast.glu(x), actfast.glu_grad(x, dy), actfast.glu(x, out=out_y), actfast.glu_grad(x, dy, out=out_dx))

    y, dx, y_out, dx_out = same_on_1_and_2_threads(run, "glu rows")
    for got, want in ((y, want_y), (y_out, want_y), (dx, want_dx), (dx_out, want_dx)):
        np.testing.assert_array_equal(got, want)
    # out overlapping x falls back to the ufunc and is still right
    xx = x.copy()
    actfast.glu_grad(xx, dy, out=xx)
    np.testing.assert_array_equal(xx, want_dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", [("swiglu", {"beta": 1.3}), ("geglu", {}), ("geglu", {"approximate": "tanh"}),
                                     ("reglu", {})])
def test_packed_halves_take_the_row_loop_bit_for_bit(dtype, name, kw):
    """gate and value as the halves of one C-contiguous (..., 2n) array (either order)
    run on the dense layer's row loop (actfast._gated._packed_halves); the results are
    the ufunc's on 1 and 2 threads. Halves of different arrays, or not adjacent, take
    the ufunc."""
    from _helpers import same_on_1_and_2_threads

    rng = np.random.default_rng(12)
    h = (rng.standard_normal((4, 30, 600)) * 3).astype(dtype)
    first, second = h[..., :300], h[..., 300:]
    dy = rng.standard_normal(first.shape).astype(dtype)
    f, fg = getattr(actfast, name), getattr(actfast, name + "_grad")
    ones = np.ones(first.shape, bool)
    for gate, value in ((first, second), (second, first)):
        want = f(gate, value, **kw, where=ones, out=np.zeros_like(dy))     # where=: the ufunc path
        want_g = fg(gate, value, dy, **kw, where=ones, out=(np.zeros_like(dy), np.zeros_like(dy)))
        y, dg, dv = same_on_1_and_2_threads(lambda: (f(gate, value, **kw), *fg(gate, value, dy, **kw)), name)
        np.testing.assert_array_equal(y, want)
        np.testing.assert_array_equal(dg, want_g[0])
        np.testing.assert_array_equal(dv, want_g[1])
        # with out= (the forward's): written into out, the same values; an out that
        # overlaps the input, or of another layout, takes the ufunc
        out = np.full_like(dy, np.nan)
        assert f(gate, value, **kw, out=out) is out
        np.testing.assert_array_equal(out, want)
        assert actfast._gated._packed_halves(gate, value, out, True, out_shape=out.shape) is not None
        assert actfast._gated._packed_halves(gate, value, np.zeros((4, 300, 30), dtype).transpose(0, 2, 1), True,
                                             out_shape=out.shape) is None
    assert actfast._gated._packed_halves(first, second, h[..., :300], True, out_shape=first.shape) is None
    h2 = h.copy()
    got = f(h2[..., :300], h2[..., 300:], **kw, out=h2[..., :300])                  # in place: the ufunc
    np.testing.assert_array_equal(got, f(first, second, **kw))
    assert actfast._gated._packed_halves(first, second, None, True) is not None
    assert actfast._gated._packed_halves(first, h[..., 1:301], None, True) is None            # overlapping
    assert actfast._gated._packed_halves(first, second.copy(), None, True) is None            # two arrays
    assert actfast._gated._packed_halves(h[:, ::2, :300], h[:, ::2, 300:], None, True) is None  # rows skipped


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", [("swiglu", {"beta": 1.3}), ("geglu", {}), ("reglu", {})])
def test_gated_grad_out_pair_of_halves(dtype, name, kw):
    """out=(dgate, dvalue) as the halves of one array laid out as the input (a dx buffer)
    is written by the row loop directly (actfast._gated._packed_out), the ufunc's values
    bit for bit on 1 and 2 threads; a pair in the other order, of another dtype, or
    overlapping an input takes the ufunc with the same values."""
    from _helpers import same_on_1_and_2_threads

    rng = np.random.default_rng(13)
    h = (rng.standard_normal((40, 1200)) * 3).astype(dtype)
    dy = rng.standard_normal((40, 600)).astype(dtype)
    fg = getattr(actfast, name + "_grad")
    ones = np.ones(dy.shape, bool)
    for gate_first in (True, False):
        gate, value = (h[:, :600], h[:, 600:]) if gate_first else (h[:, 600:], h[:, :600])
        want = fg(gate, value, dy, **kw, where=ones, out=(np.zeros_like(dy), np.zeros_like(dy)))
        o = np.full_like(h, np.nan)
        pair = (o[:, :600], o[:, 600:]) if gate_first else (o[:, 600:], o[:, :600])
        assert actfast._gated._packed_out(pair, gate, value, dy, gate_first) is not None

        def run():
            o[...] = np.nan
            got = fg(gate, value, dy, **kw, out=pair)
            assert got[0] is pair[0] and got[1] is pair[1]
            return (o.copy(),)
        same_on_1_and_2_threads(run, name)
        np.testing.assert_array_equal(pair[0], want[0])
        np.testing.assert_array_equal(pair[1], want[1])
        swapped = pair[::-1]                               # dgate where the value is: the ufunc
        assert actfast._gated._packed_out(swapped, gate, value, dy, gate_first) is None
        fg(gate, value, dy, **kw, out=swapped)
        np.testing.assert_array_equal(swapped[0], want[0])
        np.testing.assert_array_equal(swapped[1], want[1])
    other = np.zeros((40, 1200), np.float64 if dtype == np.float32 else np.float32)
    assert actfast._gated._packed_out((other[:, :600], other[:, 600:]), h[:, :600], h[:, 600:], dy, True) is None
    h2 = h.copy()                                          # out over the inputs: the ufunc, in place
    want = fg(h[:, :600], h[:, 600:], dy, **kw)
    assert actfast._gated._packed_out((h2[:, :600], h2[:, 600:]), h2[:, :600], h2[:, 600:], dy, True) is None
    fg(h2[:, :600], h2[:, 600:], dy, **kw, out=(h2[:, :600], h2[:, 600:]))
    np.testing.assert_array_equal(h2[:, :600], want[0])
    np.testing.assert_array_equal(h2[:, 600:], want[1])
