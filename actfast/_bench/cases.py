"""The elementwise scenario's cases: the op table (float64 reference, NumPy idiom,
numexpr formula, PyTorch aten op of every activation and gradient), the implementations
and their preparation, inputs, references, tolerances and the correctness check."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

DENSE_ACTIVATIONS = ("relu", "sigmoid", "gelu")
SOFTMAX_WIDTH = 1000
TOLERANCES = {  # (rtol, atol)
    "float32": (1e-4, 1e-5),
    "float64": (1e-9, 1e-11),
    "dense-float32": (1e-4, 1e-4),
    "dense-float64": (1e-10, 1e-10),
}

SQRT2 = math.sqrt(2.0)            # Python floats: weak scalars that keep float32 float32
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_K = math.sqrt(2.0 / math.pi)
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
THRESHOLD_ARGS = (0.5, -1.0)      # the threshold case: threshold, value
# What is computed: f(x), dy * f'(x) from x, and dy * f'(x) from the saved output y = f(x)
# (NAME_grad_from_output: the backward that keeps only the layer's output).
KINDS = ("forward", "grad", "grad_from_output")


def label(name: str, kind: str) -> str:
    """The row name: ``relu``, ``relu_grad``, ``relu_grad_from_output`` (actfast's function)."""
    return name if kind == "forward" else f"{name}_{kind}"


# --------------------------------------------------------------------------------------
# The operations: float64 reference, NumPy idiom, numexpr formula, PyTorch aten ops
# --------------------------------------------------------------------------------------

def _sp():
    import scipy.special
    return scipy.special


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """One computation: ``name`` with ``kind`` "forward" (f(x)), "grad" (dy * f'(x)) or
    "grad_from_output" (dy * f'(x) as a function of y = f(x): its callables take y where
    the others take x, and its numexpr formula and torch arguments name it "y")."""

    name: str
    kind: str
    ref: Callable[..., np.ndarray]                   # (x64, dy64) -> float64 reference
    numpy: Callable[..., np.ndarray]                 # (x, dy, out) -> array
    numpy_out: bool = True                           # does numpy() honour out=?
    numexpr: str | None = None                       # formula in x, dy, a, b (constants)
    numexpr_consts: tuple[tuple[str, float], ...] = ()
    torch: tuple | None = None                       # see _torch_call
    axis: bool = False                               # softmax-like: rows of SOFTMAX_WIDTH
    gated: bool = False                              # GLU family: see GATED_OPS

    @property
    def label(self) -> str:
        return label(self.name, self.kind)

    @property
    def arg(self) -> str:
        """The name of the op's first input: "x", or "y" for a gradient from the output."""
        return "y" if self.kind == "grad_from_output" else "x"

    def actfast(self, af, x, dy, out):
        if self.kind == "grad_from_output":      # x is y here; every parameter at its default
            return getattr(af, self.name + "_grad_from_output")(x, dy, out=out)
        if self.gated:
            return _actfast_gated(af, self.name, self.kind, x, dy, out)
        if self.name == "prelu":
            w = prelu_weight(x.shape[-1], x.dtype)
            return (af.prelu(x, w, -1, out=out) if self.kind == "forward"
                    else af.prelu_grad(x, w, dy, -1, out=None if out is None else (out, None))[0])
        if self.name == "threshold":      # threshold 0.5, value -1 (THRESHOLD_ARGS)
            return (af.threshold(x, *THRESHOLD_ARGS, out=out) if self.kind == "forward"
                    else af.threshold_grad(x, dy, *THRESHOLD_ARGS, out=out))
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
            consts=(), ftorch=None, gtorch=None, axis=False, gated=False):
        ops.append(OpSpec(name, "forward", lambda x, dy: fref(x), lambda x, dy, out: fnp(x, out),
                          fout, fne, consts, ftorch, axis, gated))
        ops.append(OpSpec(name, "grad", gref, gnp, gout, gne, consts, gtorch, axis, gated))

    # Torch specs: (aten op, argument names and constants, out keyword or None, extra kwargs).
    # Argument names: "x", "dy", "y" (the saved forward output: gradients from the output
    # only), "buf" (log_sigmoid's), "dtype" (the input's). A gradient whose aten backward
    # takes the output (sigmoid_backward, tanh_backward, _softmax_backward_data,
    # _log_softmax_backward_data) has no torch spec here: PyTorch has no backward of these
    # from x, and its op is raced in the grad_from_output row (from_output below).
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
    add("prelu",  # one weight per channel along the last axis (prelu_weight)
        lambda x: np.where(x > 0, x, prelu_weight(x.shape[-1], x.dtype) * x), _prelu_ref_grad,
        lambda x, out: np.where(x > 0, x, prelu_weight(x.shape[-1], x.dtype) * x), _np_prelu_grad,
        fout=False, gout=False, ftorch=("prelu",), gtorch=("prelu",), axis=True)
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
        lambda x, dy: np.where(x <= -3, 0.0, np.where(x < 3, dy * (x / 3 + 0.5), dy)),
        lambda x, out: np.divide(x * np.clip(x + 3, 0, 6), 6, out=out),
        lambda x, dy, out: np.where(x <= -3, 0, np.where(x >= 3, dy, dy * (x / 3 + 0.5))), gout=False,
        ftorch=("hardswish", ("x",), "out"), gtorch=("hardswish_backward", ("dy", "x"), "out"))
    add("softsign",
        lambda x: x / (1 + np.abs(x)), lambda x, dy: dy / (1 + np.abs(x)) ** 2,
        lambda x, out: np.divide(x, 1 + np.abs(x), out=out),
        lambda x, dy, out: np.divide(dy, (1 + np.abs(x)) ** 2, out=out),
        fne="x / (1 + abs(x))", gne="dy / ((1 + abs(x)) * (1 + abs(x)))",
        ftorch=("softsign", ("x",), None), gtorch=("softsign_grad", ("dy", "x"), None))
    add("threshold",  # threshold 0.5, value -1; ONNX ThresholdedRelu is value 0
        lambda x: np.where(x > 0.5, x, -1.0), lambda x, dy: np.where(x > 0.5, dy, 0.0),
        lambda x, out: np.where(x > 0.5, x, -1.0), lambda x, dy, out: np.multiply(dy, x > 0.5, out=out),
        fout=False, fne="where(x > 0.5, x, -1)", gne="where(x > 0.5, dy, 0)",
        ftorch=("threshold", ("x", 0.5, -1.0), "out"),
        gtorch=("threshold_backward", ("dy", "x", 0.5), "grad_input"))
    add("hard_shrink",  # lambd = 0.5 (PyTorch's)
        lambda x: np.where(np.abs(x) > 0.5, x, 0.0), lambda x, dy: np.where(np.abs(x) > 0.5, dy, 0.0),
        lambda x, out: np.multiply(x, np.abs(x) > 0.5, out=out),
        lambda x, dy, out: np.multiply(dy, np.abs(x) > 0.5, out=out),
        fne="where(abs(x) > 0.5, x, 0)", gne="where(abs(x) > 0.5, dy, 0)",
        ftorch=("hardshrink", ("x", 0.5), "out"), gtorch=("hardshrink_backward", ("dy", "x", 0.5), "grad_input"))
    add("soft_shrink",  # lambd = 0.5
        lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.5, 0.0), lambda x, dy: np.where(np.abs(x) > 0.5, dy, 0.0),
        lambda x, out: np.multiply(np.sign(x), np.maximum(np.abs(x) - 0.5, 0), out=out),
        lambda x, dy, out: np.multiply(dy, np.abs(x) > 0.5, out=out),
        fne="where(x > 0.5, x - 0.5, where(x < -0.5, x + 0.5, 0))", gne="where(abs(x) > 0.5, dy, 0)",
        ftorch=("softshrink", ("x", 0.5), "out"), gtorch=("softshrink_backward", ("dy", "x", 0.5), "grad_input"))
    add("tanh_shrink",  # x - tanh(x): the float64 reference cancels near 0 (checked to rtol there)
        lambda x: x - np.tanh(x), lambda x, dy: dy * np.tanh(x) ** 2,
        lambda x, out: np.subtract(x, np.tanh(x), out=out),
        lambda x, dy, out: np.multiply(dy, np.tanh(x) ** 2, out=out),
        fne="x - tanh(x)", gne="dy * tanh(x) * tanh(x)")
    add("squareplus",  # b = 4 (jax.nn's); PyTorch has none
        lambda x: (x + np.sqrt(x * x + 4.0)) / 2, lambda x, dy: dy * (1 + x / np.sqrt(x * x + 4.0)) / 2,
        lambda x, out: np.multiply(x + np.sqrt(x * x + 4), 0.5, out=out),
        lambda x, dy, out: np.multiply(dy, (1 + x / np.sqrt(x * x + 4)) / 2, out=out),
        fne="(x + sqrt(x * x + 4)) / 2", gne="dy * (1 + x / sqrt(x * x + 4)) / 2")
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
        ftorch=("sigmoid", ("x",), "out"))
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
        ftorch=("tanh", ("x",), "out"))
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
        ftorch=("_softmax", ("x", -1, False), "out"), axis=True)
    add("log_softmax",
        lambda x: _sp().log_softmax(x, axis=-1),
        lambda x, dy: dy - _sp().softmax(x, axis=-1) * dy.sum(axis=-1, keepdims=True),
        lambda x, out: _np_log_softmax(x, out),
        lambda x, dy, out: _np_log_softmax_grad(x, dy, out),
        ftorch=("_log_softmax", ("x", -1, False), "out"), axis=True)
    add("softmin",  # softmax(-x); PyTorch's F.softmin is softmax of a negated copy, no aten op of its own
        lambda x: _sp().softmax(-x, axis=-1),
        lambda x, dy: -_softmax_grad64(-x, dy),
        lambda x, out: _np_softmax(-x, out),
        lambda x, dy, out: np.negative(_np_softmax_grad(-x, dy, out), out=out), axis=True)
    # Gated units (GATED_OPS): x is (rows, 2 n), its halves gate and value; the forward
    # is (rows, n), the gradient [dgate, dvalue] in x's layout (glu_grad's dx).
    add("glu",
        lambda x: _gv(x, "glu", lambda g, v: v * sp_expit(g)),
        lambda x, dy: _gv(x, "glu", lambda g, v: _cat("glu", dy * v * sp_expit(g) * sp_expit(-g), dy * sp_expit(g))),
        lambda x, out: _gv(x, "glu", lambda g, v: np.multiply(v, 1 / (1 + np.exp(-g)), out=out)),
        lambda x, dy, out: _np_glu_grad(x, dy), gout=False,
        ftorch=("gated:glu", ("x",), None), gtorch=("gated:glu_grad", ("dy", "x"), None), gated=True)
    add("swiglu",  # beta = 1: F.silu(gate) * value
        lambda x: _gv(x, "swiglu", lambda g, v: g * sp_expit(g) * v),
        lambda x, dy: _gv(x, "swiglu", lambda g, v: _cat(
            "swiglu", dy * v * sp_expit(g) * (1 + g * sp_expit(-g)), dy * g * sp_expit(g))),
        lambda x, out: _gv(x, "swiglu", lambda g, v: np.multiply(g * (1 / (1 + np.exp(-g))), v, out=out)),
        lambda x, dy, out: _np_swiglu_grad(x, dy), gout=False,
        ftorch=("gated:swiglu", ("x",), None), gtorch=("gated:swiglu_grad", ("dy", "x"), None), gated=True)
    add("geglu",
        lambda x: _gv(x, "geglu", lambda g, v: g * _sp().ndtr(g) * v),
        lambda x, dy: _gv(x, "geglu", lambda g, v: _cat(
            "geglu", dy * v * (_sp().ndtr(g) + g * np.exp(-0.5 * g * g) * INV_SQRT_2PI), dy * g * _sp().ndtr(g))),
        lambda x, out: _gv(x, "geglu", lambda g, v: np.multiply(0.5 * g * (1 + _sp().erf(g / SQRT2)), v, out=out)),
        lambda x, dy, out: _np_geglu_grad(x, dy), gout=False,
        ftorch=("gated:geglu", ("x",), None), gtorch=("gated:geglu_grad", ("dy", "x"), None), gated=True)
    add("reglu",
        lambda x: _gv(x, "reglu", lambda g, v: np.maximum(g, 0.0) * v),
        lambda x, dy: _gv(x, "reglu", lambda g, v: _cat("reglu", dy * v * (g > 0), dy * np.maximum(g, 0.0))),
        lambda x, out: _gv(x, "reglu", lambda g, v: np.multiply(np.maximum(g, 0), v, out=out)),
        lambda x, dy, out: _gv(x, "reglu", lambda g, v: _cat("reglu", dy * v * (g > 0), dy * np.maximum(g, 0))),
        gout=False,
        ftorch=("gated:reglu", ("x",), None), gtorch=("gated:reglu_grad", ("dy", "x"), None), gated=True)

    # Gradients from the saved output, NAME_grad_from_output(y, dy): reference and NumPy
    # expression in y (the case's y: the float64 forward rounded to the dtype, case_inputs).
    # torch where its backward op takes the output, as autograd runs it on the saved
    # result (relu: threshold_backward(grad, result, 0); sigmoid, tanh, softmax,
    # log_softmax; the in-place elu_, selu_, celu_, leaky_relu_: is_result=True). Its
    # other backward ops (hardtanh_backward, hardsigmoid_backward, softplus_backward,
    # log_sigmoid_backward) compare or transform x, so those rows have none.
    def from_output(name, ref, fnp, *, out=True, torch=None):
        fwd = next(o for o in ops if o.name == name)
        ops.append(OpSpec(name, "grad_from_output", ref, fnp, out, None, (), torch, fwd.axis, fwd.gated))

    elu_fo = ("elu_backward", ("dy", 1.0, 1.0, 1.0, True, "y"), "grad_input")   # elu and celu, alpha = 1
    from_output("relu", lambda y, dy: dy * (y > 0), lambda y, dy, out: np.multiply(dy, y > 0, out=out),
                torch=("threshold_backward", ("dy", "y", 0), "grad_input"))
    from_output("relu6", lambda y, dy: dy * ((y > 0) & (y < 6)),
                lambda y, dy, out: np.multiply(dy, (y > 0) & (y < 6), out=out))
    from_output("leaky_relu", lambda y, dy: np.where(y > 0, dy, 0.01 * dy),
                lambda y, dy, out: np.where(y > 0, dy, 0.01 * dy), out=False,
                torch=("leaky_relu_backward", ("dy", "y", 0.01, True), "grad_input"))
    from_output("hard_tanh", lambda y, dy: dy * ((y > -1) & (y < 1)),
                lambda y, dy, out: np.multiply(dy, (y > -1) & (y < 1), out=out))
    from_output("hard_sigmoid", lambda y, dy: dy / 6 * ((y > 0) & (y < 1)),
                lambda y, dy, out: np.multiply(dy / 6, (y > 0) & (y < 1), out=out))
    from_output("elu", lambda y, dy: np.where(y > 0, dy, dy * (y + 1)),
                lambda y, dy, out: np.where(y > 0, dy, dy * (y + 1)), out=False, torch=elu_fo)
    from_output("selu", lambda y, dy: np.where(y > 0, SELU_SCALE * dy, dy * (y + SELU_SCALE * SELU_ALPHA)),
                lambda y, dy, out: np.where(y > 0, SELU_SCALE * dy, dy * (y + SELU_SCALE * SELU_ALPHA)), out=False,
                torch=("elu_backward", ("dy", SELU_ALPHA, SELU_SCALE, 1.0, True, "y"), "grad_input"))
    from_output("celu", lambda y, dy: np.where(y > 0, dy, dy * (y + 1)),
                lambda y, dy, out: np.where(y > 0, dy, dy * (y / 1.0 + 1)), out=False, torch=elu_fo)
    from_output("sigmoid", lambda y, dy: dy * y * (1 - y), lambda y, dy, out: np.multiply(dy * y, 1 - y, out=out),
                torch=("sigmoid_backward", ("dy", "y"), "grad_input"))
    from_output("log_sigmoid", lambda y, dy: -dy * np.expm1(y),
                lambda y, dy, out: np.multiply(dy, 1 - np.exp(y), out=out))
    from_output("softplus",  # beta = 1, threshold = 20: dy * sigmoid(x) = dy * (1 - exp(-y))
                lambda y, dy: np.where(y > 20, dy, -dy * np.expm1(-y)),
                lambda y, dy, out: np.multiply(dy, 1 - np.exp(-y), out=out))
    from_output("tanh", lambda y, dy: dy * (1 - y) * (1 + y), lambda y, dy, out: np.multiply(dy, 1 - y * y, out=out),
                torch=("tanh_backward", ("dy", "y"), "grad_input"))
    from_output("softsign", lambda y, dy: dy * (1 - np.abs(y)) ** 2,
                lambda y, dy, out: np.multiply(dy, (1 - np.abs(y)) ** 2, out=out))
    from_output("softmax", _softmax_vjp, _softmax_vjp,
                torch=("_softmax_backward_data", ("dy", "y", -1, "dtype"), "grad_input"))
    from_output("log_softmax", _log_softmax_vjp, _log_softmax_vjp,
                torch=("_log_softmax_backward_data", ("dy", "y", -1, "dtype"), "out"))
    return {(op.name, op.kind): op for op in ops}


# The gated ops: x (rows, 2 n) holds gate and value as the dense layer's z does (gate
# first; glu as F.glu: value first, the second half through the sigmoid).
GATED_OPS = ("glu", "swiglu", "geglu", "reglu")


def _halves(x, name):
    """(gate, value) of x's last axis for the gated op ``name``."""
    n = x.shape[-1] // 2
    first, second = x[..., :n], x[..., n:]
    return (second, first) if name == "glu" else (first, second)


def _gv(x, name, f):
    g, v = _halves(x, name)
    return f(g, v)


def _cat(name, dgate, dvalue):
    """[dgate, dvalue] in x's layout."""
    return np.concatenate([dvalue, dgate] if name == "glu" else [dgate, dvalue], axis=-1)


def _np_glu_grad(x, dy):
    g, v = _halves(x, "glu")
    s = 1 / (1 + np.exp(-g))
    return _cat("glu", dy * v * s * (1 - s), dy * s)


def _np_swiglu_grad(x, dy):
    g, v = _halves(x, "swiglu")
    s = 1 / (1 + np.exp(-g))
    return _cat("swiglu", dy * v * (s * (1 + g * (1 - s))), dy * (g * s))


def _np_geglu_grad(x, dy):
    g, v = _halves(x, "geglu")
    cdf = 0.5 * (1 + _sp().erf(g / SQRT2))
    return _cat("geglu", dy * v * (cdf + g * np.exp(-0.5 * g * g) * INV_SQRT_2PI), dy * (g * cdf))


def _actfast_gated(af, name, kind, x, dy, out):
    if name == "glu":
        return af.glu(x, out=out) if kind == "forward" else af.glu_grad(x, dy, out=out)
    g, v = _halves(x, name)
    if kind == "forward":
        return getattr(af, name)(g, v, out=out)
    n = x.shape[-1] // 2
    pair = None if out is None else (out[..., :n], out[..., n:])
    dg, dv = getattr(af, name + "_grad")(g, v, dy, out=pair)
    return out if out is not None else _cat(name, dg, dv)


def _torch_gated(torch, opname, args):
    """PyTorch's forward of a gated op, or its backward from the aten ops autograd would
    run (no autograd graph): x's halves as in _halves."""
    F = torch.nn.functional
    name = opname[len("gated:"):]
    if name == "glu":
        return F.glu(args[0], -1)
    if name == "glu_grad":
        return torch.ops.aten.glu_backward.default(args[0], args[1], -1)
    grad = name.endswith("_grad")
    base = name[:-len("_grad")] if grad else name
    x = args[1] if grad else args[0]
    n = x.shape[-1] // 2
    g, v = x[..., :n], x[..., n:]
    act = {"swiglu": F.silu, "geglu": F.gelu, "reglu": F.relu}[base]
    if not grad:
        return act(g) * v
    dy = args[0]
    aten = torch.ops.aten
    dgate = {"swiglu": lambda t: aten.silu_backward.default(t, g),
             "geglu": lambda t: aten.gelu_backward.default(t, g),
             "reglu": lambda t: aten.threshold_backward.default(t, g, 0)}[base](dy * v)
    return torch.cat([dgate, dy * act(g)], dim=-1)


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


def _softmax_vjp(y, dy, out=None):
    """dy through softmax's Jacobian from its output (NumPy's and the float64 reference's)."""
    return np.multiply(y, dy - (dy * y).sum(axis=-1, keepdims=True), out=out)


def _np_softmax_grad(x, dy, out):
    return _softmax_vjp(_np_softmax(x, None), dy, out)


def _softmax_grad64(x, dy):
    return _softmax_vjp(_sp().softmax(x, axis=-1), dy)


def _np_log_softmax(x, out):
    z = x - x.max(axis=-1, keepdims=True)
    return np.subtract(z, np.log(np.exp(z).sum(axis=-1, keepdims=True)), out=out)


def _log_softmax_vjp(y, dy, out=None):
    """dy through log_softmax's Jacobian from its output: exp(y) is the softmax."""
    return np.subtract(dy, np.exp(y) * dy.sum(axis=-1, keepdims=True), out=out)


def _np_log_softmax_grad(x, dy, out):
    return _log_softmax_vjp(_np_log_softmax(x, None), dy, out)


@functools.lru_cache(maxsize=8)
def _prelu_weight(n: int, dtype: str) -> np.ndarray:
    return np.linspace(0.05, 0.3, n).astype(dtype)


def prelu_weight(n: int, dtype: Any) -> np.ndarray:
    """prelu's weight in the benchmark: one per channel along the last axis (a (rows,
    channels) activation after a linear layer, as torch's PReLU(num_parameters=C)),
    cached so that no call times its creation."""
    return _prelu_weight(int(n), np.dtype(dtype).name)


def _prelu_ref_grad(x, dy):
    return np.where(x > 0, dy, prelu_weight(x.shape[-1], x.dtype) * dy)


def _np_prelu_grad(x, dy, out):
    # Both gradients, as the backward needs: dweight is a second pass over a temporary.
    w = prelu_weight(x.shape[-1], x.dtype)
    dx = np.where(x > 0, dy, w * dy)
    np.where(x > 0, 0, x * dy).reshape(-1, x.shape[-1]).sum(axis=0)
    return dx


def _torch_prelu(torch, case: Case) -> Prepared:
    tx = torch.from_numpy(case.x)
    tw = torch.from_numpy(prelu_weight(case.x.shape[-1], case.x.dtype))
    to_np = lambda t: t.numpy()  # noqa: E731
    if case.dy is None:
        f = lambda: torch.nn.functional.prelu(tx.reshape(-1, tx.shape[-1]), tw).reshape(tx.shape)  # noqa: E731
        return Prepared(f, None, False, result=to_np)
    tdy = torch.from_numpy(case.dy)
    x2, dy2 = tx.reshape(-1, tx.shape[-1]), tdy.reshape(-1, tdy.shape[-1])

    def grad():
        # What autograd runs for F.prelu: the elementwise kernel, then the weight
        # gradient summed over the broadcast axes.
        dx, dwf = torch.ops.aten._prelu_kernel_backward(dy2, x2, tw)
        dwf.sum(0)
        return dx.reshape(tx.shape)
    return Prepared(grad, None, False, result=to_np)


OPS: dict[tuple[str, str], OpSpec] = _ops()
OP_NAMES: list[str] = list(dict.fromkeys(name for name, _ in OPS))


def op_kinds(ops, kinds) -> list[tuple[str, str]]:
    """The ``(op, kind)`` pairs of ``ops`` x ``kinds`` that OPS has, in that order: not
    every op has a gradient from the output."""
    return [(op, kind) for op in ops for kind in kinds if (op, kind) in OPS]


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
    kind: str             # forward | grad | grad_from_output | dense
    dtype: np.dtype
    shape: tuple[int, ...]
    spec: OpSpec | None   # None for dense
    x: np.ndarray         # the op's first input: x, or y = f(x) for grad_from_output (case_inputs)
    dy: np.ndarray | None = None
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    alloc: bool = False   # time the allocating form (no out=)

    @property
    def size(self) -> int:
        return int(self.shape[0] * self.shape[2]) if self.kind == "dense" else int(np.prod(self.shape))

    def out_shape(self) -> tuple[int, ...]:
        if self.kind == "dense":
            return (self.shape[0], self.shape[2])
        if self.kind == "forward" and self.spec is not None and self.spec.gated:
            return self.shape[:-1] + (self.shape[-1] // 2,)
        return self.shape


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
    local = {spec.arg: case.x}
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
    if opname.startswith("gated:"):
        return _torch_gated(torch, opname, args)
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
    if spec.name == "prelu":
        return _torch_prelu(torch, case)
    spec_t = spec.torch
    if spec_t is None:
        return None
    first = torch.from_numpy(case.x)     # x, or the saved output y (precomputed, as autograd saves it)
    env: dict[str, Any] = {spec.arg: first, "dtype": first.dtype}
    if case.dy is not None:
        env["dy"] = torch.from_numpy(case.dy)
    if "buf" in spec_t[1]:                # log_sigmoid_backward's buffer, saved by its forward
        env["buf"] = torch.ops.aten.log_sigmoid_forward.default(first)[1]
    alloc = lambda: _torch_call(torch, spec_t, env, None)  # noqa: E731
    to_np = lambda t: t.numpy()  # noqa: E731
    if case.alloc or spec_t[2] is None:
        return Prepared(alloc, None, False, result=to_np)
    out = torch.empty(case.out_shape(), dtype=first.dtype)
    return Prepared(lambda: _torch_call(torch, spec_t, env, out), None, True, result=to_np)


def default_impls(no_torch: bool = False, no_numexpr: bool = False) -> list[Impl]:
    impls = [Impl("actfast", _prep_actfast), Impl("numpy", _prep_numpy)]
    if not no_torch and _module_version("torch"):
        impls.append(Impl("torch", _prep_torch))
    if not no_numexpr and _module_version("numexpr"):
        impls.append(Impl("numexpr", _prep_numexpr))
    return impls


# --------------------------------------------------------------------------------------
# Checking, inputs and references
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


def make_inputs(kind: str, dtype: np.dtype, size: int, axis: bool, seed: int = 12345,
                shape: tuple[int, ...] | None = None, gated: bool = False):
    """``x ~ 2.5 N(0, 1)`` and, for a gradient (either kind), ``dy ~ N(0, 1)``: ``size`` elements (rows
    of SOFTMAX_WIDTH for softmax-like ops), or the given ``shape``. A gated op's x has
    ``size`` elements per half (rows of 2 * SOFTMAX_WIDTH), its dy the forward's shape."""
    rng = np.random.default_rng(seed)
    if shape is not None:
        shape = tuple(shape)
        if gated and shape[-1] % 2:
            raise SystemExit(f"actfast bench: a gated op needs an even last dimension, got {shape}")
    elif gated:
        width = max(1, min(size, SOFTMAX_WIDTH))
        shape = (max(1, size // width), 2 * width)
    elif axis:
        width = min(size, SOFTMAX_WIDTH)
        shape = (max(1, size // width), width)
    else:
        shape = (size,)
    x = (2.5 * rng.standard_normal(shape)).astype(dtype)
    dy_shape = shape[:-1] + (shape[-1] // 2,) if gated else shape
    dy = rng.standard_normal(dy_shape).astype(dtype) if kind != "forward" else None
    return shape, x, dy


def case_inputs(spec: OpSpec, dtype: np.dtype, size: int, shape: tuple[int, ...] | None = None):
    """``(shape, first input, dy)`` of one case of ``spec``: :func:`make_inputs`' x, or for
    a gradient from the output the saved output ``y = f(x)``, computed here once, outside
    the timing: the float64 forward rounded to ``dtype`` (what any correct forward saves,
    to 0.5 ulp), so that no implementation's forward decides the inputs."""
    shape, x, dy = make_inputs(spec.kind, dtype, size, spec.axis, shape=shape, gated=spec.gated)
    if spec.kind == "grad_from_output":
        x = reference_for(OPS[(spec.name, "forward")], x, None).astype(dtype)
    return shape, x, dy


def reference_for(spec: OpSpec, x: np.ndarray, dy: np.ndarray | None) -> np.ndarray:
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        dy64 = None if dy is None else dy.astype(np.float64)
        return np.asarray(spec.ref(x64, dy64), dtype=np.float64)
