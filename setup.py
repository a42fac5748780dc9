"""Build of actfast's compiled kernels.

Each kernel module in src/ (``NAME.pyx``, or a Tempita template ``NAME.pyx.tp``
expanded with the Tempita that ships inside Cython) is compiled once per
instruction-set level, as separate extension modules ``actfast.NAME_<isa>``;
``actfast._dispatch`` imports the best one the running CPU supports. Per-element math lives in
``src/_activations.pxd`` and the small C headers next to it, so every variant
compiles the same source with different ``-march`` flags.

OpenMP is detected by compiling a small probe: where the compiler has no OpenMP
(Apple clang without libomp, for example) the kernels are built serially instead of
failing; ``prange`` then compiles to a plain loop.

Environment knobs (for packagers):
  ACTFAST_DISABLE_OPENMP=1   build without OpenMP even if available.
  ACTFAST_ISA=baseline,avx2  restrict the instruction-set variants that are built.
  ACTFAST_CFLAGS="..."       extra compiler flags appended to every extension.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import textwrap
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
GEN = SRC / "_generated"

# Instruction-set variants: name -> flags per compiler family.  The x86 levels are the
# psABI micro-architecture levels: v3 = AVX2+FMA+BMI2, v4 = AVX-512 F/BW/CD/DQ/VL.
X86_VARIANTS = {
    "baseline": {"unix": [], "msvc": []},
    "avx2": {"unix": ["-march=x86-64-v3"], "msvc": ["/arch:AVX2"]},
    "avx512": {"unix": ["-march=x86-64-v4", "-mprefer-vector-width=512"], "msvc": ["/arch:AVX512"]},
}
GENERIC_VARIANTS = {"baseline": {"unix": [], "msvc": []}}


def target_machine() -> str:
    """The machine the wheel is for (cibuildwheel cross-builds on macOS set this)."""
    plat = os.environ.get("_PYTHON_HOST_PLATFORM") or sysconfig.get_platform()
    archflags = os.environ.get("ARCHFLAGS", "")
    if "arm64" in archflags or plat.endswith("arm64") or plat.endswith("aarch64"):
        return "aarch64"
    if "x86_64" in archflags or plat.endswith(("x86_64", "amd64", "AMD64")) or plat.endswith("intel"):
        return "x86_64"
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def isa_variants() -> dict[str, dict[str, list[str]]]:
    variants = X86_VARIANTS if target_machine() == "x86_64" else GENERIC_VARIANTS
    wanted = os.environ.get("ACTFAST_ISA")
    if wanted:
        names = [w.strip() for w in wanted.split(",") if w.strip()]
        unknown = [n for n in names if n not in variants]
        if unknown:
            raise SystemExit(f"ACTFAST_ISA names unknown variants {unknown}; known: {list(variants)}")
        variants = {n: variants[n] for n in names}
    return variants


def render_sources() -> list[tuple[str, str]]:
    """Write one .pyx per (module, variant) into src/_generated/ (never committed).

    Every ``src/NAME.pyx.tp`` (a Tempita template) or ``src/NAME.pyx`` becomes the
    extension ``actfast.NAME_<isa>`` for each instruction-set variant; the .pxd and .h
    files are copied beside them so that cimports and includes resolve.
    """
    from Cython import Tempita

    GEN.mkdir(exist_ok=True)
    for pattern in ("*.pxd", "*.h", "*.pxi"):
        for f in SRC.glob(pattern):
            shutil.copy2(f, GEN / f.name)
    bodies = {}
    for f in sorted(SRC.glob("*.pyx.tp")):
        bodies[f.name[: -len(".pyx.tp")]] = Tempita.sub(f.read_text(), **{})
    for f in sorted(SRC.glob("*.pyx")):
        bodies[f.stem] = f.read_text()
    if not bodies:
        # An sdist without the sources would otherwise build a wheel with no kernels.
        raise SystemExit("actfast: no kernel sources (*.pyx, *.pyx.tp) found in src/")
    built = []
    for module, body in bodies.items():
        for isa in isa_variants():
            text = f"# Generated from src/{module} for the {isa!r} variant by setup.py. Do not edit.\n"
            text += body + f"\nISA = {isa!r}\n"
            out = GEN / f"{module}_{isa}.pyx"
            if not out.exists() or out.read_text() != text:
                out.write_text(text)
            built.append((module, isa))
    return built


def _probe(compiler, code: str, extra_compile: list[str], extra_link: list[str]) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=extra_compile)
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=extra_link)
        except Exception:
            return False
    return True


OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


class BuildExt(build_ext):
    """Adds optimisation, OpenMP (when the compiler has it) and per-ISA flags."""

    def openmp_flags(self) -> tuple[list[str], list[str]]:
        if os.environ.get("ACTFAST_DISABLE_OPENMP", "") not in ("", "0"):
            print("actfast: OpenMP disabled by ACTFAST_DISABLE_OPENMP; building serial kernels")
            return [], []
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            candidates = [(["/openmp"], [])]
        elif sys.platform == "darwin":
            # Apple clang has no -fopenmp driver flag; libomp (Homebrew) is used instead.
            prefix = os.environ.get("LIBOMP_PREFIX", "/opt/homebrew/opt/libomp")
            alt = "/usr/local/opt/libomp"
            candidates = [
                (["-fopenmp"], ["-fopenmp"]),
                *[
                    (
                        ["-Xpreprocessor", "-fopenmp", f"-I{p}/include"],
                        [f"-L{p}/lib", "-lomp", f"-Wl,-rpath,{p}/lib"],
                    )
                    for p in (prefix, alt)
                ],
            ]
        else:
            candidates = [(["-fopenmp"], ["-fopenmp"])]
        for cflags, lflags in candidates:
            if _probe(self.compiler, OPENMP_PROBE, cflags, lflags):
                print(f"actfast: building with OpenMP ({' '.join(cflags)})")
                return cflags, lflags
        print("actfast: the compiler has no usable OpenMP; building serial kernels")
        return [], []

    def inline_flags(self) -> list[str]:
        """gcc: let the per-element functions inline into the ufunc loops.

        Each activation is a chain of small Cython ``inline`` functions around the
        branch-free math of actfast_vmath.h. With gcc's default limits
        (max-inline-insns-single, and the module-wide inline-unit-growth cap, which the
        72 kernels of one module exceed) some of them stay calls, and a call in a loop
        stops vectorisation (gcc reports "function is not vectorizable"). Compilers
        that reject --param (clang) get nothing here; they have their own inliner.
        """
        flags = ["--param", "max-inline-insns-single=1000", "--param", "inline-unit-growth=400",
                 "--param", "large-function-growth=400"]
        if _probe(self.compiler, "int main(void) { return 0; }\n", flags + ["-Werror"], []):
            return flags
        return []

    def build_extensions(self) -> None:
        ctype = self.compiler.compiler_type
        family = "msvc" if ctype == "msvc" else "unix"
        omp_c, omp_l = self.openmp_flags()
        if family == "msvc":
            base = ["/O2", "/fp:precise"]
        else:
            # -fno-math-errno and -fno-trapping-math let gcc if-convert and vectorise the
            # math without changing any value: NaN, inf and signed zeros keep their IEEE
            # meaning (no -ffast-math). Floating-point exception flags raised by lanes that
            # are computed and then discarded are cleared by the loops themselves.
            # -g0: Python's own CFLAGS carry -g, which makes each module 4x larger.
            # -ffp-contract=off: the math uses explicit fma where it wants one; implicit
            # contraction would depend on inlining, so the serial and the OpenMP copy of
            # a loop (or two variants) could round differently.
            base = ["-O3", "-g0", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math",
                    "-fno-semantic-interposition"]
            base += ["-Wno-unused-function", "-Wno-unreachable-code", "-Wno-unused-variable"]
            base += self.inline_flags()
        extra = os.environ.get("ACTFAST_CFLAGS", "").split()
        variants = isa_variants()
        for ext in self.extensions:
            # cythonize() returns new Extension objects without our actfast_isa
            # attribute, so the variant is recovered from the module name
            # (actfast.NAME_<isa>); without this every variant was compiled for the
            # x86-64 baseline (SSE2) and even the avx512 one used 16-byte vectors.
            isa = getattr(ext, "actfast_isa", None) or ext.name.rsplit("_", 1)[-1]
            isa = isa if isa in variants else None
            isa_flags = variants[isa][family] if isa else []
            ext.extra_compile_args = base + omp_c + isa_flags + extra
            ext.extra_link_args = list(omp_l)
        if not self.parallel:
            self.parallel = os.cpu_count() or 1    # the variants compile independently
        super().build_extensions()


def extensions() -> list[Extension]:
    import numpy as np
    from Cython.Build import cythonize

    exts = []
    for module, isa in render_sources():
        ext = Extension(
            f"actfast.{module}_{isa}",
            sources=[str((GEN / f"{module}_{isa}.pyx").relative_to(HERE))],
            include_dirs=[np.get_include(), str(GEN)],
            define_macros=[
                ("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION"),
                # Built against NumPy 2, run on NumPy >= 1.25 as well.
                ("NPY_TARGET_VERSION", "NPY_1_25_API_VERSION"),
            ],
            language="c",
        )
        ext.actfast_isa = isa
        exts.append(ext)
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
            "embedsignature": True,
            "freethreading_compatible": True,
        },
        include_path=[str(GEN)],
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
