"""actfast.sklearn: scikit-learn's MLP on actfast (patch, unpatch, the new activations)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

import actfast.sklearn as afsk  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor, _base  # noqa: E402

NEW = sorted(set(afsk.ACTIVATIONS) - {"relu", "logistic", "tanh"})
PLUGINS = Path(__file__).resolve().parent / "plugins"


@pytest.fixture(autouse=True)
def _restore():
    yield
    afsk.unpatch()


def _snapshot():
    from sklearn.neural_network import _multilayer_perceptron as mlp

    base = mlp.BaseMultilayerPerceptron
    return (dict(_base.ACTIVATIONS), dict(_base.DERIVATIVES),
            [c._parameter_constraints["activation"] for c in (base, MLPClassifier, MLPRegressor)]
            + [vars(base)["_forward_pass"], vars(base)["_compute_loss_grad"], mlp._safe_indexing])


def _same(a, b):
    return (a[0].keys() == b[0].keys() and all(a[0][k] is b[0][k] for k in a[0])
            and a[1].keys() == b[1].keys() and all(a[1][k] is b[1][k] for k in a[1])
            and len(a[2]) == len(b[2]) and all(x is y for x, y in zip(a[2], b[2])))


def test_import_does_not_patch_and_unpatch_restores_the_same_objects():
    code = ("import actfast.sklearn, sklearn.neural_network._base as b; "
            "print(b.ACTIVATIONS['relu'].__module__, 'gelu' in b.ACTIVATIONS)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["sklearn.neural_network._base", "False"], r.stderr
    before = _snapshot()
    afsk.patch()
    afsk.patch()                      # twice: harmless
    assert afsk.is_patched()
    assert _base.ACTIVATIONS["relu"] is afsk.ACTIVATIONS["relu"][0]
    assert _base.DERIVATIVES["gelu"] is afsk.ACTIVATIONS["gelu"][1]
    assert not _same(before, _snapshot())
    afsk.unpatch()
    afsk.unpatch()
    assert not afsk.is_patched()
    assert _same(before, _snapshot())
    with afsk.patched():
        assert afsk.is_patched()
    assert _same(before, _snapshot())


def test_new_names_are_rejected_unless_patched():
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="gelu", max_iter=1).fit(X, y)
    with afsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(activation="gelu", max_iter=1).fit(X, y)
        with pytest.raises(ValueError, match="activation"):
            MLPClassifier(activation="nonsense", max_iter=1).fit(X, y)


def test_unsupported_version_raises_and_patches_nothing(monkeypatch):
    before = _snapshot()
    monkeypatch.setattr(sklearn, "__version__", "1.2.2")
    with pytest.raises(RuntimeError, match=r"supports scikit-learn >= 1\.4, < 1\.10; this is 1\.2\.2"):
        afsk.patch()
    assert not afsk.is_patched() and _same(before, _snapshot())


def test_sklearn_own_mlp_tests_pass_patched():
    """scikit-learn's test_mlp.py and test_base.py, run with the patch applied."""
    import actfast

    here = str(Path(actfast.__file__).resolve().parents[1])    # the actfast under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), here, os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "actfast_sklearn_patch", "-s",
         "--pyargs", "sklearn.neural_network.tests.test_mlp", "sklearn.neural_network.tests.test_base"],
        capture_output=True, text=True, timeout=600, env=env, cwd=str(PLUGINS))
    tail = r.stdout[-3000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    line = r.stdout.split("actfast.sklearn patched; calls: ")[1].splitlines()[0]
    calls = dict(kv.split("=") for kv in line.split(", "))
    # Each of scikit-learn's activations went through actfast, forward and derivative.
    for name in ("relu", "logistic", "tanh"):
        assert int(calls.get(name, 0)) > 0 and int(calls.get(name + "'", 0)) > 0, calls


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_patched_fit_matches_plain(activation, solver):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    y = y[:600]
    kw = dict(hidden_layer_sizes=(32, 16), activation=activation, solver=solver, max_iter=15, random_state=0,
              batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(**kw).fit(X, y)
        with afsk.patched():
            ours = MLPClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), plain.predict_proba(X), rtol=0, atol=1e-6)
    if solver == "adam":
        np.testing.assert_allclose(ours.loss_curve_, plain.loss_curve_, rtol=1e-9)


def _numeric_gradient_check(activation, dtype=np.float64):
    rng = np.random.RandomState(42)
    X = rng.standard_normal((6, 5)) * 2
    y = rng.standard_normal(6)       # one output: scikit-learn's squared loss averages over outputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(activation=activation, hidden_layer_sizes=(7, 4), solver="lbfgs", alpha=1e-5,
                           max_iter=1, random_state=1).fit(X, y)
    theta = np.hstack([c.ravel() for c in mlp.coefs_ + mlp.intercepts_])
    units = [X.shape[1], 7, 4, 1]
    acts, deltas, cg, ig = [X], [], [], []
    for i in range(len(units) - 1):
        acts.append(np.empty((X.shape[0], units[i + 1])))
        deltas.append(np.empty((X.shape[0], units[i + 1])))
        cg.append(np.empty((units[i], units[i + 1])))
        ig.append(np.empty(units[i + 1]))

    import inspect

    # scikit-learn 1.6 added sample_weight to this private method.
    weights = ("sample_weight" in inspect.signature(mlp._loss_grad_lbfgs).parameters) * [None]

    def f(t):
        return mlp._loss_grad_lbfgs(t, X, y[:, None], *weights, acts, deltas, cg, ig)

    loss, grad = f(theta)
    num = np.empty_like(theta)
    h = 1e-6
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        num[k] = (f(theta + e)[0] - f(theta - e)[0]) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7, err_msg=activation)


@pytest.mark.parametrize("activation", NEW)
def test_new_activation_gradients_match_finite_differences(activation):
    with afsk.patched():
        _numeric_gradient_check(activation)


@pytest.mark.parametrize("activation", ["gelu", "silu", "leaky_relu", "elu"])
def test_new_activations_train_on_digits(activation):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0)
    with afsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(64,), activation=activation, max_iter=60, random_state=0).fit(Xtr, ytr)
        acc = clf.score(Xte, yte)
        assert acc > 0.85, (activation, acc)
        # predict (the fast forward pass) keeps no pre-activation alive afterwards
        clf.predict(Xte)
    gc.collect()        # arrays of earlier fits that sit in reference cycles
    assert len(afsk._pre) == 0


def test_pre_activation_missing_is_a_clear_error():
    with afsk.patched():
        with pytest.raises(RuntimeError, match="pre-activation"):
            _base.DERIVATIVES["gelu"](np.ones((2, 2)), np.ones((2, 2)))


def _adam_fit(dtype, patched_adam):
    """A patched fit with the fused Adam step, or with scikit-learn's own."""
    from sklearn.neural_network import _stochastic_optimizers as opt

    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 20)).astype(dtype)
    y = (X[:, :3].sum(1) > 0).astype(int)
    with afsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if not patched_adam:
            del opt.AdamOptimizer.update_params
        try:
            return MLPClassifier(hidden_layer_sizes=(64, 33), batch_size=128, max_iter=4, random_state=0,
                                 activation="tanh").fit(X, y)
        finally:
            if not patched_adam:
                opt.AdamOptimizer.update_params = afsk._adam_update_params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_adam_is_bit_identical_to_sklearns(dtype, monkeypatch):
    from actfast._dispatch import kernels as k
    from sklearn.neural_network import _stochastic_optimizers as opt

    fused_calls = []
    step = k._adam_step
    monkeypatch.setattr(k, "_adam_step", lambda *a: fused_calls.append(step(*a)) or fused_calls[-1])
    fused = _adam_fit(dtype, True)
    if afsk._NEP50 or dtype == np.float64:
        assert fused_calls and all(fused_calls)     # every array took the fused kernel
    else:
        assert not fused_calls      # NumPy 1.x promotion: float32 keeps scikit-learn's expressions
    plain = _adam_fit(dtype, False)
    for a, b in zip(fused.coefs_ + fused.intercepts_, plain.coefs_ + plain.intercepts_):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    assert fused.loss_curve_ == plain.loss_curve_
    assert "update_params" not in vars(opt.AdamOptimizer)   # unpatched again


def test_fused_adam_matches_sklearn_with_mixed_dtype_gradients():
    """MLPRegressor on float32 X with integer y: the last layer's gradients are float64
    (scikit-learn's delta is output - y), which makes its m and v float64; the fused step
    must follow (this broke scikit-learn's test_mlp_regressor_dtypes_casting)."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import _stochastic_optimizers as opt

    X, y = load_digits(n_class=3, return_X_y=True)
    kw = dict(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPRegressor(**kw).fit(X[:300].astype(np.float32), y[:300])
        with afsk.patched():
            assert "update_params" in vars(opt.AdamOptimizer)
            ours = MLPRegressor(**kw).fit(X[:300].astype(np.float32), y[:300])
    for a, b in zip(ours.coefs_ + ours.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert ours.loss_curve_ == plain.loss_curve_


def test_fused_adam_step_falls_back_and_checks_its_arrays():
    from actfast._dispatch import kernels as k
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    rng = np.random.default_rng(1)
    shape = (300, 7)
    params = [rng.standard_normal(shape), rng.standard_normal(shape)[:, ::2].copy(order="F"),
              rng.standard_normal(5).astype(np.float32)]
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    ref = AdamOptimizer([p.copy() for p in params], learning_rate_init=0.01)
    ours = AdamOptimizer([p.copy() for p in params], learning_rate_init=0.01)
    ref_p, our_p = [p.copy() for p in params], [p.copy() for p in params]
    for _ in range(3):
        AdamOptimizer.__mro__[1].update_params(ref, ref_p, grads)
        afsk._adam_update_params(ours, our_p, grads)
    for a, b in zip(our_p, ref_p):        # the Fortran-ordered one took the NumPy path
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.ms + ours.vs, ref.ms + ref.vs):
        np.testing.assert_array_equal(a, b)
    p, g = np.zeros(10), np.ones(10)
    assert not k._adam_step(p, g, p, np.zeros(10), 0.1, 0.9, 0.999, 1e-8)          # aliased
    assert not k._adam_step(p, g.astype(np.float32), np.zeros(10), np.zeros(10), 0.1, 0.9, 0.999, 1e-8)
    assert not k._adam_step(p, g[::2], np.zeros(5), np.zeros(5), 0.1, 0.9, 0.999, 1e-8)
    ro = np.zeros(10)
    ro.flags.writeable = False
    assert not k._adam_step(ro, g, np.zeros(10), np.zeros(10), 0.1, 0.9, 0.999, 1e-8)
    assert (p == 0).all()


def test_fused_adam_step_same_on_1_and_2_threads():
    from actfast._dispatch import kernels as k

    from _helpers import same_on_1_and_2_threads

    rng = np.random.default_rng(2)
    p0, g = rng.standard_normal(1_000_003).astype(np.float32), rng.standard_normal(1_000_003).astype(np.float32)

    def step():
        p, m, v = p0.copy(), np.full_like(p0, 0.1), np.full_like(p0, 0.2)
        assert k._adam_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8)
        return p, m, v

    p, m, v = same_on_1_and_2_threads(step, "adam")
    np.testing.assert_array_equal(m, np.float32(0.9) * np.float32(0.1) + np.float32(1 - 0.9) * g)


def _fit_patched(est, X, y, fused_layers, **fit_kw):
    """A patched fit with the fused layers (actfast.dense forward, fused L2 gradient, the
    fast batch indexing), or with scikit-learn's own layer code (activations, derivatives
    and Adam still patched)."""
    from sklearn.neural_network import _multilayer_perceptron as mlp

    with afsk.patched(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        saved = afsk._saved
        base, fwd, clg = saved["layers"]
        ours = (base._forward_pass, base._compute_loss_grad, mlp._safe_indexing)
        if not fused_layers:
            base._forward_pass, base._compute_loss_grad = fwd, clg
            mlp._safe_indexing = saved["safe_indexing"][1]
        try:
            return est.fit(X, y, **fit_kw)
        finally:
            base._forward_pass, base._compute_loss_grad, mlp._safe_indexing = ours


def _assert_same_fit(a, b, label):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q, err_msg=label)
    if hasattr(a, "loss_curve_"):
        assert a.loss_curve_ == b.loss_curve_, label
    else:
        assert a.loss_ == b.loss_, label


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", sorted(afsk._DENSE))
def test_fused_layers_are_bit_identical_to_sklearns_layer_code(activation, dtype, monkeypatch):
    """Every hidden activation through actfast.dense and the fused L2 gradient gives the
    fit that scikit-learn's own layer code gives with the same activations."""
    from actfast._dispatch import kernels as k

    calls = []
    l2 = k._l2_grad
    monkeypatch.setattr(k, "_l2_grad", lambda *a: calls.append(l2(*a)) or calls[-1])
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 9)).astype(dtype)
    y = (X[:, :2].sum(1) > 0).astype(int) + (X[:, 2] > 1)
    for solver in ("adam", "sgd", "lbfgs"):
        kw = dict(hidden_layer_sizes=(17, 8), activation=activation, solver=solver, max_iter=3, random_state=0,
                  batch_size=64, alpha=1e-3)
        fused = _fit_patched(MLPClassifier(**kw), X, y, True)
        assert calls and all(calls), solver        # the fused kernel ran, on every layer
        calls.clear()
        plain = _fit_patched(MLPClassifier(**kw), X, y, False)
        assert not calls
        _assert_same_fit(fused, plain, f"{activation} {solver}")


def test_fused_layers_keep_sklearns_code_for_what_they_do_not_take():
    """Sparse input, sample weights and a NumPy-scalar alpha go through scikit-learn's
    own layer code: the same fit as with it."""
    import inspect

    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 6))
    y = (X[:, 0] > 0).astype(int)
    kw = dict(hidden_layer_sizes=(9,), max_iter=2, random_state=0, batch_size=50, activation="gelu")
    cases = [(sp.csr_matrix(X), {}, {}), (X, {}, {"alpha": np.float64(1e-3)})]
    if "sample_weight" in inspect.signature(MLPClassifier.fit).parameters:
        cases.append((X, {"sample_weight": rng.uniform(0.5, 2, 200)}, {}))
    for Xc, fit_kw, est_kw in cases:
        fused = _fit_patched(MLPClassifier(**kw, **est_kw), Xc, y, True, **fit_kw)
        plain = _fit_patched(MLPClassifier(**kw, **est_kw), Xc, y, False, **fit_kw)
        _assert_same_fit(fused, plain, f"{type(Xc).__name__} {fit_kw.keys()} {est_kw}")


def test_fast_batch_indexing_matches_sklearns():
    from sklearn.neural_network import _multilayer_perceptron as mlp

    original = mlp._safe_indexing
    X = np.arange(40.0).reshape(10, 4)
    idx = np.array([3, 0, 9, 3])
    with afsk.patched():
        fast = mlp._safe_indexing
        assert fast is not original
        for args, kw in [((X, idx), {}), ((X, idx.astype(np.uint8)), {}), ((X, slice(2, 5)), {}),
                         ((X, [1, 2]), {}), ((X, np.array([0, 2])), {"axis": 1}), ((list(range(10)), idx), {}),
                         ((X, X[:, 0] > 10), {})]:
            got, ref = fast(*args, **kw), original(*args, **kw)
            np.testing.assert_array_equal(got, ref)
            assert type(got) is type(ref)
    assert mlp._safe_indexing is original


def test_fused_l2_gradient_kernel():
    from actfast._dispatch import kernels as k

    from _helpers import same_on_1_and_2_threads

    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        w = rng.standard_normal(300_001).astype(dtype)
        g0 = rng.standard_normal(300_001).astype(dtype)
        ref = g0.copy()
        ref += 1e-4 * w
        ref /= 256

        def step():
            g = g0.copy()
            assert k._l2_grad(g, w, 1e-4, 256.0)
            return (g,)

        (g,) = same_on_1_and_2_threads(step, f"l2 {dtype}")
        np.testing.assert_array_equal(g, ref)
    g = np.zeros(10)
    assert not k._l2_grad(g, g, 1.0, 2.0)                       # aliased
    assert not k._l2_grad(g, np.ones(10, np.float32), 1.0, 2.0)  # mixed dtypes
    assert not k._l2_grad(g[::2], np.ones(5), 1.0, 2.0)         # strided
    assert not k._l2_grad(g, np.ones(9), 1.0, 2.0)              # shapes
    ro = np.zeros(10)
    ro.flags.writeable = False
    assert not k._l2_grad(ro, np.ones(10), 1.0, 2.0)
    assert (g == 0).all() and (ro == 0).all()
