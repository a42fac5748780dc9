"""Gated linear units (the GLU family) and their gradients.

Each unit is ``value * g(gate)``: ``glu`` (g = sigmoid, on the two halves of one array
as ``torch.nn.functional.glu``), ``swiglu`` (g = swish), ``geglu`` (g = gelu) and
``reglu`` (g = relu). They are NumPy ufuncs of the compiled kernel module, like the
elementwise activations: broadcasting of gate against value (and dy), ``out=``,
``where=``, integer input in float64, float16 and bfloat16 through float32.

The gradients return ``(dgate, dvalue)`` from one pass over (gate, value, dy): a ufunc
with two outputs, so ``out=`` is a pair. ``glu_grad`` writes them into the two halves
of ``dx`` directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._dispatch import kernels as _k
from ._elementwise import (_FLOAT32, _FLOAT64, _all_bfloat16, _call, _document, _dtype_of, _finite,
                           _unsupported_dtype_error)

__all__ = ["geglu", "geglu_grad", "glu", "glu_grad", "reglu", "reglu_grad", "swiglu", "swiglu_grad"]


def _call_pair(ufunc: np.ufunc, name: str, arrays: tuple[Any, ...], params: tuple[float, ...],
               out: Any, where: Any) -> tuple[Any, Any]:
    """:func:`actfast._elementwise._call` for the two-output gradient ufuncs: the same
    dtype rules, ``out`` a pair, and a bfloat16 result cast back as a pair."""
    if out is not None and not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"actfast.{name}: out must be a tuple of two arrays (dgate, dvalue), "
                        f"got {type(out).__name__}")
    return _call(ufunc, name, arrays, params, out, where)


def _root(a: np.ndarray) -> Any:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a.base if a.base is not None else a


def _packed_halves(gate: Any, value: Any, out: Any, where: Any,
                   out_shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, bool] | None:
    """(z, gate_first) when ``gate`` and ``value`` are the two halves along the last axis
    of one C-contiguous (..., 2n) array (``h[..., :n], h[..., n:]``, the layout of a
    fused projection, and glu's halves of x), with z that array as (rows, 2n). The ufunc
    would get such halves one row at a time, each below the parallel threshold; the
    dense layer's gated row loop takes the pool and computes the same values with the
    same span. ``out`` must be None, or, where the caller names ``out_shape``, a
    C-contiguous array of that shape and the dtype, apart from the halves. None: use the
    ufunc (also for ``where=`` and small arrays)."""
    if not (where is True and isinstance(gate, np.ndarray) and isinstance(value, np.ndarray)):
        return None
    if (gate.dtype != value.dtype or gate.dtype not in (_FLOAT32, _FLOAT64) or gate.shape != value.shape
            or gate.ndim < 1 or gate.size < 16384 or gate.strides != value.strides
            or not (gate.flags.aligned and value.flags.aligned)):
        return None
    if out is not None and not (out_shape is not None and isinstance(out, np.ndarray) and out.shape == out_shape
                                and out.dtype == gate.dtype and out.flags.c_contiguous and out.flags.aligned
                                and out.flags.writeable and not np.may_share_memory(out, gate)
                                and not np.may_share_memory(out, value)):
        return None
    n, it = gate.shape[-1], gate.itemsize
    stride = it
    for k in range(gate.ndim - 1, -1, -1):          # the strides of a half of a C-contiguous (..., 2n)
        if gate.strides[k] != stride and gate.shape[k] > 1:
            return None
        stride *= 2 * n if k == gate.ndim - 1 else gate.shape[k]
    off = value.ctypes.data - gate.ctypes.data
    if abs(off) != n * it or _root(gate) is not _root(value):
        return None
    first = gate if off > 0 else value
    z = np.lib.stride_tricks.as_strided(first, shape=(gate.size // n, 2 * n), strides=(2 * n * it, it),
                                        writeable=False)
    return z, off > 0


def _gated_forward(name: str, kernel: str, ufunc: np.ufunc, gate: Any, value: Any, params: tuple[float, ...],
                   out: Any, where: Any) -> Any:
    # With out= too: the ufunc on such halves also pays NumPy's iterator, which copies
    # rows shorter than its buffer through it (reglu on (1000, 1000) halves: 1.5 ms
    # against 0.27 on one thread).
    packed = _packed_halves(gate, value, out, where, out_shape=getattr(gate, "shape", None))
    if packed is None:
        return _call(ufunc, name, (gate, value), params, out, where)
    z, gate_first = packed
    y = np.empty(gate.shape, gate.dtype) if out is None else out
    _k._dense_gated_epilogue(z, None, y.reshape(z.shape[0], -1), _k.GATED_INDEX[kernel],
                             params[0] if params else 0.0, gate_first)
    return y


def _gated_grad(name: str, kernel: str, ufunc: np.ufunc, gate: Any, value: Any, dy: Any,
                params: tuple[float, ...], out: Any, where: Any) -> tuple[Any, Any]:
    """The gradient ufunc, or for packed halves (see _packed_halves) the row loop, whose
    (dgate, dvalue) are then the two halves of one (..., 2n) array, in z's layout."""
    packed = _packed_halves(gate, value, None, where)
    if (packed is None or not isinstance(dy, np.ndarray) or dy.dtype != gate.dtype or dy.shape != gate.shape
            or not dy.flags.c_contiguous):
        return _call_pair(ufunc, name, (gate, value, dy), params, out, where)
    z, gate_first = packed
    n = gate.shape[-1]
    if out is None:
        dz = np.empty(z.shape, gate.dtype)
    else:
        # out=(dgate, dvalue) as the two halves of one array laid out as z (a dx buffer
        # for the fused projection): the row loop writes it directly. The ufunc on such
        # halves pays NumPy's iterator, which copies the five operands' rows through
        # its buffers (swiglu' in the loop scenario: 1.1x NumPy's own expression).
        dz = _packed_out(out, gate, value, dy, gate_first)
        if dz is None:
            return _call_pair(ufunc, name, (gate, value, dy), params, out, where)
    _k._dense_gated_dz(dy.reshape(z.shape[0], n), z, dz, None, _k.GATED_INDEX[kernel + "_grad"],
                       params[0] if params else 0.0, gate_first)
    if out is not None:
        return out[0], out[1]
    dz = dz.reshape(gate.shape[:-1] + (2 * n,))
    first, second = dz[..., :n], dz[..., n:]
    return (first, second) if gate_first else (second, first)


def _packed_out(out: Any, gate: np.ndarray, value: np.ndarray, dy: np.ndarray,
                gate_first: bool) -> np.ndarray | None:
    """out=(dgate, dvalue) as one writeable (rows, 2n) array in z's layout (dgate where
    the gate half is), when they are such halves and share no memory with the inputs;
    else None (the ufunc handles it)."""
    if not (isinstance(out, tuple) and len(out) == 2):
        return None
    dgate, dvalue = out
    if not (isinstance(dgate, np.ndarray) and isinstance(dvalue, np.ndarray) and dgate.shape == gate.shape
            and dgate.dtype == gate.dtype
            and dgate.flags.writeable and dvalue.flags.writeable):
        return None
    packed = _packed_halves(dgate, dvalue, None, True)
    if packed is None or packed[1] != gate_first:
        return None
    zo = packed[0]
    if any(np.may_share_memory(zo, a) for a in (gate, value, dy)):
        return None
    first = dgate if gate_first else dvalue
    return np.lib.stride_tricks.as_strided(first, shape=zo.shape, strides=zo.strides, writeable=True)


def _beta(name: str, beta: Any) -> float:
    return _finite(name, "beta", beta)


def _geglu_kernels(name: str, approximate: Any) -> tuple[np.ufunc, np.ufunc]:
    if isinstance(approximate, str):
        if approximate == "none":
            return _k.geglu, _k.geglu_grad
        if approximate == "tanh":
            return _k.geglu_tanh, _k.geglu_tanh_grad
    raise ValueError(f"actfast.{name}: approximate must be 'none' or 'tanh', got {approximate!r}")


_GATED = """
    Parameters
    ----------
    gate, value : array_like
        The gate and the value; they broadcast against each other (any shapes).
        Integer and bool input is computed in float64; float16 and bfloat16
        (ml_dtypes) in float32 and rounded once to the input's dtype.{params}
    out : ndarray, optional
        Where to write the result: the broadcast shape, a dtype the result can be cast
        to (``same_kind``); it may be ``gate`` or ``value`` itself. On any error it is
        left untouched.
    where : array_like of bool, optional
        As for any NumPy ufunc: only where True is ``out`` written.

    Returns
    -------
    ndarray or scalar
        ``{ret}``, with the dtype of the inputs for float16/32/64 and bfloat16; a NumPy
        scalar for scalar or 0-d input.
"""

_GATED_GRAD = """
    Parameters
    ----------
    gate, value : array_like
        The inputs of the forward pass.
    dy : array_like
        The upstream gradient; gate, value and dy broadcast against each other.{params}
    out : tuple of two ndarrays, optional
        ``(dgate, dvalue)``: where to write the two results (each of the broadcast
        shape; an entry may be None). Left untouched on any error.
    where : array_like of bool, optional
        As for any NumPy ufunc; it applies to both outputs.

    Returns
    -------
    (dgate, dvalue) : tuple of ndarrays (or scalars)
        ``dgate = dy * value * g'(gate)`` and ``dvalue = dy * g(gate)``{ret}, computed
        together in one pass over the three inputs.
"""

_P_BETA = """
    beta : float, default 1.0
        Swish's sharpness: ``g(gate) = gate * sigmoid(beta * gate)`` (ONNX SwiGLU's
        ``alpha``); finite (ValueError for NaN or +-inf). ``beta = 1`` is silu."""
_P_APPROXIMATE = """
    approximate : {"none", "tanh"}, default "none"
        gelu's form: "none" the exact ``x * Phi(x)``, "tanh" the tanh approximation (as
        ``torch.nn.functional.gelu``)."""


# --------------------------------------------------------------------------------------
# swiglu, geglu, reglu: two inputs
# --------------------------------------------------------------------------------------


@_document("""SwiGLU: ``swiglu(gate, value) = gate * sigmoid(beta * gate) * value``.

    ``swish(gate) * value`` with ``swish(x) = x * sigmoid(beta * x)`` (silu for beta = 1),
    the gated unit of LLaMA's feed-forward layers (``F.silu(gate) * value``). swish is
    taken to its limit 0 at ``beta * gate = -inf``; float32 input is computed in double
    and rounded once.""", _P_BETA, ret="gate * sigmoid(beta * gate) * value", template=_GATED)
def swiglu(gate: ArrayLike, value: ArrayLike, beta: float = 1.0, *, out: Any = None, where: Any = True) -> Any:
    b = _beta("swiglu", beta)
    if b == 1.0:    # the kernel without the parameter (a fifth faster; see PARAM_VARIANTS)
        return _gated_forward("swiglu", "swiglu", _k.swiglu, gate, value, (), out, where)
    return _gated_forward("swiglu", "swiglu_beta", _k.swiglu_beta, gate, value, (b,), out, where)


@_document("""Gradient of :func:`swiglu`: ``(dgate, dvalue)`` with ``t = beta * gate``,
    ``s = sigmoid(t)``: ``dgate = dy * value * s * (1 + t * (1 - s))`` and
    ``dvalue = dy * gate * s``.

    The slope ``s (1 + t (1 - s))`` is silu's derivative at t, computed without its
    cancellation near the root t = -1.2785 (a Taylor series there); 1 and 0 at
    ``t = +inf`` and ``-inf``.""", _P_BETA, ret="", template=_GATED_GRAD)
def swiglu_grad(gate: ArrayLike, value: ArrayLike, dy: ArrayLike, beta: float = 1.0, *,
                out: Any = None, where: Any = True) -> tuple[Any, Any]:
    b = _beta("swiglu_grad", beta)
    if b == 1.0:
        return _gated_grad("swiglu_grad", "swiglu", _k.swiglu_grad, gate, value, dy, (), out, where)
    return _gated_grad("swiglu_grad", "swiglu_beta", _k.swiglu_beta_grad, gate, value, dy, (b,), out, where)


@_document("""GEGLU: ``geglu(gate, value) = gelu(gate) * value``.

    ``approximate="none"``: ``gelu(x) = x * Phi(x)`` (``Phi`` the standard normal CDF,
    computed without the cancellation of ``1 + erf`` for negative x);
    ``approximate="tanh"``: ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``.
    gelu(-inf) = 0.""", _P_APPROXIMATE, ret="gelu(gate) * value", template=_GATED)
def geglu(gate: ArrayLike, value: ArrayLike, approximate: str = "none", *, out: Any = None,
          where: Any = True) -> Any:
    fwd, _ = _geglu_kernels("geglu", approximate)
    return _gated_forward("geglu", fwd.__name__, fwd, gate, value, (), out, where)


@_document("""Gradient of :func:`geglu`: ``dgate = dy * value * gelu'(gate)``,
    ``dvalue = dy * gelu(gate)``; for "none" ``gelu'(x) = Phi(x) + x * phi(x)``, for
    "tanh" the derivative of the tanh form.""", _P_APPROXIMATE, ret="", template=_GATED_GRAD)
def geglu_grad(gate: ArrayLike, value: ArrayLike, dy: ArrayLike, approximate: str = "none", *,
               out: Any = None, where: Any = True) -> tuple[Any, Any]:
    fwd, grad = _geglu_kernels("geglu_grad", approximate)
    return _gated_grad("geglu_grad", fwd.__name__, grad, gate, value, dy, (), out, where)


@_document("""ReGLU: ``reglu(gate, value) = relu(gate) * value = max(gate, 0) * value``.

    NaN propagates (``0 * NaN`` is NaN, as ``F.relu(gate) * value``).""",
           ret="relu(gate) * value", template=_GATED)
def reglu(gate: ArrayLike, value: ArrayLike, *, out: Any = None, where: Any = True) -> Any:
    return _gated_forward("reglu", "reglu", _k.reglu, gate, value, (), out, where)


@_document("""Gradient of :func:`reglu`: ``dgate = dy * value * (gate > 0)``,
    ``dvalue = dy * relu(gate)``.

    As PyTorch: ``dgate`` is 0 at the kink ``gate = 0`` and wherever ``gate <= 0``,
    even for an infinite or NaN ``dy * value`` (``threshold_backward``); a NaN gate
    gives NaN.""", ret="", template=_GATED_GRAD)
def reglu_grad(gate: ArrayLike, value: ArrayLike, dy: ArrayLike, *, out: Any = None,
               where: Any = True) -> tuple[Any, Any]:
    return _gated_grad("reglu_grad", "reglu", _k.reglu_grad, gate, value, dy, (), out, where)


# --------------------------------------------------------------------------------------
# glu: the two halves of one array
# --------------------------------------------------------------------------------------


def _halves(name: str, x: Any, axis: Any) -> tuple[Any, Any, Any]:
    """x and its first and second halves along ``axis`` (views)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"actfast.{name}: axis must be an int, got {type(axis).__name__}")
    if not (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")):
        x = np.asarray(x)
    ndim = len(x.shape)
    if ndim == 0:
        raise ValueError(f"actfast.{name}: glu halves an axis; a 0-d input has none")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(f"actfast.{name}: axis {axis} is out of bounds for an input of "
                                      f"{ndim} dimension(s)")
    ax = int(axis) % ndim
    n = x.shape[ax]
    if n % 2:
        raise ValueError(f"actfast.{name}: the size of axis {axis} must be even (it is halved "
                         f"into value and gate), got {n} (shape {tuple(x.shape)})")
    lead = (slice(None),) * ax
    return x, x[lead + (slice(0, n // 2),)], x[lead + (slice(n // 2, None),)]


def glu(x: ArrayLike, axis: int = -1, *, out: Any = None, where: Any = True) -> Any:
    """Gated linear unit (``torch.nn.functional.glu``): ``a * sigmoid(b)``, where ``a`` is
    the first half of ``x`` along ``axis`` and ``b`` the second.

    Parameters
    ----------
    x : array_like
        Input; the size of ``axis`` must be even (ValueError otherwise). dtype rules as
        for every activation (integer in float64, float16/bfloat16 through float32).
    axis : int, default -1
        The axis that is halved.
    out : ndarray, optional
        Where to write the result, of x's shape with ``axis`` halved; left untouched
        on any error.
    where : array_like of bool, optional
        As for any NumPy ufunc (broadcasts against the result).

    Returns
    -------
    ndarray
        ``x[..., :n] * sigmoid(x[..., n:])`` (for ``axis=-1``, n half the axis' size).
    """
    x, a, b = _halves("glu", x, axis)
    packed = _packed_halves(b, a, out, where, out_shape=a.shape)     # the gate is the second half
    if packed is not None:
        z = packed[0]
        y = np.empty(a.shape, x.dtype) if out is None else out
        _k._dense_gated_epilogue(z, None, y.reshape(z.shape[0], -1), _k.GATED_INDEX["glu_pair"], 0.0, False)
        return y
    return _call(_k.glu_pair, "glu", (b, a), (), out, where)


def _dx_dtype(name: str, arrays: tuple[Any, ...]) -> tuple[np.dtype, np.dtype | None]:
    """The dtype glu_grad computes dx in, and the bfloat16 dtype to cast it to (or None):
    the dtype the ufunc's loop search gives for these inputs, with actfast's rules."""
    dts = [d for d in map(_dtype_of, arrays) if d is not None]
    if dts and all(d.kind in "biu" for d in dts):
        return _FLOAT64, None
    if _all_bfloat16(dts):
        return _FLOAT32, dts[0]
    try:
        dt = np.result_type(*arrays)
    except TypeError as exc:
        raise _unsupported_dtype_error(name, arrays, exc) from exc
    if dt.kind != "f" or dt.itemsize > 8:
        exc = TypeError(f"actfast.{name}: no loop for dtype {dt}")
        raise _unsupported_dtype_error(name, arrays, exc)
    return dt, None


def glu_grad(x: ArrayLike, dy: ArrayLike, axis: int = -1, *, out: Any = None, where: Any = True) -> Any:
    """Gradient of :func:`glu`: ``dx`` of x's shape, its first half ``dy * sigmoid(b)``
    and its second ``dy * a * sigmoid(b) * (1 - sigmoid(b))`` (``a``, ``b`` the halves
    of ``x`` along ``axis``).

    Both halves are written in one pass over (x, dy), directly into ``dx``.

    Parameters
    ----------
    x : array_like
        The input of the forward pass (even size along ``axis``).
    dy : array_like
        The upstream gradient, of the forward result's shape (x's with ``axis``
        halved; it may broadcast to it).
    axis : int, default -1
    out : ndarray, optional
        Where to write ``dx``: x's shape, C- or any layout; may be ``x`` itself. Left
        untouched on any error.
    where : array_like of bool, optional
        As for any NumPy ufunc, broadcasting against the forward result; applies to
        both halves of ``dx``.

    Returns
    -------
    ndarray
        ``dx``.
    """
    name = "glu_grad"
    x, a, b = _halves(name, x, axis)
    if not hasattr(dy, "shape") and not np.isscalar(dy):
        dy = np.asarray(dy)              # a Python scalar stays one (weak: float32 stays float32)
    half = tuple(a.shape)
    try:
        fits = np.broadcast_shapes(np.shape(dy), half) == half
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"actfast.{name}: dy has shape {np.shape(dy)}, expected the forward result's "
                         f"shape {half} (x {tuple(x.shape)} with axis {axis} halved)")
    packed = _packed_halves(b, a, out, where, out_shape=tuple(x.shape))
    if (packed is not None and isinstance(dy, np.ndarray) and dy.dtype == x.dtype and dy.shape == half
            and dy.flags.c_contiguous and dy.flags.aligned and (out is None or not np.may_share_memory(out, dy))):
        z = packed[0]                            # x itself as (rows, 2n): dx has its layout
        dx = np.empty(x.shape, x.dtype) if out is None else out
        _k._dense_gated_dz(dy.reshape(z.shape[0], -1), z, dx.reshape(z.shape), None,
                           _k.GATED_INDEX["glu_pair_grad"], 0.0, False)
        return dx
    bf16 = None
    if out is None:
        dt, bf16 = _dx_dtype(name, (x, dy))
        dx = np.empty(x.shape, dt)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"actfast.{name}: out must be a NumPy array, got {type(out).__name__}")
        if out.shape != tuple(x.shape):
            raise ValueError(f"actfast.{name}: out has shape {out.shape}, expected x's shape {tuple(x.shape)}")
        dx = out
    _, dx_a, dx_b = _halves(name, dx, axis)
    # The gate is b: dgate goes to the second half, dvalue to the first.
    _call_pair(_k.glu_pair_grad, name, (b, a, dy), (), (dx_b, dx_a), where)
    return dx.astype(bf16) if bf16 is not None else dx
