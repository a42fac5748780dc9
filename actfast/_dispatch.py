"""Runtime choice of the compiled kernel variant.

The kernels are compiled once per instruction-set level (see setup.py). At import, the
best variant that the CPU supports is loaded; ``ACTFAST_CPU=baseline|avx2|avx512``
asks for a lower one (tests use it to compare variants). CPU features come from NumPy's
own runtime detection, the same table NumPy uses to dispatch its SIMD loops.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from types import ModuleType

# Most capable first; a variant is usable when every listed NumPy CPU feature is present.
_VARIANTS: list[tuple[str, tuple[str, ...]]] = [
    ("avx512", ("AVX512_SKX", "AVX2", "FMA3")),
    ("avx2", ("AVX2", "FMA3", "F16C")),
    ("baseline", ()),
]
_ORDER = [name for name, _ in _VARIANTS]


def _cpu_features() -> dict[str, bool]:
    for mod in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return dict(importlib.import_module(mod).__cpu_features__)
        except (ImportError, AttributeError):
            continue
    return {}


def supported_variants() -> list[str]:
    """The compiled variants this CPU can run, most capable first."""
    features = _cpu_features()
    names = []
    for name, needs in _VARIANTS:
        if all(features.get(f, False) for f in needs) and _is_built(name):
            names.append(name)
    return names


def _is_built(name: str) -> bool:
    return importlib.util.find_spec(f"actfast._kernels_{name}") is not None


def load_variant(name: str) -> ModuleType:
    """Import one kernel variant by name (it must be supported by this CPU)."""
    return importlib.import_module(f"actfast._kernels_{name}")


def _choose() -> ModuleType:
    supported = supported_variants()
    if not supported:
        raise ImportError(
            "actfast: no compiled kernel module was found; the package was not built "
            "(install a wheel, or build from source with a C compiler)"
        )
    wanted = os.environ.get("ACTFAST_CPU", "").strip().lower()
    if wanted:
        if wanted not in _ORDER:
            warnings.warn(
                f"ACTFAST_CPU={wanted!r} is not one of {_ORDER}; using {supported[0]!r}",
                RuntimeWarning,
                stacklevel=3,
            )
        elif wanted not in supported:
            warnings.warn(
                f"ACTFAST_CPU={wanted!r} is not supported by this CPU or build "
                f"(supported: {supported}); using {supported[0]!r}",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            supported = supported[supported.index(wanted):]
    errors = []
    for name in supported:
        try:
            return load_variant(name)
        except ImportError as exc:  # pragma: no cover - a broken build of one variant
            errors.append(f"{name}: {exc}")
    raise ImportError("actfast: no kernel variant could be imported: " + "; ".join(errors))


kernels: ModuleType = _choose()
isa: str = kernels.ISA
