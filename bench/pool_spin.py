"""How long should an idle pool helper spin before it sleeps? (src/actfast_pool.h)

For each spin time, measured side by side in one run (rounds interleaved, medians):

* standalone: back-to-back calls of a cheap and an exp-class kernel on 1M float32
  (``actfast.relu(x, out=y)``, ``actfast.sigmoid(x, out=y)``), where a helper that is
  still awake joins at once (measured 0.25 s after any BLAS call, once NumPy's OpenBLAS
  workers have stopped spinning);
* in the loop: NumPy's ``a @ W`` (256x1024 @ 1024x1024, multi-threaded OpenBLAS)
  followed by the same kernel on a (256, 1024) array, where a helper that keeps
  spinning takes a core from the next BLAS call.

    python bench/pool_spin.py [--spins-us 0,10,50,200,1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import actfast  # noqa: E402
from actfast import _dispatch  # noqa: E402


def best_of(f, inner):
    t = []
    for _ in range(inner):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spins-us", default="0,10,50,200,1000")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    spins = [int(v) for v in args.spins_us.split(",")]
    k = _dispatch.kernels
    rng = np.random.default_rng(0)
    big = rng.standard_normal(1 << 20).astype(np.float32)
    out = np.empty_like(big)
    a = rng.standard_normal((256, 1024)).astype(np.float32)
    W = rng.standard_normal((1024, 1024)).astype(np.float32)
    c = np.empty((256, 1024), np.float32)
    z = rng.standard_normal((256, 1024)).astype(np.float32)
    zo = np.empty_like(z)
    cases = {}
    for name in ("relu", "sigmoid"):
        f = getattr(actfast, name)
        cases[f"{name} 1M alone"] = (lambda f=f: f(big, out=out), 20)
        cases[f"{name} after a@W"] = (lambda f=f: (np.matmul(a, W, out=c), f(z, out=zo)), 10)
    cases["a@W alone"] = (lambda: np.matmul(a, W, out=c), 10)
    saved = k._pool_info()["spin_ns"]
    res = {(s, n): [] for s in spins for n in cases}
    try:
        for r in range(args.rounds):
            order = spins[r % len(spins):] + spins[:r % len(spins)]
            for s in order:
                k._set_pool_spin_ns(s * 1000)
                for n, (f, inner) in cases.items():
                    if n.endswith("alone") and not n.startswith("a@W"):
                        # Away from BLAS: OpenBLAS's workers spin ~0.1 s after a call.
                        time.sleep(0.25)
                    f()
                    res[(s, n)].append(best_of(f, inner))
    finally:
        k._set_pool_spin_ns(saved)
    print(f"machine: {platform.machine()} {actfast._config._cpu_model()}, {os.cpu_count()} CPUs, "
          f"threads {actfast.get_num_threads()}, numpy {np.__version__}, actfast {actfast.__version__} "
          f"({actfast._isa}), load {os.getloadavg()[0]:.2f}")
    print("median over rounds of the per-call median, microseconds")
    print(f"{'spin (us)':>10s} " + " ".join(f"{n:>18s}" for n in cases))
    for s in spins:
        print(f"{s:10d} " + " ".join(f"{statistics.median(res[(s, n)]) * 1e6:18.1f}" for n in cases))


if __name__ == "__main__":
    main()
