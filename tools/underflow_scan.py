"""Which kernels form subnormal intermediates for ordinary inputs?

A vector loop computes both sides of every select. When a side that is thrown away (or a
copy of the code that the compiler specialised for a clamped constant) forms a subnormal
number, each such vector operation takes a microcode assist on AMD Zen and on many Intel
cores: 2-3x the time of the whole kernel, with no change in any result. Timing does not
show where; the underflow flag does. The kernels clear the flags they raise, except in a
diagnostic build that keeps the underflow flag:

    ACTFAST_CFLAGS="-DAF_KEEP_UNDERFLOW_FLAG" python setup.py build_ext --inplace --force
    python tools/underflow_scan.py            # then rebuild without the flag

It runs every elementwise kernel, float32 and float64, on one thread, over slices of
[-8, 8] (where activations' inputs live) under np.errstate(under="raise") and prints
the kernels and ranges that raised. Results in the far tails (|x| > 8) may underflow
legitimately and are not scanned. A flag is not always a cost per element: squareplus
raises it once per call, in a loop-invariant product (b k^2 for its overflow scaling
k), and tanh_shrink for |x| < 1e-3 only. Speed is measured in bench/;
this finds the cause. Found with it (Zen 3, 2026-12): silu' float32 7.2 -> 3.5
ns/element, elu for x > 0 4.6 -> 2.2, float64 silu 13 -> 7 (see
af__zero_likef and af_expmul2 in src/actfast_vmath.h).
"""
from __future__ import annotations

import inspect

import numpy as np

import actfast as af

RANGES = [(-8, -4), (-4, -1), (-1, 0), (0, 1), (1, 4), (4, 8)]
NOT_ELEMENTWISE = {
    "get_num_threads", "num_threads", "set_num_threads", "show_config", "init", "dense",
    "dense_grad", "dense_saves", "born_dead_probability", "dead_fraction", "dead_units",
    "saturation", "sparsity", "rrelu", "rrelu_grad", "prelu", "prelu_grad",
}
# torch-style aliases of other entries
ALIASES = ("hardsig", "hardsw", "hardt", "logsig", "softsh", "tanhsh", "hardsh")


def call(name: str, x: np.ndarray) -> None:
    f = getattr(af, name)
    required = [p for p in inspect.signature(f).parameters.values()
                if p.default is inspect.Parameter.empty]
    dy = np.ones_like(x)
    if name == "glu":
        f(x)
    elif name == "glu_grad":
        f(x, dy[:, : x.shape[1] // 2])
    elif name.startswith("threshold"):
        f(x, 0.5, 0.25) if name == "threshold" else f(x, dy, 0.5, 0.25)
    elif len(required) == 1:
        f(x)
    elif len(required) == 3:          # gated units: gate, value, dy
        f(x, x[::-1].copy(), dy)
    else:
        f(x, dy)


def main() -> int:
    af.set_num_threads(1)             # the flags are per thread: keep the loop on this one
    try:                              # sigmoid(-100) is subnormal: a real underflow
        with np.errstate(all="ignore", under="raise"):
            af.sigmoid(np.full(64, -100.0, np.float32))
        print("this build clears the underflow flag: rebuild with "
              'ACTFAST_CFLAGS="-DAF_KEEP_UNDERFLOW_FLAG" (see the docstring)')
        return 2
    except FloatingPointError:
        pass
    names = [n for n in af.__all__ if callable(getattr(af, n)) and n[0].islower()
             and n not in NOT_ELEMENTWISE and not n.startswith(ALIASES)]
    found = 0
    for dtype in (np.float32, np.float64):
        for name in names:
            hits = []
            for lo, hi in RANGES:
                x = np.linspace(lo, hi, 4096, dtype=dtype).reshape(64, 64)
                try:
                    with np.errstate(all="ignore", under="raise"):
                        call(name, x)
                except FloatingPointError:
                    hits.append(f"[{lo}, {hi}]")
            if hits:
                found += 1
                print(f"{np.dtype(dtype).name:8s} {name:28s} {' '.join(hits)}")
    print(f"{found} kernel(s) underflow for ordinary inputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
