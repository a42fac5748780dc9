"""PReLU (``torch.nn.functional.prelu``) and its fused gradient.

The forward is the leaky_relu ufunc with the weight as an array slope reshaped to
broadcast along the channel axis. The backward, :func:`prelu_grad`, returns ``dx`` and
the weight gradient from one pass over the data (src/_prelu.pxi): NumPy needs a
temporary of x's size for ``dweight`` (``np.where(x > 0, 0, x * dy).sum(...)``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._dispatch import kernels as _k
from ._elementwise import _FLOAT16, _FLOAT32, _FLOAT64, _all_bfloat16, _call, _dtype_of, _param_dtype

__all__ = ["prelu", "prelu_grad"]


def _channels(name: str, weight: Any, shape: tuple[int, ...], axis: Any) -> tuple[np.ndarray, int | None]:
    """The weight as a 1-d array of its C elements, and the normalised channel axis
    (None when the weight has one element: then every element shares it)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"actfast.{name}: axis must be an int, got {type(axis).__name__}")
    axis = int(axis)
    w = np.asarray(weight)
    if w.dtype.kind not in "iuf" and not _all_bfloat16([w.dtype]):
        raise TypeError(f"actfast.{name}: weight must be real (integer or floating), got dtype {w.dtype}")
    ndim = len(shape)
    # PyTorch's rule: an input of fewer than 2 dimensions has no channel axis (channel
    # count 1), which is what the default axis=1 means there.
    no_channel_axis = ndim < 2 and axis == 1
    if not no_channel_axis and not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(f"actfast.{name}: axis {axis} is out of bounds for an input of "
                                      f"{ndim} dimension{'s' if ndim != 1 else ''}")
    if w.size == 1:
        ax = None
    else:
        channels = 1 if no_channel_axis else shape[axis % ndim]
        if w.ndim != 1 or w.size != channels:
            where = ("an input of fewer than 2 dimensions (no channel axis, as in PyTorch)" if no_channel_axis
                     else f"x.shape[{axis}] = {channels}")
            raise ValueError(f"actfast.{name}: weight must have 1 element or be 1-d with one element per channel "
                             f"({where}); got shape {w.shape}")
        ax = axis % ndim
    return w.reshape(-1), ax


def _checked_weight(name: str, w: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # Contiguous: the kernels read it as a plain C array (a weight[::2] view is copied).
    a = np.ascontiguousarray(w, dtype=dtype)
    if np.isnan(a).any():
        raise ValueError(f"actfast.{name}: weight must not contain NaN")
    return a


def prelu(x: ArrayLike, weight: ArrayLike, axis: int = 1, *, out: Any = None) -> Any:
    """Parametric ReLU (``torch.nn.functional.prelu``): ``x if x > 0 else weight[c] * x``.

    ``c`` is the index along the channel axis ``axis`` (1, as in PyTorch's NCHW layout;
    -1 for channels last).

    Parameters
    ----------
    x : array_like
        Input; integer and bool input is computed in float64, float16 and bfloat16 in
        float32 and rounded once.
    weight : array_like or float
        One element (a scalar or any shape holding one value: shared by every element),
        or a 1-d array of ``x.shape[axis]`` elements, one per channel. Real, no NaN; it
        is cast to the dtype the kernel computes in (float32 for float16/bfloat16/float32
        ``x``, float64 otherwise). As in PyTorch, an ``x`` of fewer than 2 dimensions has
        no channel axis under the default ``axis=1`` and takes a one-element weight only;
        an explicit valid axis (``axis=0`` of a 1-d ``x``) is a channel axis there too.
    axis : int, default 1
        The channel axis; negative values count from the end.
    out : ndarray, optional
        Where to write the result (x's shape); may be ``x`` itself. Untouched on error.

    Returns
    -------
    ndarray or scalar
        ``prelu(x)``, with the dtype of ``x`` for floating input.
    """
    shape = np.shape(x)
    w, ax = _channels("prelu", weight, shape, axis)
    w = _checked_weight("prelu", w, _param_dtype(x))
    if ax is None:
        # One weight: a scalar parameter, the ufunc's fastest (stride-0) path.
        return _call(_k.leaky_relu, "prelu", (x,), (float(w[0]),), out, True)
    dt = _dtype_of(x)
    if (dt == _FLOAT32 or dt == _FLOAT64) and (out is None or (isinstance(out, np.ndarray) and out.dtype == dt
                                                               and out.shape == shape and out.flags.writeable)):
        # One weight per channel, float32/64: the channel walk of src/_prelu.pxi (the
        # leaky_relu ufunc with an array slope runs its strided, branching loop over
        # channels-last rows: 40x slower at (1000, 1000) float32).
        xa: np.ndarray = x  # type: ignore[assignment]
        transposed = _read_transposed(xa)
        xs = xa.T if transposed else xa
        ot = None if out is None else (out.T if transposed else out)
        shape3 = _shape3(xs.shape, len(shape) - 1 - ax if transposed else ax)
        x3 = _as3(xs, shape3)
        y3 = None if ot is None else _view3(ot, shape3)
        if y3 is not None and np.may_share_memory(y3, x3) and not _same_memory(y3, x3):
            y3 = None
        if y3 is not None:
            _k._prelu(x3, y3, w)
            return out
        y3 = np.empty(shape3, dt)
        _k._prelu(x3, y3, w)
        res = y3.reshape(xs.shape)
        res = res.T if transposed else res
        if out is None:
            return res
        np.copyto(out, res)
        return out
    slope = w.reshape((w.size,) + (1,) * (len(shape) - 1 - ax))
    return _call(_k.leaky_relu, "prelu", (x,), (slope,), out, True)


def _real_array(name: str, what: str, a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf" and not _all_bfloat16([arr.dtype]):
        raise TypeError(f"actfast.{name} does not support dtype {arr.dtype} for {what}; it takes real floating "
                        "(float16/32/64, bfloat16), integer or bool arrays")
    return arr


def _result_dtype(name: str, x: np.ndarray, dy: np.ndarray) -> np.dtype:
    if x.dtype == dy.dtype and x.dtype.kind == "f":
        return x.dtype
    dts = [x.dtype, dy.dtype]
    if _all_bfloat16(dts):
        return dts[0]
    if all(dt.kind in "biu" for dt in dts):
        return _FLOAT64
    try:
        dt = np.result_type(x.dtype, dy.dtype)
    except TypeError as exc:
        raise TypeError(f"actfast.{name}: x ({x.dtype}) and dy ({dy.dtype}) have no common floating dtype") from exc
    if dt.kind != "f" and dt.name != "bfloat16":
        raise TypeError(f"actfast.{name}: x ({x.dtype}) and dy ({dy.dtype}) have no common floating dtype")
    return dt


def _view3(a: np.ndarray, shape3: tuple[int, int, int]) -> np.ndarray | None:
    """``a`` seen as (outer, C, inner) without a copy, or None when its strides do not allow it."""
    v = a.view()
    try:
        v.shape = shape3
    except AttributeError:
        return None
    return v


def _read_transposed(*arrays: np.ndarray) -> bool:
    """Whether to walk the arrays with their axes reversed: F-ordered input (reversing
    the axes changes neither the result nor the per-channel sums)."""
    a = arrays[0]
    return a.ndim > 1 and not a.flags.c_contiguous and all(b.flags.f_contiguous for b in arrays)


def _shape3(shape: tuple[int, ...], ax: int | None) -> tuple[int, int, int]:
    """(outer, C, inner) around the channel axis ax; one channel of everything for None."""
    if ax is None:
        return (1, 1, math.prod(shape))
    return (math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:]))


def _as3(a: np.ndarray, shape3: tuple[int, int, int]) -> np.ndarray:
    """a as (outer, C, inner): a view where the strides allow it, else one copy."""
    v = _view3(a, shape3)
    return np.ascontiguousarray(a).reshape(shape3) if v is None else v


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """a and b are the same elements at the same addresses (an in-place call)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and a.strides == b.strides
            and a.shape == b.shape)


def _check_out(name: str, out: Any, shape: tuple[int, ...], wshape: tuple[int, ...],
               dt: np.dtype) -> tuple[np.ndarray | None, np.ndarray | None]:
    if out is None:
        return None, None
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"actfast.{name}: out must be a tuple (dx_out, dweight_out) (either may be None)")
    checked = []
    for o, want, what in zip(out, (shape, wshape), ("dx_out", "dweight_out")):
        if o is None:
            checked.append(None)
            continue
        if not isinstance(o, np.ndarray):
            raise TypeError(f"actfast.{name}: {what} must be an ndarray, got {type(o).__name__}")
        if o.shape != want:
            raise ValueError(f"actfast.{name}: {what} must have shape {want}, got {o.shape}")
        if not np.can_cast(dt, o.dtype, casting="same_kind"):
            raise TypeError(f"actfast.{name}: cannot write the {dt} result into {what} of dtype {o.dtype}")
        if not o.flags.writeable:
            raise ValueError(f"actfast.{name}: {what} is read-only")
        checked.append(o)
    if checked[0] is not None and checked[1] is not None and np.shares_memory(checked[0], checked[1]):
        raise ValueError(f"actfast.{name}: dx_out and dweight_out must not share memory")
    return checked[0], checked[1]


def prelu_grad(x: ArrayLike, weight: ArrayLike, dy: ArrayLike, axis: int = 1, *,
               out: tuple[np.ndarray | None, np.ndarray | None] | None = None) -> tuple[Any, Any]:
    """Gradient of :func:`prelu` with respect to ``x`` and ``weight``, in one pass.

    ``dx = dy if x > 0 else weight[c] * dy`` (``weight[c] * dy`` at the kink ``x == 0``,
    as PyTorch), and ``dweight[c] = sum(dy * x where x <= 0)`` over every axis but the
    channel axis (over all of them for a one-element weight). The sums are taken in
    double, in fixed chunks added in a fixed order, so they are the same bit for bit on
    any number of threads, and rounded once to the result dtype.

    A NaN in ``x`` gives NaN in ``dx`` (as :func:`leaky_relu_grad`; PyTorch gives
    ``weight[c] * dy``) and in its channel's ``dweight`` (as PyTorch).

    Parameters
    ----------
    x : array_like
        The input of the forward pass.
    weight : array_like or float
        The weight of the forward pass (see :func:`prelu`).
    dy : array_like
        The upstream gradient; it must have x's shape (no broadcasting: ``dweight``
        sums over its elements).
    axis : int, default 1
        The channel axis of the forward pass.
    out : tuple (dx_out, dweight_out), optional
        Arrays to write into (x's shape and weight's shape; either may be None). Every
        check is made before anything is written: on any error both are untouched.
        ``dx_out`` may be ``x`` or ``dy`` (in place).

    Returns
    -------
    (dx, dweight)
        ``dx`` with x's shape, ``dweight`` with weight's shape, both in the result
        dtype of ``x`` and ``dy`` (float64 for integer input). 0-d results are NumPy
        scalars unless written to ``out``.

    Notes
    -----
    Any layout that NumPy can view as (outer, C, inner) is read in place, negative
    strides included (C-contiguous input always is, and F-contiguous input is read
    transposed); other layouts are copied once. float16 and bfloat16 are computed in
    float32 (from float32 copies of ``x`` and ``dy``) and rounded once.
    """
    name = "prelu_grad"
    x = _real_array(name, "x", x)
    dy = _real_array(name, "dy", dy)
    if x.shape != dy.shape:
        raise ValueError(f"actfast.{name}: dy must have x's shape {x.shape}, got {dy.shape} "
                         "(dweight sums over dy's elements, so dy does not broadcast)")
    wshape = np.shape(weight)
    w, ax = _channels(name, weight, x.shape, axis)
    dt = _result_dtype(name, x, dy)
    cdt = _FLOAT32 if (dt == _FLOAT32 or dt == _FLOAT16 or dt.name == "bfloat16") else _FLOAT64
    w = _checked_weight(name, w, cdt)
    dx_out, dw_out = _check_out(name, out, x.shape, wshape, dt)

    xc = x.astype(cdt, copy=False)
    dyc = dy.astype(cdt, copy=False)
    transposed = _read_transposed(xc, dyc)
    if transposed:
        xc, dyc = xc.T, dyc.T
        if ax is not None:
            ax = x.ndim - 1 - ax
    dxo = None if dx_out is None else (dx_out.T if transposed else dx_out)
    shape = xc.shape
    shape3 = _shape3(shape, ax)
    x3, dy3 = _as3(xc, shape3), _as3(dyc, shape3)
    dx3 = None
    if dxo is not None and dxo.dtype == cdt:
        dx3 = _view3(dxo, shape3)
        # Element-for-element aliasing (out=x, out=dy) is fine; any other overlap is not.
        if dx3 is not None and any(np.may_share_memory(dx3, a) and not _same_memory(dx3, a) for a in (x3, dy3)):
            dx3 = None
    direct = dx3 is not None
    if not direct:
        dx3 = np.empty(shape3, cdt)
    dw64 = np.empty(w.size, _FLOAT64)
    _k._prelu_grad(x3, dy3, dx3, w, dw64)

    if dx_out is not None:
        if not direct:
            np.copyto(dxo, dx3.reshape(shape), casting="unsafe")
        dx = dx_out
    else:
        dx = dx3.reshape(shape).T if transposed else dx3.reshape(shape)
        if dx.dtype != dt:
            dx = dx.astype(dt)
        if dx.ndim == 0:
            dx = dx[()]
    if dw_out is not None:
        # From double straight to the output dtype: one rounding.
        np.copyto(dw_out, dw64.reshape(wshape), casting="unsafe")
        dweight = dw_out
    else:
        dweight = dw64.astype(dt).reshape(wshape)
        if dweight.ndim == 0:
            dweight = dweight[()]
    return dx, dweight
