"""``python -m actfast demo``: a deep, narrow MLP on scikit-learn's digits, trained with
each activation and with he_normal versus randomized asymmetric initialisation.

What it shows (the claims of the seeds in our users' questions):

* sigmoid's gradients vanish with depth: the first layer's gradient norm is orders of
  magnitude below the last one's, and training stalls;
* deep, narrow ReLU networks die: units that output zero for every sample (the
  dead-unit fraction), and whole runs that never learn (born dead or killed early);
* leaky ReLU and RAI are the remedies: no dead units, or far fewer dead runs.

The data set ships with scikit-learn (no download). Everything runs on actfast: the
layers are :class:`actfast.Dense`, the loss is :func:`actfast.log_softmax` and its
gradient, the diagnostics are :func:`actfast.dead_fraction` and
:func:`actfast.saturation`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu")
INITS = ("he_normal", "rai")


@dataclass
class RunResult:
    """One training run: per-epoch curves and the final figures."""

    activation: str
    init: str
    seed: int
    test_accuracy: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    dead_fraction: list[float] = field(default_factory=list)      # hidden units, all layers
    grad_norms: list[list[float]] = field(default_factory=list)   # per epoch, per layer
    saturation: list[float] = field(default_factory=list)         # sigmoid/tanh units with |f'| < 1e-3


def load_digits_split(seed: int = 0, dtype: Any = np.float32) -> tuple[np.ndarray, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - exercised by the CLI message
        raise ImportError(
            "the demo needs scikit-learn's bundled digits data: pip install 'actfast[demo]'"
        ) from exc
    d = load_digits()
    x = (d.data / 16.0).astype(dtype)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.75 * len(y))
    tr, te = order[:cut], order[cut:]
    return x[tr], y[tr], x[te], y[te]


def build(activation: str, init: str, depth: int, width: int, n_in: int, n_out: int,
          rng: np.random.Generator, dtype: Any = np.float32) -> list[Any]:
    """``depth`` layers with weights: depth - 1 hidden layers of ``width``, a linear output."""
    from .dense import Dense

    layers = []
    fan_in = n_in
    for _ in range(depth - 1):
        layers.append(Dense(fan_in, width, activation=activation, init=init, dtype=dtype, rng=rng))
        fan_in = width
    layers.append(Dense(fan_in, n_out, activation=None, init="glorot_normal", dtype=dtype, rng=rng))
    return layers


def _forward(layers: Sequence[Any], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    hidden = []
    h = x
    for layer in layers:
        h = layer.forward(h)
        hidden.append(h)
    return h, hidden[:-1]


def train_one(activation: str, init: str, data: tuple[np.ndarray, ...], *, depth: int = 10, width: int = 4,
              epochs: int = 30, lr: float = 0.05, batch: int = 32, seed: int = 0) -> RunResult:
    import actfast

    xtr, ytr, xte, yte = data
    rng = np.random.default_rng(seed)
    layers = build(activation, init, depth, width, xtr.shape[1], 10, rng, xtr.dtype)
    res = RunResult(activation, init, seed)
    n = len(ytr)
    for _epoch in range(epochs):
        order = rng.permutation(n)
        loss_sum = 0.0
        norms = np.zeros(len(layers))
        steps = 0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            logits, _ = _forward(layers, xtr[idx])
            logp = actfast.log_softmax(logits)
            m = len(idx)
            loss_sum += float(-logp[np.arange(m), ytr[idx]].sum())
            dlogp = np.zeros_like(logp)
            dlogp[np.arange(m), ytr[idx]] = -1.0 / m
            g = actfast.log_softmax_grad(logits, dlogp)
            for i in range(len(layers) - 1, -1, -1):
                g = layers[i].backward(g, compute_dx=i > 0)
                norms[i] += float(np.linalg.norm(layers[i].dW))
            for layer in layers:
                for k, p in layer.params.items():
                    p -= lr * layer.grads[k]
            steps += 1
        res.train_loss.append(loss_sum / n)
        res.grad_norms.append((norms / max(steps, 1)).tolist())
        logits, hidden = _forward(layers, xte)
        res.test_accuracy.append(float(np.mean(np.argmax(logits, axis=1) == yte)))
        _, hidden_tr = _forward(layers, xtr)
        res.dead_fraction.append(float(np.mean([actfast.dead_fraction(h) for h in hidden_tr])))
        if activation in ("sigmoid", "tanh"):
            zs = [actfast.dense(h_in, layer.W, layer.b, activation=None)
                  for h_in, layer in zip([xtr, *hidden_tr[:-1]], layers[:-1])]
            res.saturation.append(float(np.mean([actfast.saturation(z, activation, 1e-3) for z in zs])))
    return res


def run(activations: Sequence[str] = ACTIVATIONS, inits: Sequence[str] = INITS, *, seeds: int = 5,
        depth: int = 10, width: int = 4, epochs: int = 30, lr: float = 0.05, progress: bool = True) -> list[RunResult]:
    data = load_digits_split()
    results = []
    total = len(activations) * len(inits) * seeds
    t0 = time.perf_counter()
    for a in activations:
        for init in inits:
            for s in range(seeds):
                results.append(train_one(a, init, data, depth=depth, width=width, epochs=epochs, lr=lr, seed=s))
                if progress:
                    done = len(results)
                    bar = "#" * (30 * done // total)
                    print(f"\r[{bar:<30}] {done}/{total} runs  {time.perf_counter() - t0:5.1f} s",
                          end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return results


COLLAPSED = 0.2   # a run whose final test accuracy is below this never learned (10 classes)


def summary_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    rows = []
    keys = sorted({(r.activation, r.init) for r in results}, key=lambda k: (ACTIVATIONS.index(k[0])
                                                                           if k[0] in ACTIVATIONS else 99, k[1]))
    for a, init in keys:
        rs = [r for r in results if r.activation == a and r.init == init]
        acc = [r.test_accuracy[-1] for r in rs]
        first = [r.grad_norms[-1][0] for r in rs]
        last = [r.grad_norms[-1][-1] for r in rs]
        rows.append({
            "activation": a, "init": init, "runs": len(rs),
            "test_accuracy": float(np.mean(acc)), "best": float(np.max(acc)),
            "collapsed": int(sum(x < COLLAPSED for x in acc)),
            "dead_fraction": float(np.mean([r.dead_fraction[-1] for r in rs])),
            "grad_first_over_last": float(np.mean(first) / max(np.mean(last), 1e-30)),
            "saturation": float(np.mean([r.saturation[-1] for r in rs])) if rs[0].saturation else math.nan,
        })
    return rows


def format_table(rows: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    head = ["activation", "init", "test acc (mean)", "best", "runs collapsed", "dead units",
            "|dW| first/last layer", "saturated"]
    lines = []
    for r in rows:
        sat = "-" if math.isnan(r["saturation"]) else f"{100 * r['saturation']:.0f} %"
        lines.append([r["activation"], r["init"], f"{100 * r['test_accuracy']:.1f} %", f"{100 * r['best']:.1f} %",
                      f"{r['collapsed']}/{r['runs']}", f"{100 * r['dead_fraction']:.0f} %",
                      f"{r['grad_first_over_last']:.2g}", sat])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(row) + " |" for row in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in lines])


def plot(results: Sequence[RunResult], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'actfast[plot]'") from exc
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    colors = dict(zip(ACTIVATIONS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for a in dict.fromkeys(r.activation for r in results):
        for init, style in (("he_normal", "-"), ("rai", "--")):
            rs = [r for r in results if r.activation == a and r.init == init]
            if not rs:
                continue
            label = f"{a} / {init}"
            acc = np.mean([r.test_accuracy for r in rs], axis=0)
            dead = np.mean([r.dead_fraction for r in rs], axis=0)
            g0 = np.mean([[g[0] for g in r.grad_norms] for r in rs], axis=0)
            epochs = np.arange(1, len(acc) + 1)
            axes[0].plot(epochs, 100 * acc, style, color=colors.get(a), label=label)
            axes[1].plot(epochs, 100 * dead, style, color=colors.get(a), label=label)
            axes[2].semilogy(epochs, np.maximum(g0, 1e-12), style, color=colors.get(a), label=label)
    axes[0].set(title="test accuracy (mean over seeds)", xlabel="epoch", ylabel="%")
    axes[1].set(title="dead hidden units (zero on every training sample)", xlabel="epoch", ylabel="%")
    axes[2].set(title="gradient norm of the first layer", xlabel="epoch", ylabel="|dW1|")
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("Deep narrow MLP on digits: solid he_normal, dashed RAI")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--activations", default=",".join(ACTIVATIONS), help="comma-separated list")
    p.add_argument("--inits", default=",".join(INITS), help="comma-separated list (he_normal, rai, ...)")
    p.add_argument("--seeds", type=int, default=5, help="runs per configuration")
    p.add_argument("--depth", type=int, default=10, help="layers with weights (the last is linear)")
    p.add_argument("--width", type=int, default=4,
                   help="hidden width; narrow (4) is where ReLU networks die (default 4)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--plot", metavar="PATH.png", help="write the curves as a PNG (needs matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--quick", action="store_true", help="1 seed, 5 epochs (a smoke run)")


def main(args: argparse.Namespace) -> int:
    acts = [a.strip() for a in args.activations.split(",") if a.strip()]
    inits = [i.strip() for i in args.inits.split(",") if i.strip()]
    seeds, epochs = (1, 5) if args.quick else (args.seeds, args.epochs)
    try:
        results = run(acts, inits, seeds=seeds, depth=args.depth, width=args.width, epochs=epochs, lr=args.lr)
    except ImportError as exc:
        print(f"actfast demo: {exc}", file=sys.stderr)
        return 2
    print(f"Deep narrow MLP on digits: {args.depth} layers ({args.depth - 1} hidden of width {args.width}), "
          f"{epochs} epochs of SGD (lr {args.lr}, batch 32), {seeds} seed(s) per row; "
          f"'collapsed' = final test accuracy < {100 * COLLAPSED:.0f} %.")
    print(format_table(summary_rows(results), markdown=args.markdown))
    if args.plot:
        try:
            plot(results, args.plot)
        except ImportError as exc:
            print(f"actfast demo: {exc}", file=sys.stderr)
            return 2
        print(f"plot written to {args.plot}")
    return 0
