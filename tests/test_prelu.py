"""prelu and prelu_grad: against PyTorch autograd (float64), finite differences, every
layout, special values, reduced precision, out=, errors, and thread-count independence."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import actfast
from actfast._dispatch import kernels as _k
from _helpers import same_on_1_and_2_threads

torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_ref(x, w, dy, axis=1):
    """(y, dx, dweight) from torch.nn.functional.prelu's autograd, in float64. torch's
    channel axis is 1; another axis is moved there first."""
    x = np.array(x, np.float64)          # a copy: torch takes no negative strides
    w = np.asarray(w, np.float64)
    move = x.ndim >= 2 and w.size > 1 and axis % x.ndim != 1
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w.reshape(-1), requires_grad=True)
    dyt = torch.tensor(np.array(dy, np.float64))
    inp = torch.movedim(xt, axis, 1) if move else xt
    y = F.prelu(inp, wt)
    y.backward(torch.movedim(dyt, axis, 1) if move else dyt)
    y = torch.movedim(y, 1, axis) if move else y
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy().reshape(w.shape)


def data(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def weight_for(shape, axis, seed=1, one=False):
    rng = np.random.default_rng(seed)
    if one:
        return rng.uniform(0.05, 0.5, size=(1,))
    return rng.uniform(-0.5, 0.9, size=shape[axis])


SHAPES = [
    ((0, 3), 1), ((4, 0), 1), ((1, 1), 1), ((2, 3, 5), 1), ((2, 3, 5), 0), ((2, 3, 5), -1), ((2, 3, 5), -3),
    ((3, 7), 1), ((3, 7), -1), ((5, 1, 9), 1),
    # SIMD tails of the channel planes (8 accumulators, vector widths 4-16)
    ((2, 3, 7), 1), ((2, 3, 8), 1), ((2, 3, 9), 1), ((2, 5, 15), 1), ((2, 5, 16), 1), ((2, 5, 17), 1),
    ((1, 3, 33), 2), ((3, 2, 4, 5), 2), ((3, 2, 4, 5), -2),
    # around the parallel threshold (2 * 32768 elements for 2 threads) and the chunk size
    ((1, 3, 21845), 1), ((1, 3, 21846), 1), ((2, 1, 32768), 1), ((65537, 1), 1), ((8193, 9), -1),
]


@pytest.mark.parametrize("shape,axis", SHAPES)
@pytest.mark.parametrize("one", [False, True])
def test_against_torch_float64(shape, axis, one):
    x, dy = data(shape)
    w = weight_for(shape, axis, one=one)
    y_ref, dx_ref, dw_ref = torch_ref(x, w, dy, axis)
    y = actfast.prelu(x, w, axis)
    np.testing.assert_array_equal(y, y_ref)
    dx, dw = actfast.prelu_grad(x, w, dy, axis)
    assert dx.dtype == np.float64 and dx.shape == x.shape and dw.shape == w.shape
    np.testing.assert_array_equal(dx, dx_ref)
    scale = np.abs(np.where(x > 0, 0, x * dy)).sum() + 1e-300
    assert np.max(np.abs(dw - dw_ref), initial=0) <= 1e-14 * scale


@pytest.mark.parametrize("wshape", [(), (1,), (1, 1), (1, 1, 1)])
def test_one_element_weight_any_shape(wshape):
    x, dy = data((3, 4, 5), seed=2)
    w = np.full(wshape, 0.3)
    y_ref, dx_ref, dw_ref = torch_ref(x, w, dy)
    np.testing.assert_array_equal(actfast.prelu(x, w), y_ref)
    np.testing.assert_array_equal(actfast.prelu(x, w), actfast.leaky_relu(x, 0.3))
    dx, dw = actfast.prelu_grad(x, w, dy)
    np.testing.assert_array_equal(dx, dx_ref)
    assert np.shape(dw) == wshape
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-13)
    # a Python float weight gives a scalar dweight
    dx2, dw2 = actfast.prelu_grad(x, 0.3, dy)
    np.testing.assert_array_equal(dx2, dx)
    assert np.ndim(dw2) == 0 and float(dw2) == pytest.approx(float(dw_ref.reshape(())), rel=1e-13)


def test_zero_and_one_dim_inputs_follow_torch():
    # No channel axis below 2 dimensions (torch's rule): one-element weights only.
    x1, dy1 = data((6,), seed=3)
    y_ref, dx_ref, dw_ref = torch_ref(x1, [0.2], dy1)
    np.testing.assert_array_equal(actfast.prelu(x1, [0.2]), y_ref)
    dx, dw = actfast.prelu_grad(x1, [0.2], dy1)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-14)
    with pytest.raises(RuntimeError):
        F.prelu(torch.tensor(x1), torch.full((6,), 0.2, dtype=torch.float64))
    with pytest.raises(ValueError, match="no channel axis"):
        actfast.prelu(x1, np.full(6, 0.2))
    with pytest.raises(ValueError, match="no channel axis"):
        actfast.prelu_grad(x1, np.full(6, 0.2), dy1)
    # an explicit axis of a 1-d input is a channel axis: one weight per element
    w = np.linspace(-0.5, 0.5, 6)
    np.testing.assert_array_equal(actfast.prelu(x1, w, axis=0), np.where(x1 > 0, x1, w * x1))
    dx, dw = actfast.prelu_grad(x1, w, dy1, axis=-1)
    np.testing.assert_array_equal(dx, np.where(x1 > 0, dy1, w * dy1))
    np.testing.assert_array_equal(dw, np.where(x1 > 0, 0, x1 * dy1))
    # 0-d
    x0 = np.float64(-2.0)
    y_ref, dx_ref, dw_ref = torch_ref(x0, [0.25], 3.0)
    assert actfast.prelu(x0, 0.25) == y_ref == -0.5
    dx, dw = actfast.prelu_grad(x0, np.array([0.25]), 3.0)
    assert dx == dx_ref and np.ndim(dx) == 0
    np.testing.assert_array_equal(dw, dw_ref)
    with pytest.raises(np.exceptions.AxisError):
        actfast.prelu(x0, 0.25, axis=0)


def test_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 5))
    x = np.where(np.abs(x) < 0.05, 0.3, x)           # away from the kink
    dy = rng.standard_normal(x.shape)
    for axis in (1, -1, 0):
        w = rng.uniform(-0.5, 0.9, x.shape[axis])
        dx, dw = actfast.prelu_grad(x, w, dy, axis)
        h = 1e-6

        def loss(xx, ww):
            return np.sum(dy * actfast.prelu(xx, ww, axis))
        fd_w = np.array([(loss(x, w + h * e) - loss(x, w - h * e)) / (2 * h) for e in np.eye(w.size)])
        np.testing.assert_allclose(dw, fd_w, rtol=1e-7, atol=1e-8)
        fd_x = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[idx] = h
            fd_x[idx] = (loss(x + e, w) - loss(x - e, w)) / (2 * h)
        np.testing.assert_allclose(dx, fd_x, rtol=1e-7, atol=1e-8)


def test_special_values_and_kink():
    x = np.array([[np.inf, -np.inf, 0.0, -0.0, 1e-300, -1e-300, 5e-324, -5e-324, 3.0, -3.0]])
    dy = np.array([[2.0, 2.0, 3.0, 3.0, -1.0, -1.0, 1.0, 1.0, -0.0, 0.5]])
    w = np.array([0.25])
    y_ref, dx_ref, dw_ref = torch_ref(x, w, dy)
    y = actfast.prelu(x, w)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(y_ref))   # prelu(-0.0) = -0.0
    dx, dw = actfast.prelu_grad(x, w, dy)
    np.testing.assert_array_equal(dx, dx_ref)                          # w * dy at x == 0
    assert dx[0, 2] == 0.75 and dx[0, 3] == 0.75
    np.testing.assert_array_equal(dw, dw_ref)                          # -inf * 2 -> -inf
    assert dw[0] == -np.inf
    # -inf * 0 is NaN, as in torch
    _, dw = actfast.prelu_grad(np.array([[-np.inf, 1.0]]), w, np.array([[0.0, 1.0]]))
    assert np.isnan(dw[0])


def test_nan_input():
    x = np.array([[np.nan, -1.0], [2.0, -3.0]])
    dy = np.ones_like(x)
    w = np.array([0.25, 0.5])
    y = actfast.prelu(x, w)
    assert np.isnan(y[0, 0]) and y[1, 1] == -1.5
    dx, dw = actfast.prelu_grad(x, w, dy)
    # NaN propagates into dx (as leaky_relu_grad; torch gives w * dy) and into that
    # channel's dweight (as torch); the other channel is unaffected.
    assert np.isnan(dx[0, 0]) and dx[0, 1] == 0.5 and dx[1, 0] == 1.0 and dx[1, 1] == 0.5
    np.testing.assert_array_equal(dx, actfast.leaky_relu_grad(x, dy, w))
    assert np.isnan(dw[0]) and dw[1] == -4.0
    _, _, dw_ref = torch_ref(x, w, dy)
    assert np.isnan(dw_ref[0]) and dw_ref[1] == dw[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_reduced_precision(dtype):
    x, dy = data((4, 3, 37), seed=5, dtype=dtype)
    w = np.array([0.1, -0.3, 0.7])
    y = actfast.prelu(x, w)
    assert y.dtype == dtype
    w32 = w.astype(np.float32)
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    np.testing.assert_array_equal(y, np.where(x32 > 0, x32, w32[:, None] * x32).astype(dtype))
    dx, dw = actfast.prelu_grad(x, w, dy)
    assert dx.dtype == dtype and dw.dtype == dtype
    np.testing.assert_array_equal(dx, np.where(x32 > 0, dy32, w32[:, None] * dy32).astype(dtype))
    # the sums in double (products of float32 are exact there), rounded once
    want = np.where(x32 > 0, 0, x32.astype(np.float64) * dy32).sum(axis=(0, 2))
    np.testing.assert_allclose(dw.astype(np.float64), want, rtol=np.finfo(dtype).eps)
    np.testing.assert_array_equal(dw, want.astype(dtype))


def test_bfloat16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = np.dtype(ml_dtypes.bfloat16)
    x, dy = data((2, 3, 19), seed=6)
    x, dy = x.astype(bf), dy.astype(bf)
    w = np.array([0.1, -0.3, 0.7])
    y = actfast.prelu(x, w)
    assert y.dtype == bf
    x32, dy32, w32 = x.astype(np.float32), dy.astype(np.float32), w.astype(np.float32)
    np.testing.assert_array_equal(y.astype(np.float32),
                                  np.where(x32 > 0, x32, w32[:, None] * x32).astype(bf).astype(np.float32))
    dx, dw = actfast.prelu_grad(x, w, dy)
    assert dx.dtype == bf and dw.dtype == bf
    np.testing.assert_array_equal(dx.astype(np.float32),
                                  np.where(x32 > 0, dy32, w32[:, None] * dy32).astype(bf).astype(np.float32))
    want = np.where(x32 > 0, 0, x32.astype(np.float64) * dy32).sum(axis=(0, 2))
    np.testing.assert_allclose(dw.astype(np.float64), want, rtol=2 ** -8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_and_other_dtype_weight(dtype):
    x, dy = data((2, 3, 4), seed=16, dtype=dtype)
    wb = np.array([0.1, 9.0, -0.2, 9.0, 0.3, 9.0])
    for w in (wb[::2], wb[::-2][::-1], wb[::2].astype(np.float16), np.array([1, 0, 2])):
        wc = np.ascontiguousarray(w, dtype=dtype)[:, None]
        np.testing.assert_array_equal(actfast.prelu(x, w), np.where(x > 0, x, wc * x))
        dx, dw = actfast.prelu_grad(x, w, dy)
        np.testing.assert_array_equal(dx, np.where(x > 0, dy, wc * dy))
        assert dw.shape == (3,) and dw.dtype == dtype


def test_integer_input_is_float64():
    x = np.array([[-2, 3], [4, -5]])
    y = actfast.prelu(x, [0.5, 0.25])
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[-1.0, 3.0], [4.0, -1.25]])
    dx, dw = actfast.prelu_grad(x, [0.5, 0.25], np.ones((2, 2), np.int32))
    assert dx.dtype == np.float64 and dw.dtype == np.float64
    np.testing.assert_array_equal(dw, [-2.0, -5.0])


LAYOUTS = {
    "reversed": lambda a: a[::-1, ::-1, ::-1],
    "step": lambda a: a[:, :, ::3],
    "channel-step": lambda a: a[::2, ::2],
    "sliced": lambda a: a[1:, :, 2:-1],
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("axis", [1, -1, 0])
def test_strided_views(layout, axis):
    # Strided views are read (in place, or from one copy) in the same logical order as
    # a contiguous copy: the results are the same bit for bit.
    xb, dyb = data((6, 6, 40), seed=7)
    x, dy = LAYOUTS[layout](xb), LAYOUTS[layout](dyb)
    w = weight_for(x.shape, axis)
    dx, dw = actfast.prelu_grad(x, w, dy, axis)
    dxc, dwc = actfast.prelu_grad(np.ascontiguousarray(x), w, np.ascontiguousarray(dy), axis)
    np.testing.assert_array_equal(dx, dxc)
    np.testing.assert_array_equal(dw, dwc)
    _, dx_ref, dw_ref = torch_ref(x, w, dy, axis)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-13)
    np.testing.assert_array_equal(actfast.prelu(x, w, axis), torch_ref(x, w, dy, axis)[0])


@pytest.mark.parametrize("one", [False, True])
def test_fortran_order_and_mixed_layouts(one):
    xb, dyb = data((5, 4, 9), seed=8)
    w = weight_for(xb.shape, 1, one=one)
    _, dx_ref, dw_ref = torch_ref(xb, w, dyb)
    for x, dy in [(np.asfortranarray(xb), np.asfortranarray(dyb)),        # read transposed
                  (np.asfortranarray(xb), dyb),                            # one copied
                  (xb.transpose(2, 1, 0).copy().transpose(2, 1, 0), dyb[:, :, ::-1][:, :, ::-1])]:
        dx, dw = actfast.prelu_grad(x, w, dy)
        np.testing.assert_array_equal(dx, dx_ref)
        np.testing.assert_allclose(dw, dw_ref, rtol=1e-13)


def test_out():
    x, dy = data((3, 4, 10), seed=9)
    w = weight_for(x.shape, 1)
    dx_want, dw_want = actfast.prelu_grad(x, w, dy)
    dx_out, dw_out = np.empty_like(x), np.empty_like(w)
    r = actfast.prelu_grad(x, w, dy, out=(dx_out, dw_out))
    assert r[0] is dx_out and r[1] is dw_out
    np.testing.assert_array_equal(dx_out, dx_want)
    np.testing.assert_array_equal(dw_out, dw_want)
    # either may be None
    dx2, dw2 = actfast.prelu_grad(x, w, dy, out=(None, dw_out))
    np.testing.assert_array_equal(dx2, dx_want)
    assert dw2 is dw_out
    # float32 outputs of a float64 computation: dweight rounded once from double
    dx32, dw32 = np.empty(x.shape, np.float32), np.empty(w.shape, np.float32)
    actfast.prelu_grad(x, w, dy, out=(dx32, dw32))
    np.testing.assert_array_equal(dx32, dx_want.astype(np.float32))
    np.testing.assert_array_equal(dw32, dw_want.astype(np.float32))
    # in place on dy and on x
    d = dy.copy()
    actfast.prelu_grad(x, w, d, out=(d, None))
    np.testing.assert_array_equal(d, dx_want)
    xx = x.copy()
    actfast.prelu_grad(xx, w, dy, out=(xx, None))
    np.testing.assert_array_equal(xx, dx_want)
    # a strided out is written in place, nothing else of its base touched
    base = np.full((3, 8, 10), 7.0)
    view = base[:, ::2]
    actfast.prelu_grad(x, w, dy, out=(view, None))
    np.testing.assert_array_equal(view, dx_want)
    assert (base[:, 1::2] == 7.0).all()
    # an out overlapping x with a shift goes through a temporary
    buf = np.concatenate([x.ravel(), np.zeros(1)])
    xs = buf[1:].reshape(x.shape)
    xs[...] = x
    actfast.prelu_grad(xs, w, dy, out=(buf[:-1].reshape(x.shape), None))
    np.testing.assert_array_equal(buf[:-1].reshape(x.shape), dx_want)
    # forward out, in place
    xf = x.copy()
    actfast.prelu(xf, w, out=xf)
    np.testing.assert_array_equal(xf, actfast.prelu(x, w))


def _errors(x, w, dy):
    c = w.size
    return [
        (lambda o: actfast.prelu_grad(x, np.ones(c + 1), dy, out=o), ValueError, "1 element or be 1-d"),
        (lambda o: actfast.prelu_grad(x, np.ones((c, 1)), dy, out=o), ValueError, "1-d"),
        (lambda o: actfast.prelu_grad(x, np.ones(x.shape[2]), dy, out=o), ValueError, r"x.shape\[1\] = 3"),
        (lambda o: actfast.prelu_grad(x, np.array([0.1, np.nan, 0.2]), dy, out=o), ValueError, "NaN"),
        (lambda o: actfast.prelu_grad(x, np.ones(c, complex), dy, out=o), TypeError, "weight must be real"),
        (lambda o: actfast.prelu_grad(x.astype(complex), w, dy, out=o), TypeError, "complex"),
        (lambda o: actfast.prelu_grad(x, w, dy.astype(np.complex64), out=o), TypeError, "complex"),
        (lambda o: actfast.prelu_grad(x, w, dy, axis=3, out=o), np.exceptions.AxisError, "out of bounds"),
        (lambda o: actfast.prelu_grad(x, w, dy, axis=-4, out=o), np.exceptions.AxisError, "out of bounds"),
        (lambda o: actfast.prelu_grad(x, w, dy, axis=1.0, out=o), TypeError, "axis must be an int"),
        (lambda o: actfast.prelu_grad(x, w, dy[:, :, :1], out=o), ValueError, "dy must have x's shape"),
        (lambda o: actfast.prelu_grad(x, w, dy[0], out=o), ValueError, "dy must have x's shape"),
        (lambda o: actfast.prelu_grad(x, w, dy, out=(o[0][0], o[1])), ValueError, "dx_out must have shape"),
        (lambda o: actfast.prelu_grad(x, w, dy, out=(o[0], o[1][:2])), ValueError, "dweight_out must have shape"),
        (lambda o: actfast.prelu_grad(x, w, dy, out=(o[0], np.zeros(c, np.int64))), TypeError, "cannot write"),
        (lambda o: actfast.prelu_grad(x, w, dy, out=(o[0], o[1], None)), TypeError, "tuple"),
        (lambda o: actfast.prelu_grad(x, w, dy, out=o[0]), TypeError, "tuple"),
        (lambda o: actfast.prelu_grad(x, w, dy, out=(o[0], list(o[1]))), TypeError, "must be an ndarray"),
        (lambda o: actfast.prelu_grad(x, w, dy, out=(o[0], _readonly(c))), ValueError, "read-only"),
    ]


def _readonly(c):
    a = np.zeros(c)
    a.flags.writeable = False
    return a


def test_errors_leave_out_untouched():
    x, dy = data((2, 3, 4), seed=10)
    w = weight_for(x.shape, 1)
    for call, exc, match in _errors(x, w, dy):
        dx_out, dw_out = np.full(x.shape, 5.0), np.full(w.shape, 6.0)
        with pytest.raises(exc, match=match):
            call((dx_out, dw_out))
        assert (dx_out == 5.0).all() and (dw_out == 6.0).all(), match


def test_forward_errors():
    x = np.zeros((2, 3))
    out = np.full((2, 3), 4.0)
    with pytest.raises(ValueError, match="NaN"):
        actfast.prelu(x, np.nan, out=out)
    with pytest.raises(ValueError, match="x.shape"):
        actfast.prelu(x, np.ones(2), out=out)
    with pytest.raises(np.exceptions.AxisError):
        actfast.prelu(x, np.ones(3), axis=2, out=out)
    with pytest.raises(TypeError):
        actfast.prelu(x.astype(complex), 0.1)
    assert (out == 4.0).all()


@pytest.mark.parametrize("shape,axis", [((3, 5, 30011), 1), ((50001, 7), -1), ((400003,), 1), ((9, 3, 41, 97), 1)])
def test_bit_identical_on_1_and_2_threads(shape, axis):
    x, dy = data(shape, seed=11, dtype=np.float32)
    w = weight_for(shape, axis % len(shape)) if len(shape) > 1 else 0.2
    chunk = _k._prelu_chunk_items(x.size, np.size(w) if np.size(w) > 1 else 1)
    assert x.size > 2 * chunk                           # several chunks: the sums are split
    dx, dw = same_on_1_and_2_threads(lambda: actfast.prelu_grad(x, w, dy, axis), f"prelu_grad {shape}")
    if np.size(w) > 1:
        other = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
        wb = np.reshape(w, (-1,) + (1,) * (x.ndim - 1 - axis % x.ndim)).astype(np.float32)
    else:
        other, wb = None, np.float32(w)
    np.testing.assert_array_equal(dx, np.where(x > 0, dy, wb * dy))
    want = np.where(x > 0, 0, x.astype(np.float64) * dy).sum(axis=other)
    np.testing.assert_allclose(dw, want.astype(np.float32), rtol=2e-7)


def _peak_bytes(call):
    call()                                              # warm-up (imports, pool)
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout,axis", [("reversed", 1), ("step", 1), ("channel-step", 1), ("sliced", 2),
                                         ("reversed", 0)])
def test_views_are_read_without_a_copy(layout, axis):
    xb, dyb = data((8, 16, 8192), seed=13)
    x, dy = LAYOUTS[layout](xb), LAYOUTS[layout](dyb)
    w = weight_for(x.shape, axis)
    dx, dw = np.empty(x.shape), np.empty(w.shape)
    peak = _peak_bytes(lambda: actfast.prelu_grad(x, w, dy, axis, out=(dx, dw)))
    assert peak < x.size * 8 / 8, peak                  # the chunks' sums: ~1/16 of x's elements
    # and a layout that cannot be viewed as (outer, C, inner) is copied (once per input)
    xs, dys = xb[:, ::2], dyb[:, ::2]
    w0 = weight_for(xs.shape, 0)
    dx, dw = np.empty(xs.shape), np.empty(w0.shape)
    peak = _peak_bytes(lambda: actfast.prelu_grad(xs, w0, dys, 0, out=(dx, dw)))
    assert peak >= xs.size * 8, peak


def test_no_temporary_of_x_size():
    x, dy = data((8, 16, 8192), seed=12)               # 8 MiB each
    w = weight_for(x.shape, 1)
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    actfast.prelu_grad(x, w, dy, out=(dx, dw))          # warm-up (imports, pool)
    tracemalloc.start()
    try:
        actfast.prelu_grad(x, w, dy, out=(dx, dw))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 16, peak
    np.testing.assert_array_equal(dx, np.where(x > 0, dy, w[:, None] * dy))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [1, -1, 0])
def test_forward_channel_kernel(dtype, axis):
    # float32/64 with one weight per channel run the channel walk of src/_prelu.pxi:
    # every layout and out= against the NumPy expression in the same dtype.
    xb, _ = data((5, 6, 67), seed=14, dtype=dtype)
    w = weight_for(xb.shape, axis).astype(dtype)
    wb = w.reshape((-1,) + (1,) * (2 - axis % 3))
    want = np.where(xb > 0, xb, wb * xb)
    np.testing.assert_array_equal(actfast.prelu(xb, w, axis), want)
    f = np.asfortranarray(xb)
    y = actfast.prelu(f, w, axis)
    np.testing.assert_array_equal(y, want)
    assert y.flags.f_contiguous                          # read and written transposed
    rev = tuple(slice(None) if a == axis % 3 else slice(None, None, -1) for a in range(3))
    np.testing.assert_array_equal(actfast.prelu(xb[rev], w, axis), want[rev])   # negative strides
    if axis != 2 and axis != -1:
        np.testing.assert_array_equal(actfast.prelu(xb[:, :, ::2], w, axis), want[:, :, ::2])
    out = np.full((5, 6, 67), 9.0, dtype)
    r = actfast.prelu(xb, w, axis, out=out)
    assert r is out
    np.testing.assert_array_equal(out, want)
    base = np.full((5, 12, 67), 9.0, dtype)             # a strided out, written in place
    actfast.prelu(xb, w, axis, out=base[:, 1::2])
    np.testing.assert_array_equal(base[:, 1::2], want)
    assert (base[:, ::2] == 9.0).all()
    out64 = np.empty(xb.shape, np.float64) if dtype == np.float32 else np.empty(xb.shape, np.float32)
    actfast.prelu(xb, w, axis, out=out64)                # another dtype: through the ufunc
    np.testing.assert_array_equal(out64, want.astype(out64.dtype))
    shifted = np.concatenate([xb.ravel(), np.zeros(3, dtype)])
    src = shifted[3:].reshape(xb.shape)
    src[...] = xb
    actfast.prelu(src, w, axis, out=shifted[:-3].reshape(xb.shape))   # overlapping: via a temporary
    np.testing.assert_array_equal(shifted[:-3].reshape(xb.shape), want)
    xi = xb.copy()
    actfast.prelu(xi, w, axis, out=xi)
    np.testing.assert_array_equal(xi, want)


@pytest.mark.parametrize("shape,axis", [((3, 5, 30011), 1), ((50001, 7), -1)])
def test_forward_on_1_and_2_threads(shape, axis):
    x, _ = data(shape, seed=15, dtype=np.float32)
    w = weight_for(shape, axis % len(shape)).astype(np.float32)
    (y,) = same_on_1_and_2_threads(lambda: (actfast.prelu(x, w, axis),), f"prelu {shape}")
    wb = w.reshape((-1,) + (1,) * (len(shape) - 1 - axis % len(shape)))
    np.testing.assert_array_equal(y, np.where(x > 0, x, wb * x))
