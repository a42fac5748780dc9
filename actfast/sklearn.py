"""Run scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` on actfast's kernels.

>>> import actfast.sklearn
>>> actfast.sklearn.patch()                      # or: with actfast.sklearn.patched(): ...
>>> from sklearn.neural_network import MLPClassifier
>>> clf = MLPClassifier(activation="gelu").fit(X, y)   # doctest: +SKIP
>>> actfast.sklearn.unpatch()

Importing this module changes nothing; :func:`patch` does, until :func:`unpatch`.

What the patch changes
----------------------
scikit-learn's MLP computes every activation and derivative through two dicts of
``sklearn.neural_network._base``: ``ACTIVATIONS[name](X)`` (in place, on ``X @ W + b``)
and ``DERIVATIVES[name](Z, delta)`` (in place on ``delta``, from the layer's OUTPUT
``Z``). Both the sgd/adam and the lbfgs solvers go through them. The patch replaces
their entries by actfast ufunc calls with ``out=`` (``relu``, ``logistic``, ``tanh``,
and the ``softmax`` output layer) and adds new activations:

* from the output, like scikit-learn's own: leaky_relu (slope 0.01), elu, selu, celu,
  softplus, softsign, relu6, hard_tanh, hard_sigmoid (``actfast.NAME_grad_from_output``);
* from the pre-activation, which scikit-learn's data flow does not keep: gelu,
  gelu_tanh, silu, mish, hard_swish. The forward keeps a copy of ``X @ W + b`` for the
  array it is applied to (dropped when that array is freed), and the derivative reads it.

The layers and the solver's step are fused too, each with scikit-learn's arithmetic
in the same dtypes, so that the fit is bit-identical to scikit-learn's own code running
the same activations (tested):

* the forward pass (``BaseMultilayerPerceptron._forward_pass``): each layer is one
  :func:`actfast.dense` call, NumPy's GEMM then bias and activation in one pass over the
  product while it is in cache (scikit-learn: ``+= b``, then the activation);
* the weight gradient (``_compute_loss_grad``): the GEMM written into the gradient's
  own array, then ``g += alpha W; g /= n`` in one pass;
* the Adam step (``AdamOptimizer.update_params``): one pass per parameter array
  instead of five NumPy expressions;
* the mini-batch rows (the MLP module's ``_safe_indexing``): NumPy arrays indexed
  directly, without the general function's dataframe checks (~0.3 ms a batch).

Sparse input, sample weights and parameters that are NumPy scalars keep scikit-learn's
own code. The GEMMs stay NumPy's BLAS, and are most of a fit: the patch removes what is
around them (see the README, "scikit-learn", for the measured fit times). It also widens
the ``activation`` parameter's validation of ``MLPClassifier`` and ``MLPRegressor`` to
the new names. :func:`unpatch` puts back the very objects that were there.

Supported scikit-learn versions: :data:`SUPPORTED`; on others :func:`patch` raises a
``RuntimeError`` and changes nothing.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import _elementwise as _e
from . import _from_output as _fo

__all__ = ["SUPPORTED", "ACTIVATIONS", "is_patched", "patch", "patched", "unpatch"]

#: scikit-learn versions the patch is tested with (lowest, first unsupported).
SUPPORTED = ((1, 4), (1, 10))

# --------------------------------------------------------------------------------------
# Activations and derivatives in scikit-learn's calling convention
# --------------------------------------------------------------------------------------


def _from_output(forward: Callable[..., Any], grad_from_output: Callable[..., Any]
                 ) -> tuple[Callable[[np.ndarray], None], Callable[[np.ndarray, np.ndarray], None]]:
    def activation(X: np.ndarray) -> None:
        forward(X, out=X)

    def derivative(Z: np.ndarray, delta: np.ndarray) -> None:
        grad_from_output(Z, delta, out=delta)

    return activation, derivative


class _PreActivations:
    """The pre-activation ``z`` of each hidden layer's array, for the activations whose
    derivative needs it. Keyed by the identity of the array scikit-learn keeps (its
    ``activations[i]``); an entry goes when that array is freed."""

    def __init__(self) -> None:
        self._z: dict[int, tuple[weakref.ref[np.ndarray], np.ndarray]] = {}
        self._lock = threading.Lock()

    def keep(self, A: np.ndarray) -> np.ndarray:
        """Keep a copy of ``A`` (the pre-activation, about to be overwritten) for ``A``."""
        return self.put(A, A.copy())

    def put(self, A: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Keep ``z`` as the pre-activation of ``A`` for as long as ``A`` lives."""
        key = id(A)
        ref = weakref.ref(A, lambda _r, key=key: self._drop(key))
        with self._lock:
            self._z[key] = (ref, z)
        return z

    def _drop(self, key: int) -> None:
        with self._lock:
            self._z.pop(key, None)

    def get(self, Z: np.ndarray, name: str) -> np.ndarray:
        with self._lock:
            entry = self._z.get(id(Z))
        if entry is None or entry[0]() is not Z:
            raise RuntimeError(f"actfast.sklearn: the derivative of {name!r} needs the pre-activation of this "
                               "layer, which is kept by the patched forward pass; this array did not come from it")
        return entry[1]

    def __len__(self) -> int:
        return len(self._z)


_pre = _PreActivations()


def _from_input(name: str, forward: Callable[..., Any], grad: Callable[..., Any]
                ) -> tuple[Callable[[np.ndarray], None], Callable[[np.ndarray, np.ndarray], None]]:
    def activation(X: np.ndarray) -> None:
        forward(_pre.keep(X), out=X)

    def derivative(Z: np.ndarray, delta: np.ndarray) -> None:
        grad(_pre.get(Z, name), delta, out=delta)

    return activation, derivative


def _softmax(X: np.ndarray) -> None:
    _e.softmax(X, axis=1, out=X)


def _gelu_tanh(x: Any, out: Any = None) -> Any:
    return _e.gelu(x, approximate="tanh", out=out)


def _gelu_tanh_grad(x: Any, dy: Any, out: Any = None) -> Any:
    return _e.gelu_grad(x, dy, approximate="tanh", out=out)


#: name -> (activation(X) in place, derivative(Z, delta) in place on delta).
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], None], Callable[[np.ndarray, np.ndarray], None]]] = {
    "relu": _from_output(_e.relu, _fo.relu_grad_from_output),
    "logistic": _from_output(_e.sigmoid, _fo.sigmoid_grad_from_output),
    "tanh": _from_output(_e.tanh, _fo.tanh_grad_from_output),
    "leaky_relu": _from_output(_e.leaky_relu, _fo.leaky_relu_grad_from_output),
    "elu": _from_output(_e.elu, _fo.elu_grad_from_output),
    "selu": _from_output(_e.selu, _fo.selu_grad_from_output),
    "celu": _from_output(_e.celu, _fo.celu_grad_from_output),
    "softplus": _from_output(_e.softplus, _fo.softplus_grad_from_output),
    "softsign": _from_output(_e.softsign, _fo.softsign_grad_from_output),
    "relu6": _from_output(_e.relu6, _fo.relu6_grad_from_output),
    "hard_tanh": _from_output(_e.hard_tanh, _fo.hard_tanh_grad_from_output),
    "hard_sigmoid": _from_output(_e.hard_sigmoid, _fo.hard_sigmoid_grad_from_output),
    "gelu": _from_input("gelu", _e.gelu, _e.gelu_grad),
    "gelu_tanh": _from_input("gelu_tanh", _gelu_tanh, _gelu_tanh_grad),
    "silu": _from_input("silu", _e.silu, _e.silu_grad),
    "mish": _from_input("mish", _e.mish, _e.mish_grad),
    "hard_swish": _from_input("hard_swish", _e.hard_swish, _e.hard_swish_grad),
}
_SKLEARN_NAMES = {"identity", "logistic", "tanh", "relu"}

# --------------------------------------------------------------------------------------
# The Adam step, fused
# --------------------------------------------------------------------------------------


def _adam_update_params(self: Any, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
    """scikit-learn's ``AdamOptimizer.update_params`` in one pass per parameter array
    (``_kernels._adam_step``), with the same arithmetic in the same dtypes, so that the
    fit is bit-identical to an unpatched one; ``ms`` and ``vs`` are updated in place
    instead of being rebound to new lists. An array the kernel does not take (not
    C-contiguous, a float64 gradient of a float32 parameter, float32 under NumPy 1.x's
    promotion) gets scikit-learn's NumPy expressions, its m and v rebound as there."""
    from ._dispatch import kernels as k

    self.t += 1
    self.learning_rate = (self.learning_rate_init * np.sqrt(1 - self.beta_2 ** self.t)
                          / (1 - self.beta_1 ** self.t))
    ms, vs = self.ms, self.vs
    for i, (param, grad) in enumerate(zip(params, grads)):
        m, v = ms[i], vs[i]
        if (_NEP50 or param.dtype != np.float32) and k._adam_step(param, grad, m, v, self.learning_rate, self.beta_1,
                                                                  self.beta_2, self.epsilon):
            continue
        # scikit-learn's expressions, rebinding m and v as it does: a float64 gradient
        # (MLPRegressor's last layer for float32 X and float64 y) makes them float64.
        m = ms[i] = self.beta_1 * m + (1 - self.beta_1) * grad
        v = vs[i] = self.beta_2 * v + (1 - self.beta_2) * (grad ** 2)
        param += -self.learning_rate * m / (np.sqrt(v) + self.epsilon)


# Whether NumPy promotes as NEP 50 says (NumPy >= 2): a float64 scalar times a float32
# array is then float64, as the fused step computes the update. Under NumPy 1.x's
# value-based casting scikit-learn's update of a float32 array is float32: those arrays
# keep its expressions.
_NEP50 = (np.float64(1.0) * np.ones(1, np.float32)).dtype == np.float64


# --------------------------------------------------------------------------------------
# The layers, fused: forward through actfast.dense, the weight gradient's L2 term fused
# --------------------------------------------------------------------------------------

#: scikit-learn's activation name -> actfast.dense's (activation, parameters), with the
#: parameters of ACTIVATIONS above, so that a dense layer computes what the unfused
#: ``X @ W + b`` then ``ACTIVATIONS[name](X)`` does, bit for bit (tested).
_DENSE: dict[str, tuple[str | None, dict[str, Any]]] = {
    "identity": (None, {}), "logistic": ("sigmoid", {}), "gelu_tanh": ("gelu", {"approximate": "tanh"}),
    **{name: (name, {}) for name in ("relu", "tanh", "leaky_relu", "elu", "selu", "celu", "softplus", "softsign",
                                      "relu6", "hard_tanh", "hard_sigmoid", "gelu", "silu", "mish", "hard_swish")},
}
_FROM_INPUT = {"gelu", "gelu_tanh", "silu", "mish", "hard_swish"}   # derivative reads the kept z
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _dense_ok(a: Any, W: np.ndarray, b: np.ndarray) -> bool:
    """Whether a layer can go through actfast.dense: dense float arrays of one dtype
    (sparse input and mixed dtypes keep scikit-learn's own code)."""
    return (type(a) is np.ndarray and a.ndim == 2 and a.dtype in _FLOATS and W.dtype is a.dtype
            and b.dtype is a.dtype)


def _forward_pass(self: Any, activations: list[Any]) -> list[Any]:
    """scikit-learn's ``_forward_pass`` with each layer one :func:`actfast.dense` call:
    NumPy's GEMM, then bias and activation in one pass while the product is in cache
    (scikit-learn makes two passes, ``+= b`` and the activation). For the activations
    whose derivative needs the pre-activation, dense writes it in the same pass."""
    from .dense import dense

    hidden = self.activation
    n = self.n_layers_ - 1
    for i in range(n):
        a, W, b = activations[i], self.coefs_[i], self.intercepts_[i]
        last = i == n - 1
        spec = _DENSE.get("identity" if last else hidden)
        if spec is not None and _dense_ok(a, W, b):
            name, params = spec
            if not last and hidden in _FROM_INPUT:
                y, z = dense(a, W, b, name, return_z=True, **params)
                _pre.put(y, z)
            else:
                y = dense(a, W, b, name, **params)
        else:
            from sklearn.utils.extmath import safe_sparse_dot

            y = safe_sparse_dot(a, W)
            y += b
            if not last:
                _base_activations()[hidden](y)
        activations[i + 1] = y
    _base_activations()[self.out_activation_](activations[n])
    return activations


def _base_activations() -> dict[str, Any]:
    from sklearn.neural_network import _base

    return _base.ACTIVATIONS


def _make_compute_loss_grad(original: Callable[..., Any], mean_intercept: bool) -> Callable[..., Any]:
    """scikit-learn's ``_compute_loss_grad`` with the GEMM written into the gradient's
    own array and ``g += alpha W; g /= n`` one fused pass (``_kernels._l2_grad``, the
    same arithmetic). ``mean_intercept``: scikit-learn versions whose argument is
    ``n_samples`` (1.4) take the bias gradient as ``np.mean(delta, 0)``, those whose
    argument is ``sw_sum`` (1.9) as ``np.sum(delta, 0) / sw_sum``. Anything else (sparse
    input, sample weights, alpha not a Python float) keeps scikit-learn's code."""
    from ._dispatch import kernels as k

    def _compute_loss_grad(self: Any, layer: int, sw_sum: Any, activations: list[Any], deltas: list[Any],
                           coef_grads: list[Any], intercept_grads: list[Any]) -> None:
        a, d, W = activations[layer], deltas[layer], self.coefs_[layer]
        alpha = self.alpha
        if (type(a) is np.ndarray and type(d) is np.ndarray and a.dtype in _FLOATS and d.dtype is a.dtype
                and W.dtype is a.dtype and type(sw_sum) is int and type(alpha) in (float, int)):
            g = coef_grads[layer]
            if not (type(g) is np.ndarray and g.shape == W.shape and g.dtype is W.dtype and g.flags.c_contiguous
                    and g.flags.writeable and g.base is None and g is not W):
                g = np.empty(W.shape, W.dtype)
            np.matmul(a.T, d, out=g)
            if k._l2_grad(g, W, float(alpha), float(sw_sum)):
                coef_grads[layer] = g
                intercept_grads[layer] = np.mean(d, 0) if mean_intercept else np.sum(d, axis=0) / sw_sum
                return
        original(self, layer, sw_sum, activations, deltas, coef_grads, intercept_grads)

    return _compute_loss_grad


def _make_safe_indexing(original: Callable[..., Any]) -> Callable[..., Any]:
    """scikit-learn's ``_safe_indexing`` as the MLP module sees it, with NumPy rows taken
    directly: the general function checks for dataframes on every batch (~0.3 ms)."""
    def _safe_indexing(X: Any, indices: Any, *, axis: int = 0) -> Any:
        if (axis == 0 and type(X) is np.ndarray and X.ndim and type(indices) is np.ndarray and indices.ndim == 1
                and indices.dtype.kind in "iu"):
            return X[indices]
        return original(X, indices, axis=axis)

    return _safe_indexing


# --------------------------------------------------------------------------------------
# patch / unpatch
# --------------------------------------------------------------------------------------

_MISSING = object()
_state_lock = threading.Lock()
_saved: dict[str, Any] | None = None   # what patch() replaced, to put back


def _version(text: str) -> tuple[int, int]:
    parts = text.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def _targets() -> tuple[Any, Any, list[type], type]:
    """scikit-learn's dicts, the classes whose parameter validation names the
    activations and the Adam optimizer, after checking that they look as the patch
    expects."""
    try:
        import sklearn
    except ImportError as exc:
        raise RuntimeError("actfast.sklearn.patch() needs scikit-learn (pip install 'actfast[sklearn]')") from exc
    lo, hi = SUPPORTED
    v = _version(sklearn.__version__)
    supported = f">= {lo[0]}.{lo[1]}, < {hi[0]}.{hi[1]}"
    if not (lo <= v < hi):
        raise RuntimeError(f"actfast.sklearn supports scikit-learn {supported}; this is {sklearn.__version__}. "
                           "Nothing was patched.")
    from sklearn.neural_network import MLPClassifier, MLPRegressor, _base
    from sklearn.neural_network import _multilayer_perceptron as mlp

    classes = [mlp.BaseMultilayerPerceptron, MLPClassifier, MLPRegressor]
    ok = (isinstance(getattr(_base, "ACTIVATIONS", None), dict) and isinstance(getattr(_base, "DERIVATIVES", None), dict)
          and _SKLEARN_NAMES <= set(_base.DERIVATIVES) and (_SKLEARN_NAMES | {"softmax"}) <= set(_base.ACTIVATIONS)
          and getattr(mlp, "ACTIVATIONS", None) is _base.ACTIVATIONS
          and getattr(mlp, "DERIVATIVES", None) is _base.DERIVATIVES
          and all("activation" in getattr(c, "_parameter_constraints", {}) for c in classes))
    from sklearn.neural_network import _stochastic_optimizers as opt
    adam = getattr(opt, "AdamOptimizer", None)
    ok = ok and adam is not None and "update_params" not in vars(adam) and callable(getattr(adam, "_get_updates", None))
    base = mlp.BaseMultilayerPerceptron
    ok = ok and all(callable(vars(base).get(f)) for f in ("_forward_pass", "_compute_loss_grad")) \
        and callable(getattr(mlp, "_safe_indexing", None)) and _loss_grad_layout(base._compute_loss_grad) is not None
    if not ok:
        raise RuntimeError(f"actfast.sklearn: scikit-learn {sklearn.__version__}'s MLP is not laid out as the patch "
                           f"expects (supported: {supported}). Nothing was patched.")
    return _base.ACTIVATIONS, _base.DERIVATIVES, classes, adam


def _loss_grad_layout(f: Callable[..., Any]) -> bool | None:
    """How ``_compute_loss_grad`` takes the bias gradient, from its second argument's
    name: True for ``np.mean(delta, 0)`` (``n_samples``, as in scikit-learn 1.4), False
    for ``np.sum(delta, 0) / sw_sum``; None for a layout the patch does not know."""
    import inspect

    names = list(inspect.signature(f).parameters)
    if names[:2] != ["self", "layer"] or len(names) != 7:
        return None
    return {"n_samples": True, "sw_sum": False}.get(names[2])


def patch() -> None:
    """Make scikit-learn's MLPClassifier and MLPRegressor compute their activations and
    derivatives with actfast, and accept the new activation names. Patching twice is
    harmless. Raises RuntimeError (patching nothing) on an unsupported scikit-learn."""
    global _saved
    with _state_lock:
        if _saved is not None:
            return
        acts, ders, classes, adam = _targets()
        from sklearn.utils._param_validation import StrOptions

        saved: dict[str, Any] = {"ACTIVATIONS": {}, "DERIVATIVES": {}, "constraints": []}
        for name, (forward, derivative) in ACTIVATIONS.items():
            saved["ACTIVATIONS"][name] = acts.get(name, _MISSING)
            saved["DERIVATIVES"][name] = ders.get(name, _MISSING)
            acts[name] = forward
            ders[name] = derivative
        saved["ACTIVATIONS"]["softmax"] = acts["softmax"]
        acts["softmax"] = _softmax
        names = _SKLEARN_NAMES | set(ACTIVATIONS)
        # MLPClassifier shares the base class's dict; MLPRegressor has a copy of it.
        dicts = {id(c._parameter_constraints): c._parameter_constraints for c in classes}
        for constraints in dicts.values():
            saved["constraints"].append((constraints, constraints["activation"]))
            constraints["activation"] = [StrOptions(names)]
        # AdamOptimizer inherits update_params; the patch gives it its own, unpatch deletes it.
        saved["adam"] = adam
        adam.update_params = _adam_update_params
        from sklearn.neural_network import _multilayer_perceptron as mlp

        base = mlp.BaseMultilayerPerceptron
        saved["layers"] = (base, base._forward_pass, base._compute_loss_grad)
        saved["safe_indexing"] = (mlp, mlp._safe_indexing)
        base._forward_pass = _forward_pass
        base._compute_loss_grad = _make_compute_loss_grad(saved["layers"][2],
                                                          bool(_loss_grad_layout(saved["layers"][2])))
        mlp._safe_indexing = _make_safe_indexing(saved["safe_indexing"][1])
        _saved = saved


def unpatch() -> None:
    """Put back exactly what :func:`patch` replaced (the same objects). A no-op when
    not patched."""
    global _saved
    with _state_lock:
        if _saved is None:
            return
        from sklearn.neural_network import _base

        for dname, target in (("ACTIVATIONS", _base.ACTIVATIONS), ("DERIVATIVES", _base.DERIVATIVES)):
            for name, old in _saved[dname].items():
                if old is _MISSING:
                    target.pop(name, None)
                else:
                    target[name] = old
        for constraints, old in _saved["constraints"]:
            constraints["activation"] = old
        del _saved["adam"].update_params
        base, forward_pass, compute_loss_grad = _saved["layers"]
        base._forward_pass = forward_pass
        base._compute_loss_grad = compute_loss_grad
        module, safe_indexing = _saved["safe_indexing"]
        module._safe_indexing = safe_indexing
        _saved = None


def is_patched() -> bool:
    """Whether :func:`patch` is in effect."""
    return _saved is not None


@contextlib.contextmanager
def patched() -> Iterator[None]:
    """Context manager: patched inside, restored on exit (unless it was patched before)."""
    was = is_patched()
    patch()
    try:
        yield
    finally:
        if not was:
            unpatch()
