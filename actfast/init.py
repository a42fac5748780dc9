"""Weight initializers for :class:`actfast.Dense`.

Each returns ``W`` of shape ``(fan_in, fan_out)`` (the layout of ``x @ W``); biases
start at zero. ``rng`` follows NumPy's conventions: None, a seed, a ``SeedSequence`` or
a ``Generator``, passed to ``numpy.random.default_rng``. Normal initializers are plain
(not truncated) normals, as PyTorch's ``kaiming_normal_`` and ``xavier_normal_``:

=================  ==========================  ====================================
initializer        distribution                variance
=================  ==========================  ====================================
he_normal          N(0, s^2)                   2 / fan_in
he_uniform         U(-a, a), a = sqrt(6/fan_in)  2 / fan_in
glorot_normal      N(0, s^2)                   2 / (fan_in + fan_out)
glorot_uniform     U(-a, a), a = sqrt(6/(fan_in + fan_out))  2 / (fan_in + fan_out)
lecun_normal       N(0, s^2)                   1 / fan_in
=================  ==========================  ====================================

:func:`rai` (randomized asymmetric initialization) returns ``(W, b)``: it draws the
biases too, as its paper prescribes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "rai", "INITIALIZERS"]


def _args(name: str, fan_in: Any, fan_out: Any, dtype: Any) -> tuple[int, int, np.dtype]:
    for what, v in (("fan_in", fan_in), ("fan_out", fan_out)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"actfast.init.{name}: {what} must be an int, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"actfast.init.{name}: {what} must be >= 1, got {v}")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"actfast.init.{name}: dtype must be float32 or float64, got {dt}")
    return int(fan_in), int(fan_out), dt


# name -> (uniform?, variance(fan_in, fan_out))
_SYMMETRIC = {
    "he_normal": (False, lambda fi, fo: 2.0 / fi),
    "he_uniform": (True, lambda fi, fo: 2.0 / fi),
    "glorot_normal": (False, lambda fi, fo: 2.0 / (fi + fo)),
    "glorot_uniform": (True, lambda fi, fo: 2.0 / (fi + fo)),
    "lecun_normal": (False, lambda fi, fo: 1.0 / fi),
}

RAI_SIGMA = 0.6007  # Lu et al. (2019): [W | b] ~ N(0, 0.6007^2 / fan_in) before the Beta entry


def _symmetric(name: str, fi: int, fo: int, gen: np.random.Generator, dt: np.dtype,
               shape: tuple[int, ...]) -> np.ndarray:
    """Draws of ``shape`` from initializer ``name``'s distribution for a (fi, fo) layer.
    (The born-dead estimator draws many layers at once through this.)"""
    uniform, var = _SYMMETRIC[name]
    if uniform:
        a = math.sqrt(3.0 * var(fi, fo))      # U(-a, a) has variance a^2 / 3
        return gen.uniform(-a, a, shape).astype(dt, copy=False)
    w = gen.standard_normal(shape, dtype=dt)
    w *= dt.type(math.sqrt(var(fi, fo)))
    return w


def _rai(fi: int, fo: int, gen: np.random.Generator, dt: np.dtype,
         batch: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """RAI for ``batch`` independent layers: W of shape (*batch, fi, fo), b (*batch, fo)."""
    v = gen.standard_normal((*batch, fo, fi + 1)) * (RAI_SIGMA / math.sqrt(fi))
    k = gen.integers(0, fi + 1, size=(*batch, fo))
    np.put_along_axis(v, k[..., None], gen.beta(2.0, 1.0, size=(*batch, fo, 1)), axis=-1)
    w = np.ascontiguousarray(np.swapaxes(v[..., :fi], -1, -2), dtype=dt)
    return w, np.ascontiguousarray(v[..., fi], dtype=dt)


def _draw(name: str, fan_in: Any, fan_out: Any, rng: Any, dtype: Any) -> np.ndarray:
    fi, fo, dt = _args(name, fan_in, fan_out, dtype)
    return _symmetric(name, fi, fo, np.random.default_rng(rng), dt, (fi, fo))


def he_normal(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """He (Kaiming) normal: N(0, 2 / fan_in), for relu-like activations."""
    return _draw("he_normal", fan_in, fan_out, rng, dtype)


def he_uniform(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """He (Kaiming) uniform: U(-sqrt(6 / fan_in), sqrt(6 / fan_in))."""
    return _draw("he_uniform", fan_in, fan_out, rng, dtype)


def glorot_normal(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """Glorot (Xavier) normal: N(0, 2 / (fan_in + fan_out)), for tanh/sigmoid."""
    return _draw("glorot_normal", fan_in, fan_out, rng, dtype)


def glorot_uniform(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """Glorot (Xavier) uniform: U(-sqrt(6 / (fan_in + fan_out)), +sqrt(...))."""
    return _draw("glorot_uniform", fan_in, fan_out, rng, dtype)


def lecun_normal(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """LeCun normal: N(0, 1 / fan_in), for selu."""
    return _draw("lecun_normal", fan_in, fan_out, rng, dtype)


def rai(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Randomized asymmetric initialization (Lu, Shin, Su & Karniadakis, 2019).

    The procedure of the paper, per neuron (output unit): its ``fan_in`` weights and its
    bias, ``[w | b]``, are drawn from ``N(0, 0.6007**2 / fan_in)``; then one of those
    ``fan_in + 1`` entries, chosen uniformly, is replaced by a draw from ``Beta(2, 1)``
    (positive, mean 2/3). The asymmetry makes a neuron much less likely to be dead for
    every input, so deep narrow ReLU networks are far less often born dead.

    Returns
    -------
    (W, b)
        ``W`` of shape (fan_in, fan_out) and ``b`` of shape (fan_out,): unlike the
        symmetric initializers, RAI sets the biases too.
    """
    fi, fo, dt = _args("rai", fan_in, fan_out, dtype)
    return _rai(fi, fo, np.random.default_rng(rng), dt)


INITIALIZERS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "rai")
