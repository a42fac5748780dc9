"""Property tests (hypothesis): any shape, stride, order and dtype behaves like the
contiguous float64 computation."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import actfast  # noqa: E402

OPS = [
    ("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.5}), ("sigmoid", {}),
    ("softplus", {"beta": 1.5, "threshold": 10.0}), ("gelu", {}), ("gelu", {"approximate": "tanh"}),
    ("tanh", {}), ("silu", {}), ("mish", {}), ("hard_swish", {}), ("hard_tanh", {"min_val": -0.5, "max_val": 2.0}),
]

finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def strided_arrays(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
    base = draw(hnp.arrays(dtype, shape, elements=st.floats(-30, 30, width=32, **finite)))
    order = draw(st.sampled_from(["C", "F"]))
    base = np.asarray(base, order=order)
    if base.ndim:
        slices = tuple(
            slice(None, None, draw(st.sampled_from([1, 2, -1, -2, 3]))) for _ in range(base.ndim)
        )
        base = base[slices]
    return base


@settings(max_examples=150, deadline=None)
@given(x=strided_arrays(), op=st.sampled_from(OPS))
def test_any_layout_equals_contiguous(x, op):
    name, params = op
    f = getattr(actfast, name)
    g = getattr(actfast, name + "_grad")
    y = f(x, **params)
    assert np.shape(y) == x.shape and np.asarray(y).dtype == x.dtype
    np.testing.assert_array_equal(y, f(np.ascontiguousarray(x), **params))
    dy = np.ones_like(x) * 0.5
    gx = g(x, dy, **params)
    np.testing.assert_array_equal(gx, g(np.ascontiguousarray(x), np.ascontiguousarray(dy), **params))
    # float32 agrees with the float64 computation to float32 precision, in the mixed
    # sense: a few ulp of the result plus what rounding inner quantities derived from x
    # (beta * x, x / sqrt 2) costs, which is eps * |x f'(x)| times a small factor.
    x64 = x.astype(np.float64)
    y64 = f(x64, **params)
    d64 = g(x64, np.ones_like(x64), **params)
    eps = float(np.finfo(x.dtype).eps)
    tol = eps * (4 * np.abs(y64) + 4 * np.abs(x64 * d64)) + 1e-37
    assert np.all(np.abs(np.asarray(y, np.float64) - y64) <= tol)


@settings(max_examples=100, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=5),
       op=st.sampled_from(OPS), data=st.data())
def test_grad_broadcasting(shapes, op, data):
    name, params = op
    sx, sdy = shapes.input_shapes
    x = data.draw(hnp.arrays(np.float64, sx, elements=st.floats(-10, 10, **finite)))
    dy = data.draw(hnp.arrays(np.float64, sdy, elements=st.floats(-10, 10, **finite)))
    g = getattr(actfast, name + "_grad")(x, dy, **params)
    assert np.shape(g) == shapes.result_shape
    xb, dyb = np.broadcast_arrays(x, dy)
    want = getattr(actfast, name + "_grad")(np.ascontiguousarray(xb), np.ascontiguousarray(dyb), **params)
    np.testing.assert_array_equal(g, want)


@settings(max_examples=100, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=7),
                    elements=st.floats(-50, 50, **finite)), data=st.data())
def test_softmax_normalised_along_any_axis(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    y = actfast.softmax(x, axis=axis)
    assert y.shape == x.shape
    if x.shape[axis]:
        np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)
        np.testing.assert_allclose(np.log(y), actfast.log_softmax(x, axis=axis), rtol=1e-10, atol=1e-10)
