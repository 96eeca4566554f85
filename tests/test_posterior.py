"""The posterior q(z | x) object (`simvae_tf.posterior.Posterior`), with and without the
orbit of a continuous invariance (RLC's scaling), in pure numpy."""

import numpy as np
import pytest

from simvae_tf.posterior import Posterior
from simvae_tf.simulators import base, invariance
from simvae_tf.simulators.rlc import RLCSimulator


@pytest.fixture(scope="module")
def rlc():
    return RLCSimulator(backend="closed_form")


def rlc_posterior(rlc, n=50, sigma=1e-3, seed=0):
    v = rlc.sample_latents(np.random.default_rng(seed), n)
    mean_u = base.normalize(rlc.latents, v)
    direction = invariance.normalized_direction(rlc.latents, rlc.invariance_direction)
    return v, Posterior(rlc.latents, mean_u, np.full_like(mean_u, np.log(sigma)), orbit_direction=direction)


def test_the_direction_is_the_scaling_in_normalised_coordinates(rlc):
    d = invariance.normalized_direction(rlc.latents, rlc.invariance_direction)
    assert d.shape == (3,) and np.linalg.norm(d) == pytest.approx(1.0)
    z = rlc.sample_latents(np.random.default_rng(1), 4)
    moved = base.denormalize(rlc.latents, base.normalize(rlc.latents, z) + 0.3 * d)
    scale = z[:, 0] / moved[:, 0]  # R -> R / s, L -> L / s, C -> C s
    np.testing.assert_allclose(moved, z * np.stack([1 / scale, 1 / scale, scale], axis=1), rtol=1e-5)
    np.testing.assert_allclose(rlc.simulate(moved), rlc.simulate(z), atol=2e-4)
    with pytest.raises(ValueError, match="one finite number per latent"):
        invariance.normalized_direction(rlc.latents, (1.0, 0.0))


def test_the_orbit_segment_ends_on_the_boundary_of_the_ranges(rlc):
    d = invariance.normalized_direction(rlc.latents, rlc.invariance_direction)
    center = np.random.default_rng(2).uniform(-1, 1, size=(100, 3))
    base, low, high = invariance.orbit_segment(center, d)
    np.testing.assert_array_equal(base, center)
    assert np.all(low <= 0) and np.all(high >= 0)
    for t in (low, high):
        ends = center + t[:, None] * d
        assert np.all(np.abs(ends) <= 1 + 1e-9)
        np.testing.assert_allclose(np.abs(ends).max(axis=1), 1.0, atol=1e-9)  # one latent at its bound


def test_draws_spread_along_the_orbit_and_keep_the_determined_quantities(rlc):
    v, posterior = rlc_posterior(rlc)
    draws = posterior.sample(2000, seed=0)  # [B, n, K]
    # R, L, C range over much of their (log) ranges; f0 and Q stay where the data put them.
    log_r = np.log(draws[..., 0])
    assert np.median(log_r.max(axis=1) - log_r.min(axis=1)) > 1.0
    derived_truth = rlc.derived_quantities(v)
    derived = rlc.derived_quantities(draws.reshape(-1, 3))
    for name in ("f0_hz", "Q"):
        ratio = derived[name].reshape(draws.shape[:2]) / derived_truth[name][:, None]
        np.testing.assert_allclose(ratio, 1.0, rtol=0.02)
    # Draws stay inside the ranges (up to the Gaussian's 1e-3), and fill the segment.
    u = base.normalize(rlc.latents, draws.reshape(-1, 3))
    assert np.all(np.abs(u) <= 1.0 + 0.01)
    # The mean is the middle of the segment, the std includes its spread.
    low, high = posterior.orbit_range
    np.testing.assert_allclose(posterior.center_normalized,
                               posterior.mean_normalized + 0.5 * (low + high)[:, None] * posterior.orbit_direction,
                               atol=1e-6)
    u = base.normalize(rlc.latents, draws.reshape(-1, 3)).reshape(draws.shape)
    np.testing.assert_allclose(u.mean(axis=1), posterior.center_normalized, atol=0.05)
    np.testing.assert_allclose(u.std(axis=1), posterior.std_normalized, rtol=0.1, atol=2e-3)
    # R: no precise-looking value (short segments only near the corners of the ranges).
    assert np.median(posterior.std[:, 0] / posterior.mean[:, 0]) > 0.3


def test_a_mean_outside_the_ranges_moves_along_its_orbit_not_off_it(rlc):
    d = invariance.normalized_direction(rlc.latents, rlc.invariance_direction)
    inside = base.normalize(rlc.latents, rlc.sample_latents(np.random.default_rng(4), 200))
    outside = inside + 3.0 * d  # far along each orbit line, out of the ranges
    assert np.all(np.abs(outside).max(axis=1) > 1)
    posterior = Posterior(rlc.latents, outside, np.full_like(outside, -6.0), orbit_direction=d)
    center = posterior.center_normalized
    assert np.all(np.abs(center) <= 1 + 1e-6)
    truth, answer = rlc.derived_quantities(base.denormalize(rlc.latents, inside)), rlc.derived_quantities(posterior.mean)
    for name in ("f0_hz", "Q"):
        np.testing.assert_allclose(answer[name], truth[name], rtol=1e-4)
    # A line that misses the ranges altogether falls back to the clipped point.
    base_point, low, high = invariance.orbit_segment(np.array([[5.0, 5.0, 5.0]]) - 10 * d, d)
    assert np.all(np.abs(base_point) <= 1) and low[0] <= high[0]


def test_without_an_orbit_the_posterior_is_the_encoders_gaussian(rlc):
    mean_u = np.array([[0.1, -0.2, 0.3]], np.float32)
    log_std = np.log(np.array([[0.05, 0.1, 0.2]], np.float32))
    posterior = Posterior(rlc.latents, mean_u, log_std)
    assert posterior.orbit_range is None
    np.testing.assert_array_equal(posterior.center_normalized, mean_u)
    np.testing.assert_allclose(posterior.std_normalized, np.exp(log_std))
    eps = np.random.default_rng(7).standard_normal((1, 5, 3))
    np.testing.assert_allclose(posterior.sample_normalized(5, seed=7), mean_u[:, None] + np.exp(log_std)[:, None] * eps)


def test_rows_and_misfit_scores_keep_the_orbit(rlc):
    _, posterior = rlc_posterior(rlc, n=6)
    scored = posterior.with_misfit(np.arange(6.0), np.linspace(0, 1, 6))
    part = scored[np.array([1, 4])]
    assert len(part) == 2 and part.orbit_direction is not None
    np.testing.assert_array_equal(part.p_value, [0.2, 0.8])
    np.testing.assert_allclose(part.mean, posterior.mean[[1, 4]])
