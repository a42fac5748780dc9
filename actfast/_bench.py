"""``python -m actfast bench``: time actfast against NumPy (and PyTorch, numexpr).

What is timed
-------------
For every activation (forward ``NAME`` and gradient ``NAME_grad``), every dtype and
every size, each *implementation* of the same computation is raced:

``actfast``
    ``actfast.NAME(x, out=y)`` / ``actfast.NAME_grad(x, dy, out=y)``.
``numpy``
    The expression a NumPy user writes: ``np.maximum(x, 0)``, ``1/(1+np.exp(-x))``,
    ``0.5*x*(1+scipy.special.erf(x/sqrt(2)))``, ``np.logaddexp(0, x)``,
    ``np.where(x > 0, x, 0.01*x)``, gradients as ``dy * (x > 0)`` ... (see ``OPS``).
    Where its last step is a ufunc, that step writes into the preallocated output
    (``np.maximum(x, 0, out=y)``); ``np.where`` cannot, so those allocate.
``torch`` (when installed, unless ``--no-torch``)
    PyTorch's CPU kernels on ``torch.from_numpy`` views: the aten forward op and the
    aten ``*_backward`` op (``threshold_backward``, ``gelu_backward``, ...), through
    their ``out=`` overloads where they exist. Backward ops that PyTorch computes from
    the saved forward output (sigmoid, tanh, softmax, log_softmax, log_sigmoid's
    buffer) get it precomputed, untimed, as autograd would have it.
    ``torch.set_num_threads`` is set to actfast's thread count.
``numexpr`` (when installed)
    ``numexpr.evaluate`` of the same formula with ``out=``, for the ops it can express
    (no erf: no exact gelu).

Method
------
* Inputs: ``x ~ 2.5 * N(0, 1)``, ``dy ~ N(0, 1)`` (fixed seed), contiguous.
  softmax / log_softmax work on rows of ``min(size, 1000)`` elements.
* Correctness first: each implementation's output is compared with a float64
  reference computed from the same (upcast) inputs by independent, numerically stable
  formulas (``scipy.special.expit``, ``ndtr``, ...). It passes when
  ``|got - ref| <= atol + rtol * |ref|`` everywhere and its dtype is the input's
  (float32: rtol 1e-4, atol 1e-5; float64: rtol 1e-9, atol 1e-11; the dense layer
  1e-4 / 1e-4 and 1e-10 / 1e-10: a few hundred float32 rounding errors of the
  terms, far below what a wrong formula or constant produces). A failing implementation is **not timed** and is
  flagged (``correct: false`` and a ``WRONG`` cell in the table).
* Warm-up, then the number of calls per sample is calibrated so that one sample lasts
  at least ``--min-batch-ms`` (2 ms quick, 5 ms full); ``n_samples`` samples are taken
  with the implementations interleaved (round-robin, rotating order) so that a drift
  of the machine hits them alike. The garbage collector is off while timing. Reported:
  the median time per call and the quartiles q1, q3 of the samples.
* Memory: ``tracemalloc`` peak of one *allocating* call (``y = f(x)``, no ``out=``)
  above what was allocated before it. NumPy (and so SciPy, numexpr's output and
  actfast) register their array buffers with tracemalloc; PyTorch's allocator does
  not, so torch has no memory figure (``peak_bytes: null``).

JSON (``--json PATH``)
----------------------
An object with two keys:

``meta``
    ``version`` (of this format, 1), ``started`` (UTC ISO time), ``command`` (argv),
    ``cpu``, ``cores`` (``os.cpu_count()``), ``platform``, ``isa`` (the kernel variant
    actfast loaded), ``threads`` (actfast's thread count during the run), ``versions``
    (python, actfast, numpy, scipy, torch, numexpr: ``null`` when absent or not raced),
    ``blas`` (threadpoolctl's list, ``[]`` without threadpoolctl), ``openblas_env`` (the
    ``OPENBLAS_*`` variables that were set), ``loadavg_start`` / ``loadavg_end`` (1-min
    load average: a busy machine makes multi-threaded timings unreliable),
    ``elapsed_s``, ``settings`` (samples, min_batch_s, sizes, dtypes, ops, kinds, alloc,
    dense_shapes, impls), ``tolerances`` ({"float32": {"rtol", "atol"}, ...}),
    ``config`` (``actfast._config.config()``). Non-finite floats are written as null.
``records``
    A list, one per (op, kind, dtype, size, impl):

    ============ ==========================================================
    op           activation name (``relu``, ``gelu_tanh``, ``softmax`` ...)
    kind         ``forward``, ``grad`` or ``dense``
    dtype        ``float32`` or ``float64``
    size         number of output elements
    shape        list: the array shape; for dense ``[batch, in, out]``
    impl         ``actfast``, ``numpy``, ``torch``, ``numexpr``
    median_s     median seconds per call (``null`` when not timed)
    q1_s, q3_s   first and third quartile of the per-call sample times
    min_s        the fastest sample (steadier than the median on a busy machine)
    n_samples    samples taken (each the mean of ``number`` calls)
    number       calls per sample
    preallocated whether the timed call wrote into a preallocated output
    peak_bytes   tracemalloc peak of one allocating call (``null``: not measurable)
    correct      passed the check against the float64 reference
    max_abs_err  max ``|got - ref|`` (``null`` if it raised)
    error        why it is not timed (wrong result, wrong dtype, exception), else null
    ============ ==========================================================
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import gc
import json
import math
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["OPS", "Impl", "add_arguments", "run", "main"]

QUICK_SIZES = (1_000, 100_000, 1_000_000)
FULL_SIZES = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
DENSE_SHAPES = ((64, 512, 512), (256, 1024, 1024))
DENSE_ACTIVATIONS = ("relu", "sigmoid", "gelu")
SOFTMAX_WIDTH = 1000
TOLERANCES = {  # (rtol, atol)
    "float32": (1e-4, 1e-5),
    "float64": (1e-9, 1e-11),
    "dense-float32": (1e-4, 1e-4),
    "dense-float64": (1e-10, 1e-10),
}
IMPL_ORDER = ("actfast", "numpy", "torch", "numexpr")

SQRT2 = math.sqrt(2.0)            # Python floats: weak scalars that keep float32 float32
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_K = math.sqrt(2.0 / math.pi)
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


# --------------------------------------------------------------------------------------
# The operations: float64 reference, NumPy idiom, numexpr formula, PyTorch aten ops
# --------------------------------------------------------------------------------------

def _sp():
    import scipy.special
    return scipy.special


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """One computation: ``name`` with ``kind`` "forward" (f(x)) or "grad" (dy * f'(x))."""

    name: str
    kind: str
    ref: Callable[..., np.ndarray]                   # (x64, dy64) -> float64 reference
    numpy: Callable[..., np.ndarray]                 # (x, dy, out) -> array
    numpy_out: bool = True                           # does numpy() honour out=?
    numexpr: str | None = None                       # formula in x, dy, a, b (constants)
    numexpr_consts: tuple[tuple[str, float], ...] = ()
    torch: tuple | None = None                       # see _torch_call
    axis: bool = False                               # softmax-like: rows of SOFTMAX_WIDTH

    @property
    def label(self) -> str:
        return self.name if self.kind == "forward" else self.name + "_grad"

    def actfast(self, af, x, dy, out):
        if self.name == "gelu_tanh":
            return (af.gelu(x, approximate="tanh", out=out) if self.kind == "forward"
                    else af.gelu_grad(x, dy, approximate="tanh", out=out))
        if self.kind == "forward":
            return getattr(af, self.name)(x, out=out)
        return getattr(af, self.name + "_grad")(x, dy, out=out)


def _ops() -> dict[str, OpSpec]:
    sp_expit = lambda x: _sp().expit(x)  # noqa: E731
    ops: list[OpSpec] = []

    def add(name, fref, gref, fnp, gnp, *, fout=True, gout=True, fne=None, gne=None,
            consts=(), ftorch=None, gtorch=None, axis=False):
        ops.append(OpSpec(name, "forward", lambda x, dy: fref(x), lambda x, dy, out: fnp(x, out),
                          fout, fne, consts, ftorch, axis))
        ops.append(OpSpec(name, "grad", gref, gnp, gout, gne, consts, gtorch, axis))

    # Torch specs: (aten op, argument names and constants, out keyword or None, extra kwargs).
    # Argument names: "x", "dy", "y" (the saved forward output), "buf" (log_sigmoid's).
    add("relu",
        lambda x: np.maximum(x, 0.0), lambda x, dy: dy * (x > 0),
        lambda x, out: np.maximum(x, 0, out=out),
        lambda x, dy, out: np.multiply(dy, x > 0, out=out),
        fne="where(x > 0, x, 0)", gne="where(x > 0, dy, 0)",
        ftorch=("relu", ("x",), "out"), gtorch=("threshold_backward", ("dy", "x", 0), "grad_input"))
    add("relu6",
        lambda x: np.clip(x, 0.0, 6.0), lambda x, dy: dy * ((x > 0) & (x < 6)),
        lambda x, out: np.clip(x, 0, 6, out=out),
        lambda x, dy, out: np.multiply(dy, (x > 0) & (x < 6), out=out),
        fne="where(x > 0, where(x < 6, x, 6), 0)", gne="where((x > 0) & (x < 6), dy, 0)",
        ftorch=("hardtanh", ("x", 0.0, 6.0), "out"),
        gtorch=("hardtanh_backward", ("dy", "x", 0.0, 6.0), "grad_input"))
    add("leaky_relu",
        lambda x: np.where(x > 0, x, 0.01 * x), lambda x, dy: np.where(x > 0, dy, 0.01 * dy),
        lambda x, out: np.where(x > 0, x, 0.01 * x),
        lambda x, dy, out: np.where(x > 0, dy, 0.01 * dy), fout=False, gout=False,
        fne="where(x > 0, x, a * x)", gne="where(x > 0, dy, a * dy)", consts=(("a", 0.01),),
        ftorch=("leaky_relu", ("x", 0.01), "out"),
        gtorch=("leaky_relu_backward", ("dy", "x", 0.01, False), "grad_input"))
    add("hard_tanh",
        lambda x: np.clip(x, -1.0, 1.0), lambda x, dy: dy * ((x > -1) & (x < 1)),
        lambda x, out: np.clip(x, -1, 1, out=out),
        lambda x, dy, out: np.multiply(dy, (x > -1) & (x < 1), out=out),
        fne="where(x < -1, -1, where(x > 1, 1, x))", gne="where((x > -1) & (x < 1), dy, 0)",
        ftorch=("hardtanh", ("x", -1.0, 1.0), "out"),
        gtorch=("hardtanh_backward", ("dy", "x", -1.0, 1.0), "grad_input"))
    add("hard_sigmoid",
        lambda x: np.clip(x / 6 + 0.5, 0.0, 1.0), lambda x, dy: dy / 6 * ((x > -3) & (x < 3)),
        lambda x, out: np.clip(x / 6 + 0.5, 0, 1, out=out),
        lambda x, dy, out: np.multiply(dy / 6, (x > -3) & (x < 3), out=out),
        fne="where(x <= -3, 0, where(x >= 3, 1, x * a + b))", gne="where((x > -3) & (x < 3), dy * a, 0)",
        consts=(("a", 1.0 / 6.0), ("b", 0.5)),
        ftorch=("hardsigmoid", ("x",), "out"), gtorch=("hardsigmoid_backward", ("dy", "x"), "grad_input"))
    add("hard_swish",
        lambda x: x * np.clip(x + 3, 0.0, 6.0) / 6,
        lambda x, dy: np.where(x < -3, 0.0, np.where(x <= 3, dy * (x / 3 + 0.5), dy)),
        lambda x, out: np.divide(x * np.clip(x + 3, 0, 6), 6, out=out),
        lambda x, dy, out: np.where(x < -3, 0, np.where(x > 3, dy, dy * (x / 3 + 0.5))), gout=False,
        ftorch=("hardswish", ("x",), "out"), gtorch=("hardswish_backward", ("dy", "x"), "out"))
    add("softsign",
        lambda x: x / (1 + np.abs(x)), lambda x, dy: dy / (1 + np.abs(x)) ** 2,
        lambda x, out: np.divide(x, 1 + np.abs(x), out=out),
        lambda x, dy, out: np.divide(dy, (1 + np.abs(x)) ** 2, out=out),
        fne="x / (1 + abs(x))", gne="dy / ((1 + abs(x)) * (1 + abs(x)))",
        ftorch=("softsign", ("x",), None), gtorch=("softsign_grad", ("dy", "x"), None))
    add("elu",
        lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
        lambda x, dy: np.where(x > 0, dy, dy * np.exp(np.minimum(x, 0))),
        lambda x, out: np.where(x > 0, x, np.exp(x) - 1),
        lambda x, dy, out: np.where(x > 0, dy, dy * np.exp(x)), fout=False, gout=False,
        fne="where(x > 0, x, expm1(x))", gne="where(x > 0, dy, dy * exp(x))",
        ftorch=("elu", ("x", 1.0, 1.0, 1.0), "out"),
        gtorch=("elu_backward", ("dy", 1.0, 1.0, 1.0, False, "x"), "grad_input"))
    add("selu",
        lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
        lambda x, dy: SELU_SCALE * np.where(x > 0, dy, SELU_ALPHA * dy * np.exp(np.minimum(x, 0))),
        lambda x, out: np.multiply(SELU_SCALE, np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)), out=out),
        lambda x, dy, out: np.multiply(SELU_SCALE, np.where(x > 0, dy, SELU_ALPHA * dy * np.exp(x)), out=out),
        ftorch=("elu", ("x", SELU_ALPHA, SELU_SCALE, 1.0), "out"),
        gtorch=("elu_backward", ("dy", SELU_ALPHA, SELU_SCALE, 1.0, False, "x"), "grad_input"))
    add("celu",  # alpha = 1
        lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
        lambda x, dy: np.where(x > 0, dy, dy * np.exp(np.minimum(x, 0))),
        lambda x, out: np.where(x > 0, x, 1.0 * (np.exp(x / 1.0) - 1)),
        lambda x, dy, out: np.where(x > 0, dy, dy * np.exp(x / 1.0)), fout=False, gout=False,
        ftorch=("celu", ("x", 1.0), "out"),
        gtorch=("elu_backward", ("dy", 1.0, 1.0, 1.0, False, "x"), "grad_input"))
    add("sigmoid",
        lambda x: sp_expit(x), lambda x, dy: dy * sp_expit(x) * sp_expit(-x),
        lambda x, out: np.divide(1, 1 + np.exp(-x), out=out),
        lambda x, dy, out: _np_sigmoid_grad(x, dy, out),
        fne="1 / (1 + exp(-x))", gne="dy * exp(-x) / ((1 + exp(-x)) * (1 + exp(-x)))",
        ftorch=("sigmoid", ("x",), "out"), gtorch=("sigmoid_backward", ("dy", "y"), "grad_input"))
    add("log_sigmoid",
        lambda x: _sp().log_expit(x), lambda x, dy: dy * sp_expit(-x),
        lambda x, out: np.negative(np.logaddexp(0, -x), out=out),
        lambda x, dy, out: np.divide(dy, 1 + np.exp(x), out=out),
        fne="-log1p(exp(-x))", gne="dy / (1 + exp(x))",
        ftorch=("log_sigmoid", ("x",), None),
        gtorch=("log_sigmoid_backward", ("dy", "x", "buf"), "grad_input"))
    add("silu",
        lambda x: x * sp_expit(x), lambda x, dy: dy * sp_expit(x) * (1 + x * sp_expit(-x)),
        lambda x, out: np.divide(x, 1 + np.exp(-x), out=out),
        lambda x, dy, out: _np_silu_grad(x, dy, out),
        fne="x / (1 + exp(-x))",
        ftorch=("silu", ("x",), "out"), gtorch=("silu_backward", ("dy", "x"), "grad_input"))
    add("softplus",  # beta = 1, threshold = 20 (PyTorch's)
        lambda x: np.where(x > 20, x, np.logaddexp(0.0, x)),
        lambda x, dy: np.where(x > 20, dy, dy * sp_expit(x)),
        lambda x, out: np.logaddexp(0, x, out=out),
        lambda x, dy, out: np.divide(dy, 1 + np.exp(-x), out=out),
        fne="log1p(exp(x))", gne="dy / (1 + exp(-x))",
        ftorch=("softplus", ("x", 1.0, 20.0), "out"),
        gtorch=("softplus_backward", ("dy", "x", 1.0, 20.0), "grad_input"))
    add("mish",
        lambda x: x * np.tanh(np.logaddexp(0.0, x)),
        lambda x, dy: dy * (np.tanh(np.logaddexp(0.0, x))
                            + x * sp_expit(x) / np.cosh(np.logaddexp(0.0, x)) ** 2),
        lambda x, out: np.multiply(x, np.tanh(np.logaddexp(0, x)), out=out),
        lambda x, dy, out: _np_mish_grad(x, dy, out),
        fne="x * tanh(log1p(exp(x)))",
        ftorch=("mish", ("x",), "out"), gtorch=("mish_backward", ("dy", "x"), None))
    add("tanh",
        lambda x: np.tanh(x), lambda x, dy: dy / np.cosh(x) ** 2,
        lambda x, out: np.tanh(x, out=out),
        lambda x, dy, out: np.multiply(dy, 1 - np.tanh(x) ** 2, out=out),
        fne="tanh(x)", gne="dy * (1 - tanh(x) * tanh(x))",
        ftorch=("tanh", ("x",), "out"), gtorch=("tanh_backward", ("dy", "y"), "grad_input"))
    add("gelu",
        lambda x: x * _sp().ndtr(x),
        lambda x, dy: dy * (_sp().ndtr(x) + x * np.exp(-0.5 * x * x) * INV_SQRT_2PI),
        lambda x, out: np.multiply(0.5 * x, 1 + _sp().erf(x / SQRT2), out=out),
        lambda x, dy, out: np.multiply(
            dy, 0.5 * (1 + _sp().erf(x / SQRT2)) + x * np.exp(-0.5 * x * x) * INV_SQRT_2PI, out=out),
        ftorch=("gelu", ("x",), "out", {"approximate": "none"}),
        gtorch=("gelu_backward", ("dy", "x"), "grad_input", {"approximate": "none"}))
    add("gelu_tanh",
        lambda x: 0.5 * x * (1 + np.tanh(GELU_K * (x + 0.044715 * x ** 3))),
        lambda x, dy: dy * _gelu_tanh_deriv64(x),
        lambda x, out: np.multiply(0.5 * x, 1 + np.tanh(GELU_K * (x + 0.044715 * x ** 3)), out=out),
        lambda x, dy, out: _np_gelu_tanh_grad(x, dy, out),
        fne="a * x * (1 + tanh(b * (x + c * x * x * x)))", consts=(("a", 0.5), ("b", GELU_K), ("c", 0.044715)),
        ftorch=("gelu", ("x",), "out", {"approximate": "tanh"}),
        gtorch=("gelu_backward", ("dy", "x"), "grad_input", {"approximate": "tanh"}))
    add("softmax",
        lambda x: _sp().softmax(x, axis=-1),
        lambda x, dy: _softmax_grad64(x, dy),
        lambda x, out: _np_softmax(x, out),
        lambda x, dy, out: _np_softmax_grad(x, dy, out),
        ftorch=("_softmax", ("x", -1, False), "out"),
        gtorch=("_softmax_backward_data", ("dy", "y", -1, "dtype"), "grad_input"), axis=True)
    add("log_softmax",
        lambda x: _sp().log_softmax(x, axis=-1),
        lambda x, dy: dy - _sp().softmax(x, axis=-1) * dy.sum(axis=-1, keepdims=True),
        lambda x, out: _np_log_softmax(x, out),
        lambda x, dy, out: _np_log_softmax_grad(x, dy, out),
        ftorch=("_log_softmax", ("x", -1, False), "out"),
        gtorch=("_log_softmax_backward_data", ("dy", "y", -1, "dtype"), "out"), axis=True)
    return {(op.name, op.kind): op for op in ops}


def _np_sigmoid_grad(x, dy, out):
    s = 1 / (1 + np.exp(-x))
    return np.multiply(dy * s, 1 - s, out=out)


def _np_silu_grad(x, dy, out):
    s = 1 / (1 + np.exp(-x))
    return np.multiply(dy * s, 1 + x * (1 - s), out=out)


def _np_mish_grad(x, dy, out):
    t = np.tanh(np.logaddexp(0, x))
    s = 1 / (1 + np.exp(-x))
    return np.multiply(dy, t + x * s * (1 - t * t), out=out)


def _gelu_tanh_deriv64(x):
    t = np.tanh(GELU_K * (x + 0.044715 * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * x * x)


def _np_gelu_tanh_grad(x, dy, out):
    t = np.tanh(GELU_K * (x + 0.044715 * x ** 3))
    return np.multiply(dy, 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * x * x), out=out)


def _np_softmax(x, out):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.divide(e, e.sum(axis=-1, keepdims=True), out=out)


def _np_softmax_grad(x, dy, out):
    y = _np_softmax(x, None)
    return np.multiply(y, dy - (dy * y).sum(axis=-1, keepdims=True), out=out)


def _softmax_grad64(x, dy):
    y = _sp().softmax(x, axis=-1)
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _np_log_softmax(x, out):
    z = x - x.max(axis=-1, keepdims=True)
    return np.subtract(z, np.log(np.exp(z).sum(axis=-1, keepdims=True)), out=out)


def _np_log_softmax_grad(x, dy, out):
    return np.subtract(dy, np.exp(_np_log_softmax(x, None)) * dy.sum(axis=-1, keepdims=True), out=out)


OPS: dict[tuple[str, str], OpSpec] = _ops()
OP_NAMES: list[str] = list(dict.fromkeys(name for name, _ in OPS))


# --------------------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Prepared:
    """A ready-to-time call of one implementation on one set of inputs."""

    call: Callable[[], Any]            # the timed call; returns the result array (or tensor)
    alloc_call: Callable[[], Any] | None  # y = f(x) for the memory figure; None: not measurable
    preallocated: bool
    result: Callable[[Any], np.ndarray] = np.asarray   # maps call()'s return to an ndarray


@dataclasses.dataclass
class Impl:
    """An implementation: ``prepare(case)`` returns a :class:`Prepared` or ``None``
    when it has nothing for this case. Tests inject deliberately wrong ones."""

    name: str
    prepare: Callable[["Case"], Prepared | None]


@dataclasses.dataclass
class Case:
    op: str
    kind: str             # forward | grad | dense
    dtype: np.dtype
    shape: tuple[int, ...]
    spec: OpSpec | None   # None for dense
    x: np.ndarray
    dy: np.ndarray | None = None
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    alloc: bool = False   # time the allocating form (no out=)

    @property
    def size(self) -> int:
        return int(self.shape[0] * self.shape[2]) if self.kind == "dense" else int(np.prod(self.shape))

    def out_shape(self) -> tuple[int, ...]:
        return (self.shape[0], self.shape[2]) if self.kind == "dense" else self.shape


def _prep_actfast(case: Case) -> Prepared | None:
    import actfast as af
    if case.kind == "dense":
        if not hasattr(af, "dense"):
            return None
        x, w, b, act = case.x, case.w, case.b, case.op
        f = lambda: af.dense(x, w, b, activation=act)  # noqa: E731
        return Prepared(f, f, False)
    spec, x, dy = case.spec, case.x, case.dy
    alloc = lambda: spec.actfast(af, x, dy, None)  # noqa: E731
    if case.alloc:
        return Prepared(alloc, alloc, False)
    out = np.empty(case.out_shape(), case.dtype)
    return Prepared(lambda: spec.actfast(af, x, dy, out), alloc, True)


def _prep_numpy(case: Case) -> Prepared | None:
    if case.kind == "dense":
        spec = OPS[(case.op, "forward")]
        x, w, b = case.x, case.w, case.b
        f = lambda: spec.numpy(x @ w + b, None, None)  # noqa: E731
        return Prepared(f, f, False)
    spec, x, dy = case.spec, case.x, case.dy
    alloc = lambda: spec.numpy(x, dy, None)  # noqa: E731
    if case.alloc or not spec.numpy_out:
        return Prepared(alloc, alloc, False)
    out = np.empty(case.out_shape(), case.dtype)
    return Prepared(lambda: spec.numpy(x, dy, out), alloc, True)


def _prep_numexpr(case: Case) -> Prepared | None:
    if case.kind == "dense" or case.spec.numexpr is None:
        return None
    try:
        import numexpr
    except ImportError:
        return None
    spec = case.spec
    local = {"x": case.x}
    if case.dy is not None:
        local["dy"] = case.dy
    for k, v in spec.numexpr_consts:  # constants of the input dtype: a float literal
        local[k] = np.array(v, case.dtype)  # would make numexpr compute in float64
    expr = spec.numexpr
    alloc = lambda: numexpr.evaluate(expr, local_dict=local)  # noqa: E731
    if case.alloc:
        return Prepared(alloc, alloc, False)
    out = np.empty(case.out_shape(), case.dtype)
    return Prepared(lambda: numexpr.evaluate(expr, local_dict=local, out=out), alloc, True)


def _torch_call(torch, spec_t: tuple, env: dict[str, Any], out):
    """Call the aten op of a torch spec, through its out= overload when ``out`` is given."""
    opname, argnames, outkw = spec_t[:3]
    kwargs = dict(spec_t[3]) if len(spec_t) > 3 else {}
    args = [env[a] if isinstance(a, str) else a for a in argnames]
    if opname == "softsign":
        return torch.nn.functional.softsign(*args)
    if opname == "softsign_grad":
        dy, x = args
        return dy / (1 + x.abs()) ** 2
    if opname == "log_sigmoid":
        return torch.nn.functional.logsigmoid(*args)
    packet = getattr(torch.ops.aten, opname)
    if out is None or outkw is None:
        return packet.default(*args, **kwargs)
    overload = getattr(packet, "out" if hasattr(packet, "out") else "grad_input")
    return overload(*args, **kwargs, **{outkw: out})


def _prep_torch(case: Case) -> Prepared | None:
    try:
        import torch
    except ImportError:
        return None
    if case.kind == "dense":
        tx, tw, tb = (torch.from_numpy(a) for a in (case.x, case.w, case.b))
        spec_t = OPS[(case.op, "forward")].torch

        def f():
            h = torch.addmm(tb, tx, tw)
            return _torch_call(torch, spec_t, {"x": h}, h if spec_t[2] else None)
        return Prepared(f, None, False, result=lambda t: t.numpy())
    spec = case.spec
    spec_t = spec.torch
    if spec_t is None:
        return None
    env: dict[str, Any] = {"x": torch.from_numpy(case.x)}
    if case.dy is not None:
        env["dy"] = torch.from_numpy(case.dy)
        fwd = OPS[(spec.name, "forward")].torch
        # Backward ops that take the forward's output get it precomputed (autograd saves it).
        env["y"] = _torch_call(torch, fwd, env, None)
        env["dtype"] = env["x"].dtype
        if spec.name == "log_sigmoid":
            env["buf"] = torch.ops.aten.log_sigmoid_forward.default(env["x"])[1]
    alloc = lambda: _torch_call(torch, spec_t, env, None)  # noqa: E731
    to_np = lambda t: t.numpy()  # noqa: E731
    if case.alloc or spec_t[2] is None:
        return Prepared(alloc, None, False, result=to_np)
    out = torch.empty(case.out_shape(), dtype=env["x"].dtype)
    return Prepared(lambda: _torch_call(torch, spec_t, env, out), None, True, result=to_np)


def default_impls(no_torch: bool = False, no_numexpr: bool = False) -> list[Impl]:
    impls = [Impl("actfast", _prep_actfast), Impl("numpy", _prep_numpy)]
    if not no_torch and _module_version("torch"):
        impls.append(Impl("torch", _prep_torch))
    if not no_numexpr and _module_version("numexpr"):
        impls.append(Impl("numexpr", _prep_numexpr))
    return impls


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------

def _module_version(name: str) -> str | None:
    try:
        mod = __import__(name)
    except Exception:  # noqa: BLE001 - absent or broken: simply not raced
        return None
    return str(getattr(mod, "__version__", "?"))


def check(got: Any, ref: np.ndarray, dtype: np.dtype, tol: tuple[float, float]) -> tuple[bool, float | None, str | None]:
    """Compare an implementation's result with the float64 reference."""
    rtol, atol = tol
    got = np.asarray(got)
    if got.shape != ref.shape:
        return False, None, f"shape {got.shape}, expected {ref.shape}"
    err = np.abs(got.astype(np.float64) - ref)
    bad = ~(err <= atol + rtol * np.abs(ref))        # NaN in got counts as bad
    finite = np.isfinite(err)
    max_err = float(err[finite].max()) if finite.any() else float("nan")
    if not finite.all():
        max_err = float("inf")
    if bad.any():
        with np.errstate(all="ignore"):
            rel = np.where(bad, err / np.abs(ref), 0.0).ravel()
        i = int(np.nanargmax(np.where(np.isnan(rel), np.inf, rel)))
        return False, max_err, (f"wrong result: {int(bad.sum())} of {bad.size} elements off "
                                f"(max abs error {max_err:.3g}, worst relative {rel[i]:.3g}: got "
                                f"{float(got.ravel()[i])!r} for {float(ref.ravel()[i])!r}, rtol {rtol:g})")
    if got.dtype != dtype:
        return False, max_err, f"wrong dtype {got.dtype} (input {dtype})"
    return True, max_err, None


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        r = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del r
    finally:
        tracemalloc.stop()
    return int(peak)


def _time_batch(fn: Callable[[], Any], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def measure_case(case: Case, impls: Sequence[Impl], *, n_samples: int, min_batch_s: float,
                 tol: tuple[float, float], reference: np.ndarray) -> list[dict[str, Any]]:
    """Check then time every implementation on one case; one record per implementation."""
    records: list[dict[str, Any]] = []
    ready: list[tuple[dict[str, Any], Prepared]] = []
    shape = list(case.shape)
    for impl in impls:
        rec: dict[str, Any] = {
            "op": case.op, "kind": case.kind, "dtype": case.dtype.name, "size": case.size,
            "shape": shape, "impl": impl.name, "median_s": None, "q1_s": None, "q3_s": None, "min_s": None,
            "n_samples": 0, "number": 0, "preallocated": False, "peak_bytes": None,
            "correct": False, "max_abs_err": None, "error": None,
        }
        try:
            prep = impl.prepare(case)
        except Exception as exc:  # noqa: BLE001 - report, don't crash the whole run
            prep, rec["error"] = None, f"setup failed: {type(exc).__name__}: {exc}"
            records.append(rec)
            continue
        if prep is None:
            continue      # this implementation has nothing for this case
        rec["preallocated"] = prep.preallocated
        try:
            with np.errstate(all="ignore"):
                got = prep.result(prep.call())
            ok, err, why = check(got, reference, case.dtype, tol)
        except Exception as exc:  # noqa: BLE001
            ok, err, why = False, None, f"raised {type(exc).__name__}: {exc}"
        rec.update(correct=ok, max_abs_err=err, error=why)
        records.append(rec)
        if ok:
            ready.append((rec, prep))

    if not ready:
        return records
    with np.errstate(all="ignore"):
        stats = time_interleaved([prep.call for _, prep in ready], n_samples=n_samples,
                                 min_batch_s=min_batch_s)
    for (rec, prep), (med, q1, q3, n, number, fastest) in zip(ready, stats):
        rec.update(median_s=med, q1_s=q1, q3_s=q3, min_s=fastest, n_samples=n, number=number)
        if prep.alloc_call is not None:
            try:
                with np.errstate(all="ignore"):
                    rec["peak_bytes"] = _peak_bytes(prep.alloc_call)
            except Exception:  # noqa: BLE001
                rec["peak_bytes"] = None
    return records


def time_interleaved(calls: Sequence[Callable[[], Any]], *, n_samples: int, min_batch_s: float
                     ) -> list[tuple[float, float, float, int, int, float]]:
    """Time several calls against each other; per call ``(median, q1, q3, n_samples,
    number, min)`` in seconds per call.

    Each is warmed up and calibrated to ``number`` calls per sample so that a sample
    lasts at least ``min_batch_s``; then ``n_samples`` rounds run every call's batch in
    a rotating order (a drift of the machine hits them alike). GC is off meanwhile.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        numbers = []
        for call in calls:
            t = min(_time_batch(call, 1), _time_batch(call, 1))
            number = max(1, math.ceil(min_batch_s / max(t, 1e-9)))
            if number > 1:
                t = _time_batch(call, number)
                number = max(1, math.ceil(min_batch_s / max(t, 1e-9)))
            numbers.append(number)
        samples: list[list[float]] = [[] for _ in calls]
        k = len(calls)
        for r in range(n_samples):
            for j in range(k):
                i = (j + r) % k
                samples[i].append(_time_batch(calls[i], numbers[i]))
    finally:
        if gc_was_enabled:
            gc.enable()
    stats = []
    for s, number in zip(samples, numbers):
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        stats.append((float(med), float(q1), float(q3), len(s), number, float(min(s))))
    return stats


def make_inputs(kind: str, dtype: np.dtype, size: int, axis: bool, seed: int = 12345):
    rng = np.random.default_rng(seed)
    if axis:
        width = min(size, SOFTMAX_WIDTH)
        shape: tuple[int, ...] = (max(1, size // width), width)
    else:
        shape = (size,)
    x = (2.5 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype) if kind == "grad" else None
    return shape, x, dy


def reference_for(spec: OpSpec, x: np.ndarray, dy: np.ndarray | None) -> np.ndarray:
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        dy64 = None if dy is None else dy.astype(np.float64)
        return np.asarray(spec.ref(x64, dy64), dtype=np.float64)


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------

class Progress:
    """A plain-text progress bar on stderr (a line per 10 % when stderr is not a tty)."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total, self.done, self.stream = max(total, 1), 0, stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self._last_decile = -1

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        frac = self.done / self.total
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        line = f"[{bar}] {self.done}/{self.total} {elapsed:5.0f}s, ~{eta:.0f}s left  {label}"
        if self.tty:
            self.stream.write("\r" + line[:110].ljust(110))
            if self.done == self.total:
                self.stream.write("\n")
        elif int(10 * frac) != self._last_decile or self.done == self.total:
            self._last_decile = int(10 * frac)
            self.stream.write(line + "\n")
        self.stream.flush()


def _blas_info() -> list[dict[str, Any]]:
    try:
        from actfast._config import _blas_info as info
        return info()
    except Exception:  # noqa: BLE001
        return []


def metadata(args: argparse.Namespace, threads: int, settings: dict[str, Any]) -> dict[str, Any]:
    import actfast
    from actfast import _config, _dispatch
    cfg = _config.config()
    return {
        "version": 1,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(getattr(args, "argv", sys.argv)),
        "cpu": cfg["cpu"],
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "isa": _dispatch.isa,
        "threads": threads,
        "versions": {
            "python": platform.python_version(),
            "actfast": actfast.__version__,
            "numpy": np.__version__,
            "scipy": _module_version("scipy"),
            "torch": None if args.no_torch else _module_version("torch"),
            "numexpr": _module_version("numexpr"),
        },
        "blas": cfg["threadpools"],
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
        "loadavg_start": _loadavg(),
        "settings": settings,
        "tolerances": {k: {"rtol": v[0], "atol": v[1]} for k, v in TOLERANCES.items()},
        "config": cfg,
    }


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _finite_or_none(obj):
    """JSON has no inf/NaN: such floats become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


def _parse_list(text: str | None, conv=str) -> list | None:
    if text is None:
        return None
    return [conv(t.strip()) for t in text.split(",") if t.strip()]


def _parse_size(t: str) -> int:
    v = float(t.replace("_", ""))       # accepts 1e6
    if v < 1 or v != int(v):
        raise argparse.ArgumentTypeError(f"bad size {t!r}")
    return int(v)


def _parse_shape(t: str) -> tuple[int, int, int]:
    parts = [int(p) for p in t.lower().replace("x", ",").split(",") if p]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"a dense shape is batch x in x out, got {t!r}")
    return tuple(parts)  # type: ignore[return-value]


def run(args: argparse.Namespace, impls: Sequence[Impl] | None = None,
        stream=None) -> dict[str, Any]:
    """Run the benchmark described by ``args`` (from :func:`add_arguments`); print the
    tables to ``stream`` (stdout) and return ``{"meta": ..., "records": [...]}``."""
    import actfast
    stream = stream or sys.stdout
    if getattr(args, "load", None):
        with open(args.load) as f:
            result = json.load(f)
        _emit(result, args, stream)
        return result

    ops = _parse_list(args.ops) or OP_NAMES
    unknown = [o for o in ops if o not in OP_NAMES and o != "dense"]
    if unknown:
        raise SystemExit(f"actfast bench: unknown op(s) {unknown}; choose from {', '.join(OP_NAMES)}")
    sizes = [_parse_size(s) for s in _parse_list(args.sizes)] if args.sizes else \
        list(FULL_SIZES if args.full else QUICK_SIZES)
    dtypes = [np.dtype(args.dtype)] if args.dtype else [np.dtype(np.float32), np.dtype(np.float64)]
    kinds = {"both": ("forward", "grad"), "forward": ("forward",), "grad": ("grad",)}[args.kind]
    n_samples = args.samples or (11 if args.full else 5)
    min_batch_s = (args.min_batch_ms if args.min_batch_ms is not None else (5.0 if args.full else 2.0)) / 1e3
    dense_shapes = [] if args.no_dense else \
        [_parse_shape(s) for s in (_parse_list(args.dense_shapes) or [])] or list(DENSE_SHAPES)
    if args.ops and "dense" not in ops:
        dense_shapes = []    # --ops selects; "dense" in the list keeps the dense layer
    ops = [o for o in ops if o != "dense"]

    import contextlib
    with (actfast.num_threads(args.threads) if args.threads else contextlib.nullcontext()):
        result = _measure(args, actfast, ops, sizes, dtypes, kinds, n_samples, min_batch_s,
                          dense_shapes, impls)
    _emit(result, args, stream)
    return result


def _measure(args, actfast, ops, sizes, dtypes, kinds, n_samples, min_batch_s, dense_shapes, impls):
    do_dense = bool(dense_shapes) and hasattr(actfast, "dense")
    threads = actfast.get_num_threads()
    if impls is None:
        impls = default_impls(no_torch=args.no_torch, no_numexpr=args.no_numexpr)
    names = [i.name for i in impls]
    if "torch" in names:
        import torch
        torch.set_num_threads(threads)
    if "numexpr" in names:
        import numexpr
        numexpr.set_num_threads(threads)

    settings = {"samples": n_samples, "min_batch_s": min_batch_s, "sizes": sizes,
                "dtypes": [d.name for d in dtypes], "ops": ops, "kinds": list(kinds),
                "alloc": bool(args.alloc), "dense_shapes": [list(s) for s in dense_shapes] if do_dense else [],
                "impls": names}
    t_start = time.perf_counter()
    meta = metadata(args, threads, settings)
    records: list[dict[str, Any]] = []

    cells = [(dt, op, kind, size) for dt in dtypes for op in ops for kind in kinds for size in sizes]
    dense_cells = [(dt, act, shp) for dt in dtypes for shp in dense_shapes for act in DENSE_ACTIVATIONS] \
        if do_dense else []
    progress = Progress(len(cells) + len(dense_cells), enabled=not args.no_progress)
    tol_of = lambda dt: TOLERANCES[dt.name]  # noqa: E731
    for dt, op, kind, size in cells:
        spec = OPS[(op, kind)]
        shape, x, dy = make_inputs(kind, dt, size, spec.axis)
        case = Case(op, kind, dt, shape, spec, x, dy, alloc=args.alloc)
        ref = reference_for(spec, x, dy)
        records += measure_case(case, impls, n_samples=n_samples, min_batch_s=min_batch_s,
                                tol=tol_of(dt), reference=ref)
        progress.step(f"{dt.name} {spec.label} {size:,}")
    blas_limit = _blas_limiter(args.threads)
    with blas_limit:
        for dt, act, (nb, nin, nout) in dense_cells:
            rng = np.random.default_rng(7)
            x = rng.standard_normal((nb, nin)).astype(dt)
            w = (rng.standard_normal((nin, nout)) / math.sqrt(nin)).astype(dt)
            b = (0.1 * rng.standard_normal(nout)).astype(dt)
            case = Case(act, "dense", dt, (nb, nin, nout), None, x, w=w, b=b)
            with np.errstate(all="ignore"):
                ref = np.asarray(OPS[(act, "forward")].ref(
                    x.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64), None))
            records += measure_case(case, impls, n_samples=n_samples, min_batch_s=min_batch_s,
                                    tol=TOLERANCES["dense-" + dt.name], reference=ref)
            progress.step(f"{dt.name} dense {act} {nb}x{nin}x{nout}")

    meta["loadavg_end"] = _loadavg()
    meta["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    return {"meta": meta, "records": records}


def _emit(result: dict[str, Any], args: argparse.Namespace, stream) -> None:
    if args.markdown:
        stream.write(format_markdown(result) + "\n")
    else:
        stream.write(format_text(result) + "\n")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(_finite_or_none(result), f, indent=1, allow_nan=False)
        stream.write(f"wrote {args.json}\n")
    if args.plot:
        plot(result, args.plot)
        stream.write(f"wrote {args.plot}\n")


def _blas_limiter(threads: int | None):
    import contextlib
    if not threads:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(threads, user_api="blas")


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

def _fmt_time(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "-"
    if not rec["correct"]:
        return "WRONG" if rec["error"] and rec["error"].startswith(("wrong", "shape")) else "ERROR"
    us = rec["median_s"] * 1e6
    s = f"{us:.3g}" if us < 100 else f"{us:,.0f}"
    spread = (rec["q3_s"] - rec["q1_s"]) / rec["median_s"] * 100 if rec["median_s"] else 0
    return f"{s} ±{spread:.0f}%" + ("" if rec["preallocated"] else "*")


def _fmt_ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or not a["correct"] or not b["correct"]:
        return "-"
    r = b["median_s"] / a["median_s"]
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


def _fmt_mem(rec: dict | None) -> str:
    if rec is None or rec["peak_bytes"] is None:
        return "-"
    b = rec["peak_bytes"]
    return f"{b / 2**20:.1f}M" if b >= 2**20 else f"{b / 2**10:.0f}K" if b >= 1024 else f"{b}B"


def _grouped(records):
    """{(dtype, kind, op, size, shape): {impl: rec}} in run order."""
    groups: dict[tuple, dict[str, dict]] = {}
    for r in records:
        key = (r["dtype"], r["kind"], r["op"], r["size"], tuple(r["shape"]))
        groups.setdefault(key, {})[r["impl"]] = r
    return groups


def _label(kind: str, op: str, shape) -> str:
    if kind == "dense":
        return f"dense+{op} {'x'.join(map(str, shape))}"
    return op + ("_grad" if kind == "grad" else "")


def header_lines(meta: dict[str, Any]) -> list[str]:
    v = meta["versions"]
    vers = ", ".join(f"{k} {v[k]}" for k in ("actfast", "numpy", "scipy", "torch", "numexpr") if v.get(k))
    lines = [
        f"actfast bench  {meta['started']}  ({' '.join(meta['command'])})",
        f"cpu: {meta['cpu']}, {meta['cores']} cores; actfast instruction set: {meta['isa']}; "
        f"threads: {meta['threads']} (actfast{', torch' if 'torch' in meta['settings']['impls'] else ''}"
        f"{', numexpr' if 'numexpr' in meta['settings']['impls'] else ''}; NumPy runs on one)",
        f"versions: Python {v['python']}, {vers}",
    ]
    for tp in meta["blas"]:
        if tp.get("user_api") == "blas":
            lines.append(f"BLAS: {tp.get('internal_api')} {tp.get('version')} "
                         f"({tp.get('architecture') or '?'} kernel, {tp.get('num_threads')} threads) "
                         f"{os.path.basename(tp.get('filepath') or '')}")
    load = [v for v in (meta.get("loadavg_start"), meta.get("loadavg_end")) if v is not None]
    if load:
        cores = meta["cores"] or 1
        busy = max(load) > 0.5 * cores
        lines.append(f"load average (1 min) at start/end: {' / '.join(f'{v:.2f}' for v in load)} on {cores} cores"
                     + ("  -- WARNING: the machine is busy; multi-threaded timings are unreliable "
                        "(other processes take the cores a parallel loop waits for); "
                        + ("--threads 1 compares the kernels alone" if meta["threads"] > 1 else
                           "single-threaded timings suffer less") if busy else ""))
    st = meta["settings"]
    lines.append(f"timing: median of {st['samples']} samples, each >= {st['min_batch_s'] * 1e3:g} ms of calls, "
                 "implementations interleaved; ±: interquartile range / median")
    return lines


def _dense_note(meta: dict[str, Any]) -> list[str]:
    env = meta.get("openblas_env") or {}
    set_vars = {k: v for k, v in env.items() if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    if not set_vars:
        return []
    return [f"note: {' '.join(f'{k}={v}' for k, v in set_vars.items())} is set and changes OpenBLAS's "
            "GEMM kernel (slower); for the dense timings run "
            "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m actfast bench`"]


def format_text(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    impls = [i for i in IMPL_ORDER if any(r["impl"] == i for r in records)]
    impls += sorted({r["impl"] for r in records} - set(impls))
    out = header_lines(meta)
    groups = _grouped(records)
    has_torch = "torch" in impls
    for dtype in dict.fromkeys(k[0] for k in groups):
        out.append("")
        out.append(f"== {dtype}: time per call in µs (median ±IQR%; * = allocates its output), "
                   "speed-up of actfast, peak extra memory of one allocating call")
        if any(k[1] == "dense" for k in groups if k[0] == dtype):
            out += _dense_note(meta)
        cols = ["op", "size"] + impls + ["vs numpy"] + (["vs torch"] if has_torch else []) + \
            [f"mem {i}" for i in impls if i != "torch"]
        rows = []
        for (dt, kind, op, size, shape), by in groups.items():
            if dt != dtype:
                continue
            row = [_label(kind, op, shape), f"{size:,}"] + [_fmt_time(by.get(i)) for i in impls]
            row.append(_fmt_ratio(by.get("actfast"), by.get("numpy")))
            if has_torch:
                row.append(_fmt_ratio(by.get("actfast"), by.get("torch")))
            row += [_fmt_mem(by.get(i)) for i in impls if i != "torch"]
            rows.append(row)
        widths = [max(len(c), *(len(r[j]) for r in rows)) for j, c in enumerate(cols)]
        out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(cols, widths))))
        for r in rows:
            out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
    wrong = [r for r in records if not r["correct"]]
    out.append("")
    if wrong:
        out.append(f"EXCLUDED from the race ({len(wrong)}): failed the check against the float64 reference")
        for r in wrong:
            out.append(f"  {r['impl']} {_label(r['kind'], r['op'], r['shape'])} {r['dtype']} "
                       f"size {r['size']:,}: {r['error']}")
    else:
        tol = meta["tolerances"]
        out.append("every implementation matched the float64 reference ("
                   + "; ".join(f"{k}: rtol {v['rtol']:g}, atol {v['atol']:g}" for k, v in tol.items()) + ")")
    if has_torch:
        out.append("torch: aten kernels on torch.from_numpy views, out= overloads where they exist; "
                   "sigmoid/tanh/softmax backward get the saved forward output. torch's memory is not "
                   "visible to tracemalloc.")
    return "\n".join(out)


def format_markdown(result: dict[str, Any]) -> str:
    meta, records = result["meta"], result["records"]
    impls = [i for i in IMPL_ORDER if any(r["impl"] == i for r in records)]
    groups = _grouped(records)
    has_torch = "torch" in impls
    out = ["```text", *header_lines(meta), "```", ""]
    for dtype in dict.fromkeys(k[0] for k in groups):
        out.append(f"**{dtype}** — µs per call, median (± interquartile range); * allocates its output")
        out.append("")
        cols = ["op", "size"] + impls + ["actfast vs NumPy"] + (["actfast vs torch"] if has_torch else []) \
            + ["memory actfast / NumPy"]
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "|".join(["---", "---:"] + ["---:"] * (len(cols) - 2)) + "|")
        for (dt, kind, op, size, shape), by in groups.items():
            if dt != dtype:
                continue
            row = [f"`{_label(kind, op, shape)}`", f"{size:,}"] + [_fmt_time(by.get(i)).replace("*", r"\*")
                                                                   for i in impls]
            row.append(_fmt_ratio(by.get("actfast"), by.get("numpy")))
            if has_torch:
                row.append(_fmt_ratio(by.get("actfast"), by.get("torch")))
            row.append(f"{_fmt_mem(by.get('actfast'))} / {_fmt_mem(by.get('numpy'))}")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    wrong = [r for r in records if not r["correct"]]
    for r in wrong:
        out.append(f"- excluded: {r['impl']} `{_label(r['kind'], r['op'], r['shape'])}` {r['dtype']} "
                   f"{r['size']:,}: {r['error']}")
    return "\n".join(out)


def plot(result: dict[str, Any], path: str) -> None:
    """Speed-up over NumPy against size (log x): a line per op, a column of panels per
    dtype (forward on top, gradient below when both were measured)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("actfast bench --plot needs matplotlib: pip install 'actfast[plot]' "
                         "(or pip install matplotlib)") from None
    groups = _grouped([r for r in result["records"] if r["kind"] != "dense"])
    dtypes = list(dict.fromkeys(k[0] for k in groups)) or ["float32"]
    kinds = [k for k in ("forward", "grad") if any(g[1] == k for g in groups)] or ["forward"]
    names = list(dict.fromkeys(k[2] for k in groups))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colours = {n: cmap(i % cmap.N) for i, n in enumerate(names)}
    markers = "osD^v<>pXh"
    fig, axes = plt.subplots(len(kinds), len(dtypes), figsize=(6.2 * len(dtypes) + 1.8, 4.2 * len(kinds)),
                             squeeze=False, sharex=True, sharey=True)
    for col, dtype in enumerate(dtypes):
        for row, kind in enumerate(kinds):
            ax = axes[row][col]
            for j, name in enumerate(names):
                pts = []
                for (dt, k, op, size, _), by in groups.items():
                    a, n = by.get("actfast"), by.get("numpy")
                    if dt == dtype and k == kind and op == name and a and n and a["correct"] and n["correct"]:
                        pts.append((size, n["median_s"] / a["median_s"]))
                if pts:
                    pts.sort()
                    ax.plot(*zip(*pts), "-", marker=markers[j % len(markers)], ms=4, lw=1.3,
                            color=colours[name], label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.axhline(1.0, color="k", lw=0.9)
            ax.set_title(f"{dtype}, {'gradient' if kind == 'grad' else 'forward'}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if row == len(kinds) - 1:
                ax.set_xlabel("elements")
            if col == 0:
                ax.set_ylabel("speed-up: NumPy time / actfast time")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    meta = result["meta"]
    load = max((v for v in (meta.get("loadavg_start"), meta.get("loadavg_end")) if v is not None), default=None)
    busy = load is not None and load > 0.5 * (meta.get("cores") or 1)
    fig.suptitle(f"actfast {meta['versions']['actfast']} vs NumPy {meta['versions']['numpy']}: "
                 f"{meta['cpu']}, {meta['isa']}, {meta['threads']} threads"
                 + (f"\n(busy machine: load {load:.1f} on {meta['cores']} cores, timings noisy)" if busy else ""),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="the default set: sizes 1e3,1e5,1e6, 5 samples of >= 2 ms (about a minute on 2 cores)")
    g.add_argument("--full", action="store_true",
                   help="sizes 1e2..1e7, 11 samples of >= 5 ms (several minutes)")
    p.add_argument("--ops", metavar="LIST",
                   help=f"comma-separated activations (default: all): {','.join(OP_NAMES)}; "
                        "add 'dense' to keep the dense layer")
    p.add_argument("--kind", choices=("both", "forward", "grad"), default="both",
                   help="forward, gradient or both (default)")
    p.add_argument("--sizes", metavar="LIST", help="comma-separated element counts, e.g. 1000,1e5,1e6")
    p.add_argument("--dtype", choices=("float32", "float64"), help="one dtype (default: both)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for actfast, torch, numexpr and BLAS (default: actfast's)")
    p.add_argument("--json", metavar="PATH", help="write every measurement as JSON (fields: see the docs)")
    p.add_argument("--plot", metavar="PATH.png", help="speed-up over NumPy vs size (needs matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables (for the README)")
    p.add_argument("--no-torch", action="store_true", help="do not race PyTorch even if installed")
    p.add_argument("--no-numexpr", action="store_true", help="do not race numexpr even if installed")
    p.add_argument("--no-dense", action="store_true", help="skip the dense layer")
    p.add_argument("--dense-shapes", metavar="LIST",
                   help="dense layer shapes batch x in x out, e.g. 64x512x512,256x1024x1024 (the default)")
    p.add_argument("--alloc", action="store_true",
                   help="time every implementation allocating its output (y = f(x)) instead of out=")
    p.add_argument("--samples", type=int, metavar="N", help="samples per measurement (5 quick, 11 full)")
    p.add_argument("--min-batch-ms", type=float, metavar="MS",
                   help="minimum duration of one sample (2 quick, 5 full)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--load", metavar="PATH",
                   help="measure nothing: print (--markdown) or plot (--plot) a saved --json file")


def main(args: argparse.Namespace) -> int:
    """Run the command; exit status 1 when an actfast result failed the check."""
    res = run(args)
    return 1 if any(not r["correct"] and r["impl"] == "actfast" for r in res["records"]) else 0
