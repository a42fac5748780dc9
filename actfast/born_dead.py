"""How likely is a deep, narrow ReLU network to be born dead?

A network is *born dead* when, at initialisation, it is a constant function of its input
(Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and Numerical
Examples", 2019): every gradient with respect to the input is then zero and training
cannot start. The probability grows with depth and falls with width; randomized
asymmetric initialisation (``init="rai"``) lowers it.

How constancy is decided
------------------------
Every trial draws one network and forwards a set of inputs through its hidden ReLU
layers; the network is constant on that set exactly when some hidden layer gives the
same activations for every input (then all later layers, and the output, do too).

* ``bias=False`` and ``d_in=1`` (the exact case): a bias-free ReLU network is positively
  homogeneous, ``f(a x) = a f(x)`` for ``a >= 0``, so it is constant on the real line iff
  it is zero at ``x = 1`` and ``x = -1``. The inputs {-1, 0, 1} decide it exactly.
* Otherwise: the inputs are 0 plus ``n_samples - 1`` points drawn uniformly from
  ``[-1, 1]^d_in``. Constancy on them is necessary for constancy; the estimate can only
  err by calling a network dead that varies away from the samples, which needs the
  network's non-constant region to miss every sample. With the default 64 inputs this
  was not observed in the tests (the estimate matched the exact one where both apply).

All trials are drawn in batches and run by one compiled kernel (one trial per thread
at a time, no Python per trial): 10^5 networks of depth 10 take about a second.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from . import init as _init
from ._dispatch import kernels as _k
from ._threads import get_num_threads

__all__ = ["BornDeadEstimate", "PAPER_DEPTH10", "born_dead_probability"]

# What Lu et al. (2019) report for depth 10 with symmetric initialisation (their Fig. 3
# and text): about 60 % for width 3, above 10 % for width 5, below 1 % for width 10.
PAPER_DEPTH10 = {3: "about 60 %", 5: "above 10 %", 10: "below 1 %"}

INITS = _init.INITIALIZERS


class BornDeadEstimate(NamedTuple):
    """A Monte Carlo estimate: ``probability`` +- ``stderr`` from ``trials`` networks."""

    probability: float
    stderr: float
    trials: int
    dead: int


def _layer_batch(gen: np.random.Generator, init: str, trials: int, fan_in: int, fan_out: int,
                 bias: bool, dtype: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Weights (trials, fan_in, fan_out) and biases (trials, fan_out) or None for one layer,
    drawn by the same code as :mod:`actfast.init`."""
    dt = np.dtype(dtype)
    if init == "rai":
        return _init._rai(fan_in, fan_out, gen, dt, (trials,))
    w = _init._symmetric(init, fan_in, fan_out, gen, dt, (trials, fan_in, fan_out))
    # Symmetric biases, when asked for, come from the layer's weight distribution.
    b = _init._symmetric(init, fan_in, fan_out, gen, dt, (trials, fan_out)) if bias else None
    return w, b


def born_dead_probability(depth: int, width: int, *, d_in: int = 1, init: str = "he_normal",
                          bias: bool = False, trials: int = 10_000, rng: Any = None,
                          n_samples: int = 64, progress: Any = None) -> BornDeadEstimate:
    """Estimate the probability that a ReLU network is born dead (constant at init).

    Parameters
    ----------
    depth : int
        Layers with weights, the linear output layer included: ``depth=10`` is 9 hidden
        ReLU layers of ``width`` units and a linear output of size 1 (the paper's
        "10-layer" network).
    width : int
        Units per hidden layer.
    d_in : int, default 1
        Input dimension.
    init : {"he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "rai"}
        How weights are drawn. "rai" is the randomized asymmetric initialisation of
        Lu et al., which always includes the biases (as in the paper).
    bias : bool, default False
        Draw biases from the weights' distribution (symmetric inits); False sets them
        to zero.
    trials : int, default 10000
        Number of networks drawn.
    rng : None, int or numpy.random.Generator
        Seed or generator (``np.random.default_rng(rng)``).
    n_samples : int, default 64
        Inputs used to test constancy where the exact test does not apply.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch of trials.

    Returns
    -------
    BornDeadEstimate
        ``probability``, its standard error ``sqrt(p (1 - p) / trials)``, ``trials`` and
        the number of dead networks.
    """
    for name, value, low in (("depth", depth, 1), ("width", width, 1), ("d_in", d_in, 1),
                             ("trials", trials, 1), ("n_samples", n_samples, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"born_dead_probability: {name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"born_dead_probability: {name} must be >= {low}, got {value}")
    if init not in INITS:
        raise ValueError(f"born_dead_probability: init must be one of {INITS}, got {init!r}")
    gen = np.random.default_rng(rng)
    dtype = np.float64
    use_bias = bias or init == "rai"
    widths = np.array([d_in] + [width] * (depth - 1) + [1], dtype=np.intp)
    if not use_bias and d_in == 1:
        x = np.array([[-1.0], [0.0], [1.0]], dtype=dtype)       # exact, see the module doc
    else:
        x = np.vstack([np.zeros((1, d_in)), gen.uniform(-1.0, 1.0, size=(n_samples - 1, d_in))]).astype(dtype)
    n_w = int(np.sum(widths[:-1] * widths[1:]))
    n_b = int(np.sum(widths[1:]))
    chunk = int(max(1, min(trials, 4_000_000 // (n_w + n_b))))
    dead = 0
    done = 0
    threads = get_num_threads()
    while done < trials:
        t = min(chunk, trials - done)
        w_all = np.empty((t, n_w), dtype=dtype)
        b_all = np.empty((t, n_b), dtype=dtype) if use_bias else None
        wo = bo = 0
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            w, b = _layer_batch(gen, init, t, int(fan_in), int(fan_out), use_bias, dtype)
            w_all[:, wo:wo + fan_in * fan_out] = w.reshape(t, -1)
            wo += fan_in * fan_out
            if b_all is not None:
                b_all[:, bo:bo + fan_out] = b
                bo += fan_out
        dead += int(np.count_nonzero(_k._born_dead_trials(w_all, b_all, widths, x, threads)))
        done += t
        if progress is not None:
            progress(done, trials)
    p = dead / trials
    return BornDeadEstimate(p, math.sqrt(p * (1.0 - p) / trials), trials, dead)


# --------------------------------------------------------------------------------------
# `python -m actfast born-dead`
# --------------------------------------------------------------------------------------

def add_arguments(p: Any) -> None:
    p.add_argument("--depth", type=int, default=10, help="layers with weights, output layer included (default 10)")
    p.add_argument("--widths", type=int, nargs="+", default=[3, 5, 10], help="hidden widths (default 3 5 10)")
    p.add_argument("--init", nargs="+", default=["he_normal", "rai"], choices=INITS, metavar="INIT",
                   help=f"initialisations, any of {', '.join(INITS)} (default he_normal rai)")
    p.add_argument("--trials", type=int, default=100_000, help="networks drawn per row (default 100000)")
    p.add_argument("--d-in", type=int, default=1, help="input dimension (default 1)")
    p.add_argument("--bias", action="store_true", help="draw biases too (symmetric inits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--no-progress", action="store_true")


def main(args: Any) -> int:
    import sys
    import time

    rows = []
    total = len(args.widths) * len(args.init) * args.trials
    done_before = 0
    t_start = time.perf_counter()

    def progress(done: int, _of: int) -> None:
        if args.no_progress:
            return
        frac = (done_before + done) / total
        print(f"\r[{'#' * int(30 * frac):<30}] {100 * frac:5.1f} %  {time.perf_counter() - t_start:6.1f} s",
              end="", file=sys.stderr, flush=True)

    for width in args.widths:
        for init in args.init:
            t0 = time.perf_counter()
            est = born_dead_probability(args.depth, width, d_in=args.d_in, init=init, bias=args.bias,
                                        trials=args.trials, rng=args.seed, progress=progress)
            rows.append((width, init, est, time.perf_counter() - t0))
            done_before += args.trials
    if not args.no_progress:
        print(file=sys.stderr)
    exact = not args.bias and args.d_in == 1
    print(f"Born-dead probability, depth {args.depth} ({args.depth - 1} hidden ReLU layers + linear output), "
          f"d_in {args.d_in}, {'biases drawn' if args.bias else 'no biases'} (rai always draws them); "
          f"constancy decided {'exactly for symmetric inits' if exact else 'on 64 sampled inputs'}.")
    head = ["width", "init", "P(born dead)", "± s.e.", "trials", "paper (depth 10)", "time"]
    body = []
    for width, init, est, secs in rows:
        paper = PAPER_DEPTH10.get(width, "-") if (args.depth == 10 and init != "rai") else "-"
        body.append([str(width), init, f"{100 * est.probability:.3f} %", f"{100 * est.stderr:.3f} %",
                     f"{est.trials:,}", paper, f"{secs:.2f} s"])
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in body:
            print("| " + " | ".join(r) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
        for r in body:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    return 0
