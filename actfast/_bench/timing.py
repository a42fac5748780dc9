"""Timing: interleaved calibrated samples, one case checked then timed, tracemalloc
peaks, the progress bar, and the BLAS thread limit."""

from __future__ import annotations

import gc
import math
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .cases import Case, Impl, Prepared, check


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        r = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del r
    finally:
        tracemalloc.stop()
    return int(peak)


def _time_batch(fn: Callable[[], Any], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def measure_case(case: Case, impls: Sequence[Impl], *, n_samples: int, min_batch_s: float,
                 tol: tuple[float, float], reference: np.ndarray) -> list[dict[str, Any]]:
    """Check then time every implementation on one case; one record per implementation."""
    records, ready = prepare_checked(case, impls, tol=tol, reference=reference)
    if not ready:
        return records
    with np.errstate(all="ignore"):
        stats = time_interleaved([prep.call for _, prep in ready], n_samples=n_samples,
                                 min_batch_s=min_batch_s)
    for (rec, prep), (med, q1, q3, n, number, fastest) in zip(ready, stats):
        rec.update(median_s=med, q1_s=q1, q3_s=q3, min_s=fastest, n_samples=n, number=number)
        if prep.alloc_call is not None:
            try:
                with np.errstate(all="ignore"):
                    rec["peak_bytes"] = _peak_bytes(prep.alloc_call)
            except Exception:  # noqa: BLE001
                rec["peak_bytes"] = None
    return records


def prepare_checked(case: Case, impls: Sequence[Impl], *, tol: tuple[float, float], reference: np.ndarray
                    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], Prepared]]]:
    """Prepare every implementation for one case and check its result against the
    reference: the records (untimed) and the ``(record, prepared)`` pairs that passed."""
    records: list[dict[str, Any]] = []
    ready: list[tuple[dict[str, Any], Prepared]] = []
    shape = list(case.shape)
    for impl in impls:
        rec: dict[str, Any] = {
            "op": case.op, "kind": case.kind, "dtype": case.dtype.name, "size": case.size,
            "shape": shape, "impl": impl.name, "median_s": None, "q1_s": None, "q3_s": None, "min_s": None,
            "n_samples": 0, "number": 0, "preallocated": False, "peak_bytes": None,
            "correct": False, "max_abs_err": None, "error": None,
        }
        try:
            prep = impl.prepare(case)
        except Exception as exc:  # noqa: BLE001 - report, don't crash the whole run
            prep, rec["error"] = None, f"setup failed: {type(exc).__name__}: {exc}"
            records.append(rec)
            continue
        if prep is None:
            continue      # this implementation has nothing for this case
        rec["preallocated"] = prep.preallocated
        try:
            with np.errstate(all="ignore"):
                got = prep.result(prep.call())
            ok, err, why = check(got, reference, case.dtype, tol)
        except Exception as exc:  # noqa: BLE001
            ok, err, why = False, None, f"raised {type(exc).__name__}: {exc}"
        rec.update(correct=ok, max_abs_err=err, error=why)
        records.append(rec)
        if ok:
            ready.append((rec, prep))
    return records, ready


def time_interleaved(calls: Sequence[Callable[[], Any]], *, n_samples: int, min_batch_s: float,
                     min_number: int = 1, calibrate: bool = True
                     ) -> list[tuple[float, float, float, int, int, float]]:
    """Time several calls against each other; per call ``(median, q1, q3, n_samples,
    number, min)`` in seconds per call.

    Each is warmed up and calibrated to ``number`` calls per sample so that a sample
    lasts at least ``min_batch_s`` (and has at least ``min_number`` calls); then
    ``n_samples`` rounds run every call's batch in a rotating order (a drift of the
    machine hits them alike). GC is off meanwhile. ``calibrate=False``: no warm-up,
    ``min_number`` calls per sample (for long calls the caller has warmed up).
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        numbers = []
        for call in calls:
            if not calibrate:
                numbers.append(min_number)
                continue
            t = min(_time_batch(call, 1), _time_batch(call, 1))
            number = max(1, math.ceil(min_batch_s / max(t, 1e-9)))
            if number > 1:
                t = _time_batch(call, number)
                number = max(1, math.ceil(min_batch_s / max(t, 1e-9)))
            numbers.append(max(number, min_number))
        samples: list[list[float]] = [[] for _ in calls]
        k = len(calls)
        for r in range(n_samples):
            for j in range(k):
                i = (j + r) % k
                samples[i].append(_time_batch(calls[i], numbers[i]))
    finally:
        if gc_was_enabled:
            gc.enable()
    stats = []
    for s, number in zip(samples, numbers):
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        stats.append((float(med), float(q1), float(q3), len(s), number, float(min(s))))
    return stats


# --------------------------------------------------------------------------------------
# Progress and threads
# --------------------------------------------------------------------------------------

class Progress:
    """A plain-text progress bar on stderr (a line per 10 % when stderr is not a tty)."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total, self.done, self.stream = max(total, 1), 0, stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self._last_decile = -1

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        frac = self.done / self.total
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        line = f"[{bar}] {self.done}/{self.total} {elapsed:5.0f}s, ~{eta:.0f}s left  {label}"
        if self.tty:
            self.stream.write("\r" + line[:110].ljust(110))
            if self.done == self.total:
                self.stream.write("\n")
        elif int(10 * frac) != self._last_decile or self.done == self.total:
            self._last_decile = int(10 * frac)
            self.stream.write(line + "\n")
        self.stream.flush()


def _blas_limiter(threads: int | None):
    import contextlib
    if not threads:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(threads, user_api="blas")
