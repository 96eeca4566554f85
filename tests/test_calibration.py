"""simvae_tf.calibration: the pure calibration functions on posteriors whose calibration is
known by construction (seeded, no models)."""

import math

import numpy as np
import pytest

from simvae_tf import calibration as calib


def gaussian_case(rng, n=4000, q=3, width_factor=1.0):
    """Posteriors N(mean, std) with truths drawn from N(mean, (width_factor * std)^2):
    calibrated at width_factor 1, overconfident above 1."""
    mean = rng.uniform(-1, 1, (n, q))
    std = rng.uniform(0.05, 0.3, (n, q))
    truth = mean + width_factor * std * rng.standard_normal((n, q))
    return truth, mean, std


def test_calibrated_gaussian_posterior_is_uniform_and_covers_its_levels(rng):
    truth, mean, std = gaussian_case(rng)
    pit = calib.gaussian_pit(truth, mean, std)
    coverage = calib.expected_coverage(pit, calib.REPORTED_LEVELS)
    np.testing.assert_allclose(coverage, np.repeat(np.array(calib.REPORTED_LEVELS)[:, None], 3, axis=1), atol=0.03)
    assert not calib.outside_band(pit).any()
    z = calib.z_scores(truth, mean, std)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.06)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.05)
    counts = calib.rank_histogram(pit, num_bins=10)
    assert counts.shape == (10, 3) and (counts.sum(axis=0) == len(pit)).all()


def test_overconfident_posterior_is_caught(rng):
    truth, mean, std = gaussian_case(rng, width_factor=3.0)  # truths 3x wider than the posterior
    pit = calib.gaussian_pit(truth, mean, std)
    coverage_68 = calib.expected_coverage(pit, [0.68])[0]
    np.testing.assert_allclose(coverage_68, 2 * 0.5 * (1 + np.vectorize(math.erf)(1 / 3 / np.sqrt(2))) - 1,
                               atol=0.03)  # P(|N(0, 9)| < 1) = 0.26
    assert calib.outside_band(pit).all()
    assert (calib.z_scores(truth, mean, std).std(axis=0) > 2.5).all()
    # Overconfidence piles PIT values at both ends: the ECDF difference is S-shaped.
    difference = calib.ecdf_difference(pit)
    assert (difference[10] > 0.1).all() and (difference[90] < -0.1).all()


def test_biased_posterior_tilts_the_ecdf(rng):
    truth, mean, std = gaussian_case(rng)
    pit = calib.gaussian_pit(truth, mean + std, std)  # every mean one std too high
    assert (calib.ecdf_difference(pit)[50] > 0.2).all()  # the truth falls low in the posterior
    assert calib.outside_band(pit).all()


def test_sample_pit_matches_the_closed_form_and_splits_ties(rng):
    truth, mean, std = gaussian_case(rng, n=500, q=2)
    samples = mean[:, None] + std[:, None] * rng.standard_normal((500, 4000, 2))
    np.testing.assert_allclose(calib.sample_pit(truth, samples), calib.gaussian_pit(truth, mean, std), atol=0.03)
    collapsed = np.repeat(truth[:, None], 10, axis=1)  # every draw equals the truth
    pit = calib.sample_pit(truth, collapsed, seed=0)
    # Ties split at random: uniform values, not all 0 or all 1.
    np.testing.assert_allclose(calib.expected_coverage(pit, [0.5, 0.9]), [[0.5, 0.5], [0.9, 0.9]], atol=0.06)
    with pytest.raises(ValueError, match=r"must be \[n, S, Q\]"):
        calib.sample_pit(truth, samples[:, :, :1])


def test_simultaneous_band_holds_uniform_ecdfs_at_its_confidence():
    lower, upper = calib.simultaneous_ecdf_band(300, seed=0)
    assert (lower <= 1e-12).all() and (upper >= -1e-12).all() and lower[0] == upper[0] == 0.0
    rng = np.random.default_rng(7)
    trials = calib.ecdf_difference(rng.uniform(size=(300, 400)))
    inside = np.all((trials >= lower[:, None] - 1e-12) & (trials <= upper[:, None] + 1e-12), axis=0)
    assert 0.91 <= inside.mean() <= 0.99


def test_contraction_and_bad_input():
    np.testing.assert_allclose(calib.contraction(np.array([[0.0, 0.5, 1.0]]), 1.0), [[1.0, 0.75, 0.0]])
    with pytest.raises(ValueError, match="std must be positive"):
        calib.gaussian_pit(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="same shape"):
        calib.gaussian_pit(np.zeros((2, 1)), np.zeros((2, 2)), np.ones((2, 1)))


def test_std_scale_recovers_the_factor_a_posterior_is_too_narrow_by(rng):
    truth, mean, std = gaussian_case(rng, n=4000, q=2, width_factor=3.0)
    scale = calib.fit_std_scale(truth, mean, std)
    np.testing.assert_allclose(scale, 3.0, rtol=0.08)
    rescaled = calib.expected_coverage(calib.gaussian_pit(truth, mean, std * scale), calib.REPORTED_LEVELS)
    assert np.max(np.abs(rescaled - np.array(calib.REPORTED_LEVELS)[:, None])) < 0.03
    truth, mean, std = gaussian_case(rng, n=4000, q=2)
    np.testing.assert_allclose(calib.fit_std_scale(truth, mean, std), 1.0, rtol=0.06)
