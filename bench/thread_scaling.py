"""Thread scaling: speed-up of actfast's kernels with 1..N threads, at 1M and 10M elements.

    python bench/thread_scaling.py                       # float32, 1..cores threads
    python bench/thread_scaling.py --ops relu,gelu_grad --sizes 1e6 --plot bench/results/scaling.png

For each op and size, the same call (output preallocated) is timed with every thread
count, interleaved (so a drift of the machine hits every count alike), median of
several samples; the table gives the time and the speed-up over 1 thread. Memory-bound
ops (relu) stop scaling when the memory bandwidth is reached, compute-bound ones (gelu,
sigmoid) keep scaling up to the core count. Run it on an otherwise idle machine: the
header prints the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import actfast
from actfast import _bench, _dispatch


def _call(op: str, x, dy, out):
    if op.endswith("_grad"):
        return getattr(actfast, op)(x, dy, out=out)
    return getattr(actfast, op)(x, out=out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", default="relu,relu_grad,sigmoid,tanh,gelu,gelu_grad")
    p.add_argument("--sizes", default="1e6,1e7")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--max-threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--samples", type=int, default=7)
    p.add_argument("--min-batch-ms", type=float, default=5.0)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--plot", metavar="PATH.png", help="speed-up vs threads (needs matplotlib)")
    args = p.parse_args(argv)

    dtype = np.dtype(args.dtype)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    counts = list(range(1, args.max_threads + 1))
    print(f"actfast {actfast.__version__}, isa {_dispatch.isa}, {os.cpu_count()} cores, {dtype}, "
          f"threads {counts}, median of {args.samples} samples, load average {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(0)
    results = []
    try:
        for size in sizes:
            x = (2.5 * rng.standard_normal(size)).astype(dtype)
            dy = rng.standard_normal(size).astype(dtype)
            out = np.empty_like(x)
            for op in ops:
                calls = []
                for t in counts:
                    def call(t=t, op=op):
                        actfast.set_num_threads(t)
                        _call(op, x, dy, out)
                    calls.append(call)
                stats = _bench.time_interleaved(calls, n_samples=args.samples, min_batch_s=args.min_batch_ms / 1e3)
                base = stats[0][0]
                row = {"op": op, "size": size, "threads": counts,
                       "median_s": [s[0] for s in stats], "q1_s": [s[1] for s in stats],
                       "q3_s": [s[2] for s in stats], "speedup": [base / s[0] for s in stats]}
                results.append(row)
                gbps = (3 if op.endswith("_grad") else 2) * size * dtype.itemsize
                cells = "  ".join(f"{t}:{s[0] * 1e6:8.1f}µs {base / s[0]:4.2f}x" for t, s in zip(counts, stats))
                print(f"{op:>12} {size:>12,}  {cells}   (best {gbps / min(s[0] for s in stats) / 1e9:.0f} GB/s)")
    finally:
        actfast.set_num_threads(0)
    print(f"load average at end {os.getloadavg()[0]:.2f}"
          + ("  WARNING: busy machine, the multi-thread figures are unreliable"
             if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1) else ""))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": {"isa": _dispatch.isa, "dtype": dtype.name, "cores": os.cpu_count()},
                       "results": results}, f, indent=1)
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
            return 1
        fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.5), squeeze=False, sharey=True)
        for ax, size in zip(axes[0], sizes):
            for row in (r for r in results if r["size"] == size):
                ax.plot(row["threads"], row["speedup"], marker="o", label=row["op"])
            ax.plot(counts, counts, "k:", lw=0.8, label="ideal")
            ax.set_title(f"{size:,} {dtype} elements")
            ax.set_xlabel("threads")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("speed-up over 1 thread")
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
