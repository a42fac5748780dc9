"""Gradients from the saved output: ``NAME_grad_from_output(y, dy, <params>)``.

Backprop code that keeps only each layer's output (PyTorch's ``sigmoid_backward`` and
``tanh_backward``, scikit-learn's MLP, thinc) needs ``dy * f'(x)`` as a function of
``y = f(x)``. These are ufuncs like the others (any shape, broadcasting, ``out=``,
``where=``); their kernels are also the dense layer's backward for the activations where
:func:`actfast.dense_saves` says "y". The formulas are in
``src/_activation_from_output.pxd``. ``softmax_grad_from_output`` and
``log_softmax_grad_from_output`` are generalized ufuncs over an axis, as
:func:`actfast.softmax` is.

Where the output does not determine the derivative (leaky_relu with a negative slope,
elu with a negative alpha: ``y > 0`` then also happens for ``x < 0``) a ``ValueError``
says so. Non-monotone activations (gelu, silu, mish, hard_swish) have no such form:
use ``NAME_grad(x, dy)``.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from ._dispatch import kernels as _k
from ._elementwise import (SELU_ALPHA, SELU_SCALE, _HARD_SIGMOID_ALPHA, _P_ALPHA, _P_HARD_SIGMOID, _P_HARDTANH,
                           _P_SELU, _P_SLOPE, _P_SOFTPLUS, _axis_call, _bounds, _call, _celu_alpha, _document,
                           _hard_sigmoid_params, _real, _selu_params, _softplus_params)

__all__ = [
    "celu_grad_from_output", "elu_grad_from_output", "hard_sigmoid_grad_from_output",
    "hard_tanh_grad_from_output", "leaky_relu_grad_from_output", "log_sigmoid_grad_from_output",
    "log_softmax_grad_from_output", "relu6_grad_from_output", "relu_grad_from_output", "selu_grad_from_output",
    "sigmoid_grad_from_output", "softmax_grad_from_output", "softplus_grad_from_output",
    "softsign_grad_from_output", "tanh_grad_from_output",
]

_FROM_OUTPUT = """
    Parameters
    ----------
    y : array_like
        The OUTPUT of the forward pass, ``y = f(x)``.
    dy : array_like
        The upstream gradient; broadcasts against ``y``.{params}
    out : ndarray, optional
        Where to write ``dx``; may alias ``y`` or ``dy`` (``out=dy`` is in place).
    where : array_like of bool, optional
        As for any NumPy ufunc.

    Returns
    -------
    ndarray or scalar
        ``dx = dy * f'(x)`` computed from ``y``, in one pass. Equal to
        ``NAME_grad(x, dy)`` up to the rounding of ``y``: where f saturates, ``f'`` is a
        small difference such as ``1 - y`` and its error is absolute (about
        ``eps * |dy|``), not relative, as in every output-based backward.
"""


def _doc(formula: str, params: str = ""):  # noqa: ANN202
    return _document(formula, params, template=_FROM_OUTPUT)


def _non_negative(name: str, pname: str, value: float, why: str) -> float:
    v = _real(name, pname, value)
    if v < 0:
        raise ValueError(f"actfast.{name}: the output does not determine the derivative for {pname} < 0 "
                         f"({why}); use the gradient from the input instead")
    return v


@_doc("""Gradient of :func:`relu` from its output: ``dy * (y > 0)`` (0 at the kink).""")
def relu_grad_from_output(y: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.relu_grad_from_output, "relu_grad_from_output", (y, dy), (), out, where)


@_doc("""Gradient of :func:`relu6` from its output: ``dy * (0 < y < 6)``.""")
def relu6_grad_from_output(y: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.relu6_grad_from_output, "relu6_grad_from_output", (y, dy), (), out, where)


@_doc("""Gradient of :func:`leaky_relu` from its output: ``dy if y > 0 else dy * negative_slope``.

    Needs ``negative_slope >= 0`` (ValueError otherwise).""", _P_SLOPE)
def leaky_relu_grad_from_output(y: ArrayLike, dy: ArrayLike, negative_slope: float = 0.01, *,
                                out: Any = None, where: Any = True) -> Any:
    name = "leaky_relu_grad_from_output"
    s = _non_negative(name, "negative_slope", negative_slope, "y > 0 also for some x < 0")
    return _call(_k.leaky_relu_grad_from_output, name, (y, dy), (s,), out, where)


@_doc("""Gradient of :func:`hard_tanh` from its output: ``dy * (min_val < y < max_val)``.""", _P_HARDTANH)
def hard_tanh_grad_from_output(y: ArrayLike, dy: ArrayLike, min_val: float = -1.0, max_val: float = 1.0, *,
                               out: Any = None, where: Any = True) -> Any:
    name = "hard_tanh_grad_from_output"
    return _call(_k.hard_tanh_grad_from_output, name, (y, dy), _bounds(name, min_val, max_val), out, where)


@_doc("""Gradient of :func:`hard_sigmoid` from its output: ``dy * alpha`` where ``0 < y < 1``
    (``dy / 6`` for the defaults), else 0.""", _P_HARD_SIGMOID)
def hard_sigmoid_grad_from_output(y: ArrayLike, dy: ArrayLike, alpha: float = _HARD_SIGMOID_ALPHA,
                                  beta: float = 0.5, *, out: Any = None, where: Any = True) -> Any:
    name = "hard_sigmoid_grad_from_output"
    return _call(_k.hard_sigmoid_grad_from_output, name, (y, dy), _hard_sigmoid_params(name, alpha, beta),
                 out, where)


@_doc("""Gradient of :func:`elu` from its output: ``dy if y > 0 else dy * (y + alpha)``.

    Needs ``alpha >= 0`` (ValueError otherwise).""", _P_ALPHA)
def elu_grad_from_output(y: ArrayLike, dy: ArrayLike, alpha: float = 1.0, *,
                         out: Any = None, where: Any = True) -> Any:
    name = "elu_grad_from_output"
    a = _non_negative(name, "alpha", alpha, "y > 0 also for some x < 0")
    return _call(_k.elu_grad_from_output, name, (y, dy), (a,), out, where)


def _selu_from_output_params(name: str, alpha: Any, scale: Any) -> tuple[float, float]:
    a, s = _selu_params(name, alpha, scale)
    if s <= 0 or a < 0:
        raise ValueError(f"actfast.{name}: needs scale > 0 and alpha >= 0 (got scale={s}, alpha={a}): "
                         "otherwise y > 0 does not tell x > 0")
    return a, s


@_doc("""Gradient of :func:`selu` from its output: ``dy * scale`` where ``y > 0``, else
    ``dy * (y + scale * alpha)``.

    Needs ``scale > 0`` and ``alpha >= 0`` (ValueError otherwise).""", _P_SELU)
def selu_grad_from_output(y: ArrayLike, dy: ArrayLike, alpha: float = SELU_ALPHA, scale: float = SELU_SCALE, *,
                          out: Any = None, where: Any = True) -> Any:
    name = "selu_grad_from_output"
    return _call(_k.selu_grad_from_output, name, (y, dy), _selu_from_output_params(name, alpha, scale),
                 out, where)


@_doc("""Gradient of :func:`celu` from its output: ``dy if y > 0 else dy * (y / alpha + 1)``.""",
      _P_ALPHA + " Must be non-zero.")
def celu_grad_from_output(y: ArrayLike, dy: ArrayLike, alpha: float = 1.0, *,
                          out: Any = None, where: Any = True) -> Any:
    name = "celu_grad_from_output"
    return _call(_k.celu_grad_from_output, name, (y, dy), (_celu_alpha(name, alpha),), out, where)


@_doc("""Gradient of :func:`sigmoid` from its output: ``dy * y * (1 - y)``.""")
def sigmoid_grad_from_output(y: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.sigmoid_grad_from_output, "sigmoid_grad_from_output", (y, dy), (), out, where)


@_doc("""Gradient of :func:`log_sigmoid` from its output: ``dy * (1 - exp(y))``, computed
    as ``-expm1(y)``.""")
def log_sigmoid_grad_from_output(y: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.log_sigmoid_grad_from_output, "log_sigmoid_grad_from_output", (y, dy), (), out, where)


@_doc("""Gradient of :func:`softplus` from its output: ``dy * (1 - exp(-beta * y))``
    (= ``dy * sigmoid(beta * x)``), and ``dy`` where ``beta * y > threshold``.

    Just below the threshold the forward's output lies in the range of the identity
    branch too (``softplus(x) > x``), so there the result is ``dy`` where the gradient
    from the input is ``dy * sigmoid(threshold)``: off by at most
    ``|dy| * sigmoid(-threshold)`` (2e-9 for the default threshold).""", _P_SOFTPLUS)
def softplus_grad_from_output(y: ArrayLike, dy: ArrayLike, beta: float = 1.0, threshold: float = 20.0, *,
                              out: Any = None, where: Any = True) -> Any:
    name = "softplus_grad_from_output"
    return _call(_k.softplus_grad_from_output, name, (y, dy), _softplus_params(name, beta, threshold), out, where)


@_doc("""Gradient of :func:`tanh` from its output: ``dy * (1 - y) * (1 + y)``.""")
def tanh_grad_from_output(y: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.tanh_grad_from_output, "tanh_grad_from_output", (y, dy), (), out, where)


@_doc("""Gradient of :func:`softsign` from its output: ``dy * (1 - |y|)**2``.""")
def softsign_grad_from_output(y: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.softsign_grad_from_output, "softsign_grad_from_output", (y, dy), (), out, where)


def softmax_grad_from_output(y: ArrayLike, dy: ArrayLike, axis: int = -1, *, out: Any = None,
                             where: Any = None) -> Any:
    """Vector-Jacobian product of :func:`softmax` from its output: ``y * (dy - sum(dy * y))``.

    ``y = softmax(x, axis)`` is the saved forward output (PyTorch's
    ``_softmax_backward_data`` takes the same); the sum runs along ``axis``, in double.
    A generalized ufunc ``(n),(n)->(n)`` over that axis: ``y`` and ``dy`` broadcast
    against each other outside it, float16 and bfloat16 are computed in float32 and
    rounded once, integer input in float64.

    Parameters
    ----------
    y : array_like
        The output of :func:`softmax`.
    dy : array_like
        The upstream gradient.
    axis : int, default -1
        The axis the softmax was taken along.
    out : ndarray, optional
        Where to write ``dx`` (the broadcast shape); it may be ``dy`` or ``y``. Left
        untouched on any error.
    where : array_like of bool, optional
        The mask of the forward pass (:func:`softmax`'s ``where=``): the sum runs over
        unmasked entries only, ``dx`` is 0 at masked ones whatever ``y`` and ``dy`` hold
        there, and NaN on a row with nothing unmasked.

    Returns
    -------
    ndarray
        ``dx``; equal to ``softmax_grad(x, dy, axis)`` up to the rounding of ``y``.
    """
    return _axis_call(_k.softmax_grad_from_output, "softmax_grad_from_output", (y, dy), axis, out, where,
                      _k.softmax_grad_from_output_masked)


def log_softmax_grad_from_output(y: ArrayLike, dy: ArrayLike, axis: int = -1, *, out: Any = None,
                                 where: Any = None) -> Any:
    """Vector-Jacobian product of :func:`log_softmax` from its output: ``dy - exp(y) * sum(dy)``.

    ``y = log_softmax(x, axis)`` is the saved forward output (PyTorch's
    ``_log_softmax_backward_data`` takes the same), so ``exp(y) <= 1`` is the softmax;
    the sum runs along ``axis``, in double. Array rules, parameters and ``out`` as for
    :func:`softmax_grad_from_output`; ``y = -inf`` entries (softmax 0) give ``dy``;
    ``where=`` as there (0 at masked entries).
    """
    return _axis_call(_k.log_softmax_grad_from_output, "log_softmax_grad_from_output", (y, dy), axis, out,
                      where, _k.log_softmax_grad_from_output_masked)
