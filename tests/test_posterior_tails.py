"""Student-t posterior tails (the post-hoc tail calibration): the t PIT, the fit of a width
factor and a tail shape, the Posterior's std and draws, and the export's sample endpoint."""

import numpy as np
import pytest
from scipy import stats

import simvae_tf as sv
from simvae_tf import calibration as calib
from simvae_tf.posterior import Posterior
from simvae_tf.simulators import base


def t_case(rng, dof, n=4000, q=2, width_factor=1.0):
    """Gaussian posteriors N(mean, std) whose truths lie a t(dof) draw times width_factor *
    std away from the mean: errors with heavier tails than the posterior says."""
    mean = rng.uniform(-1, 1, (n, q))
    std = rng.uniform(0.05, 0.3, (n, q))
    return mean + width_factor * std * rng.standard_t(dof, (n, q)), mean, std


def test_student_t_pit_is_uniform_for_t_errors_and_the_gaussian_one_at_infinite_dof():
    rng = np.random.default_rng(0)
    truth, mean, std = t_case(rng, dof=4)
    assert calib.max_coverage_error(calib.student_t_pit(truth, mean, std, [4.0, 4.0])) < 0.02
    assert calib.max_coverage_error(calib.gaussian_pit(truth, mean, std)) > 0.03  # too narrow a Gaussian
    np.testing.assert_allclose(calib.student_t_pit(truth, mean, std, np.inf), calib.gaussian_pit(truth, mean, std),
                               atol=1e-12)
    with pytest.raises(ValueError, match="must exceed 2"):
        calib.student_t_pit(truth, mean, std, [2.0, 4.0])


def test_a_tail_fit_fixes_what_no_width_factor_can_and_keeps_gaussians_gaussian():
    rng = np.random.default_rng(1)
    truth, mean, std = t_case(rng, dof=3, width_factor=0.5)
    widened = calib.fit_std_scale(truth, mean, std)  # the best a factor alone does
    gaussian_error = calib.max_coverage_error(calib.gaussian_pit(truth, mean, std * widened))
    scale, dof = calib.fit_scale_and_tail(truth, mean, std)
    assert np.all(dof <= 5) and np.all(np.abs(scale - 0.5) < 0.1), (scale, dof)
    tail_error = calib.max_coverage_error(calib.student_t_pit(truth, mean, std * scale, dof))
    assert gaussian_error > 0.04 and tail_error < 0.02, (gaussian_error, tail_error)

    truth, mean, std = t_case(rng, dof=1e9, width_factor=2.0)  # Gaussian errors, a too narrow posterior
    scale, dof = calib.fit_scale_and_tail(truth, mean, std)
    assert np.all(np.isinf(dof)) and np.allclose(scale, 2.0, rtol=0.08)


def test_the_posterior_reports_the_t_std_and_draws_t_distributed_values():
    latents = (sv.Latent("a", -1.0, 1.0), sv.Latent("b", -1.0, 1.0))
    mean_u = np.zeros((3, 2), np.float32)
    log_scale = np.full((3, 2), np.log(0.1), np.float32)
    gaussian = Posterior(latents, mean_u, log_scale)
    heavy = Posterior(latents, mean_u, log_scale, dof=[4.0, None])
    np.testing.assert_array_equal(gaussian.dof, [np.inf, np.inf])
    np.testing.assert_allclose(heavy.std_normalized[:, 0], 0.1 * np.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(heavy.std_normalized[:, 1], 0.1, rtol=1e-6)
    draws = heavy.sample_normalized(20000, seed=0)
    assert heavy[1:].dof.tolist() == [4.0, np.inf]  # rows keep the tails
    # The t(4) column's quantiles are the t's, the Gaussian column's the normal's.
    quantiles = np.quantile(draws[0] / 0.1, [0.05, 0.25, 0.75, 0.95], axis=0)
    np.testing.assert_allclose(quantiles[:, 0], stats.t(4).ppf([0.05, 0.25, 0.75, 0.95]), atol=0.05)
    np.testing.assert_allclose(quantiles[:, 1], stats.norm.ppf([0.05, 0.25, 0.75, 0.95]), atol=0.05)
    # Gaussian latents draw exactly what they drew before tails existed.
    np.testing.assert_array_equal(gaussian.sample_normalized(50, seed=3),
                                  Posterior(latents, mean_u, log_scale, dof=[None, None]).sample_normalized(50, seed=3))
    with pytest.raises(ValueError, match="does not fit 2 latents"):
        Posterior(latents, mean_u, log_scale, dof=[4.0])


class Line(sv.Simulator):
    name = "line"
    latents = (sv.Latent("slope", -1.0, 1.0), sv.Latent("offset", 0.5, 2.0, scale="log"))
    output_spec = sv.OutputSpec(shape=(8,), kind="signal")

    def simulate(self, z):
        z = np.asarray(z, np.float64)
        return (z[:, :1] * np.linspace(0, 1, 8) + z[:, 1:]).astype(np.float32)


def test_the_export_carries_the_tails_into_serve_and_sample(tmp_path):
    import tensorflow as tf

    from simvae_tf import data, defaults, export, models
    from simvae_tf.pair import TrainedPair

    tf.keras.utils.set_random_seed(0)
    simulator = Line()
    config = defaults.base_config()
    config.model.width = 4
    generator, encoder = models.build_models(config, simulator)
    scaler = data.OutputScaler.fit(simulator.simulate(simulator.sample_latents(np.random.default_rng(0), 64)))
    pair = TrainedPair(generator, encoder, simulator, scaler)
    pair.log_std_offset = np.log([0.5, 1.0]).astype(np.float32)
    pair.posterior_dof = np.array([3.0, np.inf])
    directory = export.export_pair(pair, str(tmp_path / "export"))
    model = sv.load(directory)
    assert model.metadata["posterior_dof"] == [3.0, None]

    x = simulator.simulate(simulator.sample_latents(np.random.default_rng(1), 2))
    in_memory, loaded = pair.posterior(x, score_misfit=False), model.posterior(x, score_misfit=False)
    np.testing.assert_array_equal(loaded.dof, [3.0, np.inf])
    np.testing.assert_allclose(loaded.std, in_memory.std, rtol=1e-4)
    served = model.encoder.serve(tf.constant(x))
    np.testing.assert_allclose(served["std"].numpy(), in_memory.std, rtol=1e-4)
    # The endpoint's draws: t(3) in the first latent (normalised coordinates), Gaussian in the second.
    drawn = model.encoder.sample(tf.constant(x), tf.constant(20000), tf.constant(0)).numpy()
    standardized = (base.normalize(simulator.latents, drawn[0]) - in_memory.mean_normalized[0]) \
        / np.exp(in_memory.log_std_normalized[0])
    quantiles = np.quantile(standardized, [0.05, 0.25, 0.75, 0.95], axis=0)
    np.testing.assert_allclose(quantiles[:, 0], stats.t(3).ppf([0.05, 0.25, 0.75, 0.95]), atol=0.06)
    np.testing.assert_allclose(quantiles[:, 1], stats.norm.ppf([0.05, 0.25, 0.75, 0.95]), atol=0.06)
