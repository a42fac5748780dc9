"""Helpers shared by the test modules (not a test module): ULP errors, finite-difference
vector-Jacobian products, callers for the tables of ops.

tests/conftest.py puts this folder on sys.path, so test modules import it as
``_helpers`` under any pytest import mode.
"""

from __future__ import annotations

import numpy as np

import actfast


def ulp_error(got, ref, dtype, floor=0.0):
    """|got - ref| in units of the last place of the dtype at max(|ref|, floor)."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    info = np.finfo(dtype)
    scale = np.maximum(np.abs(ref), floor)
    # ulp of a normal number |r| is 2**(floor(log2 |r|) - mant); below tiny it is the
    # subnormal spacing.
    with np.errstate(divide="ignore"):
        exp = np.floor(np.log2(np.maximum(scale, float(info.tiny))))
    ulp = np.exp2(exp - info.nmant)
    err = np.abs(got - ref)
    both_inf = np.isinf(got) & np.isinf(ref) & (np.sign(got) == np.sign(ref))
    err = np.where(both_inf, 0.0, err)
    return err / ulp


# Results in the subnormal range carry fewer significant bits, and a product such as
# x * exp(x) rounds exp(x) to subnormal precision first: there the bound is absolute,
# in units of the smallest subnormal.
SUBNORMAL_ULP = 128.0


def assert_ulp(got, ref, dtype, bound, x, label, floor=0.0):
    err = ulp_error(got, ref, dtype, floor)
    sub = np.abs(np.asarray(ref, dtype=np.float64)) < float(np.finfo(dtype).tiny)
    for mask, limit, what in ((~sub, bound, "ulp"), (sub, SUBNORMAL_ULP, "subnormal ulp")):
        if not mask.any():
            continue
        e = np.where(mask, err, 0.0)
        worst = int(np.argmax(e))
        assert e[worst] <= limit, (
            f"{label}: {e[worst]:.2f} {what} at x={x.flat[worst]!r}: got {np.asarray(got).flat[worst]!r}, "
            f"want {np.asarray(ref).flat[worst]!r}")


def op_callers(ops):
    """(fwd, grad) for a table ``name -> (public name, params, ...)``: fwd(op)(x) and
    grad(op)(x, dy) call the public function with the table's parameters."""
    def fwd(op):
        name, params, *_ = ops[op]
        return lambda x, **kw: getattr(actfast, name)(x, **params, **kw)

    def grad(op):
        name, params, *_ = ops[op]
        return lambda x, dy, **kw: getattr(actfast, name + "_grad")(x, dy, **params, **kw)

    return fwd, grad


def fd_vjp(f, x, dy, axis, h=1e-6):
    """dy^T J of f(x, axis=axis) by central differences, one input coordinate at a time."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = np.sum(dy * (f(xp, axis=axis) - f(xm, axis=axis))) / (2 * h)
    return g


def same_on_1_and_2_threads(compute, label):
    """compute() -> tuple of arrays, run with 1 and with 2 threads: asserts the results
    are equal bit for bit and returns the 2-thread ones."""
    with actfast.num_threads(1):
        serial = compute()
    with actfast.num_threads(2):
        parallel = compute()
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b, err_msg=label)
    return parallel


def sgd_regression_losses(hidden, head, steps, lr):
    """The loss curve of plain SGD on a small regression (128 x 4 inputs, a sine target)
    for two actfast.Dense layers ``hidden`` and ``head``."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((128, 4))
    target = np.sin(x @ np.array([1.0, -2.0, 0.5, 1.5]))[:, None]
    losses = []
    for _ in range(steps):
        err = head.forward(hidden.forward(x)) - target
        losses.append(float(np.mean(err**2)))
        hidden.backward(head.backward(2 * err / len(x)), compute_dx=False)
        for layer in (hidden, head):
            for k in layer.params:
                layer.params[k] -= lr * layer.grads[k]
    return losses


def bit_patterns(*intervals):
    """float32 test inputs: every bit pattern of each [a, b] (0 <= a < b), every 997th
    finite non-negative pattern, and the negatives of all of them."""
    parts = [np.arange(0, 0x7F800000, 997, dtype=np.uint32)]
    for a, b in intervals:
        lo, hi = np.array([a, b], np.float32).view(np.uint32)
        parts.append(np.arange(lo, hi + 1, dtype=np.uint32))
    x = np.concatenate(parts).view(np.float32)
    return np.concatenate([x, -x])
