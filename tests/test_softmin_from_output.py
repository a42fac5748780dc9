"""softmin, softmin_grad, softmax_grad_from_output and log_softmax_grad_from_output: the
generalized ufuncs of the ROWWISE table, against float64 references, finite differences,
the gradients from the input, special rows, layouts and threads."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc

import actfast
from _helpers import fd_vjp

SHAPES = [((5,), -1), ((4, 7), -1), ((4, 7), 0), ((3, 4, 5), 1), ((2, 1, 6), -1), ((3, 1000), -1), ((1, 1), 0)]
TOL = {np.float32: 2e-6, np.float64: 1e-14}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape, axis", SHAPES)
def test_softmin_is_softmax_of_minus_x(shape, axis, dtype):
    x = (np.random.default_rng(0).normal(size=shape) * 4).astype(dtype)
    y = actfast.softmin(x, axis=axis)
    assert y.dtype == dtype and y.shape == shape
    # bit for bit the softmax kernel on -x, and close to SciPy's
    np.testing.assert_array_equal(y, actfast.softmax(-x, axis=axis))
    np.testing.assert_allclose(y, sc.softmax(-x.astype(np.float64), axis=axis), rtol=TOL[dtype], atol=0)
    dy = np.random.default_rng(1).normal(size=shape).astype(dtype)
    g = actfast.softmin_grad(x, dy, axis=axis)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, -actfast.softmax_grad(-x, dy, axis=axis))
    yd = sc.softmax(-x.astype(np.float64), axis=axis)
    want = yd * ((dy * yd).sum(axis=axis, keepdims=True) - dy)
    np.testing.assert_allclose(g, want, rtol=10 * TOL[dtype], atol=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape, axis", SHAPES)
def test_from_output_matches_reference_and_gradient_from_input(shape, axis, dtype):
    rng = np.random.default_rng(2)
    x = (rng.normal(size=shape) * 3).astype(dtype)
    dy = rng.normal(size=shape).astype(dtype)
    y = actfast.softmax(x, axis=axis)
    ly = actfast.log_softmax(x, axis=axis)
    g = actfast.softmax_grad_from_output(y, dy, axis=axis)
    lg = actfast.log_softmax_grad_from_output(ly, dy, axis=axis)
    assert g.dtype == lg.dtype == dtype and g.shape == lg.shape == shape
    yd, dyd = y.astype(np.float64), dy.astype(np.float64)
    np.testing.assert_allclose(g, yd * (dyd - (dyd * yd).sum(axis=axis, keepdims=True)), rtol=TOL[dtype],
                               atol=TOL[dtype])
    np.testing.assert_allclose(lg, dyd - np.exp(ly.astype(np.float64)) * dyd.sum(axis=axis, keepdims=True),
                               rtol=4 * TOL[dtype], atol=4 * TOL[dtype])
    # the gradients from the input recompute the same y: softmax's is then bit for bit
    # the same for contiguous rows (the same kernel after the forward)
    if axis in (-1, len(shape) - 1):
        np.testing.assert_array_equal(g, actfast.softmax_grad(x, dy, axis=axis))
    np.testing.assert_allclose(g, actfast.softmax_grad(x, dy, axis=axis), rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(lg, actfast.log_softmax_grad(x, dy, axis=axis), rtol=4 * TOL[dtype],
                               atol=4 * TOL[dtype])


@pytest.mark.parametrize("axis", [-1, 0])
def test_finite_differences(axis):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 5)) * 2
    dy = rng.normal(size=(3, 5))
    np.testing.assert_allclose(actfast.softmin_grad(x, dy, axis=axis), fd_vjp(actfast.softmin, x, dy, axis),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(actfast.softmax_grad_from_output(actfast.softmax(x, axis=axis), dy, axis=axis),
                               fd_vjp(actfast.softmax, x, dy, axis), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        actfast.log_softmax_grad_from_output(actfast.log_softmax(x, axis=axis), dy, axis=axis),
        fd_vjp(actfast.log_softmax, x, dy, axis), rtol=1e-6, atol=1e-8)


def test_special_rows():
    x = np.array([
        [np.nan, 0.0, 1.0],
        [-np.inf, 0.0, 1.0],          # softmin: the -inf entry takes all the mass
        [-np.inf, -np.inf, np.inf],   # ... shared
        [np.inf, 0.0, 1.0],           # +inf gets 0
        [np.inf, np.inf, np.inf],     # no finite entry: NaN
        [1e300, -1e300, 0.0],         # huge logits: no overflow
    ])
    with np.errstate(all="raise"):
        y = actfast.softmin(x)
        g = actfast.softmin_grad(x, np.ones_like(x))
    assert np.isnan(y[0]).all() and np.isnan(g[0]).all()
    np.testing.assert_array_equal(y[1], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(y[2], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(y[3], [0.0, *sc.softmax([0.0, -1.0])])
    assert np.isnan(y[4]).all()
    np.testing.assert_array_equal(y[5], [0.0, 1.0, 0.0])
    # from the output: log_softmax's -inf entries (softmax 0) give dy, NaN rows NaN
    lx = np.array([[-np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0]])
    dy = np.array([[2.0, 1.0, -1.0], [1.0, 1.0, 1.0]])
    with np.errstate(all="raise"):
        ly = actfast.log_softmax(lx)
        lg = actfast.log_softmax_grad_from_output(ly, dy)
        sg = actfast.softmax_grad_from_output(actfast.softmax(lx), dy)
    assert lg[0, 0] == 2.0 and sg[0, 0] == 0.0
    np.testing.assert_allclose(lg[0, 1:], dy[0, 1:] - sc.softmax([0.0, 1.0]) * dy[0].sum(), rtol=1e-14)
    assert np.isnan(lg[1]).all() and np.isnan(sg[1]).all()


def test_broadcasting_layouts_out_and_in_place():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 8))
    y = actfast.softmax(x)
    ly = actfast.log_softmax(x)
    dy = rng.normal(size=8)                     # broadcasts over the rows
    want = actfast.softmax_grad_from_output(y, np.broadcast_to(dy, y.shape).copy())
    np.testing.assert_array_equal(actfast.softmax_grad_from_output(y, dy), want)
    for f, src in ((actfast.softmax_grad_from_output, y), (actfast.log_softmax_grad_from_output, ly),
                   (actfast.softmin_grad, x)):
        ref = f(src, np.broadcast_to(dy, y.shape).copy())
        # strided and Fortran-ordered operands, along axis 0 of the transpose
        np.testing.assert_allclose(f(np.asfortranarray(src).T, np.broadcast_to(dy, y.shape).T, axis=0), ref.T,
                                   rtol=1e-15, atol=1e-16)
        np.testing.assert_allclose(f(src[:, ::-1], dy[::-1])[:, ::-1], ref, rtol=1e-15, atol=1e-16)
        d = np.broadcast_to(dy, y.shape).copy()
        assert f(src, d, out=d) is d                         # in place on dy
        np.testing.assert_allclose(d, ref, rtol=1e-15, atol=1e-16)
        s2 = src.copy()
        f(s2, np.broadcast_to(dy, y.shape), out=s2)          # in place on y (or x)
        np.testing.assert_allclose(s2, ref, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(actfast.softmin(x[:, ::2], axis=1), sc.softmax(-x[:, ::2], axis=1), rtol=1e-14)


def test_zero_d_empty_and_dtypes():
    assert actfast.softmin(3.0) == 1.0
    assert actfast.softmax_grad_from_output(1.0, 2.0) == 0.0
    assert actfast.log_softmax_grad_from_output(0.0, 2.0) == 0.0
    assert actfast.softmin(np.zeros((2, 0))).shape == (2, 0)
    assert actfast.softmax_grad_from_output(np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 3)
    x16 = np.array([1.0, 2.0, -1.0], np.float16)
    for f, args in ((actfast.softmin, (x16,)), (actfast.softmin_grad, (x16, x16)),
                    (actfast.softmax_grad_from_output, (actfast.softmax(x16), x16)),
                    (actfast.log_softmax_grad_from_output, (actfast.log_softmax(x16), x16))):
        r = f(*args)
        assert r.dtype == np.float16
        np.testing.assert_array_equal(r, f(*[a.astype(np.float32) for a in args]).astype(np.float16))
    assert actfast.softmin(np.array([1, 2, 3])).dtype == np.float64
    assert actfast.softmax_grad_from_output(np.array([1, 0]), np.array([1, 2], np.int8)).dtype == np.float64


@pytest.mark.parametrize("f", [actfast.softmin_grad, actfast.softmax_grad_from_output,
                               actfast.log_softmax_grad_from_output])
def test_errors_leave_out_untouched(f):
    y = np.full((2, 3), 1 / 3)
    out = np.full((2, 3), 5.0)
    with pytest.raises(np.exceptions.AxisError, match="axis 2"):
        f(y, y, axis=2, out=out)
    with pytest.raises(TypeError, match="axis must be an int"):
        f(y, y, axis=1.0, out=out)
    with pytest.raises(TypeError, match="complex128"):
        f(y.astype(complex), y, out=out)
    with pytest.raises(ValueError):
        f(y, np.ones((2, 4)), out=out)
    with pytest.raises(ValueError):
        f(y, y, out=np.empty((3, 2)))
    assert (out == 5.0).all()
    with pytest.raises(TypeError, match="axis must be an int"):
        actfast.softmin(y, axis=None)


def test_parallel_rows_equal_serial_around_threshold():
    """Rows go to the pool when rows * n reaches twice the cost class's threshold
    (exp for softmin and log_softmax_grad_from_output, cheap for softmax_grad_from_output)."""
    k = actfast._dispatch.kernels
    per = k._get_min_per_thread()
    rng = np.random.default_rng(5)
    for cost, fs in (("exp", ("softmin", "softmin_grad", "log_softmax_grad_from_output")),
                     ("cheap", ("softmax_grad_from_output",))):
        n = 64
        for rows in sorted({1, 2, (2 * per[cost]) // n - 1, (2 * per[cost]) // n, (2 * per[cost]) // n + 1,
                            (3 * per[cost]) // n + 7}):
            x = rng.normal(size=(rows, n)) * 3
            dy = rng.normal(size=(rows, n))
            for name in fs:
                f = getattr(actfast, name)
                args = (x,) if name == "softmin" else (x if "from_output" not in name else
                                                       actfast.softmax(x), dy)
                with actfast.num_threads(1):
                    a = f(*args)
                with actfast.num_threads(2):
                    b = f(*args)
                np.testing.assert_array_equal(a, b, err_msg=f"{name} rows={rows}")


def test_small_threshold_forces_parallel_rows():
    k = actfast._dispatch.kernels
    saved = k._get_min_per_thread()
    x = np.random.default_rng(6).normal(size=(301, 33)) * 3
    dy = np.random.default_rng(7).normal(size=(301, 33))
    y, ly = actfast.softmax(x), actfast.log_softmax(x)

    def run():
        return [actfast.softmin(x), actfast.softmin_grad(x, dy), actfast.softmax_grad_from_output(y, dy),
                actfast.log_softmax_grad_from_output(ly, dy)]
    try:
        with actfast.num_threads(1):
            serial = run()
        for cost in saved:
            k._set_min_per_thread(cost, 1)
        with actfast.num_threads(2):
            par = run()
    finally:
        for cost, v in saved.items():
            k._set_min_per_thread(cost, v)
    for a, b in zip(serial, par):
        np.testing.assert_array_equal(a, b)


def test_exported_and_documented():
    for name in ("softmin", "softmin_grad", "softmax_grad_from_output", "log_softmax_grad_from_output"):
        assert name in actfast.__all__
        assert getattr(actfast, name).__doc__
    rows = dict(actfast._dispatch.kernels.ROWWISE)
    assert rows["softmin"] == 1 and rows["softmax_grad_from_output"] == 2
    assert actfast._dispatch.kernels.softmax_grad_from_output.signature == "(n),(n)->(n)"
