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

The Adam solver's step (``AdamOptimizer.update_params``) becomes one fused pass per
parameter array, with scikit-learn's arithmetic in the same dtypes (bit-identical
fits). It also widens the ``activation`` parameter's validation of ``MLPClassifier`` and
``MLPRegressor`` to the new names. :func:`unpatch` puts back the very objects that were
there. The dense products stay scikit-learn's (NumPy's BLAS): measured, fusing them
with actfast's dense layer would not change the BLAS time, which is most of a fit (see
the README, "scikit-learn").

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
        key = id(A)
        z = A.copy()
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
    C-contiguous, say) gets scikit-learn's NumPy expressions, in place."""
    from ._dispatch import kernels as k

    self.t += 1
    self.learning_rate = (self.learning_rate_init * np.sqrt(1 - self.beta_2 ** self.t)
                          / (1 - self.beta_1 ** self.t))
    for param, grad, m, v in zip(params, grads, self.ms, self.vs):
        if not k._adam_step(param, grad, m, v, self.learning_rate, self.beta_1, self.beta_2, self.epsilon):
            m[...] = self.beta_1 * m + (1 - self.beta_1) * grad
            v[...] = self.beta_2 * v + (1 - self.beta_2) * (grad ** 2)
            param += -self.learning_rate * m / (np.sqrt(v) + self.epsilon)


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
    if not ok:
        raise RuntimeError(f"actfast.sklearn: scikit-learn {sklearn.__version__}'s MLP is not laid out as the patch "
                           f"expects (supported: {supported}). Nothing was patched.")
    return _base.ACTIVATIONS, _base.DERIVATIVES, classes, adam


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
