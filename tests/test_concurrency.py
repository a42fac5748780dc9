"""Kernels called from many Python threads at once, while others change the thread count.

On a GIL build this checks that the kernels (which run without the GIL) are reentrant;
on a free-threaded build (the cp314t wheels) it also checks that importing actfast
leaves the GIL disabled, i.e. that every extension module declares itself
free-threading compatible.
"""

import os
import subprocess
import sys
import sysconfig
import threading

import numpy as np
import pytest

import actfast

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded CPython build")
def test_import_keeps_the_gil_disabled():
    # In a fresh interpreter, so that no other test's imports can re-enable the GIL; an
    # extension module without Py_mod_gil = Py_MOD_GIL_NOT_USED would (with a warning).
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    code = "import sys, actfast; actfast.relu([1.0]); print(sys._is_gil_enabled())"
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                         env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_concurrent_calls_and_thread_count_changes():
    rng = np.random.default_rng(6)
    # Large enough that the loops go parallel (OpenMP) when more than one thread is allowed.
    x = rng.uniform(-8, 8, 400_000).astype(np.float32)
    dy = rng.uniform(-1, 1, 400_000).astype(np.float32)
    rows = x.reshape(400, 1000)
    calls = {
        "relu": lambda: actfast.relu(x),
        "gelu": lambda: actfast.gelu(x),
        "softplus_grad": lambda: actfast.softplus_grad(x, dy, beta=2.0),
        "softmax": lambda: actfast.softmax(rows, axis=-1),
    }
    expected = {name: f() for name, f in calls.items()}
    failures: list[str] = []
    workers = len(calls) + 2
    barrier = threading.Barrier(workers)

    def compute(name):
        barrier.wait()
        for _ in range(15):
            got = calls[name]()
            if not np.allclose(got, expected[name], rtol=1e-6, atol=0, equal_nan=True):
                failures.append(name)

    def change_threads(offset):
        barrier.wait()
        for i in range(300):
            actfast.set_num_threads(1 + (i + offset) % 2)
            actfast.get_num_threads()

    with actfast.num_threads(2):  # restores the caller's setting afterwards
        threads = [threading.Thread(target=compute, args=(name,)) for name in calls]
        threads += [threading.Thread(target=change_threads, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, f"results changed under concurrency: {sorted(set(failures))}"
