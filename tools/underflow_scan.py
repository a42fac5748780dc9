"""Which kernels form subnormal intermediates for ordinary inputs?

A vector loop computes both sides of every select. When a side that is thrown away (or a
copy of the code that the compiler specialised for a clamped constant) forms a subnormal
number, each such vector operation takes a microcode assist on AMD Zen and on many Intel
cores: 2-3x the time of the whole kernel, with no change in any result. Timing does not
show where; the underflow flag does. The kernels clear the flags they raise, except in a
diagnostic build that keeps the underflow flag:

    ACTFAST_CFLAGS="-DAF_KEEP_UNDERFLOW_FLAG" python setup.py build_ext --inplace --force
    python tools/underflow_scan.py            # then rebuild without the flag

It runs every op of the benchmark (actfast._bench.cases.OPS), float32 and float64, on one thread, over slices of
[-8, 8] (where activations' inputs live) under np.errstate(under="raise") and prints
the kernels and ranges that raised. Results in the far tails (|x| > 8) may underflow
legitimately and are not scanned. A flag is not always a cost per element: squareplus
raises it once per call, in a loop-invariant product (b k^2 for its overflow scaling
k), and tanh_shrink for |x| < 1e-3 only. Speed is measured in bench/;
this finds the cause. Found with it (Zen 3, 2026-12): silu' float32 7.2 -> 3.5
ns/element, elu for x > 0 4.6 -> 2.2, float64 silu 13 -> 7 (see
af__zero_likef and af_expmul2 in src/actfast_vmath.h); (Sapphire Rapids, AVX-512,
2026-12) gelu_tanh' float32 for |x| in [6, 8] 12.4 -> 4.6 ns/element in a C loop
(af__scale_downf, af__self).
"""
from __future__ import annotations

import numpy as np

import actfast as af
from actfast._bench.cases import OPS

RANGES = [(-8, -4), (-4, -1), (-1, 0), (0, 1), (1, 4), (4, 8)]


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
    found = 0
    for dtype in (np.float32, np.float64):
        for spec in OPS.values():     # the benchmark's cases: every op, kind and call form
            hits = []
            for lo, hi in RANGES:
                x = np.linspace(lo, hi, 4096, dtype=dtype).reshape(64, 64)
                dy = np.ones((64, 32) if spec.gated else x.shape, dtype)
                try:
                    with np.errstate(all="ignore", under="raise"):
                        spec.actfast(af, x, dy, None)
                except FloatingPointError:
                    hits.append(f"[{lo}, {hi}]")
            if hits:
                found += 1
                print(f"{np.dtype(dtype).name:8s} {spec.label:30s} {' '.join(hits)}")
    print(f"{found} kernel(s) underflow for ordinary inputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
