"""pytest plugin: run a test session with ``actfast.sklearn.patch()`` applied.

    PYTHONPATH=tests/plugins python -m pytest -p actfast_sklearn_patch \
        --pyargs sklearn.neural_network.tests.test_mlp sklearn.neural_network.tests.test_base

Used by tests/test_sklearn.py to run scikit-learn's own MLP tests on actfast. At the end
it reports how many calls each patched activation received, so that a run which never
reached actfast cannot pass for one that did.
"""

from __future__ import annotations

import collections

import actfast.sklearn as _patch

_calls: collections.Counter[str] = collections.Counter()


def _counting(name, fn):
    def wrapped(*args):
        _calls[name] += 1
        return fn(*args)
    return wrapped


def pytest_configure(config):
    for name, (fwd, der) in list(_patch.ACTIVATIONS.items()):
        _patch.ACTIVATIONS[name] = (_counting(name, fwd), _counting(name + "'", der))
    _patch.patch()


def pytest_unconfigure(config):
    assert _patch.is_patched(), "actfast.sklearn was unpatched during the session"
    _patch.unpatch()
    print("\nactfast.sklearn patched; calls: " + ", ".join(f"{k}={v}" for k, v in sorted(_calls.items())))
