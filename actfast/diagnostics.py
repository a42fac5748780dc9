"""Diagnostics for the questions our users ask: do my ReLU units die, do my sigmoids
saturate, how sparse are the activations?

Each function is one pass over the array in the compiled kernels (a generalized ufunc
reduction along one axis): any layout, float32 or float64, and no temporary the size of
the input.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dispatch import kernels as _k

__all__ = ["Sparsity", "dead_fraction", "dead_units", "saturation", "sparsity"]


def _as_real(name: str, a: ArrayLike) -> NDArray[np.floating[Any]]:
    arr = np.asarray(a)
    if arr.dtype.kind in "biu" or arr.dtype == np.float16:
        arr = arr.astype(np.float64 if arr.dtype.kind in "biu" else np.float32)
    elif arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"actfast.{name} takes real floating, integer or bool arrays, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"actfast.{name} needs at least a 1-d array (samples along an axis), got a scalar")
    return arr


def _axis(name: str, arr: np.ndarray, axis: int) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"actfast.{name}: axis must be an int, got {type(axis).__name__}")
    if not -arr.ndim <= axis < arr.ndim:
        raise np.exceptions.AxisError(f"actfast.{name}: axis {axis} is out of bounds for an array of dimension {arr.ndim}")
    return int(axis) % arr.ndim


def dead_units(a: ArrayLike, axis: int = 0) -> NDArray[np.bool_]:
    """Which units of a layer's post-ReLU activations are zero for every sample.

    Parameters
    ----------
    a : array_like
        Activations, e.g. ``relu(x @ W + b)`` of shape (batch, units).
    axis : int, default 0
        The sample axis; every other axis indexes units.

    Returns
    -------
    ndarray of bool
        ``a``'s shape without ``axis``: True where the unit output 0 for the whole batch
        (a dead unit for this batch; with an empty batch every unit counts as dead).
    """
    arr = _as_real("dead_units", a)
    ax = _axis("dead_units", arr, axis)
    return _k.all_zero(arr, axis=ax)


def dead_fraction(a: ArrayLike, axis: int = 0) -> float:
    """The fraction of units that are dead on this batch (see :func:`dead_units`)."""
    dead = dead_units(a, axis)
    return float(np.count_nonzero(dead) / dead.size) if dead.size else 0.0


class Sparsity(NamedTuple):
    """Fractions of exact zeros: ``per_sample`` (one per sample) and ``overall``."""

    per_sample: NDArray[np.float64]
    overall: float


def sparsity(a: ArrayLike, axis: int = 0) -> Sparsity:
    """Fraction of exact zeros per sample and overall.

    For a freshly initialised ReLU layer about half the entries are zero.

    Parameters
    ----------
    a : array_like
        Activations; ``axis`` is the sample axis.
    axis : int, default 0
        The sample axis.

    Returns
    -------
    Sparsity
        ``per_sample[i]`` is the fraction of zeros among sample i's units, ``overall``
        the fraction over the whole array (0.0 for an empty array).
    """
    arr = _as_real("sparsity", a)
    ax = _axis("sparsity", arr, axis)
    units = arr.size // arr.shape[ax] if arr.shape[ax] else 0
    if arr.ndim == 1:
        counts = np.asarray(arr == 0, dtype=np.float64)     # one unit per sample
        per = counts
    else:
        # Count along the last unit axis, then sum the other unit axes: the count array
        # has the size of the input divided by that axis, never the input's size.
        last = arr.ndim - 1 if ax != arr.ndim - 1 else arr.ndim - 2
        counts_nd = _k.count_zero(arr, axis=last)
        other = tuple(i for i in range(counts_nd.ndim) if i != (ax if ax < last else ax - 1))
        per = counts_nd.sum(axis=other, dtype=np.float64) / units if units else np.zeros(arr.shape[ax])
        counts = counts_nd
    total = arr.size
    overall = float(np.sum(counts, dtype=np.float64) / total) if total else 0.0
    return Sparsity(np.asarray(per, dtype=np.float64), overall)


_SATURATION = {"sigmoid": "count_saturated_sigmoid", "tanh": "count_saturated_tanh"}


def saturation(z: ArrayLike, activation: str = "sigmoid", eps: float = 1e-3, axis: int | None = None) -> Any:
    """Fraction of pre-activations whose local gradient ``|f'(z)|`` is below ``eps``.

    A saturated unit passes almost no gradient back: the vanishing-gradient problem of
    sigmoid and tanh networks.

    Parameters
    ----------
    z : array_like
        Pre-activations (the input of the activation).
    activation : {"sigmoid", "tanh"}
        The activation whose derivative is tested (``sigmoid'`` peaks at 0.25,
        ``tanh'`` at 1).
    eps : float, default 1e-3
        The threshold on ``|f'(z)|``; must be positive.
    axis : int, optional
        None (default): one fraction over the whole array. An int: the fraction along
        that axis (e.g. ``axis=0`` gives one fraction per unit over the batch).

    Returns
    -------
    float or ndarray
    """
    if activation not in _SATURATION:
        raise ValueError(f"actfast.saturation: activation must be one of {sorted(_SATURATION)}, got {activation!r}")
    eps_f = float(eps)
    if not eps_f > 0:
        raise ValueError(f"actfast.saturation: eps must be positive, got {eps!r}")
    arr = _as_real("saturation", z)
    count = getattr(_k, _SATURATION[activation])
    if axis is None:
        if arr.size == 0:
            return 0.0
        c = count(arr, eps_f, axis=arr.ndim - 1)
        return float(np.sum(c, dtype=np.float64) / arr.size)
    ax = _axis("saturation", arr, axis)
    n = arr.shape[ax]
    c = count(arr, eps_f, axis=ax)
    return c / n if n else np.zeros(c.shape)
