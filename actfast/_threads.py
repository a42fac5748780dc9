"""Thread-count control for the kernels (actfast's own pool, src/actfast_pool.h).

The count a kernel uses is, in order of precedence:

1. what :func:`set_num_threads` (or the :func:`num_threads` context manager) set;
2. the environment variable ``ACTFAST_NUM_THREADS``, read at import;
3. OpenMP's default, so ``OMP_NUM_THREADS`` is honoured.

A limit placed on OpenMP afterwards (``threadpoolctl.threadpool_limits``, or
``omp_set_num_threads``) lowers the count in every case. Small arrays never use more
than one thread (see the README, "Threads"), and a child process made by ``os.fork``
runs every kernel single-threaded: the pool's helper threads do not survive a fork
(nor does an OpenMP runtime's, on the builds that use OpenMP's loop instead).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

import numpy as np

from ._dispatch import kernels as _kernels

__all__ = ["get_num_threads", "num_threads", "set_num_threads"]

_loaded_modules = [_kernels]


def _register_module(module) -> None:  # noqa: ANN001 - a compiled kernel module
    """Keep another imported kernel variant (tests load several) in step."""
    if module not in _loaded_modules:
        module._set_num_threads(_requested)
        _loaded_modules.append(module)


_requested = 0


def set_num_threads(n: int) -> None:
    """Set the number of threads actfast's kernels may use.

    Parameters
    ----------
    n : int
        A positive count, or 0 to go back to OpenMP's default (``OMP_NUM_THREADS`` or
        the number of cores).
    """
    global _requested
    if isinstance(n, (bool, np.bool_)):
        raise TypeError("the number of threads must be an int, got bool")
    if not isinstance(n, int):
        try:
            n = int(n.__index__())  # numpy integers
        except (AttributeError, TypeError):
            raise TypeError(f"the number of threads must be an int, got {type(n).__name__}") from None
    if n < 0:
        raise ValueError(f"the number of threads must be >= 0 (0 restores the default), got {n}")
    _requested = n
    for module in _loaded_modules:
        module._set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads a large kernel call would use now."""
    return int(_kernels._get_num_threads())


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager: run the enclosed code with ``n`` threads, then restore.

    Examples
    --------
    >>> import actfast
    >>> with actfast.num_threads(1):
    ...     y = actfast.relu([1.0, -1.0])
    """
    previous = _requested
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


def _after_fork_in_child() -> None:
    for module in _loaded_modules:
        module._mark_forked_child()


def _init_from_environment() -> None:
    value = os.environ.get("ACTFAST_NUM_THREADS", "").strip()
    if value:
        try:
            set_num_threads(int(value))
        except ValueError:
            warnings.warn(
                f"ignoring ACTFAST_NUM_THREADS={value!r}: expected a non-negative integer",
                RuntimeWarning,
                stacklevel=3,
            )
    if hasattr(os, "register_at_fork") and sys.platform != "win32":
        os.register_at_fork(after_in_child=_after_fork_in_child)


_init_from_environment()
