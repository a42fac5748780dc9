"""Misuses that mypy must reject: checked by tools/check-release with ``mypy --strict``.

Each line carries the ``# type: ignore[code]`` that the error needs; ``--strict`` turns
on ``warn_unused_ignores``, so a function whose signature mypy cannot see (typed as
``Any``) makes its ignore "unused" and the check fails. This is what catches a
decorator that erases the signatures of the functions it wraps.
"""

from __future__ import annotations

import actfast

actfast.relu([1.0], bogus=1)  # type: ignore[call-arg]
actfast.relu_grad([1.0])  # type: ignore[call-arg]
actfast.leaky_relu([1.0], negative_slope="0.1")  # type: ignore[arg-type]
actfast.gelu([1.0], approximate=True)  # type: ignore[arg-type]
actfast.hardtanh([1.0], min_val=None)  # type: ignore[arg-type]
actfast.softplus_grad([1.0], [1.0], beta="2")  # type: ignore[arg-type]
actfast.softmax([1.0], axis="last")  # type: ignore[arg-type]
actfast.set_num_threads("2")  # type: ignore[arg-type]
actfast.num_threads()  # type: ignore[call-arg]
actfast.swiglu([1.0], [1.0], beta="1")  # type: ignore[arg-type]
actfast.glu([1.0, 2.0], axis=None)  # type: ignore[arg-type]
actfast.prelu([1.0])  # type: ignore[call-arg]
actfast.silu([1.0], beta="1")  # type: ignore[arg-type]
actfast.hard_sigmoid([1.0], alpha=None)  # type: ignore[arg-type]
