"""Randomized asymmetric initialization (Lu, Shin, Su & Karniadakis, 2019)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st

import actfast
from actfast import init


def _split(fan_in, fan_out, seed):
    w, b = init.rai(fan_in, fan_out, rng=seed, dtype=np.float64)
    v = np.vstack([w, b[None, :]]).T          # (fan_out, fan_in + 1): one row per neuron
    pos = np.argmax(v, axis=1)                # the Beta(2, 1) entry stands out when fan_in is large
    beta = v[np.arange(fan_out), pos]
    rest = np.delete(v, pos + np.arange(fan_out) * (fan_in + 1))
    return pos, beta, rest


def test_shapes_dtypes_and_reproducibility():
    w, b = init.rai(7, 3, rng=1)
    assert w.shape == (7, 3) and b.shape == (3,) and w.dtype == b.dtype == np.float32
    w2, b2 = init.rai(7, 3, rng=1)
    np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(b, b2)
    with pytest.raises(ValueError):
        init.rai(0, 3)
    with pytest.raises(TypeError):
        init.rai(3, 3, dtype=np.int32)


def test_one_beta_entry_per_neuron_at_a_uniform_position():
    fan_in, fan_out = 999, 4000
    pos, beta, rest = _split(fan_in, fan_out, seed=2)
    # Beta(2, 1): mean 2/3, variance 1/18, CDF x^2 -- the maxima follow it (the normal
    # entries, sd 0.019, exceed a Beta draw with probability < 1 %).
    assert beta.mean() == pytest.approx(2 / 3, abs=4 * math.sqrt(1 / 18 / fan_out))
    assert st.kstest(beta, "beta", args=(2, 1)).pvalue > 1e-3
    # its position is uniform over the fan_in + 1 entries (weights and bias)
    counts = np.bincount(pos * 10 // (fan_in + 1), minlength=10)
    assert st.chisquare(counts).pvalue > 1e-3


def test_symmetric_part_moments():
    fan_in, fan_out = 999, 4000
    _, _, rest = _split(fan_in, fan_out, seed=3)
    sigma2 = 0.6007**2 / fan_in
    n = rest.size
    assert abs(rest.mean()) < 5 * math.sqrt(sigma2 / n)
    assert rest.var() == pytest.approx(sigma2, rel=5 * math.sqrt(2 / n) + 0.01)
    assert abs(st.skew(rest)) < 0.05
    assert abs(st.kurtosis(rest)) < 0.1


def test_dense_layer_with_rai_sets_biases_and_lowers_born_dead_rate():
    layer = actfast.Dense(5, 4, activation="relu", init="rai", rng=0)
    assert np.count_nonzero(layer.b) == 4
    w, b = init.rai(5, 4, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(layer.W, w)
    np.testing.assert_array_equal(layer.b, b)
    he = actfast.born_dead_probability(10, 3, trials=5000, rng=0)
    rai = actfast.born_dead_probability(10, 3, init="rai", trials=5000, rng=0)
    assert rai.probability < 0.5 * he.probability
