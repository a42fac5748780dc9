"""How long should an idle pool helper spin before it sleeps? (src/actfast_pool.h)

For each spin time, measured side by side in one run (rounds interleaved, medians of
per-call medians, microseconds):

* alone: back-to-back ``actfast.sigmoid`` and ``actfast.relu`` on 1M float32, 0.2 s after
  anything else ran (a helper that is still awake joins at once; one that sleeps must be
  woken, slowly where the idle vCPU of a virtual machine halts);
* after torch: the same right after a batch of PyTorch calls, whose OpenMP team then
  spins on the other core (as in ``actfast bench``, which interleaves implementations);
* in the loop: NumPy's ``a @ W`` (256x1024 @ 1024x1024, multi-threaded OpenBLAS, whose
  workers then spin ~0.1 s) followed by the kernel on a (256, 1024) array, where a helper
  that keeps spinning takes a core from the next BLAS call; and the matmul alone.

    python bench/pool_spin.py [--spins-us 0,20,50,100] [--rounds 8]
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


def median_call(f, n):
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spins-us", default="0,20,50,100")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    spins = [int(v) for v in args.spins_us.split(",")]
    try:
        import torch
        torch.set_num_threads(actfast.get_num_threads())
    except ImportError:
        torch = None
    k = _dispatch.kernels
    rng = np.random.default_rng(0)
    big = rng.standard_normal(1 << 20).astype(np.float32)
    out = np.empty_like(big)
    a = rng.standard_normal((256, 1024)).astype(np.float32)
    W = rng.standard_normal((1024, 1024)).astype(np.float32)
    c = np.empty((256, 1024), np.float32)
    z = rng.standard_normal((256, 1024)).astype(np.float32)
    zo = np.empty_like(z)
    tb = torch.from_numpy(big) if torch else None

    def round_of(res, s):
        time.sleep(0.2)
        res[(s, "sigmoid alone")].append(median_call(lambda: actfast.sigmoid(big, out=out), 15))
        res[(s, "relu alone")].append(median_call(lambda: actfast.relu(big, out=out), 15))
        if torch:
            for _ in range(5):
                torch.sigmoid(tb)
            res[(s, "sigmoid after torch")].append(median_call(lambda: actfast.sigmoid(big, out=out), 10))
            for _ in range(10):
                torch.relu(tb)
            res[(s, "relu after torch")].append(median_call(lambda: actfast.relu(big, out=out), 10))
        res[(s, "a@W + sigmoid")].append(median_call(lambda: (np.matmul(a, W, out=c), actfast.sigmoid(z, out=zo)), 10))
        res[(s, "a@W + relu")].append(median_call(lambda: (np.matmul(a, W, out=c), actfast.relu(z, out=zo)), 10))
        res[(s, "a@W alone")].append(median_call(lambda: np.matmul(a, W, out=c), 10))

    cases = ["sigmoid alone", "relu alone"] + (["sigmoid after torch", "relu after torch"] if torch else []) \
        + ["a@W + sigmoid", "a@W + relu", "a@W alone"]
    res = {(s, n): [] for s in spins for n in cases}
    saved = k._pool_info()["spin_ns"]
    try:
        for r in range(args.rounds):
            for s in spins[r % len(spins):] + spins[:r % len(spins)]:
                k._set_pool_spin_ns(s * 1000)
                round_of(res, s)
    finally:
        k._set_pool_spin_ns(saved)
    print(f"machine: {platform.machine()} {actfast._config._cpu_model()}, {os.cpu_count()} CPUs, "
          f"threads {actfast.get_num_threads()}, numpy {np.__version__}, actfast {actfast.__version__} "
          f"({actfast._isa}){', torch ' + torch.__version__ if torch else ''}, load {os.getloadavg()[0]:.2f}")
    print("median over rounds of the per-call median, microseconds")
    print(f"{'spin (us)':>10s} " + " ".join(f"{n:>20s}" for n in cases))
    for s in spins:
        print(f"{s:10d} " + " ".join(f"{statistics.median(res[(s, n)]) * 1e6:20.0f}" for n in cases))


if __name__ == "__main__":
    main()
