"""Tests of the fused dense layer (actfast.dense, dense_grad, Dense, actfast.init)."""

import importlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import threadpoolctl

import actfast
from actfast import Dense, dense, dense_grad, dense_saves

from _helpers import sgd_regression_losses

dense_mod = importlib.import_module("actfast.dense")

SQRT2 = math.sqrt(2.0)
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805


def _erf(z):
    from scipy.special import erf
    return erf(z)


# Float64 NumPy references: (forward, derivative f'(z)) for each activation and params.
def _ref(name, **p):
    a = p.get("alpha", 1.0)
    s = p.get("negative_slope", 0.01)
    lo, hi = p.get("min_val", -1.0), p.get("max_val", 1.0)
    beta, th = p.get("beta", 1.0), p.get("threshold", 20.0)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    if name in (None, "linear"):
        return lambda z: z, lambda z: np.ones_like(z)
    if name == "relu":
        return lambda z: np.maximum(z, 0), lambda z: (z > 0) * 1.0
    if name == "relu6":
        return lambda z: np.clip(z, 0, 6), lambda z: ((z > 0) & (z < 6)) * 1.0
    if name == "leaky_relu":
        return lambda z: np.where(z > 0, z, s * z), lambda z: np.where(z > 0, 1.0, s)
    if name == "hard_tanh":
        return lambda z: np.clip(z, lo, hi), lambda z: ((z > lo) & (z < hi)) * 1.0
    if name == "hard_sigmoid":
        return lambda z: np.clip(z / 6 + 0.5, 0, 1), lambda z: ((z > -3) & (z < 3)) / 6.0
    if name == "hard_swish":
        return (lambda z: z * np.clip(z + 3, 0, 6) / 6,
                lambda z: np.where(z <= -3, 0.0, np.where(z < 3, z / 3 + 0.5, 1.0)))
    if name == "softsign":
        return lambda z: z / (1 + abs(z)), lambda z: 1 / (1 + abs(z)) ** 2
    if name == "elu":
        return lambda z: np.where(z > 0, z, a * np.expm1(z)), lambda z: np.where(z > 0, 1.0, a * np.exp(z))
    if name == "selu":
        return (lambda z: SELU_S * np.where(z > 0, z, SELU_A * np.expm1(z)),
                lambda z: SELU_S * np.where(z > 0, 1.0, SELU_A * np.exp(z)))
    if name == "celu":
        return (lambda z: np.where(z > 0, z, a * np.expm1(z / a)),
                lambda z: np.where(z > 0, 1.0, np.exp(z / a)))
    if name == "sigmoid":
        return sig, lambda z: sig(z) * (1 - sig(z))
    if name == "log_sigmoid":
        return lambda z: -np.logaddexp(0, -z), lambda z: sig(-z)
    if name == "silu":
        return lambda z: z * sig(z), lambda z: sig(z) * (1 + z * (1 - sig(z)))
    if name == "softplus":
        return (lambda z: np.where(beta * z > th, z, np.logaddexp(0, beta * z) / beta),
                lambda z: np.where(beta * z > th, 1.0, sig(beta * z)))
    if name == "mish":
        def d(z):
            t = np.tanh(np.logaddexp(0, z))
            return t + z * sig(z) * (1 - t * t)
        return lambda z: z * np.tanh(np.logaddexp(0, z)), d
    if name == "tanh":
        return np.tanh, lambda z: 1 - np.tanh(z) ** 2
    if name == "gelu":
        if p.get("approximate", "none") == "tanh":
            c = math.sqrt(2 / math.pi)
            u = lambda z: c * (z + 0.044715 * z**3)  # noqa: E731
            f = lambda z: 0.5 * z * (1 + np.tanh(u(z)))  # noqa: E731
            return f, lambda z: (0.5 * (1 + np.tanh(u(z)))
                                 + 0.5 * z * (1 - np.tanh(u(z)) ** 2) * c * (1 + 3 * 0.044715 * z**2))
        return (lambda z: 0.5 * z * (1 + _erf(z / SQRT2)),
                lambda z: 0.5 * (1 + _erf(z / SQRT2)) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi))
    raise KeyError(name)


CASES = [
    ("linear", {}), ("relu", {}), ("relu6", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": -0.5}), ("hard_tanh", {}), ("hard_tanh", {"min_val": -2.0, "max_val": 0.5}),
    ("hard_sigmoid", {}), ("hard_swish", {}), ("softsign", {}), ("elu", {}), ("elu", {"alpha": 0.5}),
    ("elu", {"alpha": -0.7}), ("selu", {}), ("celu", {"alpha": 2.0}), ("celu", {"alpha": -1.5}), ("sigmoid", {}),
    ("log_sigmoid", {}), ("silu", {}), ("softplus", {"beta": 2.0, "threshold": 3.0}), ("mish", {}), ("tanh", {}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}),
]
IDS = [n + ("-" + "-".join(f"{k}={v}" for k, v in p.items()) if p else "") for n, p in CASES]


def _problem(rng, batch, n_in, n_out, dtype, scale=3.0):
    x = rng.standard_normal((batch, n_in))
    W = rng.standard_normal((n_in, n_out)) * (scale / math.sqrt(n_in))
    b = rng.standard_normal(n_out)
    return x.astype(dtype), W.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_forward_matches_reference(name, params, dtype):
    rng = np.random.default_rng(1)
    x, W, b = _problem(rng, 37, 23, 19, dtype)
    f, _ = _ref(name, **params)
    z = x.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    y, zz = dense(x, W, b, name, return_z=True, **params)
    assert y.dtype == dtype and y.shape == (37, 19)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(zz, z, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(y, f(z), rtol=tol * 5, atol=tol * 10)
    # The same without return_z, and with b=None.
    np.testing.assert_array_equal(dense(x, W, b, name, **params), y)
    np.testing.assert_allclose(dense(x, W, None, name, **params), f(z - b.astype(np.float64)),
                               rtol=tol * 5, atol=tol * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_backward_matches_reference(name, params, dtype):
    rng = np.random.default_rng(2)
    x, W, b = _problem(rng, 41, 17, 13, dtype)
    dy = rng.standard_normal((41, 13)).astype(dtype)
    _, d = _ref(name, **params)
    y, z = dense(x, W, b, name, return_z=True, **params)
    saved = y if dense_saves(name, **params) == "y" else z
    dx, dW, db = dense_grad(dy, x, W, saved, name, **params)
    z64 = z.astype(np.float64)
    dz = dy.astype(np.float64) * d(z64)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    scale = np.abs(dz).max() + 1
    np.testing.assert_allclose(db, dz.sum(0), rtol=tol, atol=tol * scale * 41)
    np.testing.assert_allclose(dW, x.astype(np.float64).T @ dz, rtol=tol, atol=tol * scale * 41)
    np.testing.assert_allclose(dx, dz @ W.astype(np.float64).T, rtol=tol, atol=tol * scale * 13)
    assert dx.dtype == dW.dtype == db.dtype == dtype


def test_saves_table():
    y_group = ["linear", None, "relu", "relu6", "leaky_relu", "hard_tanh", "elu", "selu", "celu", "sigmoid", "tanh"]
    z_group = ["gelu", "silu", "mish", "softplus", "log_sigmoid", "hard_swish", "hard_sigmoid", "softsign"]
    assert all(dense_saves(a) == "y" for a in y_group)
    assert all(dense_saves(a) == "z" for a in z_group)
    assert dense_saves("gelu", approximate="tanh") == "z"
    assert dense_saves("leaky_relu", negative_slope=-0.1) == "z"
    assert dense_saves("elu", alpha=-1.0) == "z"
    assert dense_saves("leaky_relu", negative_slope=0.0) == "y"


@pytest.mark.parametrize(("name", "params"), [("relu", {}), ("tanh", {}), ("elu", {"alpha": 0.7}),
                                              ("gelu", {}), ("softplus", {}), ("sigmoid", {}),
                                              ("leaky_relu", {"negative_slope": -0.3})])
def test_finite_differences(name, params):
    """dx, dW, db against central differences of L = sum(dy * dense(x, W, b)) (float64)."""
    rng = np.random.default_rng(3)
    x, W, b = _problem(rng, 5, 4, 3, np.float64, scale=1.0)
    dy = rng.standard_normal((5, 3))
    y, z = dense(x, W, b, name, return_z=True, **params)
    if name in ("relu", "leaky_relu"):
        assert np.abs(z).min() > 1e-3  # no kink within the step
    saved = y if dense_saves(name, **params) == "y" else z
    dx, dW, db = dense_grad(dy, x, W, saved, name, **params)

    def loss(xx, WW, bb):
        return float(np.sum(dy * dense(xx, WW, bb, name, **params)))

    h = 1e-6
    for arr, grad in ((x, dx), (W, dW), (b, db)):
        num = np.empty_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            up = loss(x, W, b)
            arr[idx] = old - h
            down = loss(x, W, b)
            arr[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-7)


LAYOUTS = {
    "C": lambda a: np.ascontiguousarray(a),
    "F": lambda a: np.asfortranarray(a),
    "rows-strided": lambda a: np.repeat(a, 2, axis=0)[::2],                     # x[::2]: still BLAS-able
    "cols-sliced": lambda a: np.concatenate([a, a], axis=1)[:, : a.shape[1]],    # leading dim > cols
    "no-unit-stride": lambda a: np.repeat(a, 2, axis=1)[:, ::2],                 # copied
    "reversed": lambda a: np.flipud(np.flipud(a).copy()),                        # negative stride: copied
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wl", list(LAYOUTS))
@pytest.mark.parametrize("xl", list(LAYOUTS))
def test_layouts(xl, wl, dtype):
    rng = np.random.default_rng(4)
    x, W, b = _problem(rng, 70, 9, 6, dtype)
    xv, Wv = LAYOUTS[xl](x), LAYOUTS[wl](W)
    np.testing.assert_array_equal(xv, x)
    np.testing.assert_array_equal(Wv, W)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    ref = np.tanh(x.astype(np.float64) @ W + b)
    y = dense(xv, Wv, b, "tanh")
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dW, db = dense_grad(dy, xv, Wv, y, "tanh")
    dx0, dW0, db0 = dense_grad(dy, x, W, y, "tanh")
    np.testing.assert_allclose(dx, dx0, rtol=tol, atol=tol)
    np.testing.assert_allclose(dW, dW0, rtol=tol, atol=tol)
    np.testing.assert_array_equal(db, db0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_input(dtype):
    rng = np.random.default_rng(5)
    x, W, b = _problem(rng, 1, 33, 21, dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    y = dense(x[0], W, b, "sigmoid")
    assert y.shape == (21,)
    np.testing.assert_allclose(y, dense(x, W, b, "sigmoid")[0], rtol=tol, atol=tol)
    dy = rng.standard_normal(21).astype(dtype)
    dx, dW, db = dense_grad(dy, x[0], W, y, "sigmoid")
    dx2, dW2, db2 = dense_grad(dy[None], x, W, y[None], "sigmoid")
    assert dx.shape == (33,) and dW.shape == (33, 21) and db.shape == (21,)
    np.testing.assert_allclose(dx, dx2[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(dW, dW2, rtol=tol, atol=tol)
    # Fortran-ordered W with a single row goes through GEMV with the other flag.
    np.testing.assert_allclose(dense(x[0], np.asfortranarray(W), b, "sigmoid"), y, rtol=tol, atol=tol)


def test_empty_shapes():
    W = np.ones((4, 3))
    y = dense(np.empty((0, 4)), W, np.ones(3))
    assert y.shape == (0, 3)
    dx, dW, db = dense_grad(np.empty((0, 3)), np.empty((0, 4)), W, np.empty((0, 3)))
    assert dx.shape == (0, 4)
    np.testing.assert_array_equal(dW, np.zeros((4, 3)))
    np.testing.assert_array_equal(db, np.zeros(3))
    # n_in = 0: z = b.
    np.testing.assert_array_equal(dense(np.empty((2, 0)), np.empty((0, 3)), np.array([1.0, -1.0, 2.0])),
                                  [[1.0, 0.0, 2.0]] * 2)
    assert dense(np.ones((2, 4)), np.empty((4, 0))).shape == (2, 0)


def test_out_argument():
    rng = np.random.default_rng(6)
    x, W, b = _problem(rng, 8, 5, 4, np.float32)
    out = np.full((8, 4), 7.0, np.float32)
    r = dense(x, W, b, "relu", out=out)
    assert r is out
    np.testing.assert_allclose(out, np.maximum(x @ W + b, 0), rtol=1e-5, atol=1e-5)


BAD_OUTS = [
    (np.zeros((8, 5), np.float32), ValueError, r"shape \(8, 5\).*expected \(8, 4\)"),
    (np.zeros((8, 4), np.float64), TypeError, "dtype float64, expected float32"),
    (np.zeros((4, 8), np.float32).T, ValueError, "C-contiguous"),
    ([[0.0] * 4] * 8, TypeError, "NumPy array"),
]


@pytest.mark.parametrize(("out", "exc", "msg"), BAD_OUTS)
def test_bad_out_untouched(out, exc, msg):
    rng = np.random.default_rng(7)
    x, W, b = _problem(rng, 8, 5, 4, np.float32)
    before = np.array(out, copy=True)
    with pytest.raises(exc, match=msg):
        dense(x, W, b, out=out)
    np.testing.assert_array_equal(np.asarray(out), before)


def test_errors_leave_out_untouched():
    x = np.ones((3, 4), np.float32)
    W = np.ones((4, 2), np.float32)
    out = np.full((3, 2), 5.0, np.float32)
    with pytest.raises(TypeError, match="mixed dtypes.*x: float32, W: float64"):
        dense(x, W.astype(np.float64), out=out)
    with pytest.raises(ValueError, match=r"x \(3, 4\), W \(5, 2\)"):
        dense(x, np.ones((5, 2), np.float32), out=out)
    with pytest.raises(ValueError, match=r"b \(3,\)"):
        dense(x, W, np.ones(3, np.float32), out=out)
    with pytest.raises(ValueError, match="unknown activation 'relu7'"):
        dense(x, W, activation="relu7", out=out)
    with pytest.raises(TypeError, match="unexpected parameter.*alpha"):
        dense(x, W, activation="relu", alpha=1.0, out=out)
    with pytest.raises(ValueError, match="approximate"):
        dense(x, W, activation="gelu", approximate="erf", out=out)
    with pytest.raises(ValueError, match="min_val"):
        dense(x, W, activation="hard_tanh", min_val=2.0, max_val=1.0, out=out)
    with pytest.raises(ValueError, match="beta"):
        dense(x, W, activation="softplus", beta=0.0, out=out)
    with pytest.raises(TypeError, match="negative_slope"):
        dense(x, W, activation="leaky_relu", negative_slope="a", out=out)
    with pytest.raises(ValueError, match="overlap"):
        dense(x, W, out=np.lib.stride_tricks.as_strided(x, (3, 2), (8, 4)))
    np.testing.assert_array_equal(out, 5.0)


def test_integer_and_bad_dtypes():
    with pytest.raises(TypeError, match="float32 or float64.*x: int64"):
        dense(np.ones((2, 3), np.int64), np.ones((3, 2)))
    with pytest.raises(TypeError, match="float16"):
        dense(np.ones((2, 3), np.float16), np.ones((3, 2), np.float16))


def test_dense_grad_errors():
    x, W = np.ones((3, 4)), np.ones((4, 2))
    with pytest.raises(ValueError, match=r"dy \(3, 3\)"):
        dense_grad(np.ones((3, 3)), x, W, np.ones((3, 2)))
    with pytest.raises(TypeError, match="mixed dtypes"):
        dense_grad(np.ones((3, 2), np.float32), x, W, np.ones((3, 2)))


def test_compute_dx_false():
    rng = np.random.default_rng(8)
    x, W, b = _problem(rng, 6, 3, 2, np.float64)
    y = dense(x, W, b)
    dx, dW, db = dense_grad(np.ones_like(y), x, W, y, compute_dx=False)
    assert dx is None
    np.testing.assert_allclose(dW, dense_grad(np.ones_like(y), x, W, y)[1])


@pytest.mark.parametrize("name", ["silu", "relu", "tanh", None])
@pytest.mark.parametrize("shape", [(203, 31, 300), (2000, 31, 40), (3, 70, 2), (1, 40, 9000)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_one_and_two_threads_agree(name, shape, order):
    """The elementwise passes split rows over the pool in fixed chunks: 1 and 2 threads
    give the same epilogue and the same db bit for bit; the GEMMs within the suite's
    tolerance (BLAS may split its work differently)."""
    B, n_in, n_out = shape
    rng = np.random.default_rng(9)
    x, W, b = _problem(rng, B, n_in, n_out, np.float32)
    x, W = np.asarray(x, order=order), np.asarray(W, order=order)
    dy = rng.standard_normal((B, n_out)).astype(np.float32)
    saves = dense_saves(name)
    res = []
    for n in (1, 2):
        with actfast.num_threads(n):
            y, z = dense(x, W, b, name, return_z=True)
            s = y if saves == "y" else z
            res.append((y, z, *dense_grad(dy, x, W, s, name)))
            # The elementwise part alone, on the same z: exactly equal across counts.
            res[-1] += (dense_grad(dy, x, W, res[0][0 if saves == "y" else 1], name)[2],)
    for a, c in zip(res[0][:5], res[1][:5]):
        # atol in units of the array's scale: dW sums B = 2000 products, and OpenBLAS's
        # Haswell kernel splits that sum differently on 1 and 2 threads (3e-5 apart
        # where max |dW| is ~40; the SkylakeX kernel happened to agree to 1e-5).
        scale = max(1.0, float(np.abs(a).max())) if a.size else 1.0
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_array_equal(res[0][5], res[1][5])
    f, _ = _ref(name)
    np.testing.assert_allclose(res[1][0], f(x.astype(np.float64) @ W + b), rtol=1e-4, atol=1e-4)


def test_thread_settings_hold_in_dense():
    """actfast.num_threads(1), ACTFAST_NUM_THREADS=1 and a threadpoolctl OpenMP limit
    keep the dense layer's elementwise passes on the calling thread (no pool helper is
    ever started), and lower NumPy's BLAS to one thread for the call only."""
    code = (
        "import os, sys, numpy as np, actfast\n"
        "from actfast import _dispatch\n"
        "from threadpoolctl import threadpool_limits, threadpool_info\n"
        "x = np.ones((4000, 64), np.float32); W = np.ones((64, 64), np.float32)\n"
        "def run():\n"
        "    y = actfast.dense(x, W, None, 'sigmoid'); actfast.dense_grad(y, x, W, y, 'sigmoid')\n"
        "    actfast.sigmoid(x)\n"
        "mode = sys.argv[1]\n"
        "if mode == 'context':\n"
        "    with actfast.num_threads(1): run()\n"
        "elif mode == 'limits':\n"
        "    with threadpool_limits(limits=1, user_api='openmp'): run()\n"
        "else:\n"
        "    run()\n"
        "print(_dispatch.kernels._pool_info()['helpers'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ACTFAST_NUM_THREADS", "OMP_NUM_THREADS")}
    for mode, extra in (("context", {}), ("limits", {}), ("env", {"ACTFAST_NUM_THREADS": "1"})):
        r = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=60,
                           env={**env, **extra})
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "0", (mode, r.stdout)
    if actfast._dispatch.kernels._openmp_enabled() and (os.cpu_count() or 1) > 1:
        r = subprocess.run([sys.executable, "-c", code, "default"], capture_output=True, text=True, timeout=60,
                           env={**env, "ACTFAST_NUM_THREADS": "2"})
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) >= 1


def test_threads_one_and_large_batch():
    """A batch large enough for the parallel paths, with 1 and 2 threads."""
    rng = np.random.default_rng(10)
    x, W, b = _problem(rng, 1500, 64, 96, np.float32)
    ref = np.maximum(x.astype(np.float64) @ W + b, 0)
    dy = rng.standard_normal(ref.shape).astype(np.float32)
    res = []
    for n in (1, 2):
        with actfast.num_threads(n):
            y = dense(x, W, b)
            res.append((y, *dense_grad(dy, x, W, y)))
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    for a, c in zip(res[0], res[1]):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-4)
    m = (ref > 0) * dy.astype(np.float64)
    np.testing.assert_allclose(res[1][3], m.sum(0), rtol=1e-5, atol=1e-3)


def test_blas_threads_restored():
    from threadpoolctl import threadpool_info

    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    rng = np.random.default_rng(11)
    x, W, b = _problem(rng, 2000, 32, 64, np.float32)
    dense(x, W, b)
    with actfast.num_threads(1):
        dense(x, W, b)
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_does_not_hang():
    code = (
        "import os, numpy as np, actfast\n"
        "x = np.ones((3000, 64), np.float32); W = np.ones((64, 64), np.float32)\n"
        "actfast.dense(x, W)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    y = actfast.dense(x, W); actfast.dense_grad(y, x, W, y)\n"
        "    os._exit(0 if actfast.get_num_threads() == 1 and y[0, 0] == 64 else 3)\n"
        "_, st = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(st))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], timeout=60, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_import_does_not_load_scipy():
    code = "import sys, actfast; print('scipy' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


# --------------------------------------------------------------------------------------
# The layer object
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), [("relu", {}), ("gelu", {"approximate": "tanh"}),
                                              ("leaky_relu", {"negative_slope": 0.1})])
def test_layer_matches_functions(name, params):
    layer = Dense(7, 5, activation=name, dtype=np.float64, rng=0, **params)
    layer.b[:] = np.linspace(-1, 1, 5)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((9, 7))
    y = layer.forward(x)
    y2, z2 = dense(x, layer.W, layer.b, name, return_z=True, **params)
    np.testing.assert_array_equal(y, y2)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx2, dW2, db2 = dense_grad(dy, x, layer.W, y2 if dense_saves(name, **params) == "y" else z2, name, **params)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(layer.grads["W"], dW2)
    np.testing.assert_array_equal(layer.grads["b"], db2)
    assert layer.params["W"] is layer.W and set(layer.params) == set(layer.grads)


def test_layer_errors():
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(2, 2).backward(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="unknown init"):
        Dense(2, 2, init="zeros")
    with pytest.raises(TypeError, match="dtype"):
        Dense(2, 2, dtype=np.int32)
    with pytest.raises(TypeError, match="unexpected parameter"):
        Dense(2, 2, activation="tanh", alpha=1.0)


def test_sgd_lowers_loss():
    """Two layers, a few SGD steps on a small regression: the loss goes down."""
    l1 = Dense(4, 32, "tanh", init="glorot_uniform", dtype=np.float64, rng=1)
    l2 = Dense(32, 1, None, init="glorot_normal", dtype=np.float64, rng=2)
    losses = sgd_regression_losses(l1, l2, steps=30, lr=0.1)
    assert losses[-1] < 0.7 * losses[0], losses


# --------------------------------------------------------------------------------------
# Initializers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "var"), [
    ("he_normal", lambda fi, fo: 2 / fi), ("he_uniform", lambda fi, fo: 2 / fi),
    ("glorot_normal", lambda fi, fo: 2 / (fi + fo)), ("glorot_uniform", lambda fi, fo: 2 / (fi + fo)),
    ("lecun_normal", lambda fi, fo: 1 / fi),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_initializer_statistics(name, var, dtype):
    fi, fo = 300, 200
    init = getattr(actfast.init, name)
    w = init(fi, fo, rng=42, dtype=dtype)
    assert w.shape == (fi, fo) and w.dtype == dtype
    n = w.size
    v = var(fi, fo)
    # Mean within 5 standard errors; variance within 5 standard errors of the sample variance
    # (kurtosis 3 for the normal, 1.8 for the uniform).
    kurt = 1.8 if "uniform" in name else 3.0
    assert abs(w.mean()) < 5 * math.sqrt(v / n)
    assert abs(w.var() - v) < 5 * v * math.sqrt((kurt - 1) / n)
    if "uniform" in name:
        assert np.abs(w).max() <= math.sqrt(3 * v) * (1 + 1e-6)
    else:
        assert np.abs(w).max() > math.sqrt(3 * v)  # a normal's tails pass the uniform's bound
    np.testing.assert_array_equal(w, init(fi, fo, rng=42, dtype=dtype))           # seeded
    assert not np.array_equal(w, init(fi, fo, rng=43, dtype=dtype))
    g = np.random.default_rng(7)
    assert not np.array_equal(init(fi, fo, rng=g), init(fi, fo, rng=g))            # a Generator advances


def test_initializer_errors():
    with pytest.raises(ValueError, match="fan_in"):
        actfast.init.he_normal(0, 3)
    with pytest.raises(TypeError, match="dtype"):
        actfast.init.glorot_uniform(3, 3, dtype=np.int64)


def test_blas_cap_works_from_another_python_thread():
    """threadpoolctl lets only one Python thread change OpenBLAS's limit; the cap must
    work from any thread (it calls openblas_set_num_threads directly)."""
    import threading

    from threadpoolctl import threadpool_info

    blas = dense_mod._blas_threads()

    def numpy_blas_threads():
        return [i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas" and "numpy.libs" in i["filepath"]]

    before = numpy_blas_threads()
    if not before or max(before) < 2:
        pytest.skip("NumPy's BLAS runs one thread here")
    seen = []

    def work():
        changed = blas.cap(1)
        seen.append(numpy_blas_threads())
        if changed:
            blas.restore(changed)

    for _ in range(2):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert seen == [[1] * len(before)] * 2
    assert numpy_blas_threads() == before


def test_strided_vector_input():
    rng = np.random.default_rng(15)
    x, W, b = _problem(rng, 1, 40, 7, np.float64)
    xs = np.repeat(x[0], 2)[::2]          # a 1-D view with stride 2: GEMV with incx = 2
    assert not xs.flags.c_contiguous
    np.testing.assert_allclose(dense(xs, W, b, "elu"), dense(x[0], W, b, "elu"), rtol=1e-14, atol=1e-14)
    dy = rng.standard_normal(7)
    y = dense(x[0], W, b, "elu")
    for got, ref in zip(dense_grad(dy, xs, W, y, "elu"), dense_grad(dy, x[0], W, y, "elu")):
        np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "gelu", "tanh"])
def test_epilogue_on_the_caller_alone_gives_the_same_result(activation):
    """Small outputs take the epilogue on the calling thread (after NumPy's GEMM the other
    cores are busy with OpenBLAS's spinning workers); the result is the same bit for bit
    as the pool's, on every thread count."""
    from actfast import _dispatch

    k = _dispatch.kernels
    rng = np.random.default_rng(11)
    x = rng.standard_normal((300, 96)).astype(np.float32)
    W = (rng.standard_normal((96, 1100)) / 10).astype(np.float32)
    b = rng.standard_normal(1100).astype(np.float32)
    # BLAS on one thread: only where the epilogue runs may vary here. OpenBLAS's Haswell
    # kernel splits the GEMM's sums differently on 1 and 2 threads (its SkylakeX kernel
    # did not), which would change z by an ulp before the epilogue sees it.
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        try:
            k._set_dense_serial_max(1 << 40)
            want = actfast.dense(x, W, b, activation)
            for limit in (0, 1 << 18):
                k._set_dense_serial_max(limit)
                for threads in (1, 2, 3):
                    with actfast.num_threads(threads):
                        np.testing.assert_array_equal(actfast.dense(x, W, b, activation), want)
        finally:
            k._set_dense_serial_max(1 << 18)
