"""Posterior tail shapes (the post-hoc tail calibration; `tail_shapes`): Student-t (heavier)
and generalised normal (lighter) PITs, the fit of a width factor and a tail shape, the
Posterior's std and draws, the stored record, and the export's serve/sample endpoints."""

import numpy as np
import pytest
from scipy import stats

import simvae_tf as sv
from simvae_tf import calibration as calib
from simvae_tf import std_calibration, tail_shapes
from simvae_tf.posterior import Posterior
from simvae_tf.simulators import base


def t_case(rng, dof, n=4000, q=2, width_factor=1.0):
    """Gaussian posteriors N(mean, std) whose truths lie a t(dof) draw times width_factor *
    std away from the mean: errors with heavier tails than the posterior says."""
    mean = rng.uniform(-1, 1, (n, q))
    std = rng.uniform(0.05, 0.3, (n, q))
    return mean + width_factor * std * rng.standard_t(dof, (n, q)), mean, std


def light_case(rng, power, n=4000, q=2, width_factor=1.0):
    """Gaussian posteriors whose truths lie a generalised normal (power) draw, in the
    Gaussian-matched parametrisation of `tail_shapes` (sqrt 2 * scipy's gennorm), away:
    errors with lighter tails than the posterior says."""
    mean = rng.uniform(-1, 1, (n, q))
    std = rng.uniform(0.05, 0.3, (n, q))
    errors = np.sqrt(2.0) * stats.gennorm(power).rvs(size=(n, q), random_state=rng)
    return mean + width_factor * std * errors, mean, std


def test_the_shaped_pit_is_uniform_for_t_and_light_errors_and_the_gaussian_one_by_default():
    rng = np.random.default_rng(0)
    truth, mean, std = t_case(rng, dof=4)
    assert calib.max_coverage_error(calib.shaped_pit(truth, mean, std, [4.0, 4.0])) < 0.02
    assert calib.max_coverage_error(calib.gaussian_pit(truth, mean, std)) > 0.03  # too narrow a Gaussian
    np.testing.assert_allclose(calib.shaped_pit(truth, mean, std), calib.gaussian_pit(truth, mean, std), atol=1e-12)
    truth, mean, std = light_case(rng, power=4.0)
    assert calib.max_coverage_error(calib.shaped_pit(truth, mean, std, np.inf, [4.0, 4.0])) < 0.02
    np.testing.assert_allclose(calib.shaped_pit(truth, mean, std, np.inf, 2.0), calib.gaussian_pit(truth, mean, std),
                               atol=1e-12)
    with pytest.raises(ValueError, match="must exceed 2"):
        calib.shaped_pit(truth, mean, std, [2.0, 4.0])
    with pytest.raises(ValueError, match="not both"):
        calib.shaped_pit(truth, mean, std, [4.0, np.inf], [3.0, 2.0])


def test_the_shapes_std_factors_and_half_widths_are_scipys():
    # power 2 is the Gaussian itself; power 4 is sqrt(2) times scipy's gennorm(4).
    np.testing.assert_allclose(tail_shapes.std_factor([np.inf, 5.0, np.inf], [2.0, 2.0, 4.0]),
                               [1.0, np.sqrt(5.0 / 3.0), np.sqrt(2.0) * stats.gennorm(4.0).std()], rtol=1e-10)
    levels = np.array([0.5, 0.9])
    np.testing.assert_allclose(tail_shapes.central_half_width(levels, np.inf, 2.0), stats.norm.ppf(0.5 + levels / 2))
    np.testing.assert_allclose(tail_shapes.central_half_width(levels, np.inf, 4.0),
                               np.sqrt(2.0) * stats.gennorm(4.0).ppf(0.5 + levels / 2), rtol=1e-8)


def test_a_tail_fit_fixes_what_no_width_factor_can_and_keeps_gaussians_gaussian():
    rng = np.random.default_rng(1)
    truth, mean, std = t_case(rng, dof=3, width_factor=0.5)
    widened = calib.fit_std_scale(truth, mean, std)  # the best a factor alone does
    gaussian_error = calib.max_coverage_error(calib.gaussian_pit(truth, mean, std * widened))
    scale, dof, power = calib.fit_scale_and_tail(truth, mean, std)
    assert np.all(dof <= 5) and np.all(power == 2) and np.all(np.abs(scale - 0.5) < 0.1), (scale, dof)
    tail_error = calib.max_coverage_error(calib.shaped_pit(truth, mean, std * scale, dof, power))
    assert gaussian_error > 0.04 and tail_error < 0.02, (gaussian_error, tail_error)

    # Lighter tails than a Gaussian (box's pixel-quantised positions): too narrow at 50% and too
    # wide at 95% under any width, the reverse of the t case; a generalised normal fixes it.
    truth, mean, std = light_case(rng, power=5.0, width_factor=0.5)
    widened = calib.fit_std_scale(truth, mean, std)
    gaussian_error = calib.max_coverage_error(calib.gaussian_pit(truth, mean, std * widened))
    scale, dof, power = calib.fit_scale_and_tail(truth, mean, std)
    assert np.all(np.isinf(dof)) and np.all(power >= 4), (scale, dof, power)
    tail_error = calib.max_coverage_error(calib.shaped_pit(truth, mean, std * scale, dof, power))
    assert gaussian_error > 0.04 and tail_error < 0.02, (gaussian_error, tail_error)

    truth, mean, std = t_case(rng, dof=1e9, width_factor=2.0)  # Gaussian errors, a too narrow posterior
    scale, dof, power = calib.fit_scale_and_tail(truth, mean, std)
    assert np.all(np.isinf(dof)) and np.all(power == 2) and np.allclose(scale, 2.0, rtol=0.08)


def test_the_posterior_reports_each_shapes_std_and_draws_from_it():
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
    with pytest.raises(ValueError, match="one value per latent"):
        Posterior(latents, mean_u, log_scale, dof=[4.0])

    light = Posterior(latents, mean_u, log_scale, power=[None, 4.0])
    np.testing.assert_allclose(light.std_normalized[:, 1], 0.1 * np.sqrt(2.0) * stats.gennorm(4.0).std(), rtol=1e-6)
    assert light[:1].power.tolist() == [2.0, 4.0]
    quantiles = np.quantile(light.sample_normalized(20000, seed=1)[0] / 0.1, [0.05, 0.25, 0.75, 0.95], axis=0)
    np.testing.assert_allclose(quantiles[:, 1], np.sqrt(2.0) * stats.gennorm(4.0).ppf([0.05, 0.25, 0.75, 0.95]),
                               atol=0.04)
    np.testing.assert_allclose(quantiles[:, 0], stats.norm.ppf([0.05, 0.25, 0.75, 0.95]), atol=0.05)


def test_a_stored_record_applies_to_the_pair_and_one_from_before_light_tails_is_refitted():
    class Pair:
        latents = (sv.Latent("a", -1.0, 1.0), sv.Latent("b", -1.0, 1.0))

    pair = Pair()
    record = {"scale": {"a": 0.5, "b": 2.0}, "dof": {"a": 4.0, "b": None}, "power": {"a": None, "b": 3.0},
              "samples": 100, "seed": 0, "tails": True, "shapes": std_calibration.shapes_offered(True)}
    scale, dof, power = std_calibration.apply(pair, record)
    assert scale.tolist() == [0.5, 2.0] and dof.tolist() == [4.0, np.inf] and power.tolist() == [2.0, 3.0]
    np.testing.assert_allclose(pair.log_std_offset, np.log([0.5, 2.0]), rtol=1e-6)
    assert std_calibration.is_current(record, 100, 0, True)
    assert not std_calibration.is_current(record, 100, 0, False) and not std_calibration.is_current(record, 99, 0, True)
    older = {key: value for key, value in record.items() if key not in ("power", "shapes")}
    assert not std_calibration.is_current(older, 100, 0, True)  # fitted among the t tails only
    assert std_calibration.apply(pair, older)[2].tolist() == [2.0, 2.0]  # still readable: Gaussian powers


class Line(sv.Simulator):
    name = "line"
    latents = (sv.Latent("slope", -1.0, 1.0), sv.Latent("offset", 0.5, 2.0, scale="log"))
    output_spec = sv.OutputSpec(shape=(8,), kind="signal")

    def simulate(self, z):
        z = np.asarray(z, np.float64)
        return (z[:, :1] * np.linspace(0, 1, 8) + z[:, 1:]).astype(np.float32)


def test_the_export_carries_the_tail_shapes_into_serve_and_sample(tmp_path):
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
    pair.posterior_dof, pair.posterior_power = np.array([3.0, np.inf]), np.array([2.0, 4.0])
    directory = export.export_pair(pair, str(tmp_path / "export"))
    model = sv.load(directory)
    assert model.metadata["posterior_dof"] == [3.0, None] and model.metadata["posterior_power"] == [None, 4.0]

    x = simulator.simulate(simulator.sample_latents(np.random.default_rng(1), 2))
    in_memory, loaded = pair.posterior(x, score_misfit=False), model.posterior(x, score_misfit=False)
    np.testing.assert_array_equal(loaded.dof, [3.0, np.inf])
    np.testing.assert_array_equal(loaded.power, [2.0, 4.0])
    np.testing.assert_allclose(loaded.std, in_memory.std, rtol=1e-4)
    served = model.encoder.serve(tf.constant(x))
    np.testing.assert_allclose(served["std"].numpy(), in_memory.std, rtol=1e-4)
    # The endpoint's draws (normalised coordinates): t(3) in the first latent, the generalised
    # normal of power 4 in the second.
    drawn = model.encoder.sample(tf.constant(x), tf.constant(20000), tf.constant(0)).numpy()
    standardized = (base.normalize(simulator.latents, drawn[0]) - in_memory.mean_normalized[0]) \
        / np.exp(in_memory.log_std_normalized[0])
    quantiles = np.quantile(standardized, [0.05, 0.25, 0.75, 0.95], axis=0)
    np.testing.assert_allclose(quantiles[:, 0], stats.t(3).ppf([0.05, 0.25, 0.75, 0.95]), atol=0.06)
    np.testing.assert_allclose(quantiles[:, 1], np.sqrt(2.0) * stats.gennorm(4.0).ppf([0.05, 0.25, 0.75, 0.95]),
                               atol=0.06)
