"""The parameters people pass: hard_sigmoid / hard_swish (alpha, beta), selu (alpha,
scale), silu (beta). Values against mpmath, gradients against the formula and finite
differences, the defaults bit-identical to the calls without parameters, PyTorch where
it has the function, limits, errors, float16, the dense layer and the from-output
gradients. (ONNX's operators with these attributes: tests/test_onnx_reference.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

import actfast

from _helpers import assert_ulp, same_on_1_and_2_threads

mpmath = pytest.importorskip("mpmath")
mp = mpmath.mp

DTYPES = [np.float32, np.float64]
IDS = ["f32", "f64"]
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
SILU_ROOT = -1.2784645427610738


def _inputs(dtype, lo=-8.0, hi=8.0, n=4001, extra=()):
    x = np.concatenate([np.linspace(lo, hi, n), np.array(extra, dtype=np.float64)])
    return x.astype(dtype)


# --------------------------------------------------------------------------------------
# mpmath references, evaluated on the (rounded) inputs and the double parameters
# --------------------------------------------------------------------------------------

def _mp_map(f, x, *params):
    with mp.workdps(40):
        ps = [mp.mpf(float(p)) for p in params]
        return np.array([float(f(mp.mpf(float(v)), *ps)) for v in x.ravel()]).reshape(x.shape)


def _clip01(u):
    return mp.mpf(0) if u < 0 else (mp.mpf(1) if u > 1 else u)


def _hsig(x, a, b):
    return _clip01(a * x + b)


def _hswish(x, a, b):
    return x * _clip01(a * x + b)


def _hsig_grad(x, a, b):
    u = a * x + b
    return a if 0 < u < 1 else mp.mpf(0)


def _hswish_grad(x, a, b):
    # PyTorch's kinks: 0 where alpha x + beta <= 0, the middle slope strictly between,
    # 1 from alpha x + beta = 1 on.
    u = a * x + b
    return mp.mpf(0) if u <= 0 else (2 * a * x + b if u < 1 else mp.mpf(1))


def _selu(x, a, s):
    return s * (x if x > 0 else a * mp.expm1(x))


def _selu_grad(x, a, s):
    return s if x > 0 else s * a * mp.exp(x)


def _silu(x, b):
    return x / (1 + mp.exp(-b * x))


def _silu_grad(x, b):
    s = 1 / (1 + mp.exp(-b * x))
    return s * (1 + b * x * (1 - s))


# alpha, beta: PyTorch's default, ONNX's HardSigmoid default, a steep one, a negative
# slope, one whose 1/alpha and beta/alpha are inexact.
HARD_PARAMS = [(1 / 6, 0.5), (0.2, 0.5), (1.0, 0.0), (-0.25, 0.3), (0.3, 0.4)]


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("alpha,beta", HARD_PARAMS)
def test_hard_sigmoid_and_hard_swish_match_the_formula(dtype, alpha, beta):
    # The kinks (-beta/alpha, (1-beta)/alpha) and their neighbours are among the inputs.
    kinks = [-beta / alpha, (1 - beta) / alpha]
    extra = [k + d for k in kinks for d in (0.0, 1e-7, -1e-7)]
    x = _inputs(dtype, -12, 12, 2401, extra + [-1e30, 1e30, 0.0, -0.0])
    one = np.ones_like(x)
    # The kernel computes (x + beta/alpha) / (1/alpha) (exact for the defaults), which
    # differs from alpha x + beta with the double alpha by ~1e-16 absolute near the root
    # of alpha x + beta: there the error is measured against a floor (ulp of 1e-6 for
    # float32, of 1 for float64), elsewhere in ulp of the result.
    bound, floor = (1.0, 1e-6) if dtype == np.float32 else (4.0, 1.0)
    for name, ref in (("hard_sigmoid", _hsig), ("hard_swish", _hswish)):
        got = getattr(actfast, name)(x, alpha, beta)
        assert got.dtype == dtype
        assert_ulp(got, _mp_map(ref, x, alpha, beta), dtype, bound, x, f"{name}{alpha, beta}", floor=floor)
    for name, ref in (("hard_sigmoid_grad", _hsig_grad), ("hard_swish_grad", _hswish_grad)):
        got = getattr(actfast, name)(x, one, alpha, beta)
        want = _mp_map(ref, x, alpha, beta)
        # At the kinks themselves the branch taken follows the rounded kink: compare off them.
        off = np.all([np.abs(x.astype(np.float64) - k) > 1e-6 * max(1.0, abs(k)) for k in kinks], axis=0)
        assert_ulp(got[off], want[off], dtype, bound, x[off], f"{name}{alpha, beta}", floor=floor)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_hard_family_defaults_are_the_pytorch_ones(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = _inputs(dtype, -5, 5, 20001, [-3.0, 3.0, -1.5, np.nextafter(3.0, 0), np.nextafter(-3.0, 0)])
    t = torch.from_numpy(x.astype(np.float64))
    for name, tf in (("hard_sigmoid", F.hardsigmoid), ("hard_swish", F.hardswish)):
        got = getattr(actfast, name)(x)
        np.testing.assert_array_equal(got, getattr(actfast, name)(x, 1 / 6, 0.5))
        np.testing.assert_array_equal(got, getattr(actfast, name)(x, alpha=1 / 6, beta=0.5))
        ref = tf(t).numpy()
        if dtype == np.float32:     # float64 PyTorch rounded once is the exact result
            np.testing.assert_array_equal(got, ref.astype(dtype), err_msg=name)
        else:                       # PyTorch rounds twice too, in another order
            np.testing.assert_allclose(got, ref, rtol=4e-16, atol=1e-300, err_msg=name)
        tt = t.clone().requires_grad_(True)
        tf(tt).backward(torch.ones_like(tt))
        g = getattr(actfast, name + "_grad")(x, np.ones_like(x))
        # (PyTorch's float64 hardsigmoid_backward uses float32(1/6): 3e-8 relative off.)
        np.testing.assert_allclose(g, tt.grad.numpy(), rtol=2e-7 if dtype == np.float32 else 3e-8, atol=0,
                                   err_msg=name + "_grad")
        g_kinks = getattr(actfast, name + "_grad")(np.array([-3.0, 3.0], dtype), np.ones(2, dtype))
        np.testing.assert_array_equal(g_kinks, [0.0, 0.0] if name == "hard_sigmoid" else [0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("alpha,scale", [(SELU_ALPHA, SELU_SCALE), (1.0, 1.0), (2.5, 0.5), (0.0, 3.0),
                                         (-1.0, -2.0)])
def test_selu_parameters(dtype, alpha, scale):
    x = _inputs(dtype, -30, 10, 4001, [-1e-30, 1e-30, -745.0, 0.0])
    got = actfast.selu(x, alpha, scale)
    bound = 1.0 if dtype == np.float32 else 3.0
    assert_ulp(got, _mp_map(_selu, x, alpha, scale), dtype, bound, x, f"selu{alpha, scale}")
    g = actfast.selu_grad(x, np.ones_like(x), alpha=alpha, scale=scale)
    assert_ulp(g, _mp_map(_selu_grad, x, alpha, scale), dtype, bound, x, f"selu_grad{alpha, scale}")
    # alpha = scale = 1 is elu, bit for bit in float64.
    if (alpha, scale) == (1.0, 1.0) and dtype == np.float64:
        np.testing.assert_array_equal(got, actfast.elu(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_selu_defaults_are_the_exact_constants(dtype):
    torch = pytest.importorskip("torch")
    x = _inputs(dtype, -20, 5, 5001)
    got = actfast.selu(x)
    np.testing.assert_array_equal(got, actfast.selu(x, SELU_ALPHA, SELU_SCALE))
    assert_ulp(got, _mp_map(_selu, x, mp.mpf("1.6732632423543772848170429916717"),
                            mp.mpf("1.0507009873554804934193349852946")), dtype, 0.5 + 1e-3 if dtype == np.float32
               else 3.0, x, "selu default")
    # PyTorch spells it scale * elu(x, alpha).
    t = torch.from_numpy(x.astype(np.float64))
    ref = (1.5 * torch.nn.functional.elu(t, alpha=0.75)).numpy()
    np.testing.assert_allclose(actfast.selu(x.astype(np.float64), 0.75, 1.5), ref, rtol=4e-16, atol=0)


SILU_BETAS = [1.0, 1.702, 0.5, 2.0, -0.7, 0.0, 10.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("beta", SILU_BETAS)
def test_silu_beta(dtype, beta):
    x = _inputs(dtype, -60, 30, 3001, [-300.0, -700.0 / max(abs(beta), 1), SILU_ROOT / beta if beta else 1.0,
                                      1e-30, -1e-30, 0.0])
    got = actfast.silu(x, beta)
    # float32: computed in double, rounded once. float64: beta x carried as a
    # double-double, so the tail x exp(beta x) keeps its accuracy.
    fbound, gbound = (0.5 + 1e-3, 1.0) if dtype == np.float32 else (3.0, 5.0)
    assert_ulp(got, _mp_map(_silu, x, beta), dtype, fbound, x, f"silu beta={beta}")
    g = actfast.silu_grad(x, np.ones_like(x), beta=beta)
    # silu'(beta x) has a root at beta x = -1.2785: within 0.5 of it, ulp of max(|f'|, 1).
    near_root = np.abs(beta * x.astype(np.float64) - SILU_ROOT) < 0.5
    assert_ulp(g, _mp_map(_silu_grad, x, beta), dtype, gbound, x, f"silu_grad beta={beta}",
               floor=np.where(near_root, 1.0, 0.0))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_silu_default_beta_is_bit_identical(dtype):
    x = _inputs(dtype, -100, 100, 100001)
    np.testing.assert_array_equal(actfast.silu(x), actfast.silu(x, 1.0))
    np.testing.assert_array_equal(actfast.silu(x), actfast.swish(x) if hasattr(actfast, "swish") else actfast.silu(x))
    np.testing.assert_array_equal(actfast.silu_grad(x, x), actfast.silu_grad(x, x, beta=1))


def test_silu_beta_against_torch():
    torch = pytest.importorskip("torch")
    x = np.linspace(-30, 30, 6001)
    t = torch.from_numpy(x).requires_grad_(True)
    y = t * torch.sigmoid(1.702 * t)
    y.backward(torch.ones_like(t))
    np.testing.assert_allclose(actfast.silu(x, 1.702), y.detach().numpy(), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(actfast.silu_grad(x, np.ones_like(x), 1.702), t.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_limits_and_nan(dtype):
    inf = np.inf
    x = np.array([-inf, inf, np.nan, -0.0, 0.0], dtype=dtype)
    with np.errstate(all="raise"):
        # silu: beta > 0 gives (0, inf); beta < 0 gives (-inf, 0); beta = 0 is x / 2.
        np.testing.assert_array_equal(actfast.silu(x, 2.0), np.array([0, inf, np.nan, -0.0, 0.0], dtype))
        np.testing.assert_array_equal(actfast.silu(x, -2.0), np.array([-inf, 0, np.nan, -0.0, 0.0], dtype))
        np.testing.assert_array_equal(actfast.silu(x, 0.0), np.array([-inf, inf, np.nan, -0.0, 0.0], dtype))
        np.testing.assert_array_equal(actfast.silu_grad(x, np.ones_like(x), 2.0), np.array([0, 1, np.nan, 0.5, 0.5], dtype))
        np.testing.assert_array_equal(actfast.silu_grad(x, np.ones_like(x), -2.0), np.array([1, 0, np.nan, 0.5, 0.5], dtype))
        np.testing.assert_array_equal(actfast.silu_grad(x, np.ones_like(x), 0.0), np.array([0.5, 0.5, np.nan, 0.5, 0.5], dtype))
        # hard_sigmoid with a negative slope flips the saturations.
        np.testing.assert_array_equal(actfast.hard_sigmoid(x, -0.25, 0.5), np.array([1, 0, np.nan, 0.5, 0.5], dtype))
        np.testing.assert_array_equal(actfast.hard_swish(x, -0.25, 0.5), np.array([-inf, 0, np.nan, -0.0, 0.0], dtype))
        np.testing.assert_array_equal(actfast.hard_swish(x, 0.2, 0.5), np.array([0, inf, np.nan, -0.0, 0.0], dtype))
        np.testing.assert_array_equal(actfast.selu(x, 2.0, 3.0), np.array([-6, inf, np.nan, -0.0, 0.0], dtype))
        np.testing.assert_array_equal(actfast.selu_grad(x, np.ones_like(x), 2.0, 3.0),
                                      np.array([0, 3, np.nan, 6, 6], dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_gradients_match_finite_differences(dtype):
    rng = np.random.default_rng(5)
    x = rng.uniform(-4, 4, 2000)
    # keep off the kinks of the hard functions
    for name, params in (("hard_sigmoid", (0.2, 0.5)), ("hard_swish", (-0.3, 0.4)), ("selu", (0.8, 1.3)),
                         ("silu", (1.702,)), ("silu", (-0.4,))):
        f = getattr(actfast, name)
        xs = x[np.all([np.abs(x - k) > 1e-3 for k in _kinks(name, params)], axis=0)]
        h = 1e-6
        fd = (f(xs + h, *params) - f(xs - h, *params)) / (2 * h)
        g = getattr(actfast, name + "_grad")(xs.astype(dtype), np.ones(xs.shape, dtype), *params)
        np.testing.assert_allclose(g, fd, rtol=2e-4 if dtype == np.float32 else 1e-7, atol=1e-7, err_msg=name)


def _kinks(name, params):
    if name.startswith("hard"):
        a, b = params
        return [-b / a, (1 - b) / a]
    return [0.0] if name == "selu" else []


def test_float16_and_out_and_broadcast():
    x = np.linspace(-6, 6, 1001).astype(np.float16)
    for name, params in (("hard_sigmoid", (0.2, 0.5)), ("hard_swish", (0.2, 0.5)), ("selu", (1.0, 2.0)),
                         ("silu", (1.702,))):
        f = getattr(actfast, name)
        got = f(x, *params)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, f(x.astype(np.float32), *params).astype(np.float16))
        out = np.empty((3, x.size), np.float32)
        f(x.astype(np.float32)[None, :] * np.ones((3, 1), np.float32), *params, out=out)
        np.testing.assert_array_equal(out[1], f(x.astype(np.float32), *params))
        # strided and reversed
        xs = x.astype(np.float64)[::-3]
        np.testing.assert_array_equal(f(xs, *params), f(np.ascontiguousarray(xs), *params))


def test_parameters_are_doubles_in_float32_loops():
    """A float32 input gets the exact double parameter (not float32(alpha)): selu's
    default result is the correctly rounded one, which float32 constants would miss."""
    k = actfast._dispatch.kernels
    for name in ("selu", "silu_beta", "hard_sigmoid", "hard_swish", "selu_grad_from_output"):
        types = getattr(k, name).types
        assert any(t.startswith("f") and "d" in t.split("->")[0] for t in types), (name, types)
    x = np.float32(0.75)
    assert actfast.selu(np.array([x]))[0] == np.float32(SELU_SCALE * 0.75)


@pytest.mark.parametrize("name,params,pname", [
    ("hard_sigmoid", {"alpha": 0.0}, "alpha"), ("hard_sigmoid", {"alpha": np.nan}, "alpha"),
    ("hard_swish", {"beta": np.inf}, "beta"), ("hard_swish_grad", {"alpha": 0}, "alpha"),
    ("selu", {"alpha": np.nan}, "alpha"), ("selu_grad", {"scale": -np.inf}, "scale"),
    ("silu", {"beta": np.nan}, "beta"), ("silu_grad", {"beta": np.inf}, "beta"),
])
def test_bad_parameters_raise_and_leave_out_untouched(name, params, pname):
    x = np.linspace(-2, 2, 11)
    out = np.full_like(x, 7.0)
    args = (x, x) if name.endswith("_grad") else (x,)
    with pytest.raises(ValueError, match=pname):
        getattr(actfast, name)(*args, **params, out=out)
    assert (out == 7.0).all()
    with pytest.raises(TypeError, match=pname):
        getattr(actfast, name)(*args, **{pname: "1"})


def test_from_output_gradients_take_the_parameters():
    x = np.linspace(-6, 6, 2001)
    dy = np.cos(x)
    for alpha, scale in ((SELU_ALPHA, SELU_SCALE), (0.5, 2.0), (0.0, 1.0)):
        y = actfast.selu(x, alpha, scale)
        np.testing.assert_allclose(actfast.selu_grad_from_output(y, dy, alpha, scale),
                                   actfast.selu_grad(x, dy, alpha, scale), rtol=1e-13, atol=1e-15)
    for alpha, beta in ((1 / 6, 0.5), (0.2, 0.5), (-0.25, 0.3)):
        y = actfast.hard_sigmoid(x, alpha, beta)
        np.testing.assert_array_equal(actfast.hard_sigmoid_grad_from_output(y, dy, alpha, beta),
                                      actfast.hard_sigmoid_grad(x, dy, alpha, beta))
    for alpha, scale in ((-1.0, 1.0), (1.0, 0.0), (1.0, -1.0)):
        with pytest.raises(ValueError, match="scale > 0 and alpha >= 0"):
            actfast.selu_grad_from_output(x, dy, alpha, scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_dense_takes_the_parameters(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((33, 17)).astype(dtype)
    W = rng.standard_normal((17, 9)).astype(dtype)
    b = rng.standard_normal(9).astype(dtype)
    z = x @ W + b
    dy = rng.standard_normal((33, 9)).astype(dtype)
    cases = [("hard_sigmoid", {"alpha": 0.2, "beta": 0.5}), ("hard_swish", {"alpha": 0.25, "beta": 0.4}),
             ("selu", {"alpha": 1.2, "scale": 0.9}), ("selu", {"alpha": -1.0, "scale": 1.0}),
             ("silu", {"beta": 1.702})]
    for name, p in cases:
        y = actfast.dense(x, W, b, activation=name, **p)
        np.testing.assert_array_equal(y, getattr(actfast, name)(z, **p))
        saved = z if actfast.dense_saves(name, **p) == "z" else y
        dx, dW, db = actfast.dense_grad(dy, x, W, saved, activation=name, **p)
        dz = getattr(actfast, name + "_grad")(z, dy, **p)
        tol = 2e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(dx, dz @ W.T, rtol=tol, atol=tol)
        np.testing.assert_allclose(db, dz.sum(0), rtol=tol, atol=tol)
    assert actfast.dense_saves("selu", alpha=-1.0) == "z"
    assert actfast.dense_saves("selu") == "y"
    with pytest.raises(TypeError, match="beta"):
        actfast.dense(x, W, b, activation="selu", beta=1.0)


def test_parameters_on_two_threads_bit_identical():
    x = np.linspace(-9, 9, 300001).astype(np.float32)
    same_on_1_and_2_threads(lambda: (actfast.silu(x, 1.702), actfast.silu_grad(x, x, -0.5),
                                     actfast.hard_swish(x, 0.2, 0.5), actfast.selu(x, 1.1, 0.9)), "params")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_array_parameters_in_every_layout(dtype):
    """leaky_relu's slope as an array: contiguous (its own vectorised loop), strided and
    broadcast (element by element through the same span), with strided x and out."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 600)).astype(dtype)
    slopes = rng.uniform(0, 0.5, (7, 1200)).astype(dtype)
    for s in (slopes[:, :600], slopes[:, ::2], slopes[:, :1], slopes[:1, ::-2], np.ascontiguousarray(slopes[:, :600])):
        want = np.where(x > 0, x, x * s)
        np.testing.assert_array_equal(actfast.leaky_relu(x, s), want)
        np.testing.assert_array_equal(actfast.leaky_relu(x[:, ::-1], s[:, ::-1] if s.shape[1] > 1 else s),
                                      want[:, ::-1])
        out = np.zeros((7, 1200), dtype)
        actfast.leaky_relu_grad(x, np.ones_like(x), s, out=out[:, ::2])
        np.testing.assert_array_equal(out[:, ::2], np.where(x > 0, 1, s * np.ones_like(x)))
        assert (out[:, 1::2] == 0).all()


def test_dense_takes_rrelu_in_its_evaluation_form():
    rng = np.random.default_rng(4)
    x, W, b = rng.standard_normal((9, 5)), rng.standard_normal((5, 6)), rng.standard_normal(6)
    z = x @ W + b
    y = actfast.dense(x, W, b, activation="rrelu", lower=0.1, upper=0.3)
    np.testing.assert_array_equal(y, actfast.rrelu(z, 0.1, 0.3))
    assert actfast.dense_saves("rrelu") == "y"
    dy = rng.standard_normal(y.shape)
    dx, dW, db = actfast.dense_grad(dy, x, W, y, activation="rrelu", lower=0.1, upper=0.3)
    dz = actfast.leaky_relu_grad(z, dy, 0.2)
    np.testing.assert_allclose(db, dz.sum(0), rtol=1e-12)
    with pytest.raises(ValueError, match="lower"):
        actfast.dense(x, W, b, activation="rrelu", lower=0.5, upper=0.1)
