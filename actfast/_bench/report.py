"""Reporting: run metadata and the header lines, text and Markdown tables, the plot,
and writing the result (tables to the stream, JSON, PNG)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
from typing import Any

import numpy as np

from .cases import KINDS, OPS, TOLERANCES, _module_version, label

IMPL_ORDER = ("actfast", "numpy", "torch", "numexpr")
KIND_TITLES = {"forward": "forward", "grad": "gradient", "grad_from_output": "gradient from the output"}


# --------------------------------------------------------------------------------------
# Metadata and writing the result
# --------------------------------------------------------------------------------------

def _blas_info() -> list[dict[str, Any]]:
    try:
        from actfast._config import _blas_info as info
        return info()
    except Exception:  # noqa: BLE001
        return []


def metadata(args: argparse.Namespace, threads: int, settings: dict[str, Any]) -> dict[str, Any]:
    import actfast
    from actfast import _config, _dispatch
    cfg = _config.config()
    return {
        "version": 1,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(getattr(args, "argv", sys.argv)),
        "cpu": cfg["cpu"],
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "isa": _dispatch.isa,
        "threads": threads,
        "versions": {
            "python": platform.python_version(),
            "actfast": actfast.__version__,
            "numpy": np.__version__,
            "scipy": _module_version("scipy"),
            "torch": None if args.no_torch else _module_version("torch"),
            "numexpr": _module_version("numexpr"),
        },
        "blas": cfg["threadpools"],
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
        "loadavg_start": _loadavg(),
        "settings": settings,
        "tolerances": {k: {"rtol": v[0], "atol": v[1]} for k, v in TOLERANCES.items()},
        "config": cfg,
    }


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _finite_or_none(obj):
    """JSON has no inf/NaN: such floats become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


def _emit(result: dict[str, Any], args: argparse.Namespace, stream, text=None, markdown=None,
          plot_fn=None) -> None:
    """Print the tables (``markdown`` with --markdown, else ``text``), then write --json
    and --plot; the formatters default to the elementwise scenario's."""
    if args.markdown:
        stream.write((markdown or format_markdown)(result) + "\n")
    else:
        stream.write((text or format_text)(result) + "\n")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(_finite_or_none(result), f, indent=1, allow_nan=False)
        stream.write(f"wrote {args.json}\n")
    if args.plot:
        (plot_fn or plot)(result, args.plot)
        stream.write(f"wrote {args.plot}\n")


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

def _fmt_time(rec: dict[str, Any] | None, scale: float = 1e6) -> str:
    """Median (in µs, or ``median_s * scale``) ±IQR%; * when it allocated its output."""
    if rec is None:
        return "-"
    if not rec["correct"]:
        return "WRONG" if rec["error"] and rec["error"].startswith(("wrong", "shape")) else "ERROR"
    us = rec["median_s"] * scale
    s = f"{us:.3g}" if us < 100 else f"{us:,.0f}"
    spread = (rec["q3_s"] - rec["q1_s"]) / rec["median_s"] * 100 if rec["median_s"] else 0
    return f"{s} ±{spread:.0f}%" + ("" if rec.get("preallocated", True) else "*")


def _fmt_ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or not a["correct"] or not b["correct"]:
        return "-"
    r = b["median_s"] / a["median_s"]
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


def _fmt_mem(rec: dict | None) -> str:
    if rec is None or rec["peak_bytes"] is None:
        return "-"
    b = rec["peak_bytes"]
    return f"{b / 2**20:.1f}M" if b >= 2**20 else f"{b / 2**10:.0f}K" if b >= 1024 else f"{b}B"


def _grouped(records):
    """{(dtype, kind, op, size, shape): {impl: rec}} in run order."""
    groups: dict[tuple, dict[str, dict]] = {}
    for r in records:
        key = (r["dtype"], r["kind"], r["op"], r["size"], tuple(r["shape"]))
        groups.setdefault(key, {})[r["impl"]] = r
    return groups


def _label(kind: str, op: str, shape) -> str:
    if kind == "dense":
        return f"dense+{op} {'x'.join(map(str, shape))}"
    return label(op, kind)


def _torch_note(records) -> str:
    """What torch's backward columns compare: its ops that take the saved output are raced
    in the NAME_grad_from_output rows, so the NAME_grad rows of those ops have none."""
    ops = [op for op in dict.fromkeys(r["op"] for r in records if r["impl"] == "torch")
           if (op, "grad") in OPS and OPS[(op, "grad")].torch is None
           and (op, "grad_from_output") in OPS and OPS[(op, "grad_from_output")].torch is not None]
    note = ("torch: aten kernels on torch.from_numpy views, out= overloads where they exist; its backward "
            "ops that take the saved output y (precomputed, untimed, as autograd saves it) are raced "
            "against actfast's NAME_grad_from_output(y, dy)")
    if ops:
        note += f"; torch has no backward from x for {', '.join(ops)}, so their _grad rows have no torch figure"
    return note + "."


def header_lines(meta: dict[str, Any]) -> list[str]:
    """The elementwise scenario's header: machine, versions, BLAS, load, timing method."""
    impls = meta["settings"]["impls"]
    st = meta["settings"]
    return common_header(
        meta,
        f"threads: {meta['threads']} (actfast{', torch' if 'torch' in impls else ''}"
        f"{', numexpr' if 'numexpr' in impls else ''}; NumPy runs on one)",
        f"timing: median of {st['samples']} samples, each >= {st['min_batch_s'] * 1e3:g} ms of calls, "
        "implementations interleaved; ±: interquartile range / median")


def common_header(meta: dict[str, Any], threads: str, timing: str) -> list[str]:
    """Header lines of every scenario; ``threads`` and ``timing`` say what it ran on and how."""
    v = meta["versions"]
    vers = ", ".join(f"{k} {v[k]}" for k in ("actfast", "numpy", "scipy", "torch", "numexpr", "sklearn")
                     if v.get(k))
    lines = [
        f"actfast bench  {meta['started']}  ({' '.join(meta['command'])})",
        f"cpu: {meta['cpu']}, {meta['cores']} cores; actfast instruction set: {meta['isa']}; {threads}",
        f"versions: Python {v['python']}, {vers}",
    ]
    for tp in meta["blas"]:
        if tp.get("user_api") == "blas":
            lines.append(f"BLAS: {tp.get('internal_api')} {tp.get('version')} "
                         f"({tp.get('architecture') or '?'} kernel, {tp.get('num_threads')} threads) "
                         f"{os.path.basename(tp.get('filepath') or '')}")
    load = [v for v in (meta.get("loadavg_start"), meta.get("loadavg_end")) if v is not None]
    if load:
        cores = meta["cores"] or 1
        busy = max(load) > 0.5 * cores
        lines.append(f"load average (1 min) at start/end: {' / '.join(f'{v:.2f}' for v in load)} on {cores} cores"
                     + ("  -- WARNING: the machine is busy; multi-threaded timings are unreliable "
                        "(other processes take the cores a parallel loop waits for); "
                        + ("--threads 1 compares the kernels alone" if meta["threads"] > 1 else
                           "single-threaded timings suffer less") if busy else ""))
    lines.append(timing)
    return lines


def _dense_note(meta: dict[str, Any]) -> list[str]:
    env = meta.get("openblas_env") or {}
    set_vars = {k: v for k, v in env.items() if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    if not set_vars:
        return []
    return [f"note: {' '.join(f'{k}={v}' for k, v in set_vars.items())} is set and changes OpenBLAS's "
            "GEMM kernel (slower); for the dense timings run "
            "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m actfast bench`"]


def text_table(cols: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned columns: the first left, the others right."""
    widths = [max([len(c), *(len(r[j]) for r in rows)]) for j, c in enumerate(cols)]
    return ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
            for r in [cols, *rows]]


def markdown_table(cols: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right."""
    return (["| " + " | ".join(cols) + " |", "|" + "|".join(["---", "---:"] + ["---:"] * (len(cols) - 2)) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def format_text(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    impls = [i for i in IMPL_ORDER if any(r["impl"] == i for r in records)]
    impls += sorted({r["impl"] for r in records} - set(impls))
    out = header_lines(meta)
    groups = _grouped(records)
    has_torch = "torch" in impls
    for dtype in dict.fromkeys(k[0] for k in groups):
        out.append("")
        out.append(f"== {dtype}: time per call in µs (median ±IQR%; * = allocates its output), "
                   "speed-up of actfast, peak extra memory of one allocating call")
        if any(k[1] == "dense" for k in groups if k[0] == dtype):
            out += _dense_note(meta)
        cols = ["op", "size"] + impls + ["vs numpy"] + (["vs torch"] if has_torch else []) + \
            [f"mem {i}" for i in impls if i != "torch"]
        rows = []
        for (dt, kind, op, size, shape), by in groups.items():
            if dt != dtype:
                continue
            row = [_label(kind, op, shape), f"{size:,}"] + [_fmt_time(by.get(i)) for i in impls]
            row.append(_fmt_ratio(by.get("actfast"), by.get("numpy")))
            if has_torch:
                row.append(_fmt_ratio(by.get("actfast"), by.get("torch")))
            row += [_fmt_mem(by.get(i)) for i in impls if i != "torch"]
            rows.append(row)
        out += text_table(cols, rows)
    wrong = [r for r in records if not r["correct"]]
    out.append("")
    if wrong:
        out.append(f"EXCLUDED from the race ({len(wrong)}): failed the check against the float64 reference")
        for r in wrong:
            out.append(f"  {r['impl']} {_label(r['kind'], r['op'], r['shape'])} {r['dtype']} "
                       f"size {r['size']:,}: {r['error']}")
    else:
        tol = meta["tolerances"]
        out.append("every implementation matched the float64 reference ("
                   + "; ".join(f"{k}: rtol {v['rtol']:g}, atol {v['atol']:g}" for k, v in tol.items()) + ")")
    if has_torch:
        out.append(_torch_note(records) + " torch's memory is not visible to tracemalloc.")
    return "\n".join(out)


def format_markdown(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    impls = [i for i in IMPL_ORDER if any(r["impl"] == i for r in records)]
    groups = _grouped(records)
    has_torch = "torch" in impls
    out = ["```text", *header_lines(meta), "```", ""]
    for dtype in dict.fromkeys(k[0] for k in groups):
        out.append(f"**{dtype}** — µs per call, median (± interquartile range); * allocates its output")
        out.append("")
        cols = ["op", "size"] + impls + ["actfast vs NumPy"] + (["actfast vs torch"] if has_torch else []) \
            + ["memory actfast / NumPy"]
        rows = []
        for (dt, kind, op, size, shape), by in groups.items():
            if dt != dtype:
                continue
            row = [f"`{_label(kind, op, shape)}`", f"{size:,}"] + [_fmt_time(by.get(i)).replace("*", r"\*")
                                                                   for i in impls]
            row.append(_fmt_ratio(by.get("actfast"), by.get("numpy")))
            if has_torch:
                row.append(_fmt_ratio(by.get("actfast"), by.get("torch")))
            row.append(f"{_fmt_mem(by.get('actfast'))} / {_fmt_mem(by.get('numpy'))}")
            rows.append(row)
        out += markdown_table(cols, rows)
        out.append("")
    if has_torch:
        out += [_torch_note(records), ""]
    wrong = [r for r in records if not r["correct"]]
    for r in wrong:
        out.append(f"- excluded: {r['impl']} `{_label(r['kind'], r['op'], r['shape'])}` {r['dtype']} "
                   f"{r['size']:,}: {r['error']}")
    return "\n".join(out)


def plot(result: dict[str, Any], path: str) -> None:
    """Speed-up over NumPy against size (log x): a line per op, a column of panels per
    dtype, a row per kind measured (forward, gradient from x, gradient from the output)."""
    plt = pyplot()
    groups = _grouped([r for r in result["records"] if r["kind"] != "dense"])
    dtypes = list(dict.fromkeys(k[0] for k in groups)) or ["float32"]
    kinds = [k for k in KINDS if any(g[1] == k for g in groups)] or ["forward"]
    names = list(dict.fromkeys(k[2] for k in groups))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colours = {n: cmap(i % cmap.N) for i, n in enumerate(names)}
    markers = "osD^v<>pXh"
    fig, axes = plt.subplots(len(kinds), len(dtypes), figsize=(6.2 * len(dtypes) + 1.8, 4.2 * len(kinds)),
                             squeeze=False, sharex=True, sharey=True)
    for col, dtype in enumerate(dtypes):
        for row, kind in enumerate(kinds):
            ax = axes[row][col]
            for j, name in enumerate(names):
                pts = []
                for (dt, k, op, size, _), by in groups.items():
                    a, n = by.get("actfast"), by.get("numpy")
                    if dt == dtype and k == kind and op == name and a and n and a["correct"] and n["correct"]:
                        pts.append((size, n["median_s"] / a["median_s"]))
                if pts:
                    pts.sort()
                    ax.plot(*zip(*pts), "-", marker=markers[j % len(markers)], ms=4, lw=1.3,
                            color=colours[name], label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.axhline(1.0, color="k", lw=0.9)
            ax.set_title(f"{dtype}, {KIND_TITLES[kind]}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if row == len(kinds) - 1:
                ax.set_xlabel("elements")
            if col == 0:
                ax.set_ylabel("speed-up: NumPy time / actfast time")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    meta = result["meta"]
    fig.suptitle(plot_title(meta, f"actfast {meta['versions']['actfast']} vs NumPy {meta['versions']['numpy']}"),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    save_figure(plt, fig, path)


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a clear error when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("actfast bench --plot needs matplotlib: pip install 'actfast[plot]' "
                         "(or pip install matplotlib)") from None
    return plt


def plot_title(meta: dict[str, Any], what: str) -> str:
    """``what: cpu, isa, N threads``, and a warning line when the machine was busy."""
    load = max((v for v in (meta.get("loadavg_start"), meta.get("loadavg_end")) if v is not None), default=None)
    busy = load is not None and load > 0.5 * (meta.get("cores") or 1)
    return (f"{what}: {meta['cpu']}, {meta['isa']}, {meta['threads']} threads"
            + (f"\n(busy machine: load {load:.1f} on {meta['cores']} cores, timings noisy)" if busy else ""))


def save_figure(plt, fig, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
