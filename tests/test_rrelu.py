"""rrelu and rrelu_grad, and leaky_relu with an array of slopes (which rrelu uses)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import actfast


def test_eval_mode_is_leaky_relu_with_the_mean_slope():
    x = np.linspace(-4, 4, 1001)
    y = actfast.rrelu(x)
    np.testing.assert_array_equal(y, actfast.leaky_relu(x, (1 / 8 + 1 / 3) / 2))
    y2, s = actfast.rrelu(x, 0.1, 0.3, return_slopes=True)
    assert s == pytest.approx(0.2) and isinstance(s, float)
    np.testing.assert_array_equal(y2, actfast.leaky_relu(x, 0.2))
    np.testing.assert_array_equal(actfast.rrelu_grad(x, np.ones_like(x), s), actfast.leaky_relu_grad(x, 1.0, s))
    assert actfast.rrelu(np.float32(-2.0)).dtype == np.float32
    # rng is not touched in evaluation mode
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    actfast.rrelu(x, rng=g)
    assert g.bit_generator.state == state


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_training_mode(dtype):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(64, 33)) * 3).astype(dtype)
    y, s = actfast.rrelu(x, 0.05, 0.4, training=True, rng=123, return_slopes=True)
    assert y.dtype == dtype and y.shape == x.shape and s.shape == x.shape
    assert s.dtype == (np.float64 if dtype == np.float64 else np.float32)
    assert s.min() >= np.float32(0.05) and s.max() <= np.float32(0.4)
    assert s.std() > 0.05                                         # one slope per element
    np.testing.assert_array_equal(y, actfast.leaky_relu(x, s))
    want = np.where(x > 0, x.astype(s.dtype), x.astype(s.dtype) * s).astype(dtype)
    np.testing.assert_array_equal(y, want)
    # reproducible for a seed, different for another
    y2, s2 = actfast.rrelu(x, 0.05, 0.4, training=True, rng=123, return_slopes=True)
    np.testing.assert_array_equal(s, s2)
    np.testing.assert_array_equal(y, y2)
    _, s3 = actfast.rrelu(x, 0.05, 0.4, training=True, rng=124, return_slopes=True)
    assert not np.array_equal(s, s3)
    # the draw is numpy.random.default_rng(seed).uniform(lower, upper, x.shape)
    np.testing.assert_array_equal(s, np.random.default_rng(123).uniform(0.05, 0.4, x.shape).astype(s.dtype))


def test_generator_is_advanced():
    g = np.random.default_rng(5)
    x = -np.ones(1000)
    _, a = actfast.rrelu(x, training=True, rng=g, return_slopes=True)
    _, b = actfast.rrelu(x, training=True, rng=g, return_slopes=True)
    assert not np.array_equal(a, b)
    assert np.abs(a.mean() - (1 / 8 + 1 / 3) / 2) < 0.01
    y = actfast.rrelu(x, training=True, rng=np.random.SeedSequence(3))
    assert y.shape == x.shape and (y < 0).all()


def test_lower_equals_upper_and_scalars():
    x = np.array([-2.0, 3.0])
    y, s = actfast.rrelu(x, 0.25, 0.25, training=True, rng=0, return_slopes=True)
    np.testing.assert_array_equal(y, [-0.5, 3.0])
    np.testing.assert_array_equal(s, 0.25)
    y0, s0 = actfast.rrelu(-1.0, training=True, rng=0, return_slopes=True)
    assert np.shape(s0) == () and float(y0) == -float(s0)


def test_grad():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 7)) * 2
    dy = rng.normal(size=(50, 7))
    y, s = actfast.rrelu(x, training=True, rng=9, return_slopes=True)
    g = actfast.rrelu_grad(x, dy, s)
    np.testing.assert_array_equal(g, np.where(x > 0, dy, dy * s))
    np.testing.assert_array_equal(g, actfast.leaky_relu_grad(x, dy, s))
    # finite differences with the slopes held fixed
    x = x[np.abs(x) > 1e-4]
    s = s.ravel()[: x.size]
    h = 1e-6
    fd = (actfast.leaky_relu(x + h, s) - actfast.leaky_relu(x - h, s)) / (2 * h)
    np.testing.assert_allclose(actfast.rrelu_grad(x, np.ones_like(x), s), fd, rtol=1e-7)
    # at the kink, as PyTorch: the slope
    assert actfast.rrelu_grad(0.0, 2.0, 0.25) == 0.5


def test_out_and_errors_leave_out_untouched():
    x = np.linspace(-2, 2, 6)
    out = np.empty(6)
    assert actfast.rrelu(x, training=True, rng=0, out=out) is out
    np.testing.assert_array_equal(out, actfast.rrelu(x, training=True, rng=0))
    out[:] = 42.0
    for call, exc, match in [
        (lambda: actfast.rrelu(x, 0.5, 0.25, out=out), ValueError, "lower"),
        (lambda: actfast.rrelu(x, float("nan"), 0.25, out=out), ValueError, "lower must not be NaN"),
        (lambda: actfast.rrelu(x, 0.1, float("nan"), training=True, out=out), ValueError, "upper must not be NaN"),
        (lambda: actfast.rrelu(x, 0.1, math.inf, training=True, out=out), ValueError, "finite"),
        (lambda: actfast.rrelu(x, "0.1", 0.2, out=out), TypeError, "lower"),
        (lambda: actfast.rrelu(x, training=True, rng=0, out=out[:3]), ValueError, "broadcast"),
        (lambda: actfast.rrelu_grad(x, x, np.array([np.nan] * 6), out=out), ValueError, "slopes must not contain NaN"),
        (lambda: actfast.rrelu_grad(x, x, [0.1] * 6, out=out), TypeError, "slopes"),
    ]:
        with pytest.raises(exc, match=match):
            call()
        assert (out == 42.0).all()


def test_leaky_relu_with_array_slopes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 4)).astype(np.float32)
    per_channel = np.array([0.0, 0.1, 0.2, 0.3])            # float64 array, broadcasting
    y = actfast.leaky_relu(x, per_channel)
    assert y.dtype == np.float32                            # the parameter does not promote
    np.testing.assert_array_equal(y, np.where(x > 0, x, x * per_channel.astype(np.float32)))
    g = actfast.leaky_relu_grad(x, np.ones_like(x), per_channel)
    np.testing.assert_array_equal(g, np.where(x > 0, 1, per_channel.astype(np.float32)).astype(np.float32))
    assert actfast.leaky_relu(x, np.float64(0.2)).dtype == np.float32
    assert actfast.leaky_relu(x, np.array(0.2)).dtype == np.float32
    for bad, exc in ((np.array([0.1, np.nan, 0.2, 0.3]), ValueError), (np.array([1j, 0, 0, 0]), TypeError),
                     (np.array(["a"] * 4), TypeError), ([0.1, 0.2, 0.3, 0.4], TypeError)):
        with pytest.raises(exc, match="negative_slope"):
            actfast.leaky_relu(x, bad)
    # integer x is computed in float64, with float64 slopes
    assert actfast.leaky_relu(np.array([-2, 3]), np.array([0.5, 0.5], np.float32)).dtype == np.float64


def test_exported_and_documented():
    assert "rrelu" in actfast.__all__ and "rrelu_grad" in actfast.__all__
    assert "leaky_relu_grad(x, dy, slopes)" in actfast.rrelu_grad.__doc__
    assert "default_rng" in actfast.rrelu.__doc__


def test_against_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(4).normal(size=(40, 9)) * 2
    t = torch.from_numpy(x)
    np.testing.assert_allclose(actfast.rrelu(x, 0.1, 0.3), F.rrelu(t, 0.1, 0.3, training=False).numpy(), rtol=1e-15)
    # training: PyTorch's slopes lie in [lower, upper] where x <= 0 ...
    yt = F.rrelu(t, 0.1, 0.3, training=True).numpy()
    neg = x < 0
    ratio = yt[neg] / x[neg]
    assert ratio.min() >= 0.1 - 1e-12 and ratio.max() <= 0.3 + 1e-12
    np.testing.assert_array_equal(yt[~neg], x[~neg])
    # ... and with our slopes, autograd of PyTorch's formula gives our gradient
    y, s = actfast.rrelu(x, 0.1, 0.3, training=True, rng=0, return_slopes=True)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = torch.where(tx > 0, tx, tx * torch.from_numpy(s))
    dy = np.random.default_rng(5).normal(size=x.shape)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(actfast.rrelu_grad(x, dy, s), tx.grad.numpy(), rtol=1e-15)
