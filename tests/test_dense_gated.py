"""The dense layer with gated activations (swiglu, geglu, reglu, glu): W and b have
2 * n_out columns, z = x @ W + b is split into gate and value (gate first; value first
for glu, as torch.nn.functional.glu), y = value * g(gate)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import actfast
from actfast import Dense, dense, dense_grad, dense_saves
from actfast.dense import _resolve

from _helpers import sgd_regression_losses

K = actfast._dispatch.kernels

# (activation, params)
GATED = [
    ("swiglu", {}),
    ("swiglu", {"beta": 1.7}),
    ("geglu", {}),
    ("geglu", {"approximate": "tanh"}),
    ("reglu", {}),
    ("glu", {}),
]
IDS = ["swiglu", "swiglu-beta", "geglu", "geglu-tanh", "reglu", "glu"]


def _halves(name, z):
    """(gate, value) of z's columns, per the layer's layout."""
    n = z.shape[-1] // 2
    first, second = z[..., :n], z[..., n:]
    return (second, first) if name == "glu" else (first, second)


def ref_forward(name, params, z):
    """y from z with the elementwise gated functions (float64 NumPy reference)."""
    if name == "glu":
        return actfast.glu(z)
    gate, value = _halves(name, z)
    return getattr(actfast, name)(gate, value, **params)


def ref_dz(name, params, z, dy):
    if name == "glu":
        return actfast.glu_grad(z, dy)
    gate, value = _halves(name, z)
    dg, dv = getattr(actfast, name + "_grad")(gate, value, dy, **params)
    return np.concatenate([dg, dv], axis=-1)


def _problem(rng, batch, n_in, n_out, dtype):
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, 2 * n_out)) / math.sqrt(n_in)).astype(dtype)
    b = (0.1 * rng.standard_normal(2 * n_out)).astype(dtype)
    return x, W, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "params"), GATED, ids=IDS)
def test_forward_and_backward_match_reference(name, params, dtype):
    rng = np.random.default_rng(1)
    x, W, b = _problem(rng, 37, 13, 9, dtype)
    y, z = dense(x, W, b, name, return_z=True, **params)
    assert y.shape == (37, 9) and z.shape == (37, 18) and y.dtype == dtype and z.dtype == dtype
    zr = np.matmul(x, W) + b
    np.testing.assert_array_equal(z, zr)             # the same GEMM, the same bias add
    np.testing.assert_array_equal(y, ref_forward(name, params, zr))   # the ufunc's own span
    dy = rng.standard_normal((37, 9)).astype(dtype)
    dx, dW, db = dense_grad(dy, x, W, z, name, **params)
    dz = ref_dz(name, params, zr, dy)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(db, dz.astype(np.float64).sum(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(dW, x.T @ dz, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, dz @ W.T, rtol=tol, atol=tol)


def _torch_act(name, params, torch):
    F = torch.nn.functional
    if name == "glu":
        return F.glu

    def f(z):
        gate, value = z.chunk(2, dim=-1)
        if name == "swiglu":
            beta = params.get("beta", 1.0)
            return gate * torch.sigmoid(beta * gate) * value
        if name == "geglu":
            return F.gelu(gate, approximate=params.get("approximate", "none")) * value
        return F.relu(gate) * value
    return f


@pytest.mark.parametrize(("name", "params"), GATED, ids=IDS)
def test_matches_torch_autograd(name, params):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, W, b = _problem(rng, 20, 11, 7, np.float64)
    dy = rng.standard_normal((20, 7))
    tx, tW, tb = (torch.from_numpy(a).requires_grad_() for a in (x, W, b))
    ty = _torch_act(name, params, torch)(tx @ tW + tb)
    ty.backward(torch.from_numpy(dy))
    y, z = dense(x, W, b, name, return_z=True, **params)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    dx, dW, db = dense_grad(dy, x, W, z, name, **params)
    for got, want in ((dx, tx.grad), (dW, tW.grad), (db, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-11, atol=1e-13)


def test_glu_layout_is_torch_glu_on_z():
    # glu: value first, gate second; the others: gate first.
    x = np.eye(2)
    W = np.array([[1.0, 2.0], [3.0, -1.0]])          # n_out = 1: z = x @ W
    y = dense(x, W, None, "glu")
    np.testing.assert_allclose(y[:, 0], W[:, 0] / (1 + np.exp(-W[:, 1])), rtol=1e-15)
    y = dense(x, W, None, "reglu")
    np.testing.assert_allclose(y[:, 0], np.maximum(W[:, 0], 0) * W[:, 1], rtol=1e-15)


@pytest.mark.parametrize(("name", "params"), GATED, ids=IDS)
def test_finite_differences(name, params):
    rng = np.random.default_rng(3)
    x, W, b = _problem(rng, 4, 3, 2, np.float64)
    dy = rng.standard_normal((4, 2))
    y, z = dense(x, W, b, name, return_z=True, **params)
    dx, dW, db = dense_grad(dy, x, W, z, name, **params)
    h = 1e-6
    for arr, g in ((x, dx), (W, dW), (b, db)):
        fd = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            up = np.sum(dy * dense(x, W, b, name, **params))
            arr[idx] = old - h
            down = np.sum(dy * dense(x, W, b, name, **params))
            arr[idx] = old
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_vector_input_layouts_and_no_bias():
    rng = np.random.default_rng(4)
    x, W, b = _problem(rng, 6, 5, 4, np.float64)
    for name, params in GATED:
        y = dense(x[2], W, b, name, **params)
        assert y.shape == (4,)
        np.testing.assert_allclose(y, dense(x[2:3], W, b, name, **params)[0], rtol=1e-15)
        yv, zv = dense(x[2], W, b, name, return_z=True, **params)
        dx, dW, db = dense_grad(np.ones(4), x[2], W, zv, name, **params)
        assert dx.shape == (5,) and dW.shape == (5, 8) and db.shape == (8,)
        # Transposed and Fortran operands, no bias.
        xt, Wf = np.ascontiguousarray(x.T).T, np.asfortranarray(W)
        np.testing.assert_allclose(dense(xt, Wf, None, name, **params), ref_forward(name, params, x @ W),
                                   rtol=1e-13, atol=1e-15)
        out = np.empty((6, 4))
        assert dense(x, W, b, name, out=out, **params) is out
        np.testing.assert_array_equal(out, dense(x, W, b, name, **params))


def test_empty_shapes():
    for name, params in GATED:
        y, z = dense(np.empty((0, 3)), np.ones((3, 4)), np.ones(4), name, return_z=True, **params)
        assert y.shape == (0, 2) and z.shape == (0, 4)
        dx, dW, db = dense_grad(np.empty((0, 2)), np.empty((0, 3)), np.ones((3, 4)), z, name, **params)
        assert dx.shape == (0, 3) and (dW == 0).all() and (db == 0).all() and db.shape == (4,)
        y, z = dense(np.ones((2, 3)), np.ones((3, 0)), None, name, return_z=True, **params)
        assert y.shape == (2, 0) and z.shape == (2, 0)
        dx, dW, db = dense_grad(np.empty((2, 0)), np.ones((2, 3)), np.ones((3, 0)), z, name, **params)
        assert (dx == 0).all() and dW.shape == (3, 0) and db.shape == (0,)


@pytest.mark.parametrize(("name", "params"), GATED, ids=IDS)
@pytest.mark.parametrize("shape", [(203, 31, 150), (3, 70, 2), (1, 40, 4500), (4000, 8, 33)])
def test_elementwise_part_is_the_same_on_1_and_2_threads(name, params, shape):
    """The gated epilogue and dz pass (on a given z) split rows over the pool in fixed
    chunks: bit-identical y, dz and db for 1 and 2 threads."""
    batch, n_in, n_out = shape
    rng = np.random.default_rng(5)
    z = rng.standard_normal((batch, 2 * n_out)).astype(np.float32) * 3
    b = rng.standard_normal(2 * n_out).astype(np.float32)
    dy = rng.standard_normal((batch, n_out)).astype(np.float32)
    act = _resolve("test", name, params)

    def run():
        zz = z.copy()
        y = np.empty((batch, n_out), np.float32)
        K._dense_gated_epilogue(zz, b, y, act.forward, act.p0, act.gate_first)
        dz = np.empty_like(z)
        db = np.empty(2 * n_out, np.float32)
        K._dense_gated_dz(dy, zz, dz, db, act.grad, act.p0, act.gate_first)
        return y, zz, dz, db

    saved = K._get_min_per_thread()
    try:
        res = []
        for per in (None, 1):   # the default thresholds, then every size parallel
            if per:
                for cost in saved:
                    K._set_min_per_thread(cost, per)
            with actfast.num_threads(1):
                one = run()
            with actfast.num_threads(2):
                two = run()
            for a, c in zip(one, two):
                np.testing.assert_array_equal(a, c)
            res.append(two)
    finally:
        for cost, v in saved.items():
            K._set_min_per_thread(cost, v)
    y, zz, dz, db = res[1]
    np.testing.assert_array_equal(zz, z + b)
    np.testing.assert_array_equal(y, ref_forward(name, params, z + b))
    np.testing.assert_array_equal(dz, ref_dz(name, params, z + b, dy))
    np.testing.assert_allclose(db, dz.astype(np.float64).sum(0), rtol=1e-6, atol=1e-6)


def test_saves_and_resolution():
    for name, params in GATED:
        assert dense_saves(name, **params) == "z"
    layer = Dense(6, 5, "swiglu", rng=0, beta=1.5)
    assert layer.W.shape == (6, 10) and layer.b.shape == (10,)
    assert repr(layer) == "Dense(6, 5, activation='swiglu', dtype=float32)"
    for init in ("glorot_uniform", "rai", "he_normal"):
        layer = Dense(6, 5, "glu", init=init, rng=0)
        assert layer.W.shape == (6, 10) and layer.b.shape == (10,)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: dense(np.ones((2, 3)), np.ones((3, 5)), None, "swiglu"), ValueError, "2 \\* n_out"),
    (lambda: dense(np.ones((2, 3)), np.ones((3, 4)), np.ones(2), "reglu"), ValueError, "shapes do not fit"),
    (lambda: dense(np.ones((2, 3)), np.ones((3, 4)), None, "swiglu", beta=math.nan), ValueError, "NaN"),
    (lambda: dense(np.ones((2, 3)), np.ones((3, 4)), None, "swiglu", beta=math.inf), ValueError, "finite"),
    (lambda: dense(np.ones((2, 3)), np.ones((3, 4)), None, "geglu", approximate="fast"), ValueError,
     "approximate"),
    (lambda: dense(np.ones((2, 3)), np.ones((3, 4)), None, "reglu", beta=1.0), TypeError, "unexpected"),
    (lambda: dense(np.ones((2, 3)), np.ones((3, 4)), None, "glu", out=np.empty((2, 4))), ValueError, "shape"),
    (lambda: dense_grad(np.ones((2, 2)), np.ones((2, 3)), np.ones((3, 4)), np.ones((2, 2)), "swiglu"),
     ValueError, "saved z"),
    (lambda: dense_grad(np.ones((2, 4)), np.ones((2, 3)), np.ones((3, 4)), np.ones((2, 4)), "glu"),
     ValueError, "shapes do not fit"),
    (lambda: Dense(3, 2, "geglu", approximate="x"), ValueError, "approximate"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_errors_leave_out_untouched():
    out = np.full((2, 2), 42.0)
    with pytest.raises(ValueError):
        dense(np.ones((2, 3)), np.ones((3, 4)), np.ones(3), "swiglu", out=out)
    with pytest.raises(ValueError):
        dense(np.ones((2, 3)), np.ones((3, 4)), None, "swiglu", out=out, beta=math.nan)
    assert (out == 42.0).all()


@pytest.mark.parametrize(("name", "params"), GATED, ids=IDS)
def test_layer_forward_backward_matches_functions(name, params):
    rng = np.random.default_rng(6)
    layer = Dense(5, 3, name, dtype=np.float64, rng=1, **params)
    x = rng.standard_normal((7, 5))
    y = layer.forward(x)
    y2, z = dense(x, layer.W, layer.b, name, return_z=True, **params)
    np.testing.assert_array_equal(y, y2)
    dy = rng.standard_normal((7, 3))
    dx = layer.backward(dy)
    rdx, rdW, rdb = dense_grad(dy, x, layer.W, z, name, **params)
    np.testing.assert_array_equal(dx, rdx)
    np.testing.assert_array_equal(layer.dW, rdW)
    np.testing.assert_array_equal(layer.db, rdb)


@pytest.mark.parametrize(("name", "params"), GATED, ids=IDS)
def test_sgd_lowers_loss(name, params):
    """A gated hidden layer and a linear head, SGD on a small regression."""
    l1 = Dense(4, 16, name, init="glorot_uniform", dtype=np.float64, rng=1, **params)
    l2 = Dense(16, 1, None, init="glorot_normal", dtype=np.float64, rng=2)
    losses = sgd_regression_losses(l1, l2, steps=150, lr=0.2)
    assert losses[-1] < 0.8 * losses[0], losses
