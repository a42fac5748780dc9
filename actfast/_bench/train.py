"""``actfast bench --scenario train``: one SGD step of an MLP, four ways, and scikit-learn.

Why
---
The elementwise scenario times an activation alone. In training it runs between
matrix products, and a step's time is mostly the GEMMs: this scenario shows what is
left of actfast's advantage in a whole step, forward and backward, at training batch
sizes.

The step
--------
An MLP 784-512-512-10 in float32 (hidden layers with the activation, the last layer
linear), softmax cross-entropy on random data (``x ~ N(0, 1)``, random labels, seed 0),
one SGD step: forward, loss gradient ``(softmax(logits) - onehot) / batch``, backward,
and the in-place update ``p -= lr * grad`` with lr 1e-3. Timed for every
``--batches`` and ``--activations``, four ways:

``numpy``
    ``z = h @ W + b`` and the activation as a NumPy user writes it (the elementwise
    scenario's expressions: ``np.maximum(z, 0)``, ``1/(1+np.exp(-z))``, ``np.tanh``,
    ``0.5*z*(1+scipy.special.erf(z/sqrt(2)))``, ``z/(1+np.exp(-z))``); backward
    ``dz = dy * f'(z)`` (again the elementwise scenario's NumPy gradient expressions),
    ``dW = h.T @ dz``, ``db = dz.sum(0)``, ``dh = dz @ W.T``.
``numpy+actfast``
    The same NumPy code with actfast's activation ``actfast.NAME(z)``, its gradient
    ``actfast.NAME_grad(z, dy, out=dy)`` (from ``z``, for every activation: the
    ``*_grad_from_output`` forms are not used) and ``actfast.softmax`` for the loss.
``actfast.Dense``
    Every layer an ``actfast.Dense(n_in, n_out, activation, rng=seed + i)`` (the last
    one ``activation=None``): ``forward``, ``backward`` (``compute_dx=False`` for the
    first layer), then ``layer.W -= lr * layer.dW`` and ``layer.b -= lr * layer.db``.
    Its initial weights are every way's initial weights.
``torch`` (when installed, unless ``--no-torch``)
    ``nn.Sequential`` of ``nn.Linear`` and the activation module (``nn.GELU()``
    exact), ``F.cross_entropy``, autograd ``loss.backward()``, the update under
    ``torch.no_grad()``; ``torch.set_num_threads`` is actfast's thread count.
    Interleaving costs torch more than the others: its OpenMP threads start while
    OpenBLAS's threads still spin after the previous way's matmuls (on 2 cores, relu
    batch 256 measured 9.3 ms per step alone and 23 ms interleaved; NumPy's step 9.3
    and 11.7 ms), so read its column as an upper bound.

Correctness first: from the same start, each way takes one step with lr = 1 and its
parameter updates ``p_after - p_before`` are compared with a float64 reference step
(the elementwise scenario's float64 reference formulas for the activation and its
derivative): every element within ``rtol * |ref| + atol * max|ref|`` of its parameter
(rtol 1e-3, atol 1e-4; the ``atol`` part covers float32 sums of batch-many terms that
cancel). lr = 1 only for the check: with lr 1e-3 the update of a weight is of the
order of its float32 rounding, where a wrong gradient would hide. A way that fails is
reported and not timed. The ways are timed interleaved (``time_interleaved``: order
rotated every round, each sample at least 3 steps and ``--min-batch-ms``), median and
IQR over ``--rounds`` rounds; reported in ms per step and as a time ratio to
``numpy`` (< 1: faster).

scikit-learn (when installed, unless ``--no-sklearn``)
-----------------------------------------------------
``MLPClassifier(hidden_layer_sizes=(256, 256), batch_size=256, max_iter=3, tol=0,
n_iter_no_change=1000, random_state=0, solver="adam")`` fitted on
``make_classification(20000, 128, n_informative=64, n_classes=10, random_state=0)``
(float64, scikit-learn's default), for the activations of ``--activations`` (sigmoid
being logistic): plain, and under ``actfast.sklearn.patched()`` (scikit-learn's
``ACTIVATIONS``/``DERIVATIVES`` on actfast's in-place kernels, derivatives from the
output; gelu and silu, which scikit-learn lacks, run patched only). Fits are timed
interleaved (``--rounds`` each); reported in s per fit with the training accuracy of
both (equal but for rounding).

JSON records: ``part`` ("step" or "sklearn"), ``activation``, ``batch`` (null for
sklearn), ``impl``, ``median_s``, ``q1_s``, ``q3_s``, ``min_s``, ``n_samples``,
``number``, ``correct``, ``max_rel_err`` (step: max |update - reference| / max|reference|
over the parameters), ``error``; sklearn records add ``train_accuracy`` and ``patched``
(the ``_base`` entries replaced).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .cases import OPS, _module_version
from .report import (_emit, _fmt_time, _loadavg, common_header, markdown_table, metadata, plot_title, pyplot,
                     save_figure, text_table)
from .timing import Progress, _blas_limiter, time_interleaved

LAYERS = (784, 512, 512, 10)
BATCHES = (64, 256, 1024)
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "silu")
LR = 1e-3
CHECK_LR = 1.0
TRAIN_TOL = (1e-3, 1e-4)     # rtol, atol (relative to the largest reference update)
SEED = 0
ROUNDS = 5
MIN_BATCH_S = 0.05
MIN_STEPS = 3                # steps per timed sample, at least
IMPL_ORDER = ("numpy", "numpy+actfast", "actfast.Dense", "torch")
# ours -> scikit-learn's; the names scikit-learn has not are those actfast.sklearn adds.
SKLEARN_NAMES = {"relu": "relu", "sigmoid": "logistic", "tanh": "tanh", "gelu": "gelu", "silu": "silu",
                 "leaky_relu": "leaky_relu", "elu": "elu"}
SKLEARN_OWN = ("relu", "logistic", "tanh")
SKLEARN_DATA = {"n_samples": 20000, "n_features": 128, "n_informative": 64, "n_classes": 10}
SKLEARN_MODEL = {"hidden_layer_sizes": (256, 256), "batch_size": 256, "max_iter": 3}


# --------------------------------------------------------------------------------------
# The problem and the four ways
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Problem:
    """One batch and the initial parameters ``[(W, b), ...]`` (W of shape (n_in, n_out))."""

    activation: str
    x: np.ndarray
    labels: np.ndarray
    onehot: np.ndarray
    init: list[tuple[np.ndarray, np.ndarray]]

    @property
    def batch(self) -> int:
        return int(self.x.shape[0])


def make_problem(activation: str, batch: int, layers: Sequence[int] = LAYERS, seed: int = SEED) -> Problem:
    """Random data and the initial weights of ``actfast.Dense`` layers (``rng=seed + i``)."""
    import actfast
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layers[0]), dtype=np.float32)
    labels = rng.integers(0, layers[-1], batch)
    onehot = np.zeros((batch, layers[-1]), np.float32)
    onehot[np.arange(batch), labels] = 1
    init = []
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:])):
        last = i == len(layers) - 2
        layer = actfast.Dense(n_in, n_out, None if last else activation, rng=seed + i)
        init.append((layer.W.copy(), layer.b.copy()))
    return Problem(activation, x, labels, onehot, init)


class NumpyMLP:
    """The step in NumPy code; ``act(z)``, ``act_grad(z, dy)`` (returns ``dy * f'(z)``) and
    ``softmax`` are the only parts in which the numpy and numpy+actfast ways differ."""

    def __init__(self, problem: Problem, lr: float, act: Callable, act_grad: Callable, softmax: Callable):
        self.layers = [(W.copy(), b.copy()) for W, b in problem.init]
        self.x, self.onehot, self.batch, self.lr = problem.x, problem.onehot, problem.batch, lr
        self.act, self.act_grad, self.softmax = act, act_grad, softmax

    def params(self) -> list[np.ndarray]:
        return [p for W, b in self.layers for p in (W, b)]

    def step(self) -> None:
        n, lr = len(self.layers), self.lr
        hs, zs = [self.x], []
        h = self.x
        for i, (W, b) in enumerate(self.layers):
            z = h @ W + b
            if i < n - 1:
                zs.append(z)
                h = self.act(z)
            else:
                h = z
            hs.append(h)
        dy = (self.softmax(h) - self.onehot) / self.batch
        for i in range(n - 1, -1, -1):
            W, b = self.layers[i]
            dz = dy if i == n - 1 else self.act_grad(zs[i], dy)
            dW = hs[i].T @ dz
            db = dz.sum(axis=0)
            if i:
                dy = dz @ W.T
            W -= lr * dW
            b -= lr * db


def numpy_mlp(problem: Problem, lr: float) -> NumpyMLP:
    act = problem.activation
    fwd, grad, smax = OPS[(act, "forward")].numpy, OPS[(act, "grad")].numpy, OPS[("softmax", "forward")].numpy
    return NumpyMLP(problem, lr, lambda z: fwd(z, None, None), lambda z, dy: grad(z, dy, None),
                    lambda logits: smax(logits, None, None))


def numpy_actfast_mlp(problem: Problem, lr: float) -> NumpyMLP:
    import actfast
    fwd, grad = getattr(actfast, problem.activation), getattr(actfast, problem.activation + "_grad")
    return NumpyMLP(problem, lr, fwd, lambda z, dy: grad(z, dy, out=dy), actfast.softmax)


class DenseMLP:
    """The step with ``actfast.Dense`` layers."""

    def __init__(self, problem: Problem, lr: float):
        import actfast
        self.actfast = actfast
        self.layers = []
        n = len(problem.init)
        for i, (W, b) in enumerate(problem.init):
            layer = actfast.Dense(W.shape[0], W.shape[1], None if i == n - 1 else problem.activation, rng=SEED + i)
            layer.W[...] = W
            layer.b[...] = b
            self.layers.append(layer)
        self.x, self.onehot, self.batch, self.lr = problem.x, problem.onehot, problem.batch, lr

    def params(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in (layer.W, layer.b)]

    def step(self) -> None:
        lr = self.lr
        h = self.x
        for layer in self.layers:
            h = layer.forward(h)
        dy = (self.actfast.softmax(h) - self.onehot) / self.batch
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            dy = layer.backward(dy, compute_dx=i > 0)
            layer.W -= lr * layer.dW
            layer.b -= lr * layer.db


TORCH_MODULES = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU", "silu": "SiLU"}


class TorchMLP:
    """The step in PyTorch: ``nn.Sequential``, autograd, a manual SGD update."""

    def __init__(self, problem: Problem, lr: float):
        import torch
        self.torch = torch
        mods = []
        n = len(problem.init)
        for i, (W, b) in enumerate(problem.init):
            lin = torch.nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T))
                lin.bias.copy_(torch.from_numpy(b))
            mods.append(lin)
            if i < n - 1:
                act = getattr(torch.nn, TORCH_MODULES[problem.activation])
                mods.append(act(approximate="none") if problem.activation == "gelu" else act())
        self.model = torch.nn.Sequential(*mods)
        self.linears = [m for m in mods if isinstance(m, torch.nn.Linear)]
        self.x, self.labels, self.lr = torch.from_numpy(problem.x), torch.from_numpy(problem.labels), lr

    def params(self) -> list[np.ndarray]:
        return [p for lin in self.linears for p in (lin.weight.detach().numpy().T, lin.bias.detach().numpy())]

    def step(self) -> None:
        torch, lr = self.torch, self.lr
        self.model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(self.x), self.labels)
        loss.backward()
        with torch.no_grad():
            for p in self.model.parameters():
                p -= lr * p.grad


@dataclasses.dataclass
class Way:
    """A way to take the step: ``build(problem, lr)`` returns an object with ``step()``
    and ``params()`` (the float32 parameters W1, b1, W2, ... as arrays, W of shape
    (n_in, n_out)). Tests inject deliberately wrong ones."""

    name: str
    build: Callable[[Problem, float], Any]


def default_ways(no_torch: bool = False) -> list[Way]:
    ways = [Way("numpy", numpy_mlp), Way("numpy+actfast", numpy_actfast_mlp), Way("actfast.Dense", DenseMLP)]
    if not no_torch and _module_version("torch"):
        ways.append(Way("torch", TorchMLP))
    return ways


# --------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------

def reference_updates(problem: Problem, lr: float = CHECK_LR) -> list[np.ndarray]:
    """The updates ``-lr * grad`` of one step in float64, from the elementwise scenario's
    float64 reference formulas of the activation and its derivative."""
    import scipy.special
    f, g = OPS[(problem.activation, "forward")].ref, OPS[(problem.activation, "grad")].ref
    layers = [(W.astype(np.float64), b.astype(np.float64)) for W, b in problem.init]
    n = len(layers)
    hs, zs = [problem.x.astype(np.float64)], []
    for i, (W, b) in enumerate(layers):
        z = hs[-1] @ W + b
        zs.append(z)
        hs.append(f(z, None) if i < n - 1 else z)
    dy = (scipy.special.softmax(hs[-1], axis=1) - problem.onehot) / problem.batch
    updates: list[np.ndarray] = []
    for i in range(n - 1, -1, -1):
        dz = dy if i == n - 1 else g(zs[i], dy)
        updates[:0] = [-lr * (hs[i].T @ dz), -lr * dz.sum(axis=0)]
        dy = dz @ layers[i][0].T
    return updates


def check_step(model: Any, problem: Problem, ref: list[np.ndarray], tol: tuple[float, float] = TRAIN_TOL
               ) -> tuple[bool, float | None, str | None]:
    """Take one step (the model was built with CHECK_LR) and compare its updates with ``ref``."""
    before = [np.array(p, np.float64) for W, b in problem.init for p in (W, b)]
    with np.errstate(all="ignore"):
        model.step()
    after = [np.asarray(p) for p in model.params()]
    if len(after) != len(ref):
        return False, None, f"wrong result: {len(after)} parameters, expected {len(ref)}"
    rtol, atol = tol
    worst = 0.0
    for k, (p, p0, r) in enumerate(zip(after, before, ref)):
        name = f"{'Wb'[k % 2]}{k // 2 + 1}"
        if p.shape != r.shape:
            return False, None, f"shape {p.shape} of {name}, expected {r.shape}"
        if p.dtype != np.float32:
            return False, None, f"wrong dtype {p.dtype} of {name} (float32 expected)"
        scale = float(np.abs(r).max()) or 1.0
        err = np.abs((p.astype(np.float64) - p0) - r)
        rel = float(err.max()) / scale if err.size else 0.0
        worst = max(worst, rel) if math.isfinite(rel) else math.inf
        bad = ~(err <= rtol * np.abs(r) + atol * scale)
        if bad.any():
            return False, worst, (f"wrong result: {int(bad.sum())} of {bad.size} elements of the update of "
                                  f"{name} off (max error {rel:.3g} of its largest element, rtol {rtol:g})")
    return True, worst, None


# --------------------------------------------------------------------------------------
# scikit-learn
# --------------------------------------------------------------------------------------

def measure_sklearn(names: Sequence[str], *, rounds: int, progress: Progress | None = None,
                    data: dict[str, int] | None = None, model: dict[str, Any] | None = None
                    ) -> list[dict[str, Any]]:
    """Time MLPClassifier.fit plain and with actfast's activations, per activation
    (scikit-learn's names: relu, logistic, tanh). ``data`` and ``model`` override
    SKLEARN_DATA and SKLEARN_MODEL (the tests make them tiny)."""
    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from .. import sklearn as actfast_sklearn
    d = {**SKLEARN_DATA, **(data or {})}
    m = {**SKLEARN_MODEL, **(model or {})}
    X, y = make_classification(d["n_samples"], d["n_features"], n_informative=d["n_informative"],
                               n_classes=d["n_classes"], random_state=0)
    records = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name in names:
            fitted: dict[str, Any] = {}
            patched: list[str] = []

            def fit(impl, name=name, fitted=fitted, patched=patched):
                est = MLPClassifier(activation=name, tol=0, n_iter_no_change=1000, random_state=0, solver="adam",
                                    **m)
                if impl == "sklearn":
                    fitted[impl] = est.fit(X, y)
                    return
                with actfast_sklearn.patched():
                    patched[:] = [f"ACTIVATIONS[{name!r}]", f"DERIVATIVES[{name!r}]", "AdamOptimizer.update_params",
                                  "BaseMultilayerPerceptron._forward_pass",
                                  "BaseMultilayerPerceptron._compute_loss_grad", "_safe_indexing"]
                    fitted[impl] = est.fit(X, y)

            def accuracy(impl, name=name, fitted=fitted):
                with (actfast_sklearn.patched() if impl == "sklearn+actfast" else contextlib.nullcontext()):
                    return float(fitted[impl].score(X, y))

            # scikit-learn alone has only its own activations; the others run patched only.
            impls = ("sklearn", "sklearn+actfast") if name in SKLEARN_OWN else ("sklearn+actfast",)
            recs = {i: {"part": "sklearn", "activation": name, "batch": None, "impl": i, "median_s": None,
                        "q1_s": None, "q3_s": None, "min_s": None, "n_samples": 0, "number": 0, "correct": False,
                        "max_rel_err": None, "error": None, "train_accuracy": None, "patched": []}
                    for i in impls}
            calls = []
            for i in impls:
                def call(i=i):
                    fit(i)
                try:
                    call()             # a warm-up that must not raise
                except Exception as exc:  # noqa: BLE001 - report, don't crash the whole run
                    recs[i]["error"] = f"raised {type(exc).__name__}: {exc}"
                    continue
                recs[i]["correct"] = True
                calls.append((i, call))
            if calls:
                stats = time_interleaved([c for _, c in calls], n_samples=rounds, min_batch_s=0.0,
                                         calibrate=False)
                for (i, _), (med, q1, q3, n, number, fastest) in zip(calls, stats):
                    recs[i].update(median_s=med, q1_s=q1, q3_s=q3, min_s=fastest, n_samples=n, number=number,
                                   train_accuracy=accuracy(i))
            recs["sklearn+actfast"]["patched"] = list(patched)
            records += recs.values()
            if progress:
                progress.step(f"sklearn {name}")
    return records


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------

def measure_step(problem: Problem, ways: Sequence[Way], *, rounds: int, min_batch_s: float
                 ) -> list[dict[str, Any]]:
    """Check every way on one (activation, batch), then time those that passed."""
    ref = reference_updates(problem)
    records, ready = [], []
    for way in ways:
        rec: dict[str, Any] = {"part": "step", "activation": problem.activation, "batch": problem.batch,
                               "impl": way.name, "median_s": None, "q1_s": None, "q3_s": None, "min_s": None,
                               "n_samples": 0, "number": 0, "correct": False, "max_rel_err": None, "error": None}
        records.append(rec)
        try:
            ok, err, why = check_step(way.build(problem, CHECK_LR), problem, ref)
            model = way.build(problem, LR) if ok else None
        except Exception as exc:  # noqa: BLE001 - report, don't crash the whole run
            ok, err, why = False, None, f"raised {type(exc).__name__}: {exc}"
        rec.update(correct=ok, max_rel_err=err, error=why)
        if ok:
            ready.append((rec, model))
    if ready:
        with np.errstate(all="ignore"):
            stats = time_interleaved([m.step for _, m in ready], n_samples=rounds, min_batch_s=min_batch_s,
                                     min_number=MIN_STEPS)
        for (rec, _), (med, q1, q3, n, number, fastest) in zip(ready, stats):
            rec.update(median_s=med, q1_s=q1, q3_s=q3, min_s=fastest, n_samples=n, number=number)
    return records


def _names(text: str | None, default: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()] if text else list(default)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise SystemExit(f"actfast bench --scenario train: unknown {what} {unknown}; choose from {', '.join(allowed)}")
    return names


def run(args: argparse.Namespace, ways: Sequence[Way] | None = None, stream=None) -> dict[str, Any]:
    """Run the train scenario; print the tables and return ``{"meta": ..., "records": [...]}``."""
    import actfast
    stream = stream or sys.stdout
    activations = _names(args.activations, ACTIVATIONS, ACTIVATIONS, "activation(s)")
    try:
        batches = [int(float(b)) for b in (args.batches.split(",") if args.batches else BATCHES) if str(b).strip()]
    except ValueError:
        raise SystemExit(f"actfast bench: bad --batches {args.batches!r}") from None
    if not batches or min(batches) < 1:
        raise SystemExit(f"actfast bench: bad --batches {args.batches!r}")
    rounds = args.rounds or args.samples or ROUNDS
    min_batch_s = args.min_batch_ms / 1e3 if args.min_batch_ms is not None else MIN_BATCH_S
    sk_names = [] if args.no_sklearn or not _module_version("sklearn") else \
        [SKLEARN_NAMES[a] for a in activations if a in SKLEARN_NAMES]
    if ways is None:
        ways = default_ways(no_torch=args.no_torch)
    names = [w.name for w in ways]

    with (actfast.num_threads(args.threads) if args.threads else contextlib.nullcontext()), \
            _blas_limiter(args.threads), _torch_threads("torch" in names):
        threads = actfast.get_num_threads()
        settings = {"rounds": rounds, "min_batch_s": min_batch_s, "min_steps": MIN_STEPS, "layers": list(LAYERS),
                    "lr": LR, "batches": batches, "activations": activations, "impls": names,
                    "sklearn": sk_names, "sklearn_fit": {"data": dict(SKLEARN_DATA), "model": dict(SKLEARN_MODEL)}}
        t_start = time.perf_counter()
        meta = metadata(args, threads, settings)
        meta["scenario"] = "train"
        meta["versions"]["numexpr"] = None
        meta["versions"]["sklearn"] = _module_version("sklearn") if sk_names else None
        meta["tolerances"] = {"update": {"rtol": TRAIN_TOL[0], "atol": TRAIN_TOL[1], "check_lr": CHECK_LR}}
        progress = Progress(len(activations) * len(batches) + len(sk_names), enabled=not args.no_progress)
        records: list[dict[str, Any]] = []
        for act in activations:
            for batch in batches:
                records += measure_step(make_problem(act, batch), ways, rounds=rounds, min_batch_s=min_batch_s)
                progress.step(f"{act} batch {batch}")
        if sk_names:
            records += measure_sklearn(sk_names, rounds=rounds, progress=progress)
    meta["loadavg_end"] = _loadavg()
    meta["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    result = {"meta": meta, "records": records}
    emit(result, args, stream)
    return result


@contextlib.contextmanager
def _torch_threads(used: bool) -> Iterator[None]:
    """torch.set_num_threads(actfast's count) meanwhile, when torch races."""
    if not used:
        yield
        return
    import actfast
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(actfast.get_num_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

def _ratio(rec: dict | None, base: dict | None) -> str:
    """Time ratio ``rec / base`` (< 1: faster than base)."""
    if not rec or not base or not rec["correct"] or not base["correct"] or not base["median_s"]:
        return "-"
    return f"{rec['median_s'] / base['median_s']:.2f}"


def _impls(records) -> list[str]:
    present = list(dict.fromkeys(r["impl"] for r in records))
    return [i for i in IMPL_ORDER if i in present] + [i for i in present if i not in IMPL_ORDER]


def _step_table(records) -> tuple[list[str], list[list[str]]]:
    steps = [r for r in records if r["part"] == "step"]
    impls = _impls(steps)
    by: dict[tuple, dict[str, dict]] = {}
    for r in steps:
        by.setdefault((r["activation"], r["batch"]), {})[r["impl"]] = r
    cols = ["activation", "batch"] + impls + [f"{i} / numpy" for i in impls if i != "numpy"]
    rows = [[act, f"{batch:,}"] + [_fmt_time(g.get(i), 1e3) for i in impls]
            + [_ratio(g.get(i), g.get("numpy")) for i in impls if i != "numpy"]
            for (act, batch), g in by.items()]
    return cols, rows


def _sklearn_table(records) -> tuple[list[str], list[list[str]]]:
    by: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["part"] == "sklearn":
            by.setdefault(r["activation"], {})[r["impl"]] = r
    cols = ["activation", "sklearn", "sklearn+actfast", "ratio", "vs sklearn relu", "accuracy sklearn",
            "accuracy +actfast"]
    relu = by.get("relu", {}).get("sklearn")
    rows = []
    for act, g in by.items():
        plain, ours = g.get("sklearn"), g.get("sklearn+actfast")
        acc = [f"{r['train_accuracy']:.4f}" if r and r["train_accuracy"] is not None else "-" for r in (plain, ours)]
        rows.append([act, _fmt_time(plain, 1.0), _fmt_time(ours, 1.0), _ratio(ours, plain), _ratio(ours, relu), *acc])
    return cols, rows


def _header(meta: dict[str, Any]) -> list[str]:
    st = meta["settings"]
    return common_header(
        meta,
        f"threads: {meta['threads']} (actfast, BLAS{', torch' if 'torch' in st['impls'] else ''})",
        f"timing: median of {st['rounds']} rounds, each sample >= {st['min_steps']} steps and "
        f">= {st['min_batch_s'] * 1e3:g} ms, ways interleaved; ±: interquartile range / median")


def _titles(meta: dict[str, Any]) -> tuple[str, str]:
    st = meta["settings"]
    layers = "-".join(map(str, st["layers"]))
    fit = st.get("sklearn_fit") or {"data": SKLEARN_DATA, "model": SKLEARN_MODEL}
    d, m = fit["data"], fit["model"]
    return (f"MLP {layers} float32, one SGD step (lr {st['lr']:g}, softmax cross-entropy): ms per step "
            "(median ±IQR%); WAY / numpy: time ratio (< 1: faster)",
            f"scikit-learn MLPClassifier{tuple(m['hidden_layer_sizes'])}, adam, batch {m['batch_size']}, "
            f"{m['max_iter']} epochs on make_classification({d['n_samples']}, {d['n_features']}) float64: "
            "s per fit; ratio: +actfast / plain")


TORCH_NOTE = ("torch: interleaved with the NumPy ways, its threads start while OpenBLAS's still spin after "
              "their matmuls; its times are an upper bound (alone it can be ~2x faster)")


def _failures(records) -> list[str]:
    return [f"{r['impl']} {r['activation']}" + (f" batch {r['batch']:,}" if r["batch"] else "") + f": {r['error']}"
            for r in records if not r["correct"]]


def format_text(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    step_title, sk_title = _titles(meta)
    out = _header(meta)
    if any(r["part"] == "step" for r in records):
        out += ["", f"== {step_title}", *text_table(*_step_table(records))]
    if any(r["part"] == "sklearn" for r in records):
        out += ["", f"== {sk_title}", *text_table(*_sklearn_table(records))]
    out.append("")
    wrong = _failures(records)
    if wrong:
        out.append(f"EXCLUDED ({len(wrong)}): failed the check against the float64 reference step, or raised")
        out += ["  " + w for w in wrong]
    else:
        tol = meta["tolerances"]["update"]
        out.append(f"every way's update matched the float64 reference step (lr {tol['check_lr']:g}; "
                   f"rtol {tol['rtol']:g}, atol {tol['atol']:g} of the largest element)")
    if any(r["impl"] == "torch" for r in records):
        out.append(TORCH_NOTE)
    return "\n".join(out)


def format_markdown(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    step_title, sk_title = _titles(meta)
    out = ["```text", *_header(meta), "```", ""]
    if any(r["part"] == "step" for r in records):
        out += [f"**{step_title}**", "", *markdown_table(*_step_table(records)), ""]
    if any(r["part"] == "sklearn" for r in records):
        out += [f"**{sk_title}**", "", *markdown_table(*_sklearn_table(records)), ""]
    out += [f"- excluded: {w}" for w in _failures(records)]
    if any(r["impl"] == "torch" for r in records):
        out.append(f"- {TORCH_NOTE}")
    return "\n".join(out)


def plot(result: dict[str, Any], path: str) -> None:
    """Time ratio to numpy against batch size: a panel per activation, a line per way."""
    plt = pyplot()
    steps = [r for r in result["records"] if r["part"] == "step"]
    acts = list(dict.fromkeys(r["activation"] for r in steps)) or ["relu"]
    impls = [i for i in _impls(steps) if i != "numpy"]
    fig, axes = plt.subplots(1, len(acts), figsize=(3.6 * len(acts) + 1.0, 3.8), squeeze=False, sharey=True)
    base = {(r["activation"], r["batch"]): r for r in steps if r["impl"] == "numpy" and r["correct"]}
    for ax, act in zip(axes[0], acts):
        for j, impl in enumerate(impls):
            pts = sorted((r["batch"], r["median_s"] / base[(act, r["batch"])]["median_s"]) for r in steps
                         if r["activation"] == act and r["impl"] == impl and r["correct"]
                         and (act, r["batch"]) in base)
            if pts:
                ax.plot(*zip(*pts), "-", marker="osD^v"[j % 5], ms=4, lw=1.3, label=impl)
        ax.set_xscale("log", base=2)
        ax.axhline(1.0, color="k", lw=0.9)
        ax.set_title(act, fontsize=10)
        ax.set_xlabel("batch")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("time per step / numpy's")
    axes[0][0].legend(fontsize=8, frameon=False)
    meta = result["meta"]
    fig.suptitle(plot_title(meta, "MLP " + "-".join(map(str, meta["settings"]["layers"])) + " SGD step"),
                 fontsize=10)
    fig.tight_layout()
    save_figure(plt, fig, path)


def emit(result: dict[str, Any], args: argparse.Namespace, stream) -> None:
    _emit(result, args, stream, text=format_text, markdown=format_markdown, plot_fn=plot)
