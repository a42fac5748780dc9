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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "INITIALIZERS"]


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


def _normal(name: str, fan_in: Any, fan_out: Any, rng: Any, dtype: Any, var: Any) -> np.ndarray:
    fi, fo, dt = _args(name, fan_in, fan_out, dtype)
    g = np.random.default_rng(rng)
    w = g.standard_normal((fi, fo), dtype=dt)
    w *= dt.type(math.sqrt(var(fi, fo)))
    return w


def _uniform(name: str, fan_in: Any, fan_out: Any, rng: Any, dtype: Any, var: Any) -> np.ndarray:
    fi, fo, dt = _args(name, fan_in, fan_out, dtype)
    g = np.random.default_rng(rng)
    a = math.sqrt(3.0 * var(fi, fo))      # U(-a, a) has variance a^2 / 3
    return g.uniform(-a, a, (fi, fo)).astype(dt, copy=False)


def he_normal(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """He (Kaiming) normal: N(0, 2 / fan_in), for relu-like activations."""
    return _normal("he_normal", fan_in, fan_out, rng, dtype, lambda fi, fo: 2.0 / fi)


def he_uniform(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """He (Kaiming) uniform: U(-sqrt(6 / fan_in), sqrt(6 / fan_in))."""
    return _uniform("he_uniform", fan_in, fan_out, rng, dtype, lambda fi, fo: 2.0 / fi)


def glorot_normal(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """Glorot (Xavier) normal: N(0, 2 / (fan_in + fan_out)), for tanh/sigmoid."""
    return _normal("glorot_normal", fan_in, fan_out, rng, dtype, lambda fi, fo: 2.0 / (fi + fo))


def glorot_uniform(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """Glorot (Xavier) uniform: U(-sqrt(6 / (fan_in + fan_out)), +sqrt(...))."""
    return _uniform("glorot_uniform", fan_in, fan_out, rng, dtype, lambda fi, fo: 2.0 / (fi + fo))


def lecun_normal(fan_in: int, fan_out: int, rng: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """LeCun normal: N(0, 1 / fan_in), for selu."""
    return _normal("lecun_normal", fan_in, fan_out, rng, dtype, lambda fi, fo: 1.0 / fi)


INITIALIZERS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal")
