"""Which contiguous ufunc loops did gcc vectorise, and with what vector size?

Usage: build with ACTFAST_CFLAGS="-fopt-info-vec-optimized" and save the log, then
    python tools/vec_report.py BUILD_LOG src/_generated/_kernels_<isa>.c
Prints, per kernel and dtype, the vector sizes gcc reported for the contiguous loop
(the first loop of NAME_span_f / NAME_span_d) and for the second loop of the span: the
contiguous arrays-of-parameters loop (leaky_relu), or the second copy of the contiguous
loop of a FLOAT_LANES_IF kernel (hard_sigmoid's float32 spans: float lanes, then double).
A span counts as vectorised when every loop of it is.
"""
import re
import sys
from collections import defaultdict

log, csrc = sys.argv[1], sys.argv[2]
lines = open(csrc).read().split("\n")
reports = defaultdict(set)
for m in re.finditer(r"([^\s:]+\.c):(\d+):\d+: optimized: loop vectorized using (\d+) byte vectors", open(log).read()):
    if m.group(1).endswith(csrc.split("/")[-1]):
        reports[int(m.group(2))].add(int(m.group(3)))

rows = []
for i, line in enumerate(lines):
    m = re.match(r"static void __pyx_f_\w+?_kernels_\w+?_(\w+)_span_([fd])\(char \*\*__pyx_v_args", line)
    if not m:
        continue
    fors = []
    for j in range(i + 1, min(i + 400, len(lines))):
        if lines[j].startswith("}"):
            break
        if lines[j].lstrip().startswith("for ("):
            fors.append(j + 1)
    cont = sorted(reports.get(fors[0], set()), reverse=True) if fors else []
    strd = sorted(reports.get(fors[1], set()), reverse=True) if len(fors) > 1 else []
    rows.append((m.group(1), {"f": "float32", "d": "float64"}[m.group(2)], cont, strd, len(fors)))
nv = 0
for name, dt, cont, strd, nfor in rows:
    nv += bool(cont) and (nfor < 2 or bool(strd))
    print(f"{name:20s} {dt:8s} contiguous: {','.join(map(str, cont)) or 'NOT VECTORIZED':14s} strided: {','.join(map(str, strd)) or '-'}")
print(f"{nv}/{len(rows)} contiguous loops vectorised")
if nv < len(rows):
    # gcc's identical-code folding merges spans whose code is the same (relu_grad_from_output
    # is relu_grad, relu6_grad_from_output relu6_grad, ...): the folded copy gets no report.
    print("(a span without any report, strided loop included, was folded into an identical one)")
