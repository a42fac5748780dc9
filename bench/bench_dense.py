"""Benchmark of the fused dense layer against NumPy (forward and backward).

Run with the OpenBLAS variables of this machine unset for this command only:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bench_dense.py

Every candidate of one (dtype, shape) is timed in the same rounds, interleaved (the
order rotates each round), and the median over rounds is printed (the minimum too, with
--min). Forward candidates:

  bare        ``x @ W`` into a preallocated array (NumPy's BLAS): the lower bound
  gemm-only   ``actfast.dense(x, W, None, None, out=...)``: our GEMM path, no epilogue
  numpy       ``act(x @ W + b)`` as a user writes it (relu ``np.maximum(z, 0)``,
              sigmoid ``1/(1+np.exp(-z))``, gelu ``0.5*z*(1+scipy.special.erf(z/sqrt 2))``)
  actfast     ``actfast.dense(x, W, b, act)``

Backward candidates (dy given, y or z saved by the forward):

  bare        ``x.T @ dz`` and ``dz @ W.T`` and ``dz.sum(0)`` on a given dz (the two
              GEMMs and the column sum)
  numpy       dz from dy and the saved array as a user writes it, then the same three
  actfast     ``actfast.dense_grad``

Ratios are to ``bare``. The epilogue's cost is ``actfast - gemm-only``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import actfast  # noqa: E402
import scipy  # noqa: E402
import scipy.special  # noqa: E402

SHAPES = [(1, 512, 512), (64, 512, 512), (256, 1024, 1024), (1024, 1024, 1024), (4096, 784, 256)]
ACTS = ["relu", "sigmoid", "gelu", "tanh"]
SQRT2 = math.sqrt(2.0)
INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def numpy_forward(act, x, W, b):
    z = x @ W + b
    if act == "relu":
        return np.maximum(z, 0)
    if act == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if act == "tanh":
        return np.tanh(z)
    return 0.5 * z * (1 + scipy.special.erf(z / np.sqrt(2)))


def numpy_backward(act, dy, x, W, saved):
    if act == "relu":
        dz = dy * (saved > 0)
    elif act == "sigmoid":
        dz = dy * saved * (1 - saved)
    elif act == "tanh":
        dz = dy * (1 - saved * saved)
    else:
        z = saved
        dz = dy * (0.5 * (1 + scipy.special.erf(z / np.sqrt(2))) + z * np.exp(-0.5 * z * z) * INV_SQRT2PI)
    return dz @ W.T, x.T @ dz, dz.sum(axis=0)


def timed(f, inner):
    f()
    best = math.inf
    for _ in range(inner):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def run_rounds(cands, rounds, inner):
    times = {name: [] for name in cands}
    names = list(cands)
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(timed(cands[name], inner))
    return times


def blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed"]
    return [f"{i['internal_api']} {i.get('version')} kernel={i.get('architecture')} threads={i['num_threads']} "
            f"({Path(i['filepath']).name})" for i in threadpool_info()]


def fmt(t):
    return f"{t * 1e3:9.3f}" if t >= 1e-3 else f"{t * 1e6:7.1f}us"


def make_problem(rng, B, n_in, n_out, dt):
    """Inputs of one (batch, n_in, n_out) shape, an output buffer, the FLOP count of the
    GEMM and how many calls make one timed sample."""
    x = rng.standard_normal((B, n_in)).astype(dt)
    W = (rng.standard_normal((n_in, n_out)) / math.sqrt(n_in)).astype(dt)
    b = (rng.standard_normal(n_out) * 0.1).astype(dt)
    dy = rng.standard_normal((B, n_out)).astype(dt)
    flops = 2.0 * B * n_in * n_out
    return x, W, b, dy, np.empty((B, n_out), dt), flops, max(1, min(5, int(2e8 / max(flops, 1))))


def print_rows(acts, med, mn, show_min, gemm_only=None):
    """One line per activation: NumPy and actfast against the bare GEMM time (and the
    epilogue's share, actfast minus our GEMM-only path, for the forward)."""
    bare = med["bare"]
    for a in acts:
        na, fa = med[f"numpy {a}"], med[f"actfast {a}"]
        line = (f"  {a:8s} numpy {fmt(na)} ({na / bare:5.2f}x)   actfast {fmt(fa)} ({fa / bare:5.2f}x)"
                f"   speedup {na / fa:5.2f}x")
        if gemm_only is not None:
            line += f"   epilogue ~{fmt(max(0.0, fa - gemm_only))}"
        if show_min:
            line += f"   [min numpy {fmt(mn[f'numpy {a}'])} actfast {fmt(mn[f'actfast {a}'])}]"
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--acts", default=",".join(ACTS))
    ap.add_argument("--shapes", default=None, help="e.g. 256x1024x1024,1x512x512")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min", action="store_true", help="also print the minimum over rounds")
    ap.add_argument("--no-backward", action="store_true")
    ap.add_argument("--threads", type=int, default=0,
                    help="run actfast and NumPy's BLAS on this many threads")
    args = ap.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        actfast.set_num_threads(args.threads)
        with threadpool_limits(args.threads, user_api="blas"):
            return run(args)
    return run(args)


def run(args):
    shapes = SHAPES if not args.shapes else [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    acts = args.acts.split(",")

    rng = np.random.default_rng(0)
    actfast.dense(np.ones((2, 2)), np.ones((2, 2)))
    print(f"machine: {platform.machine()} {actfast._config._cpu_model()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"actfast {actfast.__version__} (isa {actfast._isa}), threads {actfast.get_num_threads()}")
    for line in blas_info():
        print("threadpool:", line)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if var in os.environ:
            print(f"note: {var}={os.environ[var]} is set")
    print(f"median of {args.rounds} interleaved rounds (each the best of a few calls); ms unless marked; "
          "ratio = time / bare")

    for dtname in args.dtypes.split(","):
        dt = np.dtype(dtname)
        for (B, n_in, n_out) in shapes:
            x, W, b, dy, y, flops, inner = make_problem(rng, B, n_in, n_out, dt)
            out = np.empty((B, n_out), dt)
            fwd = {
                "bare": lambda: np.matmul(x, W, out=y),
                "gemm-only": lambda: actfast.dense(x, W, None, None, out=out),
            }
            for a in acts:
                fwd[f"numpy {a}"] = lambda a=a: numpy_forward(a, x, W, b)
                fwd[f"actfast {a}"] = lambda a=a: actfast.dense(x, W, b, a)
            tf = run_rounds(fwd, args.rounds, inner)
            med = {k: statistics.median(v) for k, v in tf.items()}
            mn = {k: min(v) for k, v in tf.items()}
            bare = med["bare"]
            print(f"\n{dtname} forward (batch, n_in, n_out) = {(B, n_in, n_out)}: bare {fmt(bare)} "
                  f"({flops / bare / 1e9:.0f} GFLOP/s), gemm-only {fmt(med['gemm-only'])} "
                  f"({med['gemm-only'] / bare:.2f}x)" + (f"  [min bare {fmt(mn['bare'])}]" if args.min else ""))
            print_rows(acts, med, mn, args.min, gemm_only=med["gemm-only"])
            if args.no_backward:
                continue
            dz = dy.copy()
            bwd = {"bare": lambda: (x.T @ dz, dz @ W.T, dz.sum(axis=0))}
            for a in acts:
                yv, zv = actfast.dense(x, W, b, a, return_z=True)
                saved = yv if actfast.dense_saves(a) == "y" else zv
                bwd[f"numpy {a}"] = lambda a=a, s=saved: numpy_backward(a, dy, x, W, s)
                bwd[f"actfast {a}"] = lambda a=a, s=saved: actfast.dense_grad(dy, x, W, s, a)
            tb = run_rounds(bwd, args.rounds, inner)
            med = {k: statistics.median(v) for k, v in tb.items()}
            mn = {k: min(v) for k, v in tb.items()}
            bare = med["bare"]
            print(f"{dtname} backward {(B, n_in, n_out)}: bare (2 GEMMs + column sum) {fmt(bare)} "
                  f"({2 * flops / bare / 1e9:.0f} GFLOP/s)" + (f"  [min {fmt(mn['bare'])}]" if args.min else ""))
            print_rows(acts, med, mn, args.min)
            sys.stdout.flush()
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
