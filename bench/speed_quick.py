"""Quick speed check: 1M float32 sigmoid, tanh, gelu, silu (out=), actfast vs NumPy vs torch.

    python bench/speed_quick.py [--n 1000000] [--reps 30] [--threads 2]

Prints the median of --reps timed calls (after 3 warm-up calls) in microseconds. The
machine may be shared: read the numbers as rough.
"""
import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.special as sc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import actfast as af  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except Exception:  # noqa: BLE001
    torch = None


def med(f, reps):
    for _ in range(3):
        f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    af.set_num_threads(a.threads)
    if torch is not None:
        torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(a.n).astype(np.float32) * 3
    out = np.empty_like(x)
    r2 = np.float32(1 / math.sqrt(2))
    cases = {
        "sigmoid": (lambda: af.sigmoid(x, out=out),
                    lambda: np.divide(1, np.add(1, np.exp(-x, out=out), out=out), out=out),
                    (lambda tx, to: torch.sigmoid(tx, out=to))),
        "tanh": (lambda: af.tanh(x, out=out), lambda: np.tanh(x, out=out),
                 (lambda tx, to: torch.tanh(tx, out=to))),
        "gelu": (lambda: af.gelu(x, out=out),
                 lambda: np.multiply(np.multiply(x, 0.5, out=out), 1 + sc.erf(x * r2), out=out),
                 (lambda tx, to: F.gelu(tx))),
        "silu": (lambda: af.silu(x, out=out), lambda: np.divide(x, 1 + np.exp(-x), out=out),
                 (lambda tx, to: F.silu(tx))),
    }
    print(f"n={a.n} float32, {a.threads} threads, median of {a.reps} (us); actfast variant {af._isa}")
    print(f"{'op':8s} {'actfast':>9s} {'numpy':>9s} {'torch':>9s}")
    for name, (fa, fn, ft) in cases.items():
        ta, tn = med(fa, a.reps), med(fn, a.reps)
        tt = float("nan")
        if torch is not None:
            tx, to = torch.from_numpy(x), torch.from_numpy(np.empty_like(x))
            tt = med(lambda: ft(tx, to), a.reps)
        print(f"{name:8s} {ta:9.0f} {tn:9.0f} {tt:9.0f}", flush=True)


if __name__ == "__main__":
    main()
