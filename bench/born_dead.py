"""Speed of actfast.born_dead_probability against a plain NumPy loop doing the same estimate.

    python bench/born_dead.py [--trials 100000] [--loop-trials 5000] [--depth 10] [--widths 3 5 10]

The NumPy loop is what a user would write: one network at a time, its layers drawn with
the same distributions, the inputs {-1, 0, 1} forwarded with ``np.maximum(h @ W, 0)``,
dead when the last hidden layer is the same for every input. Its time is measured on
``--loop-trials`` networks and reported per 10^5 networks; both estimates are printed so
that they can be compared.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

import actfast


def numpy_loop(depth: int, width: int, trials: int, seed: int) -> float:
    gen = np.random.default_rng(seed)
    x = np.array([[-1.0], [0.0], [1.0]])
    dead = 0
    for _ in range(trials):
        h = x
        fan_in = 1
        for _layer in range(depth - 1):
            w = gen.standard_normal((fan_in, width)) * math.sqrt(2.0 / fan_in)
            h = np.maximum(h @ w, 0.0)
            fan_in = width
            if np.all(h == h[0]):
                dead += 1
                break
    return dead / trials


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=100_000)
    p.add_argument("--loop-trials", type=int, default=5_000)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--widths", type=int, nargs="+", default=[3, 5, 10])
    args = p.parse_args()
    print(f"actfast {actfast.__version__}, NumPy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} cores, actfast threads {actfast.get_num_threads()}, isa {actfast._isa}")
    print(f"depth {args.depth}, he_normal, no bias, d_in 1 (the exact test)\n")
    print("| width | actfast: P (± s.e.) | time per 1e5 | NumPy loop: P | time per 1e5 | speed-up |")
    print("|---|---|---|---|---|---|")
    for width in args.widths:
        t0 = time.perf_counter()
        est = actfast.born_dead_probability(args.depth, width, trials=args.trials, rng=1)
        t_fast = (time.perf_counter() - t0) * 1e5 / args.trials
        t0 = time.perf_counter()
        p_loop = numpy_loop(args.depth, width, args.loop_trials, seed=2)
        t_loop = (time.perf_counter() - t0) * 1e5 / args.loop_trials
        print(f"| {width} | {100 * est.probability:.2f} % (± {100 * est.stderr:.2f}) | {t_fast:.2f} s | "
              f"{100 * p_loop:.1f} % ({args.loop_trials} trials) | {t_loop:.1f} s | {t_loop / t_fast:.0f}x |")


if __name__ == "__main__":
    main()
