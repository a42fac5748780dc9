"""Thread-count control, threadpoolctl, fork safety and concurrent callers."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest

import actfast


def test_set_get_and_context_manager():
    default = actfast.get_num_threads()
    assert default >= 1
    try:
        actfast.set_num_threads(1)
        assert actfast.get_num_threads() == 1
        with actfast.num_threads(3):
            assert actfast.get_num_threads() == 3
        assert actfast.get_num_threads() == 1
    finally:
        actfast.set_num_threads(0)
    assert actfast.get_num_threads() == default


def test_context_manager_restores_after_exception():
    before = actfast.get_num_threads()
    with pytest.raises(RuntimeError):
        with actfast.num_threads(1):
            raise RuntimeError("boom")
    assert actfast.get_num_threads() == before


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)])
def test_set_num_threads_validates(bad, exc):
    with pytest.raises(exc, match="number of threads"):
        actfast.set_num_threads(bad)


def test_numpy_integer_accepted():
    try:
        actfast.set_num_threads(np.int64(1))
        assert actfast.get_num_threads() == 1
    finally:
        actfast.set_num_threads(0)


def _run(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


def test_environment_variables():
    r = _run("import actfast; print(actfast.get_num_threads())", ACTFAST_NUM_THREADS="3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3"
    r = _run("import actfast; print(actfast.get_num_threads())", OMP_NUM_THREADS="1", ACTFAST_NUM_THREADS="")
    assert r.stdout.strip() == "1"
    r = _run("import actfast; print(actfast.get_num_threads())", ACTFAST_NUM_THREADS="lots")
    assert r.returncode == 0 and "ignoring ACTFAST_NUM_THREADS" in r.stderr


@pytest.mark.skipif(not actfast._dispatch.kernels._openmp_enabled(), reason="serial build")
def test_threadpoolctl_limits_actfast():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    actfast.relu(np.ones(10))
    assert any(i["user_api"] == "openmp" for i in threadpoolctl.threadpool_info())
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert actfast.get_num_threads() == 1
        # also when a count was set explicitly: the outer limit wins
        with actfast.num_threads(2):
            assert actfast.get_num_threads() == 1
    assert actfast.get_num_threads() >= 1


def _child_work(seed):
    x = np.random.default_rng(seed).normal(size=1_000_000).astype(np.float32)
    return float(actfast.sigmoid(x).sum()), actfast.get_num_threads()


@pytest.mark.skipif(sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs the fork start method")
def test_fork_pool_after_parallel_kernel_does_not_hang():
    # Enter a parallel region in the parent first: that is what breaks libgomp in a child.
    x = np.random.default_rng(0).normal(size=2_000_000).astype(np.float32)
    with actfast.num_threads(2):
        parent = float(actfast.sigmoid(x[:1_000_000]).sum())
        actfast.gelu(x)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.map_async(_child_work, [0, 1, 2]).get(timeout=120)
    for total, threads in results[:1]:
        assert total == pytest.approx(parent, rel=1e-6)
        assert threads == 1
    # the parent is unaffected
    assert actfast.get_num_threads() >= 1
    np.testing.assert_allclose(actfast.sigmoid(x[:10]), 1 / (1 + np.exp(-x[:10].astype(np.float64))), rtol=1e-6)


def test_concurrent_callers_match_serial():
    rng = np.random.default_rng(7)
    arrays = [(rng.normal(size=n) * 5).astype(dt) for n in (1000, 100_000, 300_001) for dt in (np.float32, np.float64)]
    ops = [actfast.gelu, actfast.sigmoid, actfast.relu, lambda a: actfast.softmax(a.reshape(-1, 1000) if a.size % 1000 == 0 else a)]
    expected = [[op(a) for a in arrays] for op in ops]

    def work(i):
        op = ops[i % len(ops)]
        return [op(a) for a in arrays]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(work, range(32)))
    for i, got in enumerate(results):
        for g, e in zip(got, expected[i % len(ops)]):
            np.testing.assert_array_equal(g, e)
