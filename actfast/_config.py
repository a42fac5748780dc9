"""Build and runtime information: ``actfast.show_config()``."""

from __future__ import annotations

import platform
import sys
from typing import Any

import numpy as np

from . import _dispatch
from ._threads import get_num_threads
from ._version import __version__


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_info() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {k: info.get(k) for k in ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")}
        for info in threadpool_info()
    ]


def _blas_build(module: Any) -> dict[str, Any] | None:
    """The BLAS that NumPy or SciPy was built against (``show_config(mode="dicts")``)."""
    try:
        blas = module.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # noqa: BLE001 - older releases have no dict form
        return None
    return {"name": blas.get("name"), "version": blas.get("version")}


_OPENMP_PREFIXES = ("libgomp", "libomp", "libiomp", "vcomp")


def _openmp_runtimes(threadpools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The OpenMP runtime libraries loaded in this process (actfast's among them)."""
    found = [
        {"filepath": tp["filepath"], "version": tp["version"]}
        for tp in threadpools
        if tp.get("user_api") == "openmp"
    ]
    if found or not sys.platform.startswith("linux"):
        return found
    # Without threadpoolctl: the shared objects mapped into this process.
    paths: set[str] = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if path.startswith("/") and path.rsplit("/", 1)[-1].startswith(_OPENMP_PREFIXES):
                    paths.add(path)
    except OSError:
        pass
    return [{"filepath": path, "version": None} for path in sorted(paths)]


def config() -> dict[str, Any]:
    """Everything :func:`show_config` prints, as a dict."""
    import scipy

    k = _dispatch.kernels
    threadpools = _blas_info()
    return {
        "actfast": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "isa": _dispatch.isa,
        "isa_supported": _dispatch.supported_variants(),
        "openmp": bool(k._openmp_enabled()),
        "openmp_runtimes": _openmp_runtimes(threadpools) if k._openmp_enabled() else [],
        "num_threads": get_num_threads(),
        "pool": dict(k._pool_info()),
        "parallel_min_elements_per_thread": dict(k._get_min_per_thread()),
        "blas_build": {"numpy": _blas_build(np), "scipy": _blas_build(scipy)},
        "threadpools": threadpools,
    }


def show_config() -> None:
    """Print the version, the instruction set in use, OpenMP and thread count, and the
    NumPy and BLAS libraries (the latter through threadpoolctl, when installed)."""
    c = config()
    runtimes = ", ".join(
        f"{r['filepath']}" + (f" {r['version']}" if r["version"] else "") for r in c["openmp_runtimes"]
    )
    blas = ", ".join(
        f"{lib} built with {b['name']} {b['version']}" for lib, b in c["blas_build"].items() if b
    )
    lines = [
        f"actfast {c['actfast']}  (Python {c['python']}, NumPy {c['numpy']}, SciPy {c['scipy']})",
        f"platform: {c['platform']}",
        f"cpu: {c['cpu']}",
        f"instruction set: {c['isa']}  (this CPU supports: {', '.join(c['isa_supported'])})",
        f"OpenMP: {'yes' if c['openmp'] else 'no (serial build)'}; threads: {c['num_threads']}; "
        f"thread pool: {c['pool']['kind']}, idle helpers stay awake {c['pool']['spin_ns'] / 1000:g} us",
        *([f"OpenMP runtime: {runtimes}"] if runtimes else []),
        f"BLAS: {blas or 'unknown'}",
        "parallel threshold (elements per thread): "
        + ", ".join(f"{k}={v}" for k, v in c["parallel_min_elements_per_thread"].items()),
    ]
    if c["threadpools"]:
        for tp in c["threadpools"]:
            lines.append(
                f"threadpool: {tp['internal_api']} {tp['version']} ({tp['user_api']}, "
                f"{tp.get('architecture') or '-'}, {tp['num_threads']} threads) {tp['filepath']}"
            )
    else:
        lines.append("threadpools: install threadpoolctl to list the BLAS and OpenMP libraries")
    print("\n".join(lines))
