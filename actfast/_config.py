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


def config() -> dict[str, Any]:
    """Everything :func:`show_config` prints, as a dict."""
    k = _dispatch.kernels
    return {
        "actfast": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "isa": _dispatch.isa,
        "isa_supported": _dispatch.supported_variants(),
        "openmp": bool(k._openmp_enabled()),
        "num_threads": get_num_threads(),
        "parallel_min_elements_per_thread": dict(k._get_min_per_thread()),
        "threadpools": _blas_info(),
    }


def show_config() -> None:
    """Print the version, the instruction set in use, OpenMP and thread count, and the
    NumPy and BLAS libraries (the latter through threadpoolctl, when installed)."""
    c = config()
    lines = [
        f"actfast {c['actfast']}  (Python {c['python']}, NumPy {c['numpy']})",
        f"platform: {c['platform']}",
        f"cpu: {c['cpu']}",
        f"instruction set: {c['isa']}  (this CPU supports: {', '.join(c['isa_supported'])})",
        f"OpenMP: {'yes' if c['openmp'] else 'no (serial build)'}; threads: {c['num_threads']}",
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
