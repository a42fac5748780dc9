"""actfast against ONNX's operator definitions: each ONNX activation operator, with its
default attributes and with attributes set, run by ONNX's own reference evaluator
(``onnx.reference``) as a one-node model, and the actfast call it corresponds to:
34 cases over 21 operators (PRelu, SwiGLU, ThresholdedRelu, Shrink, HardSigmoid's and
Selu's attributes included).

The ONNX reference implementation computes in the input's dtype with NumPy (float32
here, some steps rounded twice), so the comparison allows a few float32 ulp; where the
reference is exact (piecewise-linear operators) it is bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import actfast

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _run(op, inputs, attrs, opset):
    """Runs the ONNX operator `op` on float32 inputs with ONNX's reference evaluator."""
    names = [f"x{i}" for i in range(len(inputs))]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, dict(zip(names, inputs)))[0]


# (ONNX op, attributes, opset, actfast call, exact?) - attributes {} test ONNX's defaults.
CASES = [
    ("Relu", {}, 14, lambda x: actfast.relu(x), True),
    ("LeakyRelu", {}, 16, lambda x: actfast.leaky_relu(x, 0.01), True),
    ("LeakyRelu", {"alpha": 0.1}, 16, lambda x: actfast.leaky_relu(x, negative_slope=0.1), True),
    ("Elu", {}, 22, lambda x: actfast.elu(x), False),
    ("Elu", {"alpha": 2.0}, 22, lambda x: actfast.elu(x, alpha=2.0), False),
    ("Celu", {}, 12, lambda x: actfast.celu(x), False),
    ("Celu", {"alpha": 2.0}, 12, lambda x: actfast.celu(x, alpha=2.0), False),
    # ONNX's Selu defaults are float32 roundings of the SELU constants; actfast's
    # defaults are the exact ones, so the attributes are passed as ONNX stores them.
    ("Selu", {}, 22, lambda x: actfast.selu(x, alpha=float(np.float32(1.67326319217681884765625)),
                                             scale=float(np.float32(1.05070102214813232421875))), False),
    ("Selu", {"alpha": 2.0, "gamma": 3.0}, 22, lambda x: actfast.selu(x, alpha=2.0, scale=3.0), False),
    ("Sigmoid", {}, 13, lambda x: actfast.sigmoid(x), False),
    ("HardSigmoid", {}, 22, lambda x: actfast.hard_sigmoid(x, alpha=0.2, beta=0.5), False),
    ("HardSigmoid", {"alpha": 0.5, "beta": 0.6}, 22, lambda x: actfast.hard_sigmoid(x, 0.5, 0.6), False),
    ("HardSwish", {}, 22, lambda x: actfast.hard_swish(x), False),
    ("Softplus", {}, 22, lambda x: actfast.softplus(x, threshold=np.inf), False),
    ("Softsign", {}, 22, lambda x: actfast.softsign(x), False),
    ("Tanh", {}, 13, lambda x: actfast.tanh(x), False),
    ("Mish", {}, 22, lambda x: actfast.mish(x), False),
    ("Gelu", {}, 20, lambda x: actfast.gelu(x), False),
    ("Gelu", {"approximate": "tanh"}, 20, lambda x: actfast.gelu(x, approximate="tanh"), False),
    ("ThresholdedRelu", {}, 22, lambda x: actfast.threshold(x, 1.0, 0.0), True),
    ("ThresholdedRelu", {"alpha": 2.0}, 22, lambda x: actfast.threshold(x, 2.0, 0.0), True),
    ("Shrink", {}, 9, lambda x: actfast.hard_shrink(x, 0.5), True),
    ("Shrink", {"lambd": 1.5}, 9, lambda x: actfast.hard_shrink(x, lambd=1.5), True),
    ("Shrink", {"lambd": 1.5, "bias": 1.5}, 9, lambda x: actfast.soft_shrink(x, lambd=1.5), True),
    ("Swish", {}, 24, lambda x: actfast.silu(x), False),
    ("Swish", {"alpha": 1.702}, 24, lambda x: actfast.silu(x, beta=float(np.float32(1.702))), False),
    ("Clip", {}, 6, lambda x: actfast.hard_tanh(x, -3.4028234663852886e38, 3.4028234663852886e38), True),
    ("PRelu", {}, 16, None, True),
    ("SwiGLU", {}, 28, None, False),
    ("SwiGLU", {"alpha": 1.702}, 28, None, False),
    ("Softmax", {}, 13, lambda x: actfast.softmax(x, axis=-1), False),
    ("Softmax", {"axis": 0}, 13, lambda x: actfast.softmax(x, axis=0), False),
    ("LogSoftmax", {}, 13, lambda x: actfast.log_softmax(x), False),
    ("LogSoftmax", {"axis": 1}, 13, lambda x: actfast.log_softmax(x, axis=1), False),
]


def _inputs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 6, 40)).astype(np.float32) * 4
    # the kinks and thresholds of the operators above, and a few large values
    x.flat[:16] = [-3, 3, -2.5, 2.5, -0.5, 0.5, -1.5, 1.5, 1.0, 2.0, 0.0, -0.0, -20, 20, -1.2, 1.2]
    return x


def _two_input_case(op, attrs, x):
    """(ONNX inputs, actfast result) of the operators with a second input."""
    if op == "PRelu":
        # ONNX broadcasts the slope NumPy-style: a (C, 1, 1) slope is per channel of
        # axis 0 here, which is actfast.prelu's axis=0.
        slope = np.linspace(-0.5, 0.5, x.shape[0]).astype(np.float32).reshape(-1, 1, 1)
        return [x, slope], actfast.prelu(x, slope.ravel(), axis=0)
    gate, value = x, np.cos(x).astype(np.float32)          # SwiGLU: A is the gate
    beta = float(np.float32(attrs.get("alpha", 1.0)))
    return [gate, value], actfast.swiglu(gate, value, beta=beta)


@pytest.mark.parametrize("op,attrs,opset,ours,exact", CASES,
                         ids=[f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items()) or 'defaults'}" for c in CASES])
def test_matches_the_onnx_reference(op, attrs, opset, ours, exact):
    x = _inputs()
    if ours is None:
        if op == "SwiGLU" and opset > onnx.defs.onnx_opset_version():
            pytest.skip(f"this ONNX has no opset {opset}")
        inputs, got = _two_input_case(op, attrs, x)
    else:
        inputs, got = [x], ours(x)
    want = _run(op, inputs, attrs, opset)
    assert got.dtype == np.float32 and got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        # float32 reference arithmetic: a few ulp (absolute near zero).
        np.testing.assert_allclose(got, want, rtol=4e-6, atol=1e-6)


def test_every_case_names_an_onnx_operator():
    # The ops above exist in the installed ONNX with those attributes (a typo in an
    # attribute name would otherwise be silently ignored by make_node).
    for op, attrs, opset, _, _ in CASES:
        if opset > onnx.defs.onnx_opset_version():
            continue                      # SwiGLU (opset 28) in an older ONNX
        schema = onnx.defs.get_schema(op, opset)
        assert set(attrs) <= set(schema.attributes), (op, attrs)
