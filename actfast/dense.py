"""Fused dense (fully connected) layer: ``act(x @ W + b)`` and its backward.

Design
------
* The matrix products are NumPy's own ``np.matmul`` (its BLAS, with its threads), on
  the whole batch. The epilogue (bias add and activation) then runs row by row on the
  product while it is in cache: each row is biased and handed, still in L1, to the
  vectorised span of the activation's own ufunc (``src/_dense.pxi``), so a dense layer
  computes exactly what ``actfast.NAME`` computes. The backward is one fused pass for
  ``dz = dy * f'(.)`` and ``db = dz.sum(0)`` (in double, per fixed chunk of rows), then
  ``dW = x.T @ dz`` and ``dx = dz @ W.T`` with NumPy's BLAS.
* Why NumPy's BLAS and not SciPy's ``cython_blas`` inside our own threads (what 0.1
  did): NumPy and SciPy wheels carry two different OpenBLAS builds, each with a pool of
  workers that busy-wait for ~0.1 s after a call. Our users call ``x @ W`` themselves
  between layers, so NumPy's workers are always spinning; a layer that ran its GEMMs
  in another pool (SciPy's, or OpenMP threads) had to share the cores with them and
  lost 2-10x in a training loop (bench/DENSE.md has the measurements of both
  designs). Using NumPy's BLAS puts every GEMM of the step in one pool, the one that
  is awake; the elementwise work goes to actfast's pool, whose helpers claim chunks
  only when they are free and sleep right after (``src/actfast_pool.h``).
* No blocking of rows between GEMM and epilogue: every BLAS call packs all of W again,
  which cost more than the epilogue's cache misses at every shape measured
  (bench/DENSE.md); the GEMM's result of a layer is in the last-level cache when the
  epilogue reads it.
* ``x`` and ``W`` may have any layout: ``np.matmul`` passes transposed and
  Fortran-ordered operands to BLAS with its transpose flags and copies the others.
* Threads: NumPy's BLAS uses its own thread count, lowered for the call to
  :func:`actfast.get_num_threads` when that is smaller (``actfast.num_threads(1)``
  makes the whole layer single-threaded); the elementwise passes use actfast's pool.
  Results do not depend on the thread count of the elementwise part (``db`` is summed
  in a fixed order); BLAS itself may round differently with other thread counts.
* The GIL is released inside the BLAS calls and the elementwise passes.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from . import _dispatch
from ._elementwise import (SELU_ALPHA, SELU_SCALE, _HARD_SIGMOID_ALPHA, _bounds, _celu_alpha, _hard_sigmoid_params,
                           _non_negative_finite, _real, _rrelu_bounds, _selu_params, _silu_beta, _softplus_params,
                           _threshold_params)
from ._gated import _beta
from ._threads import get_num_threads

__all__ = ["dense", "dense_grad", "dense_saves", "Dense"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_FLOATS = (_F32, _F64)
_INT_MAX = 2**31 - 1

# --------------------------------------------------------------------------------------
# Activations: name -> (kernel name, parameters with defaults, parameter checker)
# --------------------------------------------------------------------------------------


def _no_params(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return 0.0, 0.0


def _slope(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _real(name, "negative_slope", p["negative_slope"]), 0.0


def _alpha(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _real(name, "alpha", p["alpha"]), 0.0


def _celu(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _celu_alpha(name, p["alpha"]), 0.0


def _hard_tanh(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _bounds(name, p["min_val"], p["max_val"])


def _softplus(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _softplus_params(name, p["beta"], p["threshold"])


def _threshold(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _threshold_params(name, p["threshold"], p["value"])


def _lambd(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _non_negative_finite(name, "lambd", p["lambd"]), 0.0


def _hard_sigmoid(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _hard_sigmoid_params(name, p["alpha"], p["beta"])


def _selu(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _selu_params(name, p["alpha"], p["scale"])


def _silu(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _silu_beta(name, p["beta"])[0], 0.0


def _rrelu(name: str, p: dict[str, Any]) -> tuple[float, float]:
    # In a dense layer rrelu is its evaluation form: leaky_relu with the mean slope.
    lo, hi = _rrelu_bounds(name, p["lower"], p["upper"])
    return (lo + hi) / 2, 0.0


def _squareplus(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _non_negative_finite(name, "squareplus_b", p["squareplus_b"]), 0.0


def _swiglu(name: str, p: dict[str, Any]) -> tuple[float, float]:
    return _beta(name, p["beta"]), 0.0


class _Required:
    """The default of a parameter that has none (threshold's threshold and value)."""

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()


_ACTIVATIONS: dict[str, tuple[dict[str, Any], Callable[[str, dict[str, Any]], tuple[float, float]]]] = {
    "linear": ({}, _no_params),
    "relu": ({}, _no_params),
    "relu6": ({}, _no_params),
    "leaky_relu": ({"negative_slope": 0.01}, _slope),
    "rrelu": ({"lower": 1.0 / 8, "upper": 1.0 / 3}, _rrelu),
    "hard_tanh": ({"min_val": -1.0, "max_val": 1.0}, _hard_tanh),
    "hard_sigmoid": ({"alpha": _HARD_SIGMOID_ALPHA, "beta": 0.5}, _hard_sigmoid),
    "hard_swish": ({"alpha": _HARD_SIGMOID_ALPHA, "beta": 0.5}, _hard_sigmoid),
    "softsign": ({}, _no_params),
    "elu": ({"alpha": 1.0}, _alpha),
    "selu": ({"alpha": SELU_ALPHA, "scale": SELU_SCALE}, _selu),
    "celu": ({"alpha": 1.0}, _celu),
    "sigmoid": ({}, _no_params),
    "log_sigmoid": ({}, _no_params),
    "silu": ({"beta": 1.0}, _silu),
    "softplus": ({"beta": 1.0, "threshold": 20.0}, _softplus),
    "mish": ({}, _no_params),
    "tanh": ({}, _no_params),
    "gelu": ({"approximate": "none"}, _no_params),
    # The parameters are passed to the kernel as p0, p1 in the order of its list in
    # src/_kernels.pyx.tp (threshold: threshold, value).
    "threshold": ({"threshold": _REQUIRED, "value": _REQUIRED}, _threshold),
    "hard_shrink": ({"lambd": 0.5}, _lambd),
    "soft_shrink": ({"lambd": 0.5}, _lambd),
    "tanh_shrink": ({}, _no_params),
    # squareplus's b (actfast.squareplus(x, b)) is spelled squareplus_b: b is the bias here.
    "squareplus": ({"squareplus_b": 4.0}, _squareplus),
    # Gated units (see _GATED): W and b have 2 * n_out columns.
    "swiglu": ({"beta": 1.0}, _swiglu),
    "geglu": ({"approximate": "none"}, _no_params),
    "reglu": ({}, _no_params),
    "glu": ({}, _no_params),
}
_ALIASES = {
    "identity": "linear", "hardtanh": "hard_tanh", "hardsigmoid": "hard_sigmoid",
    "hardswish": "hard_swish", "logsigmoid": "log_sigmoid", "swish": "silu",
    "hardshrink": "hard_shrink", "softshrink": "soft_shrink", "tanhshrink": "tanh_shrink",
}
# Activations whose derivative is a function of the output (see _activation_from_output.pxd).
_FROM_OUTPUT = {"linear", "relu", "relu6", "leaky_relu", "rrelu", "hard_tanh", "elu", "selu", "celu", "sigmoid", "tanh"}
# Gated activations: z = x @ W + b has 2 * n_out columns and y = value * g(gate) has
# n_out. swiglu, geglu, reglu take the gate from the first n_out columns and the value
# from the last; glu follows torch.nn.functional.glu on z (the first half is the value,
# the second goes through the sigmoid). Their kernels are the gated ufuncs' spans
# (GATED_INDEX of the kernel module); they save z.
_GATED = {"swiglu", "geglu", "reglu", "glu"}


class _Act:
    """A resolved activation: its parameters and the kernels (indices into the kernel
    module's span table, -1 for none) of its forward and of the gradient that
    dense_grad computes from what :func:`dense_saves` names."""

    __slots__ = ("name", "kernel", "p0", "p1", "saves", "forward", "grad", "gated", "gate_first", "width")

    def __init__(self, name: str, kernel: str, p0: float, p1: float, saves: str) -> None:
        self.name, self.kernel, self.p0, self.p1, self.saves = name, kernel, p0, p1, saves
        self.gated = name in _GATED
        self.gate_first = name != "glu"
        self.width = 2 if self.gated else 1     # columns of z per output column
        if self.gated:
            gated = _dispatch.kernels.GATED_INDEX
            self.forward, self.grad = gated[kernel], gated[kernel + "_grad"]
            return
        index = _dispatch.kernels.KERNEL_INDEX
        linear = name == "linear"
        self.forward = -1 if linear else index[kernel]
        self.grad = -1 if linear else index[kernel + ("_grad_from_output" if saves == "y" else "_grad")]


def _resolve(fname: str, activation: Any, params: dict[str, Any], require: bool = True) -> _Act:
    if activation is None:
        activation = "linear"
    if not isinstance(activation, str):
        raise TypeError(f"actfast.{fname}: activation must be a name (str) or None, got {type(activation).__name__}")
    name = _ALIASES.get(activation, activation)
    if name not in _ACTIVATIONS:
        known = ", ".join(sorted(_ACTIVATIONS))
        raise ValueError(f"actfast.{fname}: unknown activation {activation!r}; known: {known} (or None)")
    defaults, check = _ACTIVATIONS[name]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        takes = ", ".join(defaults) if defaults else "no parameters"
        raise TypeError(f"actfast.{fname}: activation {name!r} got unexpected parameter(s) "
                        f"{', '.join(unknown)}; it takes {takes}")
    p = {**defaults, **params}
    missing = [k for k, v in p.items() if v is _REQUIRED]
    if missing and require:
        raise TypeError(f"actfast.{fname}: activation {name!r} needs the parameter(s) {', '.join(missing)}")
    p.update({k: 0.0 for k in missing})   # dense_saves: the answer does not depend on them
    p0, p1 = check(fname, p)
    kernel = {"glu": "glu_pair", "rrelu": "leaky_relu"}.get(name, name)
    if name in ("silu", "swiglu") and p0 != 1.0:
        kernel = name + "_beta"      # see actfast._elementwise._silu_call
    if name in ("gelu", "geglu"):
        approximate = p["approximate"]
        if isinstance(approximate, str) and approximate == "tanh":
            kernel = name + "_tanh"
        elif not (isinstance(approximate, str) and approximate == "none"):
            raise ValueError(f"actfast.{fname}: approximate must be 'none' or 'tanh', got {approximate!r}")
    saves = "y" if name in _FROM_OUTPUT else "z"
    if (name in ("leaky_relu", "rrelu", "elu") and p0 < 0) or (name == "selu" and (p0 < 0 or p1 <= 0)):
        saves = "z"  # y > 0 also for some z < 0: the output does not tell the branch
    return _Act(name, kernel, p0, p1, saves)


_RESOLVED: dict[Any, _Act] = {}


def _resolve_cached(fname: str, activation: Any, params: dict[str, Any]) -> _Act:
    """_resolve, memoised for the common call without parameters."""
    if not params:
        try:
            return _RESOLVED[activation]
        except (KeyError, TypeError):
            pass
        act = _resolve(fname, activation, params)
        if len(_RESOLVED) < 64:
            _RESOLVED[activation] = act
        return act
    return _resolve(fname, activation, params)


def dense_saves(activation: str | None = "relu", **params: Any) -> str:
    """What :func:`dense_grad` needs from the forward pass for this activation.

    Returns ``"y"`` when the derivative is a function of the output ``y = act(z)``
    (training then keeps only the output it has anyway), ``"z"`` when it needs the
    pre-activation ``z = x @ W + b``:

    ==================================================  ======
    activation                                          saves
    ==================================================  ======
    None / "linear", relu, relu6, hard_tanh, selu,      "y"
    sigmoid, tanh, celu (any alpha != 0)
    leaky_relu (negative_slope >= 0), elu (alpha >= 0)  "y"
    leaky_relu (slope < 0), elu (alpha < 0)             "z"
    gelu (both), silu, mish, softplus, log_sigmoid,     "z"
    hard_sigmoid, hard_swish, softsign, threshold,
    hard_shrink, soft_shrink, tanh_shrink, squareplus
    swiglu, geglu, reglu, glu (gated: z has 2 n_out     "z"
    columns)
    ==================================================  ======

    Parameters are those of the activation (they matter for leaky_relu and elu).
    """
    return _resolve("dense_saves", activation, params, require=False).saves


# --------------------------------------------------------------------------------------
# Compiled module, BLAS threads
# --------------------------------------------------------------------------------------

class _BlasThreads:
    """Lowers NumPy's BLAS thread count for the duration of a call, when actfast's
    thread count (:func:`actfast.get_num_threads`) is the smaller.

    The libraries are found once with threadpoolctl. For OpenBLAS with its own
    (pthreads) pool, ``openblas_get/set_num_threads`` are called directly: threadpoolctl's
    ``set_num_threads`` lets only the first Python thread that used it change OpenBLAS's
    limit (threadpoolctl >= 3.6) and would silently do nothing from any other thread.
    An OpenMP-threaded BLAS follows the OpenMP limits already; other BLAS libraries
    (MKL, BLIS) go through threadpoolctl. The cap is process-wide while a call runs:
    another Python thread calling NumPy's BLAS at that moment sees it too (as with
    ``threadpoolctl``).
    """

    def __init__(self) -> None:
        self.libs: list[tuple[Callable[[], int], Callable[[int], Any]]] = []
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            return
        np.ones((2, 2)) @ np.ones((2, 2))     # make sure NumPy's BLAS is loaded
        libs = [lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas"]
        # np.matmul calls NumPy's own BLAS (numpy.libs/ in the wheels); SciPy's and the
        # others are not used by a dense call. If none can be told apart, cap all.
        ours = [lc for lc in libs if "numpy.libs" in lc.filepath.replace("\\", "/")
                or "/numpy/" in lc.filepath.replace("\\", "/")]
        for lc in ours or libs:
            if lc.internal_api == "openblas":
                if getattr(lc, "threading_layer", None) == "openmp":
                    continue
                try:
                    get = lc._get_symbol("openblas_get_num_threads")
                    set_ = lc._get_symbol("openblas_set_num_threads")
                except Exception:  # noqa: BLE001 - a threadpoolctl without the helper
                    get = set_ = None
                if get is not None and set_ is not None:
                    self.libs.append((get, set_))
                    continue
            self.libs.append((lc.get_num_threads, lc.set_num_threads))

    def cap(self, n: int) -> list[tuple[Callable[[int], Any], int]] | None:
        """Lower every BLAS pool above n threads to n; returns what to restore."""
        changed = None
        for get, set_ in self.libs:
            cur = get()
            if cur is not None and cur > n:
                set_(n)
                if changed is None:
                    changed = []
                changed.append((set_, cur))
        return changed

    @staticmethod
    def restore(changed: list[tuple[Callable[[int], Any], int]]) -> None:
        for set_, n in changed:
            set_(n)


_blas: _BlasThreads | None = None
# The thread count below which NumPy's BLAS is capped for a call: the count actfast
# would use by default, so that the common case (nothing lowered) costs no BLAS query.
_default_threads: int | None = None


def _blas_threads() -> _BlasThreads:
    global _blas
    if _blas is None:
        _blas = _BlasThreads()
    return _blas


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``np.matmul(a, b, out=out)`` with NumPy's BLAS held to actfast's thread count."""
    global _default_threads
    if _default_threads is None:
        _default_threads = max(1, os.cpu_count() or 1)
    nthreads = get_num_threads()
    if nthreads >= _default_threads:
        np.matmul(a, b, out=out)
        return
    blas = _blas or _blas_threads()
    changed = blas.cap(nthreads)
    try:
        np.matmul(a, b, out=out)
    finally:
        if changed:
            blas.restore(changed)

# --------------------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------------------


def _array(fname: str, what: str, a: Any) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"actfast.{fname}: cannot interpret {what} ({type(a).__name__}) as an array") from exc


def _common_dtype(fname: str, arrays: dict[str, np.ndarray]) -> np.dtype:
    dts = {k: a.dtype for k, a in arrays.items()}
    bad = {k: dt for k, dt in dts.items() if dt not in _FLOATS}
    if bad:
        desc = ", ".join(f"{k}: {dt}" for k, dt in dts.items())
        raise TypeError(f"actfast.{fname} takes float32 or float64 arrays (one dtype for all); got {desc}")
    first = next(iter(dts.values()))
    if any(dt != first for dt in dts.values()):
        desc = ", ".join(f"{k}: {dt}" for k, dt in dts.items())
        raise TypeError(f"actfast.{fname}: mixed dtypes ({desc}); convert them to one of float32/float64")
    return first


def _check_out(fname: str, name: str, out: Any, shape: tuple[int, ...], dtype: np.dtype,
               inputs: tuple[np.ndarray, ...]) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"actfast.{fname}: {name} must be a NumPy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"actfast.{fname}: {name} has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"actfast.{fname}: {name} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"actfast.{fname}: {name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"actfast.{fname}: {name} is read-only")
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            raise ValueError(f"actfast.{fname}: {name} must not overlap an input")


# --------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------


def dense(x: ArrayLike, W: ArrayLike, b: ArrayLike | None = None, activation: str | None = "relu",
          out: np.ndarray | None = None, *, return_z: bool = False, **params: Any) -> Any:
    """Fully connected layer with a fused activation: ``act(x @ W + b)``.

    Parameters
    ----------
    x : array_like, shape (batch, n_in) or (n_in,)
        Input rows. C- and Fortran-ordered arrays, and any 2-D view with one unit
        stride (``x[::2]``, ``x[:, :k]``, ``x.T``), are read in place through BLAS
        transpose flags; other layouts (``x[:, ::2]``, broadcast views) are copied.
    W : array_like, shape (n_in, n_out), or (n_in, 2 * n_out) for a gated activation
        Weights, same rules as ``x``.
    b : array_like, shape (n_out,) (or (2 * n_out,), gated), optional
        Bias; None for none.
    activation : str or None, default "relu"
        relu, relu6, leaky_relu, elu, selu, celu, gelu, silu, mish, softplus, sigmoid,
        log_sigmoid, hard_sigmoid, hard_swish, tanh, hard_tanh, softsign, threshold,
        hard_shrink, soft_shrink, tanh_shrink, squareplus, rrelu (its evaluation form,
        leaky_relu with slope (lower + upper) / 2) (PyTorch spellings hardtanh,
        hardsigmoid, hardswish, logsigmoid, hardshrink, softshrink, tanhshrink
        accepted), or None / "linear" for no activation; or a gated unit: swiglu,
        geglu, reglu, glu. For these ``z = x @ W + b`` has ``2 * n_out`` columns and
        ``y = value * g(gate)`` has n_out: swiglu, geglu and reglu take the gate from
        the first n_out columns of z and the value from the last n_out (``W[:, :n_out]``
        are the gate's weights); glu follows ``torch.nn.functional.glu`` on z (the
        first half is the value, the second goes through the sigmoid).
    out : ndarray, optional
        C-contiguous array of the result's shape and dtype, not overlapping an input.
        Left untouched when an error is raised.
    return_z : bool, default False
        Also return the pre-activation ``z = x @ W + b`` (written in the same fused
        pass), which :func:`dense_grad` needs for the activations where
        :func:`dense_saves` says "z".
    **params
        The activation's parameters, as for the elementwise functions:
        ``negative_slope`` (leaky_relu), ``alpha`` (elu, celu), ``approximate`` (gelu:
        "none" or "tanh"), ``beta`` and ``threshold`` (softplus), ``min_val`` and
        ``max_val`` (hard_tanh), ``threshold`` and ``value`` (threshold, both
        required), ``lambd`` (hard_shrink, soft_shrink), ``squareplus_b`` (squareplus's
        ``b``, renamed because ``b`` is the bias here), ``beta`` (swiglu), ``approximate``
        (geglu).

    Returns
    -------
    y : ndarray, shape (batch, n_out) or (n_out,)
        ``act(x @ W + b)``, with the dtype of the inputs (float32 or float64; all
        inputs must have the same one). ``(y, z)`` when ``return_z`` (z of shape
        (batch, 2 * n_out) for a gated activation).

    Notes
    -----
    The product is NumPy's ``np.matmul`` (its BLAS and threads); bias and activation are
    then applied row by row while the product is in cache, by the activation's own
    vectorised kernel. Threads: see the module docstring of ``actfast.dense``.
    """
    act = _resolve_cached("dense", activation, params)
    if type(x) is not np.ndarray:
        x = _array("dense", "x", x)
    if type(W) is not np.ndarray:
        W = _array("dense", "W", W)
    if b is not None and type(b) is not np.ndarray:
        b = _array("dense", "b", b)
    dtype = x.dtype
    if (dtype is not _F32 and dtype is not _F64) or W.dtype is not dtype or (b is not None and b.dtype is not dtype):
        arrays = {"x": x, "W": W}
        if b is not None:
            arrays["b"] = b
        dtype = _common_dtype("dense", arrays)
    xs, Ws = x.shape, W.shape
    width = act.width
    if len(xs) not in (1, 2) or len(Ws) != 2 or xs[-1] != Ws[0] or (b is not None and b.shape != (Ws[1],)) \
            or Ws[1] % width:
        bs = "None" if b is None else str(b.shape)
        cols = "2 * n_out" if act.gated else "n_out"
        raise ValueError(f"actfast.dense: shapes do not fit: x {xs}, W {Ws}, b {bs}; expected "
                         f"x (batch, n_in) or (n_in,), W (n_in, {cols}), b ({cols},)")
    vector = len(xs) == 1
    x2 = x.reshape(1, -1) if vector else x
    batch, n_in = x2.shape
    n_z = Ws[1]                     # columns of z = x @ W + b
    n_out = n_z // width
    shape = (n_out,) if vector else (batch, n_out)
    zshape = (n_z,) if vector else (batch, n_z)
    if batch > _INT_MAX or n_in > _INT_MAX or n_z > _INT_MAX:
        raise ValueError(f"actfast.dense: dimensions above 2**31 - 1 are not supported (x {xs}, W {Ws})")
    if out is not None:
        _check_out("dense", "out", out, shape, dtype, (x, W, b))
        y = out
    else:
        y = np.empty(shape, dtype)
    # A gated layer's z is the product's buffer (twice y's width), always needed.
    z = np.empty(zshape, dtype) if return_z or act.gated else None
    if b is not None and not (b.flags.c_contiguous and b.flags.aligned):
        b = np.ascontiguousarray(b)
    if batch and n_out:
        k = _dispatch.kernels
        y2 = y.reshape(1, n_out) if vector else y
        z2 = None if z is None else (z.reshape(1, n_z) if vector else z)
        if act.gated:
            _matmul(x, W, z)
            k._dense_gated_epilogue(z2, b, y2, act.forward, act.p0, act.gate_first)
        else:
            _matmul(x, W, y)
            k._dense_epilogue(y2, b, z2, act.forward, act.p0, act.p1)
    elif z is not None and not act.gated:
        z[...] = y                      # empty; a gated z is empty too (batch or n_out is 0)
    return (y, z) if return_z else y


# --------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------


def dense_grad(dy: ArrayLike, x: ArrayLike, W: ArrayLike, z_or_y: ArrayLike, activation: str | None = "relu",
               *, compute_dx: bool = True, **params: Any) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Backward of :func:`dense`: ``(dx, dW, db)`` for the upstream gradient ``dy``.

    ``dz = dy * act'(.)`` is computed in one pass together with ``db = dz.sum(axis=0)``
    (summed in double), by the kernels of ``actfast.NAME_grad`` (from ``z``) or
    ``actfast.NAME_grad_from_output`` (from ``y``); ``dx = dz @ W.T`` and
    ``dW = x.T @ dz`` are NumPy's BLAS GEMMs (see the module docstring). ``dz`` is the
    only temporary of the output's size. The GIL is released throughout.

    Parameters
    ----------
    dy : array_like, shape (batch, n_out) or (n_out,)
        Gradient of the loss with respect to the layer's output. ``dy`` and ``z_or_y``
        are read in place when C-contiguous and copied otherwise.
    x, W : array_like
        The forward pass's input and weights (any layout, as in :func:`dense`).
    z_or_y : array_like, shape of dy (gated: (batch, 2 * n_out), z)
        What :func:`dense_saves` names for this activation: the output ``y`` for
        linear, relu, relu6, leaky_relu (slope >= 0), hard_tanh, elu (alpha >= 0), selu,
        celu, sigmoid, tanh; the pre-activation ``z`` (``dense(..., return_z=True)``) for
        gelu, silu, mish, softplus, log_sigmoid, hard_sigmoid, hard_swish, softsign,
        threshold, hard_shrink, soft_shrink, tanh_shrink, squareplus and
        leaky_relu/elu with a negative parameter.

        ==================================================  ======
        activation                                          saves
        ==================================================  ======
        None / "linear", relu, relu6, hard_tanh, selu,      "y"
        sigmoid, tanh, celu, leaky_relu (slope >= 0),
        elu (alpha >= 0)
        everything else                                     "z"
        ==================================================  ======

        From ``y``, saturated regions lose relative accuracy (sigmoid's ``y (1 - y)``
        near y = 1 has an absolute error ~ eps * |dy|), as in PyTorch.
    activation, **params
        As for :func:`dense`.
    compute_dx : bool, default True
        False skips ``dx`` (a first layer needs none) and returns None in its place.

    Returns
    -------
    dx : ndarray, shape of x (or None)
    dW : ndarray, shape of W: (n_in, n_out), or (n_in, 2 * n_out) gated
    db : ndarray, shape (n_out,) (gated: (2 * n_out,))

    Notes
    -----
    Gated activations: ``dz`` (batch, 2 * n_out) is written in one pass from ``dy`` and
    the saved ``z`` by the two-output kernel of ``actfast.NAME_grad`` (dgate and dvalue
    into their halves of dz's columns).
    """
    act = _resolve_cached("dense_grad", activation, params)
    if type(dy) is not np.ndarray:
        dy = _array("dense_grad", "dy", dy)
    if type(x) is not np.ndarray:
        x = _array("dense_grad", "x", x)
    if type(W) is not np.ndarray:
        W = _array("dense_grad", "W", W)
    s = z_or_y if type(z_or_y) is np.ndarray else _array("dense_grad", "z_or_y", z_or_y)
    dtype = dy.dtype
    if (dtype is not _F32 and dtype is not _F64) or x.dtype is not dtype or W.dtype is not dtype \
            or s.dtype is not dtype:
        dtype = _common_dtype("dense_grad", {"dy": dy, "x": x, "W": W, "z_or_y": s})
    xs, Ws = x.shape, W.shape
    width = act.width
    ok = len(xs) in (1, 2) and len(Ws) == 2 and xs[-1] == Ws[0] and Ws[1] % width == 0
    if ok:
        yshape = xs[:-1] + (Ws[1] // width,)
        ok = dy.shape == yshape and s.shape == xs[:-1] + (Ws[1],)
    if not ok:
        if act.gated:
            expect = ("W (n_in, 2 * n_out), dy (batch, n_out) or (n_out,), z_or_y (the saved z) "
                      "(batch, 2 * n_out) or (2 * n_out,)")
        else:
            expect = "W (n_in, n_out), dy and z_or_y (batch, n_out) or (n_out,)"
        raise ValueError(f"actfast.dense_grad: shapes do not fit: dy {dy.shape}, x {xs}, W {Ws}, "
                         f"z_or_y {s.shape}; expected x (batch, n_in) or (n_in,), {expect}")
    vector = len(xs) == 1
    if vector:
        x2 = x.reshape(1, -1)
        batch, n_in = 1, xs[0]
    else:
        x2 = x
        batch, n_in = xs
    n_z = Ws[1]
    n_out = n_z // width
    if batch > _INT_MAX or n_in > _INT_MAX or n_z > _INT_MAX:
        raise ValueError("actfast.dense_grad: dimensions above 2**31 - 1 are not supported")
    if vector:
        dy2, s2 = dy.reshape(1, n_out), s.reshape(1, n_z)
    else:
        dy2, s2 = dy, s
    if not dy2.flags.c_contiguous:
        dy2 = np.ascontiguousarray(dy2)
    if not s2.flags.c_contiguous:
        s2 = np.ascontiguousarray(s2)
    db = np.empty(n_z, dtype)
    dW = np.empty((n_in, n_z), dtype)
    dx = np.empty((batch, n_in), dtype) if compute_dx else None
    # The one temporary of z's size.
    dz = np.empty((batch, n_z), dtype)
    if act.gated:
        _dispatch.kernels._dense_gated_dz(dy2, s2, dz, db, act.grad, act.p0, act.gate_first)
    else:
        _dispatch.kernels._dense_dz(dy2, s2, dz, db, act.grad, act.p0, act.p1)
    if batch == 1:
        # An outer product: OpenBLAS's GEMM with k = 1 is ~10x slower than the multiply.
        np.multiply(x2.reshape(n_in, 1), dz, out=dW)
    else:
        _matmul(x2.T, dz, dW)
    if dx is not None:
        _matmul(dz, W.T, dx)
    if dx is not None and vector:
        dx = dx.reshape(n_in)
    return dx, dW, db


# --------------------------------------------------------------------------------------
# Layer object
# --------------------------------------------------------------------------------------


class Dense:
    """A fully connected layer ``y = act(x @ W + b)`` with its backward.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    activation : str or None, default "relu"
        As for :func:`dense`; its parameters go in ``**params``. A gated activation
        (swiglu, geglu, reglu, glu) gives W and b ``2 * n_out`` columns (gate then
        value, or F.glu's order for glu; see :func:`dense`), initialised as a layer of
        that width.
    init : str or callable, default "he_normal"
        A name from :mod:`actfast.init` (he_normal, he_uniform, glorot_normal,
        glorot_uniform, lecun_normal, rai) or a callable ``init(fan_in, fan_out, rng=, dtype=)``
        returning W of shape (n_in, n_out), or ``(W, b)`` to set the biases too (as
        ``rai`` does). Otherwise biases start at zero.
    dtype : float32 or float64
    rng : None, int, SeedSequence or numpy.random.Generator
        Passed to ``numpy.random.default_rng``.

    Attributes
    ----------
    W, b : ndarray
        The parameters, shapes (n_in, n_out) and (n_out,) (gated: 2 * n_out columns).
    dW, db : ndarray or None
        The gradients from the last :meth:`backward`.
    params : dict
        ``{"W": W, "b": b}`` (the arrays themselves: update them in place).
    grads : dict
        ``{"W": dW, "b": db}``, same keys as ``params``.

    :meth:`forward` keeps a reference to ``x`` and to ``y`` (or ``z``, per
    :func:`dense_saves`) for :meth:`backward`; do not modify them in between.

    Examples
    --------
    >>> layer = Dense(3, 2, rng=0)
    >>> y = layer.forward(np.ones((4, 3), np.float32))
    >>> dx = layer.backward(np.ones_like(y))
    >>> for k in layer.params:
    ...     layer.params[k] -= 0.1 * layer.grads[k]
    """

    def __init__(self, n_in: int, n_out: int, activation: str | None = "relu", init: Any = "he_normal",
                 dtype: Any = np.float32, rng: Any = None, **params: Any) -> None:
        from . import init as _init

        self.activation = activation
        self.activation_params = dict(params)
        self._act = _resolve("Dense", activation, params)
        self.dtype = np.dtype(dtype)
        if self.dtype not in _FLOATS:
            raise TypeError(f"actfast.Dense: dtype must be float32 or float64, got {self.dtype}")
        if isinstance(init, str):
            if init not in _init.INITIALIZERS:
                raise ValueError(f"actfast.Dense: unknown init {init!r}; known: {', '.join(_init.INITIALIZERS)}")
            init = getattr(_init, init)
        rng = np.random.default_rng(rng)
        self.n_out = int(n_out)
        cols = self._act.width * int(n_out)      # columns of W and z
        # An initializer returns W, or (W, b) when it sets the biases too (rai).
        drawn = init(int(n_in), cols, rng=rng, dtype=self.dtype)
        W, b = drawn if isinstance(drawn, tuple) else (drawn, np.zeros(cols, self.dtype))
        W, b = np.asarray(W), np.asarray(b)
        if W.shape != (n_in, cols) or W.dtype != self.dtype or b.shape != (cols,) or b.dtype != self.dtype:
            raise ValueError(f"actfast.Dense: init returned W {W.shape} {W.dtype} and b {b.shape} {b.dtype}, "
                             f"expected ({n_in}, {cols}) and ({cols},) {self.dtype}")
        self.W = np.ascontiguousarray(W)
        self.b = np.ascontiguousarray(b)
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None
        self._x: np.ndarray | None = None
        self._saved: np.ndarray | None = None

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "b": self.b}

    @property
    def grads(self) -> dict[str, np.ndarray | None]:
        return {"W": self.dW, "b": self.db}

    def forward(self, x: ArrayLike) -> np.ndarray:
        """``act(x @ W + b)``; keeps what :meth:`backward` needs."""
        x = np.asarray(x)
        if self._act.saves == "z":
            y, z = dense(x, self.W, self.b, self.activation, return_z=True, **self.activation_params)
            self._saved = z
        else:
            y = dense(x, self.W, self.b, self.activation, **self.activation_params)
            self._saved = y
        self._x = x
        return y

    def backward(self, dy: ArrayLike, compute_dx: bool = True) -> np.ndarray | None:
        """Stores ``dW`` and ``db`` and returns ``dx`` (None when ``compute_dx`` is False)."""
        if self._x is None:
            raise RuntimeError("actfast.Dense.backward called before forward")
        dx, self.dW, self.db = dense_grad(dy, self._x, self.W, self._saved, self.activation,
                                          compute_dx=compute_dx, **self.activation_params)
        return dx

    def __repr__(self) -> str:
        return (f"Dense({self.W.shape[0]}, {self.n_out}, activation={self.activation!r}, "
                f"dtype={self.dtype.name})")
