"""bfloat16 (ml_dtypes) input: computed in float32 and rounded once to bfloat16, for every
elementwise function, gradient and gradient from the output, and for the softmax family.
ml_dtypes is optional: without it nothing changes (the last tests run without it)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import actfast

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)

# every kernel of the ELEMENTWISE table, through its public function
ELEMENTWISE = {
    "relu": ("relu", {}), "relu6": ("relu6", {}), "leaky_relu": ("leaky_relu", {"negative_slope": 0.2}),
    "hard_tanh": ("hard_tanh", {"min_val": -0.5, "max_val": 2.0}), "hard_sigmoid": ("hard_sigmoid", {}),
    "hard_swish": ("hard_swish", {}), "softsign": ("softsign", {}), "elu": ("elu", {"alpha": 0.7}),
    "selu": ("selu", {}), "celu": ("celu", {"alpha": 1.5}), "sigmoid": ("sigmoid", {}),
    "log_sigmoid": ("log_sigmoid", {}), "silu": ("silu", {}), "softplus": ("softplus", {"beta": 2.0}),
    "mish": ("mish", {}), "tanh": ("tanh", {}), "gelu": ("gelu", {}), "gelu_tanh": ("gelu", {"approximate": "tanh"}),
    "threshold": ("threshold", {"threshold": 0.5, "value": -1.0}), "hard_shrink": ("hard_shrink", {"lambd": 0.75}),
    "soft_shrink": ("soft_shrink", {}), "tanh_shrink": ("tanh_shrink", {}), "squareplus": ("squareplus", {"b": 2.0}),
}
FROM_OUTPUT = {
    "relu": {}, "relu6": {}, "leaky_relu": {"negative_slope": 0.2}, "hard_tanh": {}, "hard_sigmoid": {},
    "elu": {}, "selu": {}, "celu": {"alpha": 0.5}, "sigmoid": {}, "log_sigmoid": {}, "softplus": {}, "tanh": {},
    "softsign": {},
}
AXIS = ["softmax", "log_softmax", "softmin"]


def _x():
    x = np.concatenate([np.linspace(-8, 8, 513), [0.0, -0.0, 1e-30, -1e-30, 3e38, -3e38, 0.5, -0.5]])
    return x.astype(BF16)


def _same(got, want):
    """Equal as bfloat16 values, signed zeros and NaN included."""
    assert got.dtype == BF16, got.dtype
    g, w = np.asarray(got).astype(np.float32), np.asarray(want).astype(BF16).astype(np.float32)
    np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(np.signbit(g), np.signbit(w))


def test_tables_are_covered():
    k = actfast._dispatch.kernels
    assert {n for n, _ in k.ELEMENTWISE} == set(ELEMENTWISE)
    assert {n for n, _ in k.FROM_OUTPUT} == set(FROM_OUTPUT)


@pytest.mark.parametrize("op", list(ELEMENTWISE))
def test_elementwise_round_trip(op):
    name, params = ELEMENTWISE[op]
    f, g = getattr(actfast, name), getattr(actfast, name + "_grad")
    x = _x()
    x32 = x.astype(np.float32)
    dy = np.cos(np.arange(x.size)).astype(BF16)
    with np.errstate(all="raise"):
        y = f(x, **params)
        d = g(x, dy, **params)
    _same(y, f(x32, **params))
    _same(d, g(x32, dy.astype(np.float32), **params))
    # out= of bfloat16, with where=
    out = np.zeros(x.shape, BF16)
    assert f(x, **params, out=out) is out
    _same(out, f(x32, **params))
    out2 = np.full(x.shape, 7.0, BF16)
    mask = np.arange(x.size) % 3 == 0
    g(x, dy, **params, out=out2, where=mask)
    _same(out2[mask], g(x32, dy.astype(np.float32), **params)[mask])
    assert (out2[~mask].astype(np.float32) == 7.0).all()
    # out= of float32: the float32 result itself
    o32 = np.empty(x.shape, np.float32)
    f(x, **params, out=o32)
    np.testing.assert_array_equal(o32, f(x32, **params))


@pytest.mark.parametrize("name", list(FROM_OUTPUT))
def test_from_output_round_trip(name):
    params = FROM_OUTPUT[name]
    f, g = getattr(actfast, name), getattr(actfast, name + "_grad_from_output")
    y = f(_x(), **params)
    dy = np.sin(np.arange(y.size)).astype(BF16)
    _same(g(y, dy, **params), g(y.astype(np.float32), dy.astype(np.float32), **params))


@pytest.mark.parametrize("name", AXIS)
def test_axis_functions_round_trip(name):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(7, 33)) * 3).astype(BF16)
    dy = rng.normal(size=(7, 33)).astype(BF16)
    x32, dy32 = x.astype(np.float32), dy.astype(np.float32)
    f, g = getattr(actfast, name), getattr(actfast, name + "_grad")
    for axis in (-1, 0):
        _same(f(x, axis=axis), f(x32, axis=axis))
        _same(g(x, dy, axis=axis), g(x32, dy32, axis=axis))
        out = np.empty(x.shape, BF16)
        assert f(x, axis=axis, out=out) is out
        _same(out, f(x32, axis=axis))
    if name != "softmin":
        fo = getattr(actfast, name + "_grad_from_output")
        y = f(x)
        _same(fo(y, dy), fo(y.astype(np.float32), dy32))
    _same(np.asarray(f(x[0, 0])).reshape(1), np.ones(1, np.float32) if name != "log_softmax" else np.zeros(1))


def test_scalars_mixed_dtypes_and_rrelu():
    s = actfast.sigmoid(BF16.type(1.5))
    assert np.asarray(s).dtype == BF16 and float(s) == float(np.float32(actfast.sigmoid(np.float32(1.5))).astype(BF16))
    x = _x()
    # with a float32 partner NumPy's promotion gives float32, as for float16
    assert actfast.gelu_grad(x, np.ones(x.shape, np.float32)).dtype == np.float32
    assert actfast.relu_grad(x, 2.0).dtype == BF16
    y, s = actfast.rrelu(x, training=True, rng=0, return_slopes=True)
    assert y.dtype == BF16 and s.dtype == np.float32
    _same(y, actfast.leaky_relu(x.astype(np.float32), s))
    _same(actfast.rrelu_grad(x, x, s), actfast.leaky_relu_grad(x.astype(np.float32), x.astype(np.float32), s))


def test_errors_leave_bfloat16_out_untouched():
    x = _x()
    out = np.full(x.shape, 3.0, BF16)
    with pytest.raises(ValueError, match="lambd"):
        actfast.soft_shrink(x, -1.0, out=out)
    with pytest.raises(ValueError):
        actfast.tanh(x, out=np.full(4, 3.0, BF16))
    with pytest.raises(TypeError):
        actfast.tanh(x, out=np.full(x.shape, 3, np.int32))
    assert (out.astype(np.float32) == 3.0).all()


def _run(code):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_import_does_not_load_ml_dtypes():
    assert _run("import sys, actfast, numpy as np; actfast.relu(np.ones(3)); actfast.softmax(np.ones(3)); "
                "print('ml_dtypes' in sys.modules)") == "False"


def test_works_without_ml_dtypes():
    code = (
        "import sys\n"
        "sys.modules['ml_dtypes'] = None     # import ml_dtypes now raises ImportError\n"
        "import numpy as np, actfast\n"
        "from actfast import _elementwise as e\n"
        "assert actfast.relu(np.array([-1, 2], np.int8)).dtype == np.float64\n"
        "assert e._bfloat16() is None\n"
        "x = np.linspace(-3, 3, 7)\n"
        "assert actfast.gelu(x.astype(np.float16)).dtype == np.float16\n"
        "assert actfast.softmin(x.astype(np.float16)).dtype == np.float16\n"
        "assert actfast.soft_shrink(x.astype(np.float32)).dtype == np.float32\n"
        "try:\n"
        "    actfast.relu(np.array(['a']))\n"
        "except TypeError as exc:\n"
        "    assert 'dtype' in str(exc)\n"
        "print('ok')\n"
    )
    assert _run(code) == "ok"
