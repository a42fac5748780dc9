"""A typed user of actfast's public API, for ``mypy --strict tests/typing/usage.py``.

It is not collected by pytest (no ``test_`` prefix); tools/check-release type-checks it
against the installed wheel. Every line below must stay valid for a strict user.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import actfast


def forward_backward(x: npt.NDArray[np.float32], dy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    y: npt.NDArray[np.float32] = actfast.gelu(x, approximate="tanh")
    actfast.relu(x, out=y)
    actfast.leaky_relu(x, 0.2, out=y, where=x > 0)
    actfast.hard_tanh(x, min_val=-2.0, max_val=2.0)
    actfast.softplus(x, beta=2.0, threshold=10.0)
    p: npt.NDArray[np.float32] = actfast.softmax(x, axis=-1)
    actfast.log_softmax_grad(x, dy, axis=0)
    dx: npt.NDArray[np.float32] = actfast.silu_grad(x, dy)
    return dx + p


def configure() -> str:
    version: str = actfast.__version__
    n: int = actfast.get_num_threads()
    actfast.set_num_threads(max(1, n - 1))
    with actfast.num_threads(1):
        actfast.sigmoid([0.0, 1.0])
    actfast.set_num_threads(0)
    actfast.show_config()
    return version


def aliases() -> None:
    x = np.linspace(-4.0, 4.0, 9)
    actfast.hardswish(x)
    actfast.hardsigmoid(x)
    actfast.hardtanh(x)
    actfast.logsigmoid(x)


if __name__ == "__main__":
    a = np.ones((2, 3), dtype=np.float32)
    print(forward_backward(a, a), configure())
    aliases()
