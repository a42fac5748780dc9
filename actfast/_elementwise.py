"""Public elementwise activations and their gradients.

Each function is a thin layer over a NumPy ufunc of the compiled kernel module: it
checks the keyword parameters (which become extra ufunc inputs) and lets the ufunc do
everything else, so broadcasting, ``out=``, ``where=``, casting and ``__array_ufunc__``
overrides (dask, xarray) behave exactly as with ``np.tanh``.

bfloat16 (``ml_dtypes.bfloat16``, when ml_dtypes is installed; it is not imported until
an array of a non-NumPy dtype is seen) has no loop of its own: such input runs the
float32 loop (NumPy casts it, in buffered chunks) and the float32 result is rounded once
to bfloat16, as the float16 loops do.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NoReturn, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from ._dispatch import kernels as _k

__all__ = [
    "celu", "celu_grad", "elu", "elu_grad", "gelu", "gelu_grad",
    "hard_shrink", "hard_shrink_grad",
    "hard_sigmoid", "hard_sigmoid_grad", "hard_swish", "hard_swish_grad",
    "hard_tanh", "hard_tanh_grad", "leaky_relu", "leaky_relu_grad",
    "log_sigmoid", "log_sigmoid_grad", "log_softmax", "log_softmax_grad",
    "mish", "mish_grad", "relu", "relu6", "relu6_grad", "relu_grad", "rrelu", "rrelu_grad",
    "selu", "selu_grad", "sigmoid", "sigmoid_grad", "silu", "silu_grad",
    "soft_shrink", "soft_shrink_grad", "softmax", "softmax_grad", "softmin", "softmin_grad",
    "softplus", "softplus_grad", "softsign", "softsign_grad", "squareplus", "squareplus_grad",
    "tanh", "tanh_grad", "tanh_shrink", "tanh_shrink_grad", "threshold", "threshold_grad",
]

_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)
_FLOAT16 = np.dtype(np.float16)
# ml_dtypes' bfloat16, looked up the first time an array of a non-NumPy floating dtype
# is seen (False: not looked up yet; None: ml_dtypes is not installed).
_BFLOAT16: Any = False


def _bfloat16() -> np.dtype | None:
    """ml_dtypes.bfloat16 as a dtype, or None when ml_dtypes cannot be imported."""
    global _BFLOAT16
    if _BFLOAT16 is False:
        try:
            import ml_dtypes
            _BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
        except Exception:  # noqa: BLE001 - not installed, or broken: no bfloat16 support
            _BFLOAT16 = None
    return _BFLOAT16


def _all_bfloat16(dts: list[np.dtype]) -> bool:
    """True when every dtype in ``dts`` (at least one) is ml_dtypes.bfloat16."""
    if not dts or any(dt.name != "bfloat16" for dt in dts):
        return False
    bf16 = _bfloat16()
    return bf16 is not None and all(dt == bf16 for dt in dts)


def _dtype_of(a: Any) -> np.dtype | None:
    dt = getattr(a, "dtype", None)
    return dt if isinstance(dt, np.dtype) else None


def _unsupported_dtype_error(name: str, arrays: tuple[Any, ...], exc: Exception) -> Exception:
    """A TypeError naming the offending dtype, or the original error if none is."""
    for a in arrays:
        dt = _dtype_of(a)
        if dt is None:
            try:
                dt = np.asarray(a).dtype
            except Exception:  # noqa: BLE001 - not an array at all
                return TypeError(f"actfast.{name}: cannot interpret {type(a).__name__!r} as an array")
        if dt.kind not in "biuf" or dt.itemsize > 8:
            return TypeError(
                f"actfast.{name} does not support dtype {dt} ({dt.kind!r} kind); it takes real "
                "floating (float16/32/64), integer or bool arrays"
            )
    return exc


def _raise_unsupported(name: str, arrays: tuple[Any, ...], exc: TypeError) -> NoReturn:
    err = _unsupported_dtype_error(name, arrays, exc)
    if err is exc:
        raise exc
    raise err from exc


def _call(ufunc: np.ufunc, name: str, arrays: tuple[Any, ...], params: tuple[float, ...],
          out: Any, where: Any) -> Any:
    # This runs on every call: keep the common case (float arrays, no where=) short, it
    # is most of the cost of a call on a small array.
    dt = getattr(arrays[0], "dtype", None)
    if where is True and dt is not None and dt.kind == "f":
        try:
            if out is None:
                return ufunc(*arrays, *params)
            if type(out) is np.ndarray and ufunc.nout == 1:
                # out as the last positional argument: NumPy's keyword path costs ~0.4 us
                return ufunc(*(arrays + params + (out,)))
            return ufunc(*arrays, *params, out=out)
        except TypeError as exc:
            _raise_unsupported(name, arrays, exc)
    if out is None:
        kwargs = {} if where is True else {"where": where}
    else:
        kwargs = {"out": out} if where is True else {"out": out, "where": where}
    bf16 = None
    if dt is None or dt.kind != "f":
        # NumPy's loop search would send int8/int16/bool to the float16/float32 loops
        # (as it does for np.tanh); actfast computes integer input in float64.
        dts = [d for d in map(_dtype_of, arrays) if d is not None]
        if dts and all(d.kind in "biu" for d in dts):
            kwargs["dtype"] = _FLOAT64
        elif _all_bfloat16(dts):
            # bfloat16 (ml_dtypes): computed in float32 and rounded once, as float16 is.
            kwargs["dtype"] = _FLOAT32
            bf16 = dts[0]
    try:
        result = ufunc(*arrays, *params, **kwargs)
    except TypeError as exc:
        _raise_unsupported(name, arrays, exc)
    if bf16 is not None and out is None:
        result = result.astype(bf16) if ufunc.nout == 1 else tuple(r.astype(bf16) for r in result)
    return result


def _param_dtype(x: Any) -> np.dtype:
    """The dtype in which the kernels compute for input ``x``: float32 for float16,
    bfloat16 and float32, float64 otherwise."""
    dt = _dtype_of(x)
    if dt is None:
        dt = np.asarray(x).dtype
    if dt == _FLOAT32 or dt == _FLOAT16 or dt.name == "bfloat16":
        return _FLOAT32
    return _FLOAT64


def _real_or_array(name: str, pname: str, value: Any, x: Any) -> Any:
    """A parameter that may also be an ndarray broadcasting against ``x`` (leaky_relu's
    slope, one per element for rrelu). A scalar is checked by :func:`_real`; an array
    must be real and free of NaN, and is cast to the dtype the kernel computes in for
    ``x`` (so that, as with a scalar, the parameter never changes the result's dtype)."""
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        return _real(name, pname, value)
    if value.dtype.kind not in "iuf" or value.dtype.itemsize > 8:
        raise TypeError(f"actfast.{name}: {pname} must be a real number or a real array, "
                        f"got an array of dtype {value.dtype}")
    a = value.astype(_param_dtype(x), copy=False)
    if np.isnan(a).any():
        raise ValueError(f"actfast.{name}: {pname} must not contain NaN")
    return a


def _real(name: str, pname: str, value: Any) -> float:
    """A scalar parameter as a Python float (a weak scalar: float32 stays float32)."""
    if type(value) is float and value == value:  # the common case, defaults included
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        if not (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"):
            raise TypeError(f"actfast.{name}: {pname} must be a real number, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"actfast.{name}: {pname} must not be NaN")
    return v


_COMMON = """
    Parameters
    ----------
    x : array_like
        Input (any shape; integer and bool input is computed in float64, float16 and
        bfloat16 (ml_dtypes) in float32 and rounded once to the input's dtype).{params}
    out : ndarray, optional
        Where to write the result; it must have the broadcast shape and a dtype the
        result can be cast to (``same_kind``). It may be ``x`` itself (in place). On
        any error it is left untouched.
    where : array_like of bool, optional
        As for any NumPy ufunc: only where True is ``out`` written.

    Returns
    -------
    ndarray or scalar
        ``{ret}``, with the dtype of ``x`` for float16/32/64 and bfloat16 input; a
        NumPy scalar for scalar or 0-d input.
"""

_COMMON_GRAD = """
    Parameters
    ----------
    x : array_like
        The input of the forward pass.
    dy : array_like
        The upstream gradient; broadcasts against ``x``.{params}
    out : ndarray, optional
        Where to write ``dx`` (see the forward function); may alias ``x`` or ``dy``.
    where : array_like of bool, optional
        As for any NumPy ufunc.

    Returns
    -------
    ndarray or scalar
        ``dx = dy * f'(x)``, computed in one pass.
"""


_F = TypeVar("_F", bound=Callable[..., Any])


def _document(formula: str, params: str = "", ret: str = "f(x)", grad: bool = False,
              template: str | None = None) -> Callable[[_F], _F]:
    if template is None:
        template = _COMMON_GRAD if grad else _COMMON

    def deco(func: _F) -> _F:
        func.__doc__ = formula.rstrip() + "\n" + template.format(params=params, ret=ret)
        return func
    return deco


_P_SLOPE = """
    negative_slope : float or ndarray, default 0.01
        Slope for x < 0; an array broadcasts against ``x`` (one slope per element, as
        :func:`rrelu` draws them). It is cast to the dtype the kernel computes in
        (float32 for float16/bfloat16/float32 input, float64 otherwise) and must not
        hold NaN."""
_P_ALPHA = """
    alpha : float, default 1.0
        Scale of the negative saturation value."""
_P_SOFTPLUS = """
    beta : float, default 1.0
        Sharpness; must be non-zero.
    threshold : float, default 20.0
        Above ``beta * x > threshold`` the function is the identity."""
_P_HARDTANH = """
    min_val, max_val : float, default -1.0, 1.0
        The clamp bounds; ``min_val <= max_val``."""
_P_GELU = """
    approximate : {"none", "tanh"}, default "none"
        "none" is the exact ``x * Phi(x)``; "tanh" the tanh approximation."""

# --------------------------------------------------------------------------------------
# Piecewise-linear family
# --------------------------------------------------------------------------------------


@_document("""Rectified linear unit: ``relu(x) = max(x, 0)``.

    NaN propagates; ``relu(-0.0) = +0.0``.""")
def relu(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.relu, "relu", (x,), (), out, where)


@_document("""Gradient of :func:`relu`: ``dy * (x > 0)``; 0 at the kink x = 0, as PyTorch.""", grad=True)
def relu_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.relu_grad, "relu_grad", (x, dy), (), out, where)


@_document("""ReLU capped at 6: ``relu6(x) = min(max(x, 0), 6)``.""")
def relu6(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.relu6, "relu6", (x,), (), out, where)


@_document("""Gradient of :func:`relu6`: ``dy * (0 < x < 6)``.""", grad=True)
def relu6_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.relu6_grad, "relu6_grad", (x, dy), (), out, where)


@_document("""Leaky ReLU: ``x if x > 0 else negative_slope * x``.""", _P_SLOPE)
def leaky_relu(x: ArrayLike, negative_slope: float | np.ndarray = 0.01, *, out: Any = None,
               where: Any = True) -> Any:
    s = _real_or_array("leaky_relu", "negative_slope", negative_slope, x)
    return _call(_k.leaky_relu, "leaky_relu", (x,), (s,), out, where)


@_document("""Gradient of :func:`leaky_relu`: ``dy if x > 0 else dy * negative_slope``.""", _P_SLOPE, grad=True)
def leaky_relu_grad(x: ArrayLike, dy: ArrayLike, negative_slope: float | np.ndarray = 0.01, *,
                    out: Any = None, where: Any = True) -> Any:
    s = _real_or_array("leaky_relu_grad", "negative_slope", negative_slope, x)
    return _call(_k.leaky_relu_grad, "leaky_relu_grad", (x, dy), (s,), out, where)


def _bounds(name: str, min_val: float, max_val: float) -> tuple[float, float]:
    lo, hi = _real(name, "min_val", min_val), _real(name, "max_val", max_val)
    if lo > hi:
        raise ValueError(f"actfast.{name}: min_val ({lo}) must not exceed max_val ({hi})")
    return lo, hi


@_document("""Hard tanh: ``clip(x, min_val, max_val)``; NaN propagates.""", _P_HARDTANH)
def hard_tanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0, *,
              out: Any = None, where: Any = True) -> Any:
    return _call(_k.hard_tanh, "hard_tanh", (x,), _bounds("hard_tanh", min_val, max_val), out, where)


@_document("""Gradient of :func:`hard_tanh`: ``dy * (min_val < x < max_val)``.""", _P_HARDTANH, grad=True)
def hard_tanh_grad(x: ArrayLike, dy: ArrayLike, min_val: float = -1.0, max_val: float = 1.0, *,
                   out: Any = None, where: Any = True) -> Any:
    return _call(_k.hard_tanh_grad, "hard_tanh_grad", (x, dy), _bounds("hard_tanh_grad", min_val, max_val),
                 out, where)


_HARD_SIGMOID_ALPHA = 1.0 / 6.0


def _finite(name: str, pname: str, value: Any) -> float:
    v = _real(name, pname, value)
    if math.isinf(v):
        raise ValueError(f"actfast.{name}: {pname} must be finite, got {v}")
    return v


def _hard_sigmoid_params(name: str, alpha: Any, beta: Any) -> tuple[float, float]:
    if alpha is _HARD_SIGMOID_ALPHA and beta == 0.5:
        return _HARD_SIGMOID_ALPHA, 0.5
    a = _finite(name, "alpha", alpha)
    if a == 0:
        raise ValueError(f"actfast.{name}: alpha must be non-zero (with alpha = 0 the function "
                         "is the constant clip(beta, 0, 1))")
    return a, _finite(name, "beta", beta)


_P_HARD_SIGMOID = """
    alpha : float, default 1/6
        Slope of the linear part; finite and non-zero. ONNX's HardSigmoid uses 0.2.
    beta : float, default 0.5
        Offset of the linear part; finite.

    Computed as ``(x + beta / alpha) / (1 / alpha)``, which is PyTorch's exact
    ``relu6(x + 3) / 6`` for the defaults (and ``(x + 2.5) / 5`` for ONNX's 0.2, 0.5);
    the parameters stay in double also for float32 input."""


@_document("""Hard sigmoid (PyTorch's ``hardsigmoid``, ONNX's ``HardSigmoid``):
    ``clip(alpha * x + beta, 0, 1)``, ``relu6(x + 3) / 6`` for the defaults.""", _P_HARD_SIGMOID)
def hard_sigmoid(x: ArrayLike, alpha: float = _HARD_SIGMOID_ALPHA, beta: float = 0.5, *, out: Any = None,
                 where: Any = True) -> Any:
    return _call(_k.hard_sigmoid, "hard_sigmoid", (x,), _hard_sigmoid_params("hard_sigmoid", alpha, beta),
                 out, where)


@_document("""Gradient of :func:`hard_sigmoid`: ``dy * alpha`` strictly between the kinks
    (on (-3, 3) for the defaults), else 0.""", _P_HARD_SIGMOID, grad=True)
def hard_sigmoid_grad(x: ArrayLike, dy: ArrayLike, alpha: float = _HARD_SIGMOID_ALPHA, beta: float = 0.5, *,
                      out: Any = None, where: Any = True) -> Any:
    return _call(_k.hard_sigmoid_grad, "hard_sigmoid_grad", (x, dy),
                 _hard_sigmoid_params("hard_sigmoid_grad", alpha, beta), out, where)


@_document("""Hard swish (PyTorch's ``hardswish``, ONNX's ``HardSwish``):
    ``x * hard_sigmoid(x, alpha, beta)``, ``x * relu6(x + 3) / 6`` for the defaults.""",
           _P_HARD_SIGMOID)
def hard_swish(x: ArrayLike, alpha: float = _HARD_SIGMOID_ALPHA, beta: float = 0.5, *, out: Any = None,
               where: Any = True) -> Any:
    return _call(_k.hard_swish, "hard_swish", (x,), _hard_sigmoid_params("hard_swish", alpha, beta), out, where)


@_document("""Gradient of :func:`hard_swish`: 0 up to the lower kink (x <= -3),
    ``dy * (2 * alpha * x + beta)`` strictly between the kinks (``dy * (x/3 + 1/2)`` on
    (-3, 3)), ``dy`` from the upper kink on (PyTorch's convention at the kinks).""",
           _P_HARD_SIGMOID, grad=True)
def hard_swish_grad(x: ArrayLike, dy: ArrayLike, alpha: float = _HARD_SIGMOID_ALPHA, beta: float = 0.5, *,
                    out: Any = None, where: Any = True) -> Any:
    return _call(_k.hard_swish_grad, "hard_swish_grad", (x, dy),
                 _hard_sigmoid_params("hard_swish_grad", alpha, beta), out, where)


@_document("""Softsign: ``x / (1 + |x|)``; +-1 at +-inf.""")
def softsign(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.softsign, "softsign", (x,), (), out, where)


@_document("""Gradient of :func:`softsign`: ``dy / (1 + |x|)**2``.""", grad=True)
def softsign_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.softsign_grad, "softsign_grad", (x, dy), (), out, where)


# --------------------------------------------------------------------------------------
# threshold, the shrink family, rrelu and squareplus
# --------------------------------------------------------------------------------------

_P_THRESHOLD = """
    threshold : float
        The cut: ``x`` is kept where ``x > threshold``. Must not be NaN (+-inf is fine).
    value : float
        The replacement where ``x <= threshold``. Must not be NaN."""
_P_LAMBD = """
    lambd : float, default 0.5
        Half-width of the band ``[-lambd, lambd]`` that is mapped to 0; finite and
        ``>= 0`` (ValueError otherwise)."""
_P_SQUAREPLUS = """
    b : float, default 4.0
        Curvature near 0 (``squareplus(0) = sqrt(b) / 2``); finite and ``>= 0``
        (ValueError otherwise). ``b = 0`` gives ``relu``."""


def _threshold_params(name: str, threshold: float, value: float) -> tuple[float, float]:
    return _real(name, "threshold", threshold), _real(name, "value", value)


def _non_negative_finite(name: str, pname: str, value: Any) -> float:
    v = _real(name, pname, value)
    if not (0.0 <= v < math.inf):
        raise ValueError(f"actfast.{name}: {pname} must be finite and >= 0, got {v}")
    return v


@_document("""Threshold (``torch.nn.functional.threshold``): ``x if x > threshold else value``.

    PyTorch computes ``value if x <= threshold else x``, so NaN is returned as NaN.
    ONNX's ``ThresholdedRelu(alpha)`` is ``threshold(x, alpha, 0.0)``.""", _P_THRESHOLD)
def threshold(x: ArrayLike, threshold: float, value: float, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.threshold, "threshold", (x,), _threshold_params("threshold", threshold, value), out, where)


@_document("""Gradient of :func:`threshold`: ``dy if x > threshold else 0`` (0 at
    ``x == threshold``, as PyTorch's ``threshold_backward``; NaN in ``x`` propagates,
    where PyTorch returns ``dy``).""", _P_THRESHOLD, grad=True)
def threshold_grad(x: ArrayLike, dy: ArrayLike, threshold: float, value: float, *,
                   out: Any = None, where: Any = True) -> Any:
    return _call(_k.threshold_grad, "threshold_grad", (x, dy),
                 _threshold_params("threshold_grad", threshold, value), out, where)


@_document("""Hard shrink (PyTorch's ``hardshrink``): ``x if |x| > lambd else 0``.

    0 on the closed band ``[-lambd, lambd]``, as PyTorch; NaN propagates. ONNX:
    ``Shrink(bias=0, lambd=lambd)``.""", _P_LAMBD)
def hard_shrink(x: ArrayLike, lambd: float = 0.5, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.hard_shrink, "hard_shrink", (x,), (_non_negative_finite("hard_shrink", "lambd", lambd),),
                 out, where)


@_document("""Gradient of :func:`hard_shrink`: ``dy if |x| > lambd else 0`` (0 at
    ``|x| == lambd``, as PyTorch's ``hardshrink_backward``; NaN in ``x`` propagates).""",
           _P_LAMBD, grad=True)
def hard_shrink_grad(x: ArrayLike, dy: ArrayLike, lambd: float = 0.5, *, out: Any = None,
                     where: Any = True) -> Any:
    return _call(_k.hard_shrink_grad, "hard_shrink_grad", (x, dy),
                 (_non_negative_finite("hard_shrink_grad", "lambd", lambd),), out, where)


@_document("""Soft shrink (PyTorch's ``softshrink``): ``x - lambd`` for ``x > lambd``,
    ``x + lambd`` for ``x < -lambd``, else 0.

    0 on the closed band ``[-lambd, lambd]`` (+0, as ONNX and PyTorch's float64 kernel;
    PyTorch's float32 kernel returns ``x * 0``, which keeps the sign of x); NaN
    propagates. ONNX: ``Shrink(bias=lambd, lambd=lambd)``.""", _P_LAMBD)
def soft_shrink(x: ArrayLike, lambd: float = 0.5, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.soft_shrink, "soft_shrink", (x,), (_non_negative_finite("soft_shrink", "lambd", lambd),),
                 out, where)


@_document("""Gradient of :func:`soft_shrink`: ``dy if |x| > lambd else 0`` (0 at
    ``|x| == lambd``, as PyTorch's ``softshrink_backward``; NaN in ``x`` propagates).""",
           _P_LAMBD, grad=True)
def soft_shrink_grad(x: ArrayLike, dy: ArrayLike, lambd: float = 0.5, *, out: Any = None,
                     where: Any = True) -> Any:
    return _call(_k.soft_shrink_grad, "soft_shrink_grad", (x, dy),
                 (_non_negative_finite("soft_shrink_grad", "lambd", lambd),), out, where)


def _rrelu_bounds(name: str, lower: float, upper: float) -> tuple[float, float]:
    lo, hi = _real(name, "lower", lower), _real(name, "upper", upper)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"actfast.{name}: lower and upper must be finite, got {lo} and {hi}")
    if lo > hi:
        raise ValueError(f"actfast.{name}: lower ({lo}) must not exceed upper ({hi})")
    return lo, hi


def rrelu(x: ArrayLike, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          rng: Any = None, *, out: Any = None, return_slopes: bool = False) -> Any:
    """Randomized leaky ReLU (``torch.nn.functional.rrelu``): ``x if x > 0 else a * x``.

    In evaluation mode (``training=False``, the default, as PyTorch) ``a`` is the fixed
    slope ``(lower + upper) / 2``: this is ``leaky_relu(x, (lower + upper) / 2)``. In
    training mode every element gets its own slope ``a`` drawn uniformly from
    ``[lower, upper)`` by ``numpy.random.default_rng(rng)`` (reproducible for a seed),
    applied by the :func:`leaky_relu` ufunc with the slopes as an array.

    Parameters
    ----------
    x : array_like
        Input (dtype rules as for every activation).
    lower, upper : float, default 1/8, 1/3
        Bounds of the slope; finite, ``lower <= upper`` (ValueError otherwise).
    training : bool, default False
        Draw random slopes (True) or use their mean (False).
    rng : None, int, SeedSequence or numpy.random.Generator
        Passed to ``numpy.random.default_rng``; a Generator is used (and advanced) as is.
    out : ndarray, optional
        Where to write the result (as for :func:`leaky_relu`); untouched on any error.
    return_slopes : bool, default False
        Also return the slopes: an array of ``x``'s shape in training mode (in the dtype
        the kernel computes in: float32 for float16/bfloat16/float32 input, float64
        otherwise), the float ``(lower + upper) / 2`` otherwise. Give them to
        :func:`rrelu_grad` for the backward pass.

    Returns
    -------
    y, or (y, slopes) when ``return_slopes``

    Notes
    -----
    PyTorch draws slopes only for the elements with ``x <= 0`` and keeps 1 for the others
    (its ``noise`` tensor); here a slope is drawn for every element and only used where
    ``x <= 0``, so the outputs and gradients have the same distribution. NumPy's and
    PyTorch's generators differ: the same seed gives different slopes.
    """
    name = "rrelu"
    lo, hi = _rrelu_bounds(name, lower, upper)
    if not training:
        slope: Any = (lo + hi) / 2
    else:
        gen = np.random.default_rng(rng)
        slope = gen.uniform(lo, hi, size=np.shape(x)).astype(_param_dtype(x), copy=False)
    y = _call(_k.leaky_relu, name, (x,), (slope,), out, True)
    return (y, slope) if return_slopes else y


@_document("""Gradient of :func:`rrelu`: ``dy if x > 0 else dy * slopes``, with the slopes that
    ``rrelu(..., return_slopes=True)`` returned (an array, or the eval-mode float).

    The same as ``leaky_relu_grad(x, dy, slopes)``.""", """
    slopes : float or ndarray
        The slopes of the forward pass; an array broadcasts against ``x``.""", grad=True)
def rrelu_grad(x: ArrayLike, dy: ArrayLike, slopes: float | np.ndarray, *, out: Any = None,
               where: Any = True) -> Any:
    s = _real_or_array("rrelu_grad", "slopes", slopes, x)
    return _call(_k.leaky_relu_grad, "rrelu_grad", (x, dy), (s,), out, where)


@_document("""Squareplus (``jax.nn.squareplus``): ``(x + sqrt(x**2 + b)) / 2``, a smooth relu.

    For ``x < 0`` the sum cancels; there the same value is computed as
    ``b / (2 * (sqrt(x**2 + b) - x))``. Huge ``|x|`` (or ``b``) is scaled by a power of 2
    first, so nothing overflows: ``squareplus(x) -> x`` at +inf and ``-> 0`` at -inf.
    float32 input is computed in double and rounded once. PyTorch and ONNX have no such
    op.""", _P_SQUAREPLUS)
def squareplus(x: ArrayLike, b: float = 4.0, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.squareplus, "squareplus", (x,), (_non_negative_finite("squareplus", "b", b),), out, where)


@_document("""Gradient of :func:`squareplus`: ``dy * (1 + x / sqrt(x**2 + b)) / 2``,
    computed as ``dy * squareplus(x) / sqrt(x**2 + b)`` (no cancellation for ``x << 0``);
    1 at +inf, 0 at -inf, and 1/2 at ``x = 0`` for ``b = 0`` (the limit ``b -> 0``).""",
           _P_SQUAREPLUS, grad=True)
def squareplus_grad(x: ArrayLike, dy: ArrayLike, b: float = 4.0, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.squareplus_grad, "squareplus_grad", (x, dy),
                 (_non_negative_finite("squareplus_grad", "b", b),), out, where)


# --------------------------------------------------------------------------------------
# Exponential family
# --------------------------------------------------------------------------------------


@_document("""Exponential linear unit: ``x if x > 0 else alpha * (exp(x) - 1)``.""", _P_ALPHA)
def elu(x: ArrayLike, alpha: float = 1.0, *, out: Any = None, where: Any = True) -> Any:
    a = _real("elu", "alpha", alpha)
    return _call(_k.elu, "elu", (x,), (a,), out, where)


@_document("""Gradient of :func:`elu`: ``dy if x > 0 else dy * alpha * exp(x)``
    (``alpha * dy`` at x = 0, as PyTorch).""", _P_ALPHA, grad=True)
def elu_grad(x: ArrayLike, dy: ArrayLike, alpha: float = 1.0, *, out: Any = None, where: Any = True) -> Any:
    a = _real("elu_grad", "alpha", alpha)
    return _call(_k.elu_grad, "elu_grad", (x, dy), (a,), out, where)


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _selu_params(name: str, alpha: Any, scale: Any) -> tuple[float, float]:
    if alpha is SELU_ALPHA and scale is SELU_SCALE:
        return SELU_ALPHA, SELU_SCALE
    return _finite(name, "alpha", alpha), _finite(name, "scale", scale)


_P_SELU = """
    alpha : float, default 1.6732632423543772
        Scale of the negative saturation value (finite). ONNX's Selu calls it alpha too.
    scale : float, default 1.0507009873554805
        Overall scale (finite); ONNX's ``gamma``. Both stay in double also for float32
        input, so the defaults are the exact constants."""


@_document("""Scaled ELU: ``scale * (x if x > 0 else alpha * (exp(x) - 1))``, by default
    with the self-normalising ``alpha = 1.6732632423543772`` and ``scale = 1.0507009873554805``.""",
           _P_SELU)
def selu(x: ArrayLike, alpha: float = SELU_ALPHA, scale: float = SELU_SCALE, *, out: Any = None,
         where: Any = True) -> Any:
    return _call(_k.selu, "selu", (x,), _selu_params("selu", alpha, scale), out, where)


@_document("""Gradient of :func:`selu`: ``dy * scale`` for x > 0, else
    ``dy * scale * alpha * exp(x)``.""", _P_SELU, grad=True)
def selu_grad(x: ArrayLike, dy: ArrayLike, alpha: float = SELU_ALPHA, scale: float = SELU_SCALE, *,
              out: Any = None, where: Any = True) -> Any:
    return _call(_k.selu_grad, "selu_grad", (x, dy), _selu_params("selu_grad", alpha, scale), out, where)


def _celu_alpha(name: str, alpha: float) -> float:
    a = _real(name, "alpha", alpha)
    if a == 0:
        raise ValueError(f"actfast.{name}: alpha must be non-zero (CELU divides by alpha)")
    return a


@_document("""Continuously differentiable ELU: ``x if x > 0 else alpha * (exp(x / alpha) - 1)``.""",
           _P_ALPHA + " Must be non-zero.")
def celu(x: ArrayLike, alpha: float = 1.0, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.celu, "celu", (x,), (_celu_alpha("celu", alpha),), out, where)


@_document("""Gradient of :func:`celu`: ``dy if x > 0 else dy * exp(x / alpha)``.""",
           _P_ALPHA, grad=True)
def celu_grad(x: ArrayLike, dy: ArrayLike, alpha: float = 1.0, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.celu_grad, "celu_grad", (x, dy), (_celu_alpha("celu_grad", alpha),), out, where)


# --------------------------------------------------------------------------------------
# Sigmoid family
# --------------------------------------------------------------------------------------


@_document("""Logistic sigmoid: ``1 / (1 + exp(-x))``, computed without overflow for any x.""")
def sigmoid(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.sigmoid, "sigmoid", (x,), (), out, where)


@_document("""Gradient of :func:`sigmoid`: ``dy * s * (1 - s)``, ``s = sigmoid(x)``.""", grad=True)
def sigmoid_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.sigmoid_grad, "sigmoid_grad", (x, dy), (), out, where)


@_document("""Log-sigmoid: ``log(sigmoid(x)) = -softplus(-x)``, accurate for large |x|.""")
def log_sigmoid(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.log_sigmoid, "log_sigmoid", (x,), (), out, where)


@_document("""Gradient of :func:`log_sigmoid`: ``dy * sigmoid(-x)``.""", grad=True)
def log_sigmoid_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.log_sigmoid_grad, "log_sigmoid_grad", (x, dy), (), out, where)


def _silu_beta(name: str, beta: Any) -> tuple[float]:
    return (1.0,) if beta is _ONE else (_finite(name, "beta", beta),)


def _silu_call(name: str, arrays: tuple[Any, ...], beta: Any, out: Any, where: Any) -> Any:
    # beta = 1 runs the kernel without the parameter (a third faster; see PARAM_VARIANTS
    # in src/_kernels.pyx.tp), any other beta silu_beta.
    (b,) = _silu_beta(name, beta)
    grad = name.endswith("_grad")
    if b == 1.0:
        return _call(_k.silu_grad if grad else _k.silu, name, arrays, (), out, where)
    return _call(_k.silu_beta_grad if grad else _k.silu_beta, name, arrays, (b,), out, where)


_ONE = 1.0
_P_SILU = """
    beta : float, default 1.0
        Scale inside the sigmoid (swish-beta; ONNX's Swish ``alpha``); finite, any
        sign. It stays in double also for float32 input."""


@_document("""SiLU (swish): ``x * sigmoid(beta * x)``, ``x * sigmoid(x)`` by default; the
    limits at +-inf (0 where ``beta * x -> -inf``).""", _P_SILU)
def silu(x: ArrayLike, beta: float = _ONE, *, out: Any = None, where: Any = True) -> Any:
    return _silu_call("silu", (x,), beta, out, where)


@_document("""Gradient of :func:`silu`: ``dy * silu'(beta * x)`` with
    ``silu'(u) = s * (1 + u * (1 - s))``, ``s = sigmoid(u)``.""", _P_SILU, grad=True)
def silu_grad(x: ArrayLike, dy: ArrayLike, beta: float = _ONE, *, out: Any = None, where: Any = True) -> Any:
    return _silu_call("silu_grad", (x, dy), beta, out, where)


def _softplus_params(name: str, beta: float, threshold: float) -> tuple[float, float]:
    b = _real(name, "beta", beta)
    if b == 0:
        raise ValueError(f"actfast.{name}: beta must be non-zero")
    return b, _real(name, "threshold", threshold)


@_document("""Softplus: ``log(1 + exp(beta * x)) / beta``, and ``x`` where
    ``beta * x > threshold`` (as PyTorch).""", _P_SOFTPLUS)
def softplus(x: ArrayLike, beta: float = 1.0, threshold: float = 20.0, *,
             out: Any = None, where: Any = True) -> Any:
    return _call(_k.softplus, "softplus", (x,), _softplus_params("softplus", beta, threshold), out, where)


@_document("""Gradient of :func:`softplus`: ``dy * sigmoid(beta * x)``, and ``dy`` where
    ``beta * x > threshold``.""", _P_SOFTPLUS, grad=True)
def softplus_grad(x: ArrayLike, dy: ArrayLike, beta: float = 1.0, threshold: float = 20.0, *,
                  out: Any = None, where: Any = True) -> Any:
    return _call(_k.softplus_grad, "softplus_grad", (x, dy),
                 _softplus_params("softplus_grad", beta, threshold), out, where)


@_document("""Mish: ``x * tanh(softplus(x))``.""")
def mish(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.mish, "mish", (x,), (), out, where)


@_document("""Gradient of :func:`mish`: ``dy * (t + x * sigmoid(x) * (1 - t**2))``,
    ``t = tanh(softplus(x))``.""", grad=True)
def mish_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.mish_grad, "mish_grad", (x, dy), (), out, where)


# --------------------------------------------------------------------------------------
# tanh and gelu
# --------------------------------------------------------------------------------------


@_document("""Hyperbolic tangent: ``tanh(x)``.""")
def tanh(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.tanh, "tanh", (x,), (), out, where)


@_document("""Gradient of :func:`tanh`: ``dy * (1 - tanh(x)**2)``, accurate for large |x|.""", grad=True)
def tanh_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.tanh_grad, "tanh_grad", (x, dy), (), out, where)


@_document("""Tanh shrink (PyTorch's ``tanhshrink``): ``x - tanh(x)``.

    Near 0 the difference cancels (it is ~x**3 / 3); for ``|x| <= 1.5`` it is computed
    from a fitted polynomial of ``(x - tanh x) / x**3`` instead, so the result keeps
    full relative accuracy down to the subnormals (PyTorch and NumPy's
    ``x - np.tanh(x)`` lose all of it there). Odd: ``tanh_shrink(-0.0) = -0.0``
    (PyTorch's subtraction gives +0). ONNX has no such op.""")
def tanh_shrink(x: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.tanh_shrink, "tanh_shrink", (x,), (), out, where)


@_document("""Gradient of :func:`tanh_shrink`: ``dy * tanh(x)**2``.""", grad=True)
def tanh_shrink_grad(x: ArrayLike, dy: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _call(_k.tanh_shrink_grad, "tanh_shrink_grad", (x, dy), (), out, where)


def _gelu_kernel(name: str, approximate: str, exact: np.ufunc, tanh_approx: np.ufunc) -> np.ufunc:
    if approximate == "none":
        return exact
    if approximate == "tanh":
        return tanh_approx
    raise ValueError(f"actfast.{name}: approximate must be 'none' or 'tanh', got {approximate!r}")


@_document("""Gaussian error linear unit.

    ``approximate="none"``: ``x * Phi(x)``, ``Phi`` the standard normal CDF, computed as
    ``x * erfc(-x / sqrt(2)) / 2`` (no cancellation for negative x).
    ``approximate="tanh"``: ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``.""", _P_GELU)
def gelu(x: ArrayLike, approximate: str = "none", *, out: Any = None, where: Any = True) -> Any:
    uf = _gelu_kernel("gelu", approximate, _k.gelu, _k.gelu_tanh)
    return _call(uf, "gelu", (x,), (), out, where)


@_document("""Gradient of :func:`gelu`: ``dy * (Phi(x) + x * phi(x))`` for "none",
    the derivative of the tanh form for "tanh".""", _P_GELU, grad=True)
def gelu_grad(x: ArrayLike, dy: ArrayLike, approximate: str = "none", *,
              out: Any = None, where: Any = True) -> Any:
    uf = _gelu_kernel("gelu_grad", approximate, _k.gelu_grad, _k.gelu_tanh_grad)
    return _call(uf, "gelu_grad", (x, dy), (), out, where)


# --------------------------------------------------------------------------------------
# softmax and log_softmax (along one axis)
# --------------------------------------------------------------------------------------


def _where_mask(name: str, where: Any, arrays: tuple[Any, ...]) -> np.ndarray:
    """The mask of softmax(..., where=) as a bool array of the inputs' broadcast shape (a
    view: a (n,) mask of an (m, n) input costs nothing), checked."""
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"actfast.{name}: where must be a boolean array, got dtype {mask.dtype}")
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    try:
        if np.broadcast_shapes(shape, mask.shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"actfast.{name}: where of shape {mask.shape} does not broadcast to the "
                         f"input's shape {shape}") from None
    return np.broadcast_to(mask, shape)


def _axis_call(gufunc: np.ufunc, name: str, arrays: tuple[Any, ...], axis: int, out: Any,
               where: Any = None, masked: np.ufunc | None = None) -> Any:
    """Calls a ROWWISE gufunc along ``axis``; with a ``where`` mask, its masked twin
    (``masked``, the mask a last core input): see the masked row functions in
    src/_kernels.pyx.tp, which also say why the mask is handled there and not here."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"actfast.{name}: axis must be an int, got {type(axis).__name__}")
    # The common case (float32/float64 arrays, no where=) straight to the gufunc: the
    # general path below costs more than the rows of a small batch do.
    if where is None and all(type(a) is np.ndarray and a.ndim and (a.dtype is _FLOAT32 or a.dtype is _FLOAT64)
                             for a in arrays):
        try:
            return gufunc(*arrays, axis=int(axis)) if out is None else gufunc(*arrays, axis=int(axis), out=out)
        except np.exceptions.AxisError as exc:
            raise type(exc)(f"actfast.{name}: axis {axis} is out of bounds for the input") from exc
        except TypeError as exc:
            _raise_unsupported(name, arrays, exc)
    if where is not None:
        if any(np.ndim(a) == 0 for a in arrays):
            if out is not None:
                raise ValueError(f"actfast.{name}: out= is not supported for 0-d input")
            arrays = tuple(np.reshape(a, (1,)) if np.ndim(a) == 0 else a for a in arrays)
            return _axis_call(gufunc, name, arrays, 0, None, where, masked)[0]
        mask = _where_mask(name, where, arrays)
        gufunc = masked  # type: ignore[assignment]
    if any(np.ndim(a) == 0 for a in arrays):
        # A 0-d input is a row of one element.
        arrays = tuple(np.reshape(a, (1,)) if np.ndim(a) == 0 else a for a in arrays)
        if out is not None:
            raise ValueError(f"actfast.{name}: out= is not supported for 0-d input")
        return _axis_call(gufunc, name, arrays, 0, None)[0]
    dts = [dt for dt in map(_dtype_of, arrays) if dt is not None]
    # float16 and bfloat16 (ml_dtypes) rows are computed in float32 and rounded once.
    half = dts[0] if dts and (all(dt == _FLOAT16 for dt in dts) or _all_bfloat16(dts)) else None
    kwargs: dict[str, Any] = {"axis": int(axis)}
    if out is not None:
        kwargs["out"] = out
    if half is not None:
        kwargs["dtype"] = _FLOAT32           # computed in float32 ...
    elif dts and all(dt.kind in "biu" for dt in dts):
        kwargs["dtype"] = _FLOAT64
    if where is not None:
        arrays = (*arrays, mask)
    try:
        result = gufunc(*arrays, **kwargs)
    except TypeError as exc:
        _raise_unsupported(name, arrays, exc)
    except np.exceptions.AxisError as exc:
        raise type(exc)(f"actfast.{name}: axis {axis} is out of bounds for the input") from exc
    if half is not None and out is None:
        result = result.astype(half)        # ... and rounded once to float16 / bfloat16
    return result


def softmax(x: ArrayLike, axis: int = -1, *, out: Any = None, where: Any = None) -> Any:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
        Input; a 0-d input is a row of one element.
    axis : int, default -1
        The axis to normalise along.
    out : ndarray, optional
        Where to write the result (same shape as ``x``).
    where : array_like of bool, optional
        A mask broadcastable to ``x`` (as ``jax.nn.softmax(where=)``; default None, no
        mask): False entries take no part, the softmax runs over the True ones and is
        0 at the others (:func:`log_softmax`: -inf), whatever ``x`` holds there (NaN and
        inf included). A row with nothing unmasked is NaN. Unlike a ufunc's ``where=``,
        every element of ``out`` is written.

    Returns
    -------
    ndarray
        Each slice along ``axis`` sums to 1. A row holding NaN is all NaN; +inf
        entries share the mass equally (the limit); a row of -inf only is NaN.
    """
    return _axis_call(_k.softmax, "softmax", (x,), axis, out, where, _k.softmax_masked)


def softmax_grad(x: ArrayLike, dy: ArrayLike, axis: int = -1, *, out: Any = None, where: Any = None) -> Any:
    """Vector-Jacobian product of :func:`softmax`: ``y * (dy - sum(dy * y))``.

    ``y = softmax(x, axis)`` is recomputed; the sum runs along ``axis``. ``x`` and
    ``dy`` broadcast against each other outside ``axis``. With ``where=`` (a boolean
    mask broadcastable to them, as in :func:`softmax`) ``y`` and the sum are over the
    unmasked entries only, the result is 0 at masked ones (whatever ``x`` and ``dy``
    hold there) and NaN on a row with nothing unmasked.
    """
    return _axis_call(_k.softmax_grad, "softmax_grad", (x, dy), axis, out, where, _k.softmax_grad_masked)


def log_softmax(x: ArrayLike, axis: int = -1, *, out: Any = None, where: Any = None) -> Any:
    """Log-softmax along ``axis``: ``x - max - log(sum(exp(x - max)))``.

    Accurate for large logits (no overflow); see :func:`softmax` for the NaN and inf
    rules and the parameters. With ``where=``, -inf at masked entries (as
    ``jax.nn.log_softmax(where=)``).
    """
    return _axis_call(_k.log_softmax, "log_softmax", (x,), axis, out, where, _k.log_softmax_masked)


def log_softmax_grad(x: ArrayLike, dy: ArrayLike, axis: int = -1, *, out: Any = None,
                     where: Any = None) -> Any:
    """Vector-Jacobian product of :func:`log_softmax`: ``dy - softmax(x) * sum(dy)``.

    ``where=``: as for :func:`softmax_grad` (sum over unmasked entries, 0 at masked ones).
    """
    return _axis_call(_k.log_softmax_grad, "log_softmax_grad", (x, dy), axis, out, where,
                      _k.log_softmax_grad_masked)


def softmin(x: ArrayLike, axis: int = -1, *, out: Any = None, where: Any = None) -> Any:
    """Softmin along ``axis`` (``torch.nn.functional.softmin``): ``softmax(-x, axis)``.

    ``exp(min - x) / sum(exp(min - x))``, computed by the softmax kernel reading ``-x``
    (no temporary, exactly ``softmax(-x)``): a row holding NaN is all NaN, ``-inf``
    entries share the mass equally. Parameters (``where=`` included) as for :func:`softmax`.
    """
    return _axis_call(_k.softmin, "softmin", (x,), axis, out, where, _k.softmin_masked)


def softmin_grad(x: ArrayLike, dy: ArrayLike, axis: int = -1, *, out: Any = None, where: Any = None) -> Any:
    """Vector-Jacobian product of :func:`softmin`: ``y * (sum(dy * y) - dy)``, ``y = softmin(x)``.

    (The negative of softmax's at ``-x``.) ``y`` is recomputed; the sum, in double, runs
    along ``axis``. ``where=``: as for :func:`softmax_grad`.
    """
    return _axis_call(_k.softmin_grad, "softmin_grad", (x, dy), axis, out, where, _k.softmin_grad_masked)


# PyTorch's spellings, for users coming from torch.nn.functional.
hardtanh = hard_tanh
hardsigmoid = hard_sigmoid
hardswish = hard_swish
logsigmoid = log_sigmoid
hardshrink = hard_shrink
softshrink = soft_shrink
tanhshrink = tanh_shrink
