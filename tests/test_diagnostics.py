"""dead_units, dead_fraction, sparsity and saturation against plain NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import actfast
from actfast import diagnostics as diag


def _layouts(a):
    yield "C", a
    yield "F", np.asfortranarray(a)
    yield "strided", np.repeat(a, 2, axis=-1)[..., ::2]
    yield "reversed", a[::-1][::-1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dead_units_and_fraction(dtype):
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(200, 12)), 0).astype(dtype)
    a[:, [2, 7]] = 0
    a[5, 7] = 1e-30          # alive, barely
    want = np.all(a == 0, axis=0)
    for label, v in _layouts(a):
        np.testing.assert_array_equal(diag.dead_units(v), want, err_msg=label)
        assert diag.dead_fraction(v) == pytest.approx(1 / 12), label
    np.testing.assert_array_equal(diag.dead_units(a.T, axis=1), want)
    assert actfast.dead_units is diag.dead_units


def test_dead_units_nd_and_edge_cases():
    rng = np.random.default_rng(1)
    a = np.maximum(rng.normal(size=(4, 5, 6)), 0)
    a[:, 1, :] = 0
    for ax in range(3):
        np.testing.assert_array_equal(diag.dead_units(a, axis=ax), np.all(a == 0, axis=ax))
    assert diag.dead_units(np.zeros((0, 3))).tolist() == [True, True, True]   # vacuous
    assert diag.dead_fraction(np.zeros((3, 0))) == 0.0
    assert diag.dead_units(np.array([0, 0, 1])).shape == ()
    np.testing.assert_array_equal(diag.dead_units(np.array([[0, 1], [0, 2]], dtype=np.int32)), [True, False])
    nan = np.zeros((3, 2))
    nan[1, 0] = np.nan
    np.testing.assert_array_equal(diag.dead_units(nan), [False, True])  # NaN is not zero


def test_parallel_reductions_equal_serial():
    k = actfast._dispatch.kernels
    saved = k._get_min_per_thread()
    a = np.maximum(np.random.default_rng(2).normal(size=(3000, 257)), 0)
    a[:, ::5] = 0
    z = np.random.default_rng(3).normal(size=(3000, 257)) * 8
    try:
        with actfast.num_threads(1):
            serial = (diag.dead_units(a), diag.sparsity(a, axis=0).per_sample, diag.saturation(z, axis=0))
        for cost in saved:
            k._set_min_per_thread(cost, 1)
        with actfast.num_threads(2):
            par = (diag.dead_units(a), diag.sparsity(a, axis=0).per_sample, diag.saturation(z, axis=0))
    finally:
        for cost, v in saved.items():
            k._set_min_per_thread(cost, v)
    for s, p in zip(serial, par):
        np.testing.assert_array_equal(s, p)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_sparsity(axis):
    rng = np.random.default_rng(4)
    a = np.maximum(rng.normal(size=(6, 7, 8)), 0)
    s = diag.sparsity(a, axis=axis)
    moved = np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
    np.testing.assert_allclose(s.per_sample, (moved == 0).mean(axis=1))
    assert s.overall == pytest.approx((a == 0).mean())


def test_sparsity_of_fresh_relu_layer_is_about_half():
    # The seeds' claim: about half the units of a freshly initialised ReLU layer are 0.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(512, 256))
    w = rng.normal(size=(256, 256)) * np.sqrt(2 / 256)
    s = diag.sparsity(actfast.relu(x @ w))
    assert s.overall == pytest.approx(0.5, abs=0.02)
    assert s.per_sample.shape == (512,)


def test_sparsity_1d_and_empty():
    s = diag.sparsity(np.array([0.0, 1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(s.per_sample, [1, 0, 1, 0])
    assert s.overall == 0.5
    assert diag.sparsity(np.zeros((0, 4))).overall == 0.0


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturation(activation, dtype):
    rng = np.random.default_rng(6)
    z = (rng.normal(size=(300, 9)) * 6).astype(dtype)
    grad = getattr(actfast, activation + "_grad")(z.astype(np.float64), 1.0)
    for eps in (1e-3, 1e-2, 0.2):
        want = np.abs(grad) < eps
        for label, v in _layouts(z):
            assert diag.saturation(v, activation, eps) == pytest.approx(want.mean()), label
        np.testing.assert_allclose(diag.saturation(z, activation, eps, axis=0), want.mean(axis=0))
        np.testing.assert_allclose(diag.saturation(z, activation, eps, axis=1), want.mean(axis=1))


def test_saturation_tells_sigmoid_from_relu_scale():
    # Large pre-activations saturate a sigmoid; small ones do not.
    assert diag.saturation(np.full(10, 12.0)) == 1.0
    assert diag.saturation(np.full(10, 0.5)) == 0.0
    with np.errstate(all="raise"):
        assert diag.saturation(np.array([np.nan, 0.0])) == 0.0


def test_errors():
    with pytest.raises(TypeError, match="complex128"):
        diag.dead_units(np.ones(3, complex))
    with pytest.raises(ValueError, match="at least a 1-d"):
        diag.sparsity(1.0)
    with pytest.raises(np.exceptions.AxisError):
        diag.dead_units(np.ones((2, 2)), axis=2)
    with pytest.raises(ValueError, match="activation must be one of"):
        diag.saturation(np.ones(2), "relu")
    with pytest.raises(ValueError, match="eps must be positive"):
        diag.saturation(np.ones(2), eps=0)
    with pytest.raises(TypeError, match="axis must be an int"):
        diag.saturation(np.ones(2), axis=1.0)
