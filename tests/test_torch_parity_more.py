"""The new functions against PyTorch in float64 (torch.nn.functional forward, autograd for
the gradients): threshold, hardshrink, softshrink, tanhshrink, rrelu (eval), softmin, and
the softmax / log_softmax backward from the output. Skipped without PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import actfast

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _x():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=500) * 3, np.linspace(-2, 2, 401),
                        [0.5, -0.5, 0.75, -0.75, 0.3, -0.3, 0.0, -0.0, 1e-8, -1e-8, 40.0, -40.0]])
    return x


def _autograd(fw, x, dy):
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    y = fw(t)
    y.backward(torch.from_numpy(dy))
    return y.detach().numpy(), t.grad.numpy()


CASES = [
    ("threshold", {"threshold": 0.75, "value": -2.0}, lambda t: F.threshold(t, 0.75, -2.0)),
    ("threshold", {"threshold": -0.3, "value": 5.0}, lambda t: F.threshold(t, -0.3, 5.0)),
    ("hard_shrink", {}, F.hardshrink),
    ("hard_shrink", {"lambd": 0.3}, lambda t: F.hardshrink(t, 0.3)),
    ("soft_shrink", {}, F.softshrink),
    ("soft_shrink", {"lambd": 0.75}, lambda t: F.softshrink(t, 0.75)),
    ("tanh_shrink", {}, F.tanhshrink),
    ("rrelu", {"lower": 0.1, "upper": 0.3}, lambda t: F.rrelu(t, 0.1, 0.3, training=False)),
]


@pytest.mark.parametrize(("name", "params", "fw"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_forward_and_gradient(name, params, fw):
    x = _x()
    dy = np.random.default_rng(1).normal(size=x.shape)
    yt, gt = _autograd(fw, x, dy)
    y = getattr(actfast, name)(x, **params)
    if name == "rrelu":
        g = actfast.rrelu_grad(x, dy, (params["lower"] + params["upper"]) / 2)
    else:
        g = getattr(actfast, name + "_grad")(x, dy, **params)
    if name == "tanh_shrink":
        # PyTorch's x - tanh(x) cancels near 0: its error is a few eps * |x|
        assert (np.abs(y - yt) <= 4e-16 * np.abs(x)).all()
        # its backward, dy (1 - (1 - tanh^2)), cancels the same way: an error of eps |dy|
        assert (np.abs(g - gt) <= 1e-14 * np.abs(gt) + 4e-16 * np.abs(dy)).all()
        return
    # exact ops: the same values (signed zeros aside: PyTorch's float32 and float64
    # softshrink kernels disagree there) and the same gradients at the kinks
    np.testing.assert_array_equal(y, yt)
    np.testing.assert_array_equal(g, gt)


def test_nan_conventions():
    """NaN propagates into our gradients; PyTorch's backward ops return dy there."""
    x = np.array([np.nan, np.inf, -np.inf])
    for name, params, fw in CASES[:6]:
        yt, gt = _autograd(fw, x, np.ones(3))
        y = getattr(actfast, name)(x, **params)
        np.testing.assert_array_equal(y, yt)
        g = getattr(actfast, name + "_grad")(x, np.ones(3), **params)
        assert np.isnan(g[0]) and not np.isnan(gt[0])
        np.testing.assert_array_equal(g[1:], gt[1:])


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmin(dim):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 9, 4)) * 3
    dy = rng.normal(size=x.shape)
    yt, gt = _autograd(lambda t: F.softmin(t, dim=dim), x, dy)
    np.testing.assert_allclose(actfast.softmin(x, axis=dim), yt, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(actfast.softmin_grad(x, dy, axis=dim), gt, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_backward_from_output(dim):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 11)) * 4
    dy = rng.normal(size=x.shape)
    yt, gt = _autograd(lambda t: F.softmax(t, dim=dim), x, dy)
    np.testing.assert_allclose(actfast.softmax_grad_from_output(yt, dy, axis=dim), gt, rtol=1e-12, atol=1e-15)
    # PyTorch's own backward op takes the output, as ours does
    ref = torch._softmax_backward_data(torch.from_numpy(dy), torch.from_numpy(yt), dim, torch.float64).numpy()
    np.testing.assert_allclose(actfast.softmax_grad_from_output(yt, dy, axis=dim), ref, rtol=1e-12, atol=1e-15)
    lyt, lgt = _autograd(lambda t: F.log_softmax(t, dim=dim), x, dy)
    np.testing.assert_allclose(actfast.log_softmax_grad_from_output(lyt, dy, axis=dim), lgt, rtol=1e-12, atol=1e-14)
    ref = torch._log_softmax_backward_data(torch.from_numpy(dy), torch.from_numpy(lyt), dim, torch.float64).numpy()
    np.testing.assert_allclose(actfast.log_softmax_grad_from_output(lyt, dy, axis=dim), ref, rtol=1e-12, atol=1e-14)
