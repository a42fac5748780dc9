"""The born-dead estimator against exact small cases and an independent slow version."""

from __future__ import annotations

import math

import numpy as np
import pytest

import actfast
from actfast.born_dead import born_dead_probability


def _z(est, exact):
    """How many standard errors the estimate is from the exact value (binomial)."""
    se = math.sqrt(max(exact * (1 - exact), 1e-12) / est.trials)
    return abs(est.probability - exact) / se


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 6])
def test_width_one_is_exact(depth):
    # Width 1, no bias, d_in = 1: the first ReLU is alive for one sign of x; the network
    # dies iff one of the later hidden weights w_2..w_{depth-1} is negative.
    exact = 0.0 if depth <= 2 else 1 - 0.5 ** (depth - 2)
    est = born_dead_probability(depth, 1, trials=20_000, rng=depth)
    if exact == 0.0:
        assert est.dead == 0
    else:
        assert _z(est, exact) < 4.5


def _slow_born_dead(depth, width, trials, rng, bias):
    """An independent plain-NumPy estimate: one network at a time, a dense grid of inputs."""
    gen = np.random.default_rng(rng)
    xs = np.linspace(-1, 1, 41).reshape(-1, 1)
    dead = 0
    for _ in range(trials):
        h = xs
        fan_in = 1
        for _layer in range(depth - 1):
            w = gen.normal(0, math.sqrt(2 / fan_in), size=(fan_in, width))
            b = gen.normal(0, math.sqrt(2 / fan_in), size=width) if bias else 0.0
            h = np.maximum(h @ w + b, 0)
            fan_in = width
        dead += bool(np.all(h == h[0]))
    return dead / trials


@pytest.mark.parametrize("width, bias", [(2, False), (3, False), (3, True)])
def test_agrees_with_slow_independent_estimate(width, bias):
    trials = 3000
    fast = born_dead_probability(6, width, bias=bias, trials=trials, rng=11)
    slow = _slow_born_dead(6, width, trials, 12, bias)
    se = math.sqrt(fast.probability * (1 - fast.probability) / trials + slow * (1 - slow) / trials)
    assert abs(fast.probability - slow) < 4.5 * se + 1e-9


def test_paper_depth_10_figures():
    # Lu et al. (2019): about 60 % for width 3, above 10 % for width 5, below 1 % for 10.
    p3 = born_dead_probability(10, 3, trials=20_000, rng=1).probability
    p5 = born_dead_probability(10, 5, trials=20_000, rng=2).probability
    p10 = born_dead_probability(10, 10, trials=20_000, rng=3).probability
    assert 0.5 < p3 < 0.65
    assert p5 > 0.10
    assert p10 < 0.01
    assert p3 > p5 > p10


def test_rai_lowers_the_probability():
    he = born_dead_probability(10, 3, trials=10_000, rng=4)
    rai = born_dead_probability(10, 3, init="rai", trials=10_000, rng=4)
    assert rai.probability < he.probability / 3


def test_estimate_fields_and_reproducibility():
    a = born_dead_probability(5, 2, trials=1000, rng=7)
    b = born_dead_probability(5, 2, trials=1000, rng=7)
    assert a == b
    assert a.trials == 1000 and a.dead == round(a.probability * 1000)
    assert a.stderr == pytest.approx(math.sqrt(a.probability * (1 - a.probability) / 1000))
    calls = []
    born_dead_probability(3, 2, trials=10, rng=0, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (10, 10)


@pytest.mark.parametrize("init", ["he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal"])
def test_other_inits_run_and_scale_free_inits_agree(init):
    # Without biases a ReLU network's deadness does not depend on the weight scale, only
    # on signs: every symmetric init gives the same probability (width 1: exact).
    est = born_dead_probability(4, 1, init=init, trials=8000, rng=5)
    assert _z(est, 0.75) < 4.5


def test_multidimensional_input_and_threads_agree():
    with actfast.num_threads(1):
        a = born_dead_probability(6, 3, d_in=3, trials=2000, rng=8)
    with actfast.num_threads(2):
        b = born_dead_probability(6, 3, d_in=3, trials=2000, rng=8)
    assert a == b
    assert 0 < a.probability < 1


@pytest.mark.parametrize("kwargs, exc", [
    ({"depth": 0, "width": 3}, ValueError), ({"depth": 3, "width": 0}, ValueError),
    ({"depth": 3.0, "width": 3}, TypeError), ({"depth": 3, "width": 3, "init": "xavier"}, ValueError),
    ({"depth": 3, "width": 3, "trials": 0}, ValueError), ({"depth": 3, "width": 3, "n_samples": 1}, ValueError),
])
def test_errors(kwargs, exc):
    with pytest.raises(exc):
        born_dead_probability(**kwargs)


def test_cli_prints_the_table(capsys):
    from actfast.__main__ import main

    rc = main(["born-dead", "--depth", "10", "--widths", "3", "5", "--init", "he_normal", "rai",
               "--trials", "2000", "--no-progress", "--markdown"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| 3 | he_normal |" in out and "| 5 | rai |" in out
    assert "about 60 %" in out and "above 10 %" in out
