"""``actfast bench --scenario loop``: every op right after a NumPy matmul, as in training.

Why
---
Timed alone (the elementwise scenario), a multi-threaded op finds the cores idle. In a
training loop it runs right after a GEMM: NumPy's OpenBLAS threads have just worked,
spin a while before they sleep, and hold the cores the op's threads want. This
scenario measures an op in that situation.

What is timed
-------------
For every op and gradient of the elementwise scenario's table (``--ops``, ``--kind``:
the forward, the gradient from x and, where actfast has one, the gradient from the saved
output) on an activation-sized array (``--shape``, default 256,1024; ``--dtype``, default
float32), the pair ``np.matmul(a, Wm, out=c)`` then the op, with ``a`` (256, 1024)
and ``Wm`` (1024, 1024) float32 whatever ``--shape`` and ``--dtype`` (so NumPy's
multi-threaded OpenBLAS runs between every two op calls), for actfast's
implementation and NumPy's expression: the elementwise scenario's prepared calls
(``out=`` given where the expression allows), checked against its float64 reference
first (a failing one is not timed). The bare matmul is timed too, and everything is
interleaved in one ``time_interleaved`` run (order rotated every round, ``--rounds``
rounds, each sample >= ``--min-batch-ms``).

Reported per op: the pair's median time for each implementation, the op's cost in the
loop ``pair - median of the matmul alone`` (noisy for cheap ops: a difference of two
medians of ~1 ms; it can come out negative), and the time ratios actfast / NumPy of the
pair and of the op cost (< 1: actfast faster). JSON records are the elementwise
scenario's fields (``median_s`` etc. of the pair) plus ``op_cost_s``; the matmul alone
is the record with ``op`` "matmul".
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .cases import (OPS, TOLERANCES, Case, Impl, _prep_actfast, _prep_numpy, case_inputs, op_kinds,
                    reference_for)
from .report import (_emit, _fmt_time, _label, _loadavg, common_header, markdown_table, metadata, plot_title,
                     pyplot, save_figure, text_table)
from .timing import Progress, _blas_limiter, prepare_checked, time_interleaved

SHAPE = (256, 1024)
MATMUL_SHAPES = ((256, 1024), (1024, 1024))
ROUNDS = 11
MIN_BATCH_S = 0.02


def default_impls() -> list[Impl]:
    return [Impl("actfast", _prep_actfast), Impl("numpy", _prep_numpy)]


def _parse_shape(text: str | None) -> tuple[int, ...]:
    if not text:
        return SHAPE
    try:
        shape = tuple(int(p) for p in text.lower().replace("x", ",").split(",") if p.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise SystemExit(f"actfast bench: bad --shape {text!r} (e.g. 256,1024)")
    return shape


def measure_loop(ops: Sequence[str], kinds: Sequence[str], dtype: np.dtype, shape: tuple[int, ...],
                 impls: Sequence[Impl], *, rounds: int, min_batch_s: float,
                 progress: Progress | None = None) -> list[dict[str, Any]]:
    """Check every (op, kind, impl), then time each passing one paired with the matmul,
    and the matmul alone, all interleaved."""
    (m, k), (_, n) = MATMUL_SHAPES
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, k), dtype=np.float32)
    w = (rng.standard_normal((k, n), dtype=np.float32) / np.float32(np.sqrt(k)))
    c = np.empty((m, n), np.float32)

    def matmul():
        return np.matmul(a, w, out=c)

    records: list[dict[str, Any]] = []
    timed: list[tuple[dict[str, Any], Any]] = []
    for op, kind in op_kinds(ops, kinds):
        spec = OPS[(op, kind)]
        _, x, dy = case_inputs(spec, dtype, 0, shape=shape)
        case = Case(op, kind, dtype, shape, spec, x, dy)
        recs, ready = prepare_checked(case, impls, tol=TOLERANCES[dtype.name],
                                      reference=reference_for(spec, x, dy))
        records += recs
        for rec, prep in ready:
            def pair(call=prep.call):
                np.matmul(a, w, out=c)
                return call()
            timed.append((rec, pair))
        if progress:
            progress.step(f"checked {dtype.name} {spec.label}")
    mm: dict[str, Any] = {
        "op": "matmul", "kind": "matmul", "dtype": "float32", "size": m * n, "shape": [m, k, n], "impl": "numpy",
        "median_s": None, "q1_s": None, "q3_s": None, "min_s": None, "n_samples": 0, "number": 0,
        "preallocated": True, "peak_bytes": None, "correct": True, "max_abs_err": None, "error": None,
        "op_cost_s": None,
    }
    with np.errstate(all="ignore"):
        stats = time_interleaved([matmul] + [p for _, p in timed], n_samples=rounds, min_batch_s=min_batch_s)
    for rec, (med, q1, q3, n_s, number, fastest) in zip([mm] + [r for r, _ in timed], stats):
        rec.update(median_s=med, q1_s=q1, q3_s=q3, min_s=fastest, n_samples=n_s, number=number)
    for rec in records:
        rec["op_cost_s"] = rec["median_s"] - mm["median_s"] if rec["median_s"] is not None else None
    if progress:
        progress.step(f"timed {dtype.name}")
    return [mm] + records


def run(args: argparse.Namespace, ops: Sequence[str], kinds: Sequence[str], impls: Sequence[Impl] | None = None,
        stream=None) -> dict[str, Any]:
    """Run the loop scenario for ``ops`` and ``kinds`` (parsed by the caller); print the
    tables and return ``{"meta": ..., "records": [...]}``."""
    import actfast
    stream = stream or sys.stdout
    shape = _parse_shape(args.shape)
    dtypes = [np.dtype(args.dtype or "float32")]
    rounds = args.rounds or args.samples or ROUNDS
    min_batch_s = args.min_batch_ms / 1e3 if args.min_batch_ms is not None else MIN_BATCH_S
    impls = list(impls) if impls is not None else default_impls()
    with (actfast.num_threads(args.threads) if args.threads else contextlib.nullcontext()), \
            _blas_limiter(args.threads):
        settings = {"rounds": rounds, "min_batch_s": min_batch_s, "shape": list(shape),
                    "matmul": [list(s) for s in MATMUL_SHAPES], "dtypes": [d.name for d in dtypes],
                    "ops": list(ops), "kinds": list(kinds), "impls": [i.name for i in impls]}
        t_start = time.perf_counter()
        meta = metadata(args, actfast.get_num_threads(), settings)
        meta["scenario"] = "loop"
        meta["versions"].update(torch=None, numexpr=None)
        progress = Progress(len(dtypes) * (len(op_kinds(ops, kinds)) + 1), enabled=not args.no_progress)
        records: list[dict[str, Any]] = []
        for dt in dtypes:
            records += measure_loop(ops, kinds, dt, shape, impls, rounds=rounds, min_batch_s=min_batch_s,
                                    progress=progress)
    meta["loadavg_end"] = _loadavg()
    meta["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    result = {"meta": meta, "records": records}
    emit(result, args, stream)
    return result


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

def _us(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    us = seconds * 1e6
    return f"{us:.3g}" if abs(us) < 100 else f"{us:,.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b is not None and a > 0 and b > 0 else "-"


def _table(records) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    mm = next(r for r in records if r["op"] == "matmul")
    by: dict[tuple[str, str], dict[str, dict]] = {}
    for r in records:
        if r["op"] != "matmul":
            by.setdefault((r["op"], r["kind"]), {})[r["impl"]] = r
    cols = ["op", "pair actfast", "pair numpy", "op cost actfast", "op cost numpy", "pair actfast/numpy",
            "op cost actfast/numpy"]
    rows = []
    for (op, kind), g in by.items():
        af, nu = g.get("actfast"), g.get("numpy")
        cost = [r["op_cost_s"] if r and r["correct"] else None for r in (af, nu)]
        pair = [r["median_s"] if r and r["correct"] else None for r in (af, nu)]
        rows.append([_label(kind, op, None), _fmt_time(af), _fmt_time(nu), _us(cost[0]), _us(cost[1]),
                     _ratio(*pair), _ratio(*cost)])
    return cols, rows, mm


def _title(meta: dict[str, Any], mm: dict[str, Any]) -> str:
    st = meta["settings"]
    (m, k), (_, n) = st["matmul"]
    return (f"{', '.join(st['dtypes'])} {'x'.join(map(str, st['shape']))}, each op right after "
            f"np.matmul(({m}x{k}) @ ({k}x{n}) float32, out=c): matmul alone {_fmt_time(mm)} µs; "
            "µs per pair (median ±IQR%; * allocates its output); op cost = pair - matmul alone; "
            "ratios: actfast time / NumPy time (< 1: actfast faster)")


def _header(meta: dict[str, Any]) -> list[str]:
    st = meta["settings"]
    return common_header(
        meta, f"threads: {meta['threads']} (actfast and NumPy's BLAS)",
        f"timing: median of {st['rounds']} rounds, each sample >= {st['min_batch_s'] * 1e3:g} ms of calls, "
        "everything interleaved; ±: interquartile range / median")


def _failures(records) -> list[str]:
    return [f"{r['impl']} {_label(r['kind'], r['op'], None)} {r['dtype']}: {r['error']}"
            for r in records if not r["correct"]]


def format_text(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    cols, rows, mm = _table(records)
    out = [*_header(meta), "", f"== {_title(meta, mm)}", *text_table(cols, rows), ""]
    wrong = _failures(records)
    if wrong:
        out.append(f"EXCLUDED from the race ({len(wrong)}): failed the check against the float64 reference")
        out += ["  " + w for w in wrong]
    else:
        out.append("every implementation matched the float64 reference")
    return "\n".join(out)


def format_markdown(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    cols, rows, mm = _table(records)
    rows = [[f"`{r[0]}`", *(c.replace("*", r"\*") for c in r[1:])] for r in rows]
    out = ["```text", *_header(meta), "```", "", "**" + _title(meta, mm).replace("*", r"\*") + "**", "",
           *markdown_table(cols, rows), ""]
    out += [f"- excluded: {w}" for w in _failures(records)]
    return "\n".join(out)


def plot(result: dict[str, Any], path: str) -> None:
    """The op cost in the loop, actfast and NumPy, a pair of bars per op."""
    plt = pyplot()
    recs = [r for r in result["records"] if r["op"] != "matmul"]
    labels = list(dict.fromkeys(_label(r["kind"], r["op"], None) for r in recs))
    cost = {(_label(r["kind"], r["op"], None), r["impl"]): (r["op_cost_s"] or 0.0) * 1e6
            for r in recs if r["correct"]}
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(labels) + 1.6))
    y = np.arange(len(labels))
    for j, impl in enumerate(("actfast", "numpy")):
        ax.barh(y + (0.2 if j else -0.2), [cost.get((lab, impl), 0.0) for lab in labels], height=0.4, label=impl)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel("op cost after a matmul: pair - matmul alone (µs)")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(plot_title(result["meta"], "ops between NumPy matmuls"), fontsize=9)
    fig.tight_layout()
    save_figure(plt, fig, path)


def emit(result: dict[str, Any], args: argparse.Namespace, stream) -> None:
    _emit(result, args, stream, text=format_text, markdown=format_markdown, plot_fn=plot)
