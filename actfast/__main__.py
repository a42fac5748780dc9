"""The ``actfast`` command (also ``python -m actfast``).

Sub-commands live in a small registry: each has a name, a one-line help, a function
that adds its arguments to an :mod:`argparse` sub-parser and a function that runs it
(``run(args) -> int`` exit code). Modules are imported only when their command runs, so
``actfast --help`` stays fast. To add one::

    register("demo", "train a small network", "actfast.demo:add_arguments", "actfast.demo:main")
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: str      # "module:function", called with the sub-parser
    run: str                # "module:function", called with the parsed namespace
    description: str = ""


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, add_arguments: str, run: str, description: str = "") -> None:
    """Add (or replace) a sub-command."""
    COMMANDS[name] = Command(name, help, add_arguments, run, description or help)


def _resolve(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


register(
    "bench", "time every activation against NumPy (and PyTorch, numexpr when installed)",
    "actfast._bench:add_arguments", "actfast._bench:main",
    "Time every activation, forward and gradient, against NumPy's idiomatic expression "
    "(and PyTorch's CPU kernels and numexpr when installed), after checking each "
    "implementation against a float64 reference. Prints a table per dtype; exits with "
    "status 1 if an actfast result fails the check. --scenario train times an MLP training "
    "step (NumPy, NumPy with actfast's activations, actfast.Dense, PyTorch) and scikit-learn's "
    "MLPClassifier with actfast's activations; --scenario loop times every op right after a "
    "NumPy matmul, as in a training loop.",
)

register(
    "born-dead", "estimate how often a deep narrow ReLU network is born dead",
    "actfast.born_dead:add_arguments", "actfast.born_dead:main",
    "Estimate the probability that a ReLU network is a constant function at initialisation "
    "(born dead, Lu et al. 2019), per width and initialisation, with its standard error.",
)
register(
    "demo", "train a deep narrow MLP on digits with each activation, he_normal vs RAI",
    "actfast.demo:add_arguments", "actfast.demo:main",
    "Train a deep, narrow MLP built from actfast.Dense on scikit-learn's bundled digits with "
    "each activation and with he_normal versus randomized asymmetric initialisation; report "
    "test accuracy, dead units and gradient norms (needs scikit-learn; --plot needs matplotlib).",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actfast", description="actfast: fast, accurate activation functions for NumPy.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--config", action="store_true",
                        help="print actfast.show_config() (instruction set, threads, BLAS) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description)
        _resolve(cmd.add_arguments)(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from actfast import __version__
        print(f"actfast {__version__}")
        return 0
    if args.config:
        import actfast
        actfast.show_config()
        return 0
    if not args.command:
        parser.print_help()
        return 2
    args.argv = ["actfast", *argv]
    try:
        return int(_resolve(COMMANDS[args.command].run)(args) or 0)
    except BrokenPipeError:       # `actfast bench | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
