"""softmax / log_softmax and their vector-Jacobian products."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc

import actfast
from _helpers import fd_vjp


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("shape, axis", [((5,), -1), ((4, 7), -1), ((4, 7), 0), ((3, 4, 5), 1), ((2, 1, 6), -1),
                                         ((3, 1000), -1), ((1, 1), 0)])
def test_against_scipy(shape, axis, dtype, rtol):
    x = (np.random.default_rng(0).normal(size=shape) * 4).astype(dtype)
    y = actfast.softmax(x, axis=axis)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(y, sc.softmax(x.astype(np.float64), axis=axis), rtol=rtol, atol=0)
    ly = actfast.log_softmax(x, axis=axis)
    np.testing.assert_allclose(ly, sc.log_softmax(x.astype(np.float64), axis=axis), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=10 * rtol)


def test_large_logits_do_not_overflow():
    x = np.array([[1000.0, 1001.0, 999.0], [-1e300, 0.0, 1e300]])
    with np.errstate(all="raise"):
        y = actfast.softmax(x)
        ly = actfast.log_softmax(x)
    np.testing.assert_allclose(y[0], sc.softmax([0.0, 1.0, -1.0]))
    np.testing.assert_array_equal(y[1], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(ly[0], sc.log_softmax([0.0, 1.0, -1.0]))
    assert ly[1, 2] == 0.0 and ly[1, 0] == -2e300


def test_special_rows():
    x = np.array([
        [np.nan, 0.0, 1.0],          # NaN anywhere: the whole row is NaN
        [np.inf, 0.0, 1.0],          # one +inf takes all the mass
        [np.inf, np.inf, -np.inf],   # +inf entries share it
        [-np.inf, 0.0, 1.0],         # -inf entries get 0 (log: -inf)
        [-np.inf, -np.inf, -np.inf], # no finite entry: NaN
    ])
    with np.errstate(all="raise"):
        y = actfast.softmax(x)
        ly = actfast.log_softmax(x)
    assert np.isnan(y[0]).all() and np.isnan(ly[0]).all()
    np.testing.assert_array_equal(y[1], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(ly[1], [0.0, -np.inf, -np.inf])
    np.testing.assert_array_equal(y[2], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(ly[2], [np.log(0.5), np.log(0.5), -np.inf])
    np.testing.assert_allclose(y[3], [0.0, *sc.softmax([0.0, 1.0])])
    assert ly[3, 0] == -np.inf
    assert np.isnan(y[4]).all() and np.isnan(ly[4]).all()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_grad_against_finite_differences(name, axis):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5)) * 2
    dy = rng.normal(size=(3, 5))
    f = getattr(actfast, name)
    g = getattr(actfast, name + "_grad")(x, dy, axis=axis)
    np.testing.assert_allclose(g, fd_vjp(f, x, dy, axis), rtol=1e-6, atol=1e-8)


def test_grad_analytic_forms():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    dy = rng.normal(size=(4, 6)).astype(np.float32)
    y = sc.softmax(x.astype(np.float64), axis=-1)
    want = y * (dy - (dy * y).sum(-1, keepdims=True))
    g = actfast.softmax_grad(x, dy)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
    want_log = dy - y * dy.sum(-1, keepdims=True)
    np.testing.assert_allclose(actfast.log_softmax_grad(x, dy), want_log, rtol=1e-5, atol=1e-6)


def test_grad_broadcasts_dy():
    x = np.random.default_rng(3).normal(size=(3, 4))
    dy = np.array([1.0, 0.0, 0.0, 0.0])
    g = actfast.softmax_grad(x, dy)
    np.testing.assert_allclose(g, actfast.softmax_grad(x, np.broadcast_to(dy, x.shape)))


def test_zero_d_empty_and_dtypes():
    assert actfast.softmax(3.0) == 1.0
    assert actfast.log_softmax(np.float32(3.0)) == 0.0
    assert actfast.softmax(np.zeros((2, 0))).shape == (2, 0)
    assert actfast.softmax(np.zeros((0, 3))).shape == (0, 3)
    y16 = actfast.softmax(np.array([1.0, 2.0], np.float16))
    assert y16.dtype == np.float16
    np.testing.assert_array_equal(y16, actfast.softmax(np.array([1.0, 2.0], np.float32)).astype(np.float16))
    assert actfast.softmax(np.array([1, 2, 3])).dtype == np.float64
    assert actfast.softmax(np.array([1, 2], np.int8)).dtype == np.float64


def test_layouts_and_out():
    x = np.random.default_rng(4).normal(size=(6, 8))
    want = sc.softmax(x, axis=0)
    for v in (np.asfortranarray(x), x[::-1][::-1], x.T.copy().T):
        np.testing.assert_allclose(actfast.softmax(v, axis=0), want, rtol=1e-14)
    np.testing.assert_allclose(actfast.softmax(x[:, ::2], axis=1), sc.softmax(x[:, ::2], axis=1), rtol=1e-14)
    out = np.empty_like(x)
    assert actfast.softmax(x, axis=0, out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-14)
    y = x.copy()
    actfast.log_softmax(y, out=y)
    np.testing.assert_allclose(y, sc.log_softmax(x, axis=-1), rtol=1e-14)


def test_errors():
    x = np.ones((2, 3))
    with pytest.raises(np.exceptions.AxisError, match="axis 2"):
        actfast.softmax(x, axis=2)
    with pytest.raises(TypeError, match="axis must be an int"):
        actfast.softmax(x, axis=(0, 1))
    with pytest.raises(TypeError, match="complex128"):
        actfast.softmax(x.astype(complex))
    out = np.full((3, 2), 5.0)
    with pytest.raises(ValueError):
        actfast.softmax(x, out=out)
    assert (out == 5.0).all()


def test_parallel_rows_equal_serial():
    k = actfast._dispatch.kernels
    saved = k._get_min_per_thread()
    x = np.random.default_rng(5).normal(size=(301, 33)) * 3
    dy = np.random.default_rng(6).normal(size=(301, 33))
    try:
        with actfast.num_threads(1):
            serial = [actfast.softmax(x), actfast.log_softmax(x), actfast.softmax_grad(x, dy), actfast.log_softmax_grad(x, dy)]
        k._set_min_per_thread("exp", 1)
        with actfast.num_threads(2):
            par = [actfast.softmax(x), actfast.log_softmax(x), actfast.softmax_grad(x, dy), actfast.log_softmax_grad(x, dy)]
    finally:
        for cost, v in saved.items():
            k._set_min_per_thread(cost, v)
    for a, b in zip(serial, par):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["softmax_grad", "log_softmax_grad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_in_place_on_dy(name, dtype):
    """out=dy: NumPy hands the gufunc the same memory for dy and the output (no copy), so
    the softmax must not be stored in the output before dy has been read."""
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(5, 9)) * 3).astype(dtype)
    x[1, 2], x[2, :3], x[3, 0] = np.inf, np.inf, -np.inf
    dy = rng.normal(size=(5, 9)).astype(dtype)
    f = getattr(actfast, name)
    want = f(x, dy)
    for view in (lambda a: a, lambda a: a[:, ::-1], lambda a: a.T):
        xv = view(x)
        axis = 0 if xv.base is not None and xv.shape != x.shape else -1
        ref = f(xv, view(dy), axis=axis)
        d = view(dy.copy())
        assert f(xv, d, axis=axis, out=d) is d
        np.testing.assert_allclose(d, ref, rtol=1e-6 if dtype == np.float32 else 1e-15, atol=1e-7)
    d = dy.copy()
    f(x, d, out=d)
    np.testing.assert_allclose(d, want, rtol=1e-6 if dtype == np.float32 else 1e-15, atol=1e-7)
    same = dy.copy()                              # x, dy and out all one array
    f(same, same, out=same)
    np.testing.assert_allclose(same, f(dy, dy), rtol=1e-6 if dtype == np.float32 else 1e-15, atol=1e-7)
