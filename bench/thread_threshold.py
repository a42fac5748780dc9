"""At how many elements per thread do 2 threads beat 1?  One number per cost class.

    python bench/thread_threshold.py                 # float32, 2 threads, ~1 minute
    python bench/thread_threshold.py --dtype float64 --json bench/results/threshold.json

actfast's kernels go parallel only when every thread gets at least
``min_per_thread[cost]`` elements (``DEFAULT_MIN_PER_THREAD`` in
``src/_kernels.pyx.tp``; the cost classes are "cheap" (relu-like), "exp"
(sigmoid-like) and "erf" (gelu)). This script measures where that threshold should be:
for one representative op of each class and a geometric sweep of sizes, it times the
same call forced serial (threshold set huge) and forced parallel (threshold 1) through
the private hooks ``kernels._set_min_per_thread(cost, n)`` / ``_get_min_per_thread()``,
interleaved, median of several samples, output preallocated. The crossover is the
smallest size from which the parallel call is faster (by ``--margin``, 5 % by default)
at three consecutive sizes of the sweep; the threshold to use is that size divided by the
thread count. The defaults are restored on exit.

Run it on an otherwise idle machine: a parallel loop waits for its slowest thread, so
another process on one of the cores makes the parallel timings (and the crossover)
meaningless. The header prints the load average to check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import actfast
from actfast import _bench, _dispatch

K = _dispatch.kernels
HUGE = 1 << 40

# (cost class, label, call(x, dy, out)) - representative ops; forward and gradient.
OPS = {
    "cheap": [("relu", lambda x, dy, o: actfast.relu(x, out=o)),
              ("relu_grad", lambda x, dy, o: actfast.relu_grad(x, dy, out=o))],
    "exp": [("sigmoid", lambda x, dy, o: actfast.sigmoid(x, out=o)),
            ("silu_grad", lambda x, dy, o: actfast.silu_grad(x, dy, out=o))],
    "erf": [("gelu", lambda x, dy, o: actfast.gelu(x, out=o)),
            ("gelu_grad", lambda x, dy, o: actfast.gelu_grad(x, dy, out=o))],
}


def sweep(cost: str, label: str, fn, sizes, dtype, threads: int, samples: int, min_batch_s: float,
          stat: str = "median"):
    """Per size: (n, serial seconds, parallel seconds) by the chosen statistic.

    "median" compares the medians of interleaved batches (``_bench.time_interleaved``).
    "min" and "p10" time single calls, alternating serial and parallel call by call,
    for about ``samples * min_batch_s`` each, and compare the fastest (or the 10th
    percentile) call: on a busy machine almost every batch of calls contains one where
    another process took a core, but single calls that ran undisturbed still exist.
    """
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        x = (2.5 * rng.standard_normal(n)).astype(dtype)
        dy = rng.standard_normal(n).astype(dtype)
        out = np.empty_like(x)

        def serial():
            K._set_min_per_thread(cost, HUGE)
            fn(x, dy, out)

        def parallel():
            K._set_min_per_thread(cost, 1)
            fn(x, dy, out)
        # Setting the threshold is a C assignment (~50 ns), paid by both sides alike.
        if stat == "median":
            s, p = _bench.time_interleaved([serial, parallel], n_samples=samples, min_batch_s=min_batch_s)
            rows.append((n, s[0], p[0]))
            continue
        ts, tp = [], []
        clock = time.perf_counter
        serial(), parallel()                       # warm-up
        budget = samples * min_batch_s
        t_end = clock() + 2 * budget
        while (clock() < t_end or len(ts) < 20) and len(ts) < 20000:
            t0 = clock()
            serial()
            t1 = clock()
            parallel()
            t2 = clock()
            ts.append(t1 - t0)
            tp.append(t2 - t1)
        q = 0 if stat == "min" else 10
        rows.append((n, float(np.percentile(ts, q)), float(np.percentile(tp, q))))
    return rows


def crossover(rows, margin: float, run: int = 3) -> int | None:
    """Smallest n from which parallel wins (by ``margin``) at ``run`` consecutive sizes
    (or at every remaining size near the top of the sweep). One noisy point at a large
    size does not move the answer; a win at one small size alone does not either."""
    kept = [r for r in rows if not disturbed(r)]
    wins = [ts / tp >= 1 + margin for _, ts, tp in kept]
    for i in range(len(kept)):
        if all(wins[i:i + run]):
            return kept[i][0]
    return None


def disturbed(row) -> bool:
    """A parallel call that took milliseconds more than the serial one was waiting for a
    core another process held (a parallel region itself costs microseconds): such a size
    says nothing about the threshold and is left out of the crossover."""
    _, ts, tp = row
    return tp > 5 * ts and tp - ts > 1e-3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=int, default=2, help="parallel side's thread count (default 2)")
    p.add_argument("--min-size", type=float, default=2 ** 8)
    p.add_argument("--max-size", type=float, default=2 ** 20)
    p.add_argument("--steps-per-octave", type=int, default=2)
    p.add_argument("--samples", type=int, default=7)
    p.add_argument("--min-batch-ms", type=float, default=2.0)
    p.add_argument("--margin", type=float, default=0.05, help="parallel must win by this fraction")
    p.add_argument("--costs", default="cheap,exp,erf")
    p.add_argument("--stat", choices=("median", "p10", "min"), default="median",
                   help="compare medians of batches (default), or the 10th percentile / fastest of "
                        "single calls (steadier on a busy machine)")
    p.add_argument("--json", metavar="PATH", help="write the sweep as JSON (e.g. under bench/results/)")
    args = p.parse_args(argv)

    dtype = np.dtype(args.dtype)
    k = args.steps_per_octave
    lo, hi = np.log2(args.min_size), np.log2(args.max_size)
    sizes = sorted({int(round(2 ** (e / k))) for e in range(int(lo * k), int(hi * k) + 1)})
    sizes = [(n + 63) // 64 * 64 for n in sizes]
    saved = dict(K._get_min_per_thread())
    actfast.set_num_threads(args.threads)
    threads = actfast.get_num_threads()
    print(f"actfast {actfast.__version__}, isa {_dispatch.isa}, {os.cpu_count()} cores, "
          f"parallel side {threads} threads, {dtype}, {args.stat} of {args.samples} samples, load average {os.getloadavg()[0]:.2f}")
    print(f"current defaults (elements per thread): {saved}")
    if threads < 2:
        print("need at least 2 threads (OpenMP build, --threads 2)", file=sys.stderr)
        return 2
    result = {"meta": {"isa": _dispatch.isa, "threads": threads, "dtype": dtype.name,
                       "cores": os.cpu_count(), "loadavg_start": os.getloadavg()[0],
                       "defaults": saved, "margin": args.margin, "samples": args.samples,
                       "stat": args.stat},
              "sweeps": [], "crossover": {}}
    t0 = time.perf_counter()
    try:
        for cost in args.costs.split(","):
            per_class = []
            for label, fn in OPS[cost]:
                rows = sweep(cost, label, fn, sizes, dtype, threads, args.samples, args.min_batch_ms / 1e3, args.stat)
                cross = crossover(rows, args.margin)
                per_class.append(cross)
                print(f"\n[{cost}] {label}: serial vs {threads} threads")
                print(f"{'elements':>10} {'per thread':>10} {'serial µs':>10} {'parallel µs':>11} {'speed-up':>8}")
                for n, ts, tp in rows:
                    mark = "  <- crossover" if n == cross else "  (disturbed: left out)" if disturbed((n, ts, tp)) else ""
                    print(f"{n:>10,} {n // threads:>10,} {ts * 1e6:>10.2f} {tp * 1e6:>11.2f} {ts / tp:>7.2f}x{mark}")
                below = cross is not None and cross == next((r[0] for r in rows if not disturbed(r)), None)
                print("crossover: " + ("none in range" if cross is None else
                                       f"{'at or below ' if below else ''}{cross:,} elements = "
                                       f"{cross // threads:,} per thread"))
                result["sweeps"].append({"cost": cost, "op": label, "crossover": cross,
                                         "rows": [{"n": n, "serial_s": ts, "parallel_s": tp} for n, ts, tp in rows]})
            found = [c for c in per_class if c is not None]
            # A class's threshold must suit its slowest-to-pay-off op: take the largest.
            result["crossover"][cost] = max(found) // threads if found else None
            result["disturbed_rows"] = result.get("disturbed_rows", 0) + sum(
                disturbed(r) for sw in result["sweeps"] if sw["cost"] == cost
                for r in ((x["n"], x["serial_s"], x["parallel_s"]) for x in sw["rows"]))
    finally:
        for cost, n in saved.items():
            K._set_min_per_thread(cost, n)
    result["meta"]["loadavg_end"] = os.getloadavg()[0]
    print(f"\nmeasured min elements per thread (largest crossover of the class's ops): {result['crossover']}")
    print(f"defaults in src/_kernels.pyx.tp: {saved}")
    print(f"load average at end {result['meta']['loadavg_end']:.2f}; {time.perf_counter() - t0:.0f} s")
    if result.get("disturbed_rows"):
        print(f"{result['disturbed_rows']} sizes were disturbed (a parallel call waited milliseconds "
              "for a core held by another process) and left out")
    if max(result["meta"]["loadavg_start"], result["meta"]["loadavg_end"]) > 0.5 * (os.cpu_count() or 1):
        print("WARNING: the machine was busy; do not set defaults from this run")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
