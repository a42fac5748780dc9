"""softmax, log_softmax, softmin and their gradients with a mask (where=): against a
NumPy float64 reference computed on the unmasked entries only, jax's conventions at
masked entries (0, -inf for log_softmax), fully masked rows (NaN), mask broadcasting,
every axis, finite differences, and values under the mask that must not leak."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import actfast
from _helpers import fd_vjp, same_on_1_and_2_threads

FORWARD = ["softmax", "log_softmax", "softmin"]
FROM_X = ["softmax_grad", "log_softmax_grad", "softmin_grad"]
FROM_Y = {"softmax_grad_from_output": "softmax", "log_softmax_grad_from_output": "log_softmax"}


def _row_ref(op, x, dy, m):
    """One row, float64, over the unmasked entries; masked entries 0 (-inf for
    log_softmax's forward); NaN when nothing is unmasked."""
    out = np.zeros(x.shape)
    if op == "log_softmax":
        out[:] = -np.inf
    if not m.any():
        return np.full(x.shape, np.nan)
    xu = x[m].astype(np.float64)
    z = -xu if op.startswith("softmin") else xu
    e = np.exp(z - z.max())
    y = e / e.sum()
    if op in ("softmax", "softmin"):
        r = y
    elif op == "log_softmax":
        r = (z - z.max()) - np.log(e.sum())
    else:
        d = dy[m].astype(np.float64)
        if op in ("softmax_grad", "softmax_grad_from_output"):
            r = y * (d - np.dot(d, y))
        elif op == "softmin_grad":
            r = y * (np.dot(d, y) - d)
        else:
            r = d - y * d.sum()
    out[m] = r
    return out


def reference(op, x, m, dy=None, axis=-1):
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    m = np.moveaxis(np.broadcast_to(m, x.shape if axis == -1 else np.moveaxis(np.empty(x.shape), -1, axis).shape),
                    axis, -1)
    d = None if dy is None else np.moveaxis(np.asarray(dy, np.float64), axis, -1)
    out = np.empty(x.shape)
    for idx in np.ndindex(x.shape[:-1]):
        out[idx] = _row_ref(op, x[idx], None if d is None else d[idx], m[idx])
    return np.moveaxis(out, -1, axis)


def call(op, x, m, dy=None, axis=-1, **kw):
    if op in FORWARD:
        return getattr(actfast, op)(x, axis, where=m, **kw)
    return getattr(actfast, op)(x, dy, axis, where=m, **kw)


def inputs(shape, seed=0, dtype=np.float64, p=0.6):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    m = rng.random(shape) < p
    return x, dy, m


def first_input(op, x, m, axis):
    """x, or for a gradient from the output the masked forward's output."""
    if op in FROM_Y:
        return getattr(actfast, FROM_Y[op])(x, axis, where=m)
    return x


ALL = FORWARD + FROM_X + list(FROM_Y)


@pytest.mark.parametrize("op", ALL)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (4, 7), (5, 8), (6, 9), (3, 17), (2, 1000)])
def test_against_numpy_on_unmasked_entries(op, shape):
    x, dy, m = inputs(shape, seed=len(op) + shape[-1])
    m[0] = False                                  # a fully masked row
    if shape[0] > 1:
        m[1] = True                               # and a full one
    a = first_input(op, x, m, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no RuntimeWarning for the NaN rows
        got = call(op, a, m, dy)
    want = reference(op, x, m, dy)
    assert got.shape == x.shape and got.dtype == np.float64
    empty = ~m.any(axis=-1)
    assert np.isnan(got[empty]).all()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    masked = ~m & ~empty[:, None]                 # masked entries of rows with something unmasked
    if op == "log_softmax":
        assert (got[masked] == -np.inf).all()
    else:
        assert (got[masked] == 0).all()
        assert not np.signbit(got[masked]).any()
    assert not np.isnan(got[~empty]).any()


@pytest.mark.parametrize("op", ALL)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_every_axis(op, axis):
    x, dy, m = inputs((3, 4, 5), seed=3)
    a = first_input(op, x, m, axis)
    got = call(op, a, m, dy, axis)
    np.testing.assert_allclose(got, reference(op, x, m, dy, axis), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("op", ALL)
def test_mask_broadcasting(op):
    x, dy, _ = inputs((4, 6), seed=4)
    row = np.array([True, False, True, True, False, True])
    col = np.array([[True], [False], [True], [True]])
    for m, axis in [(row, -1), (row[None, :], -1), (col, -1), (col, 0), (row, 0), (np.True_, -1),
                    (np.array(False), 0)]:
        full = np.broadcast_to(m, x.shape)
        a = first_input(op, x, full, axis)
        got = call(op, a, m, dy, axis)
        np.testing.assert_array_equal(got, call(op, a, full.copy(), dy, axis), err_msg=f"{op} {np.shape(m)}")
        np.testing.assert_allclose(got, reference(op, x, full, dy, axis), rtol=1e-12, atol=1e-15)


def test_broadcasting_errors():
    x = np.zeros((4, 6))
    out = np.full((4, 6), 3.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        actfast.softmax(x, where=np.ones(5, bool), out=out)
    with pytest.raises(ValueError, match="does not broadcast"):
        actfast.softmax(x, where=np.ones((2, 4, 6), bool), out=out)     # would enlarge the result
    with pytest.raises(TypeError, match="boolean"):
        actfast.softmax(x, where=np.ones(6), out=out)
    with pytest.raises(TypeError, match="boolean"):
        actfast.softmax_grad(x, x, where=[1, 0, 1, 1, 1, 1], out=out)
    with pytest.raises(np.exceptions.AxisError):
        actfast.log_softmax(x, axis=2, where=np.ones(6, bool), out=out)
    assert (out == 3.0).all()


@pytest.mark.parametrize("op", ALL)
def test_values_under_the_mask_do_not_leak(op):
    x, dy, m = inputs((5, 33), seed=5)
    m[:, 0] = False
    a = first_input(op, x, m, -1)
    base = call(op, a, m, dy)
    for fill in (np.nan, np.inf, -np.inf, 1e308):
        a2, dy2 = a.copy(), dy.copy()
        a2[~m] = fill
        dy2[~m] = fill
        got = call(op, a2, m, dy2)
        np.testing.assert_array_equal(got, base, err_msg=f"{op} fill {fill}")


@pytest.mark.parametrize("op", FROM_X)
@pytest.mark.parametrize("axis", [-1, 0])
def test_finite_differences(op, axis):
    x, dy, m = inputs((3, 5), seed=6, p=0.7)
    m[0, :] = m[:, 0] = True                      # nothing fully masked along either axis
    fwd = {"softmax_grad": "softmax", "log_softmax_grad": "log_softmax", "softmin_grad": "softmin"}[op]

    def f(xx, axis):
        # masked entries held at 0 (log_softmax's -inf would make the differences NaN)
        return np.where(m, getattr(actfast, fwd)(xx, axis, where=m), 0.0)
    got = call(op, x, m, dy, axis)
    np.testing.assert_allclose(got, fd_vjp(f, x, dy, axis), rtol=1e-6, atol=1e-8)
    assert (got[~m] == 0).all()


@pytest.mark.parametrize("op", ALL)
def test_all_true_mask_is_the_unmasked_op(op):
    x, dy, _ = inputs((7, 65), seed=7)
    m = np.ones(x.shape, bool)
    a = first_input(op, x, None if op not in FROM_Y else m, -1)
    unmasked = getattr(actfast, op)(a) if op in FORWARD else getattr(actfast, op)(a, dy)
    np.testing.assert_array_equal(call(op, a, m, dy), unmasked)
    np.testing.assert_array_equal(call(op, a, True, dy), unmasked)


def test_special_values_in_unmasked_entries():
    # The unmasked rules hold on the unmasked part: +inf shares the mass, NaN spreads
    # over the unmasked entries (masked entries stay 0), -inf only is NaN.
    m = np.array([True, True, False, True])
    y = actfast.softmax(np.array([np.inf, 1.0, np.inf, np.inf]), where=m)
    np.testing.assert_array_equal(y, [0.5, 0.0, 0.0, 0.5])
    y = actfast.softmax(np.array([np.nan, 1.0, 5.0, 2.0]), where=m)
    assert np.isnan(y[m]).all() and y[2] == 0
    y = actfast.log_softmax(np.array([-np.inf, -np.inf, 0.0, -np.inf]), where=m)
    assert np.isnan(y[m]).all() and y[2] == -np.inf
    y = actfast.softmin(np.array([-np.inf, 1.0, -np.inf, 3.0]), where=m)
    np.testing.assert_array_equal(y, [1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("op", ALL)
def test_reduced_precision(op, dtype):
    x, dy, m = inputs((6, 40), seed=8, dtype=dtype)
    a = first_input(op, x, m, -1)
    got = call(op, a, m, dy)
    assert got.dtype == dtype
    # float16 is computed in float32 and rounded once: the float32 result rounded
    if dtype == np.float16:
        want = call(op, a.astype(np.float32), m, dy.astype(np.float32)).astype(np.float16)
        np.testing.assert_array_equal(got, want)
    else:
        ref = reference(op, x, m, dy) if op not in FROM_Y else reference(op, x, m, dy)
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


def test_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = np.dtype(ml_dtypes.bfloat16)
    x, dy, m = inputs((4, 30), seed=9)
    xb, dyb = x.astype(bf), dy.astype(bf)
    for op in ALL:
        a = first_input(op, xb, m, -1)
        got = call(op, a, m, dyb)
        assert got.dtype == bf, op
        want = call(op, a.astype(np.float32), m, dyb.astype(np.float32)).astype(bf)
        np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32), err_msg=op)


@pytest.mark.parametrize("op", ALL)
def test_out_and_aliasing(op):
    x, dy, m = inputs((5, 21), seed=10)
    a = first_input(op, x, m, -1)
    want = call(op, a, m, dy)
    out = np.full(x.shape, 7.0)
    r = call(op, a, m, dy, out=out)
    assert r is out
    np.testing.assert_array_equal(out, want)          # every element written, masked ones too
    a2 = a.copy()
    call(op, a2, m, dy, out=a2)                       # in place on the first input
    np.testing.assert_array_equal(a2, want)
    if op not in FORWARD:
        d2 = dy.copy()
        call(op, a, m, d2, out=d2)                    # in place on dy
        np.testing.assert_array_equal(d2, want)
    # strided input and output
    big = np.full((5, 42), 7.0)
    call(op, np.repeat(a, 2, axis=1)[:, ::2], np.repeat(m, 2, axis=1)[:, ::2],
         None if op in FORWARD else np.repeat(dy, 2, axis=1)[:, ::2], out=big[:, 1::2])
    np.testing.assert_allclose(big[:, 1::2], want, rtol=1e-14, atol=1e-300)
    assert (big[:, ::2] == 7.0).all()


def test_zero_d_and_empty():
    assert actfast.softmax(np.float64(3.0), where=True) == 1.0
    assert np.isnan(actfast.softmax(np.float64(3.0), where=False))
    assert actfast.log_softmax(2.0, where=np.True_) == 0.0
    assert actfast.softmax(np.zeros((0, 4)), where=np.ones(4, bool)).shape == (0, 4)
    assert actfast.softmax(np.zeros((3, 0)), where=np.ones(0, bool)).shape == (3, 0)


@pytest.mark.parametrize("op", ["softmax", "softmax_grad", "log_softmax_grad_from_output"])
def test_bit_identical_on_1_and_2_threads(op):
    x, dy, m = inputs((300, 700), seed=11, dtype=np.float32)
    m[::7] = False
    a = first_input(op, x, m, -1)
    same_on_1_and_2_threads(lambda: (call(op, a, m, dy),), op)
