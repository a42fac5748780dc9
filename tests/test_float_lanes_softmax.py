"""float32 softmax, log_softmax, softmin and their gradients against a float64 reference
computed from the float32 inputs, for every compiled variant (float lanes with FMA, the
double forms without): rows of many lengths and scales, strided and reversed rows,
special rows, masked rows, and no floating-point flags.

The bounds are the measured maxima (bench: 15.4M elements of rows like these) with a
small margin: softmax and softmin 0.63 ulp, log_softmax 0.68 ulp (with FMA; without,
in double: 0.50 and 0.68). The gradients from x
are measured in ulps of their condition scale y_j (|dy_j| + sum |dy y|) (softmax) or
|dy_j| + y_j sum |dy| (log_softmax): where dy_j - <dy, y> cancels, the float32 softmax
they start from (0.63 ulp) is all that limits them; the gradients from the output are
measured against the reference from that output (which is their exact input).
"""

from __future__ import annotations

import numpy as np
import pytest

import actfast
from _helpers import assert_ulp as _assert_ulp

VARIANTS = actfast._dispatch.supported_variants()
LENGTHS = [1, 2, 7, 16, 17, 100, 1000, 4096, 100000]
SCALES = [1e-3, 1e-1, 1.0, 10.0, 100.0, 1e3]
BOUND = {"softmax": 0.7, "softmin": 0.7, "log_softmax": 0.75}
TINY = float(np.finfo(np.float32).tiny)


def _rows(seed):
    rng = np.random.default_rng(seed)
    for n in LENGTHS:
        r = max(1, min(40, 200000 // n))
        for scale in SCALES:
            yield (rng.standard_normal((r, n)) * scale).astype(np.float32)
        x = rng.standard_normal((3, n)).astype(np.float32)
        x[:, 0] = 30.0                                  # one dominant entry
        yield x
        yield rng.standard_normal((3, n)).astype(np.float32) + np.float32(1e6)
        yield np.full((2, n), 3.5, np.float32)          # all equal


def _lse(x):
    """x - max and L = log(sum exp(x - max)) in float64, L through log1p of the sum of
    the entries below the maximum (the plain log rounds 1 + tiny: no reference there)."""
    x = x.astype(np.float64)
    d = x - x.max(-1, keepdims=True)
    k = (d == 0).sum(-1, keepdims=True)
    with np.errstate(under="ignore"):
        s = np.where(d < 0, np.exp(d), 0.0).sum(-1, keepdims=True)
    return d, np.log1p((k - 1) + s)


def ref_softmax(x):
    d, L = _lse(x)
    with np.errstate(under="ignore"):
        return np.exp(d - L)


def ref_log_softmax(x):
    d, L = _lse(x)
    return d - L


def assert_ulp(got, ref, dtype, bound, x, label):
    """_helpers.assert_ulp over the flattened arrays (it reports a flat index)."""
    _assert_ulp(np.ravel(got), np.ravel(ref), dtype, bound, np.ravel(np.broadcast_to(x, np.shape(got))), label)


def _ulp(v):
    return np.exp2(np.floor(np.log2(np.maximum(np.abs(v), TINY))) - 23)


def assert_scaled(got, ref, scale, bound, label):
    """|got - ref| within `bound` ulps of `scale` (the gradients' condition scale)."""
    err = np.abs(np.asarray(got, np.float64) - ref) / _ulp(scale)
    err = np.where(scale < 1e-30, 0.0, err)
    worst = np.unravel_index(int(np.argmax(err)), err.shape)
    assert err[worst] <= bound, f"{label}: {err[worst]:.3f} ulp of the scale at {worst}: {got[worst]!r} vs {ref[worst]!r}"


@pytest.mark.parametrize("isa", VARIANTS)
def test_forward_bounds(isa):
    mod = actfast._dispatch.load_variant(isa)
    for x in _rows(0):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y, ly, ym = mod.softmax(x), mod.log_softmax(x), mod.softmin(x)
        assert_ulp(y, ref_softmax(x), np.float32, BOUND["softmax"], x, f"{isa} softmax {x.shape}")
        assert_ulp(ym, ref_softmax(-x), np.float32, BOUND["softmin"], x, f"{isa} softmin {x.shape}")
        assert_ulp(ly, ref_log_softmax(x), np.float32, BOUND["log_softmax"], x, f"{isa} log_softmax {x.shape}")


@pytest.mark.parametrize("isa", VARIANTS)
def test_strided_and_reversed_rows_match(isa):
    """Strided and negative-stride rows run the same arithmetic as contiguous ones."""
    mod = actfast._dispatch.load_variant(isa)
    rng = np.random.default_rng(1)
    for n in (7, 100, 1000, 3000):
        x = (rng.standard_normal((5, 2 * n)) * 10).astype(np.float32)
        for f in (mod.softmax, mod.log_softmax, mod.softmin):
            for view in (x[:, ::2], x[:, ::-2], x[:, ::-1]):
                want = f(np.ascontiguousarray(view))
                np.testing.assert_array_equal(f(view), want)
                out = np.empty((view.shape[1], view.shape[0]), np.float32).T      # strided output
                f(view, out=out)
                np.testing.assert_array_equal(out, want)
            y = x.copy()
            f(y, out=y)                                                      # in place
            np.testing.assert_array_equal(y, f(x))


@pytest.mark.parametrize("isa", VARIANTS)
def test_special_rows(isa):
    mod = actfast._dispatch.load_variant(isa)
    inf, nan = np.inf, np.nan
    x = np.array([
        [nan, 0.0, 1.0, 2.0],
        [inf, 0.0, 1.0, -inf],
        [inf, inf, -inf, 0.0],
        [-inf, 0.0, 1.0, -inf],
        [-inf, -inf, -inf, -inf],
        [0.0, -200.0, -1e30, -3.0e38],
        [3e38, 3e38, 1e38, 2.9e38],
        [1e-45, -1e-45, 0.0, -0.0],
    ], np.float32)
    with np.errstate(all="raise"):
        y, ly, ym = mod.softmax(x), mod.log_softmax(x), mod.softmin(-x)
    np.testing.assert_array_equal(y, ym)
    assert np.isnan(y[0]).all() and np.isnan(ly[0]).all() and np.isnan(y[4]).all() and np.isnan(ly[4]).all()
    np.testing.assert_array_equal(y[1], [1, 0, 0, 0])
    np.testing.assert_array_equal(ly[1], [0, -inf, -inf, -inf])
    np.testing.assert_array_equal(y[2], [0.5, 0.5, 0, 0])
    np.testing.assert_array_equal(ly[3, [0, 3]], [-inf, -inf])
    fin = [3, 5, 6, 7]
    assert_ulp(y[fin], ref_softmax(x[fin]), np.float32, BOUND["softmax"], x[fin], f"{isa} special softmax")
    lr = ref_log_softmax(x[fin])
    ok = np.isfinite(lr)
    np.testing.assert_array_equal(ly[fin][~ok], lr[~ok])
    assert_ulp(ly[fin][ok], lr[ok], np.float32, BOUND["log_softmax"], x[fin][ok], f"{isa} special log_softmax")


@pytest.mark.parametrize("isa", VARIANTS)
def test_one_dominant_entry_log_softmax_near_zero(isa):
    """log_softmax of the dominant entry is -L ~ -sum exp(x_j - m): relative accuracy
    down to the smallest normal L, including terms far below 2^-99."""
    mod = actfast._dispatch.load_variant(isa)
    for gap in (5.0, 17.0, 30.0, 60.0, 80.0):
        for n in (2, 17, 1000):
            x = np.full((1, n), -gap, np.float32)
            x[0, 0] = 0.0
            x[0, 1:] += np.linspace(0, 1, n - 1, dtype=np.float32)
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                ly = mod.log_softmax(x)
            assert_ulp(ly, ref_log_softmax(x), np.float32, BOUND["log_softmax"], x, f"{isa} gap {gap} n {n}")


@pytest.mark.parametrize("isa", VARIANTS)
def test_gradient_bounds(isa):
    mod = actfast._dispatch.load_variant(isa)
    rng = np.random.default_rng(2)
    for x in _rows(3):
        dy = rng.standard_normal(x.shape).astype(np.float32)
        d = dy.astype(np.float64)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            gs, gm, gl = mod.softmax_grad(x, dy), mod.softmin_grad(x, dy), mod.log_softmax_grad(x, dy)
            y32, ly32 = mod.softmax(x), mod.log_softmax(x)
            gso, glo = mod.softmax_grad_from_output(y32, dy), mod.log_softmax_grad_from_output(ly32, dy)
        for yr, got, sign, label in ((ref_softmax(x), gs, 1, "softmax_grad"), (ref_softmax(-x), gm, -1, "softmin_grad")):
            dot = (d * yr).sum(-1, keepdims=True)
            scale = yr * (np.abs(d) + np.abs(d * yr).sum(-1, keepdims=True))
            assert_scaled(got, sign * yr * (d - dot), scale, 2.0, f"{isa} {label} {x.shape}")
        yr = ref_softmax(x)
        assert_scaled(gl, d - yr * d.sum(-1, keepdims=True), np.abs(d) + yr * np.abs(d).sum(-1, keepdims=True), 1.5,
                      f"{isa} log_softmax_grad {x.shape}")
        # from the output: against the exact function of that output
        y3 = y32.astype(np.float64)
        want = y3 * (d - (d * y3).sum(-1, keepdims=True))
        assert_scaled(gso, want, y3 * (np.abs(d) + np.abs(d * y3).sum(-1, keepdims=True)), 0.51,
                      f"{isa} softmax_grad_from_output {x.shape}")
        e3 = np.exp(ly32.astype(np.float64))
        assert_scaled(glo, d - e3 * d.sum(-1, keepdims=True), np.abs(d) + e3 * np.abs(d).sum(-1, keepdims=True), 1.25,
                      f"{isa} log_softmax_grad_from_output {x.shape}")


@pytest.mark.parametrize("isa", VARIANTS)
def test_gradient_out_is_dy_and_strides(isa):
    """out=dy (the scratch-row path) and strided rows give the values of the plain call."""
    mod = actfast._dispatch.load_variant(isa)
    rng = np.random.default_rng(4)
    for n in (5, 300, 3000):
        x = (rng.standard_normal((4, 2 * n)) * 5).astype(np.float32)
        dy = rng.standard_normal((4, 2 * n)).astype(np.float32)
        for f in (mod.softmax_grad, mod.softmin_grad, mod.log_softmax_grad):
            want = f(x, dy)
            d = dy.copy()
            f(x, d, out=d)
            np.testing.assert_array_equal(d, want)
            np.testing.assert_array_equal(f(x[:, ::-1], dy[:, ::-1]), want[:, ::-1])


@pytest.mark.parametrize("isa", VARIANTS)
def test_masked_rows(isa):
    """where=: the masked twins run the same row code on the unmasked entries."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((20, 333)) * 20).astype(np.float32)
    m = rng.random((20, 333)) < 0.7
    dy = rng.standard_normal((20, 333)).astype(np.float32)
    mod = actfast._dispatch.load_variant(isa)
    xm = np.where(m, x, -np.inf).astype(np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = mod.softmax_masked(x, m)
        ly = mod.log_softmax_masked(x, m)
        g = mod.softmax_grad_masked(x, dy, m)
    np.testing.assert_array_equal(y, mod.softmax(xm))
    np.testing.assert_array_equal(ly, mod.log_softmax(xm))
    assert_ulp(y, ref_softmax(xm), np.float32, BOUND["softmax"], x, f"{isa} masked softmax")
    np.testing.assert_array_equal(g, np.where(m, mod.softmax_grad(xm, np.where(m, dy, 0).astype(np.float32)), 0))
