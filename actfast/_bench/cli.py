"""The command line: arguments, parsing helpers, and the run of the benchmark."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .cases import (DENSE_ACTIVATIONS, KINDS, OP_NAMES, OPS, TOLERANCES, Case, Impl, case_inputs,
                    default_impls, op_kinds, reference_for)
from .report import _emit, _loadavg, metadata
from .timing import Progress, _blas_limiter, measure_case

QUICK_SIZES = (1_000, 100_000, 1_000_000)
FULL_SIZES = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
DENSE_SHAPES = ((64, 512, 512), (256, 1024, 1024))
SCENARIOS = ("elementwise", "train", "loop")


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------

def _parse_list(text: str | None, conv=str) -> list | None:
    if text is None:
        return None
    return [conv(t.strip()) for t in text.split(",") if t.strip()]


def _parse_size(t: str) -> int:
    v = float(t.replace("_", ""))       # accepts 1e6
    if v < 1 or v != int(v):
        raise argparse.ArgumentTypeError(f"bad size {t!r}")
    return int(v)


def _parse_shape(t: str) -> tuple[int, int, int]:
    parts = [int(p) for p in t.lower().replace("x", ",").split(",") if p]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"a dense shape is batch x in x out, got {t!r}")
    return tuple(parts)  # type: ignore[return-value]


def run(args: argparse.Namespace, impls: Sequence[Impl] | None = None,
        stream=None) -> dict[str, Any]:
    """Run the benchmark described by ``args`` (from :func:`add_arguments`); print the
    tables to ``stream`` (stdout) and return ``{"meta": ..., "records": [...]}``."""
    import actfast
    stream = stream or sys.stdout
    if getattr(args, "load", None):
        with open(args.load) as f:
            result = json.load(f)
        scenario = result.get("meta", {}).get("scenario", "elementwise")
        if scenario == "elementwise":
            _emit(result, args, stream)
        else:
            _scenario_module(scenario).emit(result, args, stream)
        return result

    scenario = getattr(args, "scenario", None) or "elementwise"
    if scenario == "train":
        return _scenario_module("train").run(args, stream=stream)
    ops = _parse_list(args.ops) or OP_NAMES
    unknown = [o for o in ops if o not in OP_NAMES and o != "dense"]
    if unknown:
        raise SystemExit(f"actfast bench: unknown op(s) {unknown}; choose from {', '.join(OP_NAMES)}")
    kinds = KINDS if args.kind in ("all", "both") else (args.kind,)
    if scenario == "loop":
        return _scenario_module("loop").run(args, [o for o in ops if o != "dense"], kinds, impls=impls,
                                            stream=stream)
    sizes = [_parse_size(s) for s in _parse_list(args.sizes)] if args.sizes else \
        list(FULL_SIZES if args.full else QUICK_SIZES)
    dtypes = [np.dtype(args.dtype)] if args.dtype else [np.dtype(np.float32), np.dtype(np.float64)]
    n_samples = args.samples or (11 if args.full else 5)
    min_batch_s = (args.min_batch_ms if args.min_batch_ms is not None else (5.0 if args.full else 2.0)) / 1e3
    dense_shapes = [] if args.no_dense else \
        [_parse_shape(s) for s in (_parse_list(args.dense_shapes) or [])] or list(DENSE_SHAPES)
    if args.ops and "dense" not in ops:
        dense_shapes = []    # --ops selects; "dense" in the list keeps the dense layer
    ops = [o for o in ops if o != "dense"]

    import contextlib
    with (actfast.num_threads(args.threads) if args.threads else contextlib.nullcontext()):
        result = _measure(args, actfast, ops, sizes, dtypes, kinds, n_samples, min_batch_s,
                          dense_shapes, impls)
    _emit(result, args, stream)
    return result


def _scenario_module(name: str):
    """The module of the train or loop scenario (imported when it runs)."""
    import importlib
    if name not in SCENARIOS[1:]:
        raise SystemExit(f"actfast bench: unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    return importlib.import_module(f"{__package__}.{name}")


def _measure(args, actfast, ops, sizes, dtypes, kinds, n_samples, min_batch_s, dense_shapes, impls):
    do_dense = bool(dense_shapes) and hasattr(actfast, "dense")
    threads = actfast.get_num_threads()
    if impls is None:
        impls = default_impls(no_torch=args.no_torch, no_numexpr=args.no_numexpr)
    names = [i.name for i in impls]
    if "torch" in names:
        import torch
        torch.set_num_threads(threads)
    if "numexpr" in names:
        import numexpr
        numexpr.set_num_threads(threads)

    settings = {"samples": n_samples, "min_batch_s": min_batch_s, "sizes": sizes,
                "dtypes": [d.name for d in dtypes], "ops": ops, "kinds": list(kinds),
                "alloc": bool(args.alloc), "dense_shapes": [list(s) for s in dense_shapes] if do_dense else [],
                "impls": names}
    t_start = time.perf_counter()
    meta = metadata(args, threads, settings)
    records: list[dict[str, Any]] = []

    cells = [(dt, op, kind, size) for dt in dtypes for op, kind in op_kinds(ops, kinds) for size in sizes]
    dense_cells = [(dt, act, shp) for dt in dtypes for shp in dense_shapes for act in DENSE_ACTIVATIONS] \
        if do_dense else []
    progress = Progress(len(cells) + len(dense_cells), enabled=not args.no_progress)
    tol_of = lambda dt: TOLERANCES[dt.name]  # noqa: E731
    for dt, op, kind, size in cells:
        spec = OPS[(op, kind)]
        shape, x, dy = case_inputs(spec, dt, size)
        case = Case(op, kind, dt, shape, spec, x, dy, alloc=args.alloc)
        ref = reference_for(spec, x, dy)
        records += measure_case(case, impls, n_samples=n_samples, min_batch_s=min_batch_s,
                                tol=tol_of(dt), reference=ref)
        progress.step(f"{dt.name} {spec.label} {size:,}")
    blas_limit = _blas_limiter(args.threads)
    with blas_limit:
        for dt, act, (nb, nin, nout) in dense_cells:
            rng = np.random.default_rng(7)
            x = rng.standard_normal((nb, nin)).astype(dt)
            w = (rng.standard_normal((nin, nout)) / math.sqrt(nin)).astype(dt)
            b = (0.1 * rng.standard_normal(nout)).astype(dt)
            case = Case(act, "dense", dt, (nb, nin, nout), None, x, w=w, b=b)
            with np.errstate(all="ignore"):
                ref = np.asarray(OPS[(act, "forward")].ref(
                    x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64), None))
            records += measure_case(case, impls, n_samples=n_samples, min_batch_s=min_batch_s,
                                    tol=TOLERANCES["dense-" + dt.name], reference=ref)
            progress.step(f"{dt.name} dense {act} {nb}x{nin}x{nout}")

    meta["loadavg_end"] = _loadavg()
    meta["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    return {"meta": meta, "records": records}


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", choices=SCENARIOS, default="elementwise",
                   help="elementwise (default): every activation and gradient alone, against NumPy; "
                        "train: one SGD step of an MLP 784-512-512-10 (NumPy, NumPy with actfast's "
                        "activations, actfast.Dense, PyTorch) and scikit-learn's MLPClassifier with "
                        "actfast's activations; loop: every op right after a NumPy matmul, as in training")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="the default set: sizes 1e3,1e5,1e6, 5 samples of >= 2 ms (about a minute on 2 cores)")
    g.add_argument("--full", action="store_true",
                   help="sizes 1e2..1e7, 11 samples of >= 5 ms (several minutes)")
    p.add_argument("--ops", metavar="LIST",
                   help=f"comma-separated activations (default: all): {','.join(OP_NAMES)}; "
                        "add 'dense' to keep the dense layer")
    p.add_argument("--kind", choices=("all", "forward", "grad", "grad_from_output", "both"), default="all",
                   help="forward, grad (from x), grad_from_output (from the saved output y = f(x), for "
                        "the ops that have one) or all three (default; 'both' is the old name of all)")
    p.add_argument("--sizes", metavar="LIST", help="comma-separated element counts, e.g. 1000,1e5,1e6")
    p.add_argument("--dtype", choices=("float32", "float64"), help="one dtype (default: both)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for actfast, torch, numexpr and BLAS (default: actfast's)")
    p.add_argument("--json", metavar="PATH", help="write every measurement as JSON (fields: see the docs)")
    p.add_argument("--plot", metavar="PATH.png", help="speed-up over NumPy vs size (needs matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables (for the README)")
    p.add_argument("--no-torch", action="store_true", help="do not race PyTorch even if installed")
    p.add_argument("--no-numexpr", action="store_true", help="do not race numexpr even if installed")
    p.add_argument("--no-dense", action="store_true", help="skip the dense layer")
    p.add_argument("--dense-shapes", metavar="LIST",
                   help="dense layer shapes batch x in x out, e.g. 64x512x512,256x1024x1024 (the default)")
    p.add_argument("--alloc", action="store_true",
                   help="time every implementation allocating its output (y = f(x)) instead of out=")
    p.add_argument("--samples", type=int, metavar="N", help="samples per measurement (5 quick, 11 full)")
    p.add_argument("--min-batch-ms", type=float, metavar="MS",
                   help="minimum duration of one sample (2 quick, 5 full)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--load", metavar="PATH",
                   help="measure nothing: print (--markdown) or plot (--plot) a saved --json file")
    t = p.add_argument_group("--scenario train and loop (--threads, --json, --plot, --markdown, --no-torch, "
                             "--min-batch-ms apply too; loop also takes --ops, --kind, --dtype)")
    t.add_argument("--rounds", type=int, metavar="N",
                   help="timing rounds, the ways interleaved (train: 5, also the fits per way of "
                        "scikit-learn; loop: 11)")
    t.add_argument("--batches", metavar="LIST", help="train: batch sizes (default 64,256,1024)")
    t.add_argument("--activations", metavar="LIST",
                   help="train: hidden activations (default relu,sigmoid,tanh,gelu,silu)")
    t.add_argument("--no-sklearn", action="store_true", help="train: skip scikit-learn's MLPClassifier")
    t.add_argument("--shape", metavar="LIST", help="loop: the op's array shape (default 256,1024)")


def main(args: argparse.Namespace) -> int:
    """Run the command; exit status 1 when an actfast result failed the check."""
    res = run(args)
    return 1 if any(not r["correct"] and "actfast" in r["impl"] for r in res["records"]) else 0
