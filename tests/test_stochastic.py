"""Stochastic simulators (`stochastic = True`, `simulate(z, rng)`): seeded noise, exact
resume, the heteroscedastic likelihood D of stage 1, stage 2's reconstruction under it, the
generator export's mean / spread / sample, and a whole tiny run through sv.fit and sv.load."""

import math
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import simvae_tf as sv
from conftest import REPO, TINY
from simvae_tf import data, losses, predictive, training
from simvae_tf.models import mlp
from simvae_tf.posterior import Posterior
from simvae_tf.simulators import base
from test_contract import Pulse
from test_data import take

if REPO not in sys.path:  # `examples` is a top-level folder: importable from the repository root
    sys.path.insert(0, REPO)
from examples.linear_gaussian import LinearGaussian  # noqa: E402
from examples.noisy_oscillator import NoisyDampedOscillator  # noqa: E402
from examples.noisy_rlc import NoisyRLC  # noqa: E402

HETEROSCEDASTIC = losses.HETEROSCEDASTIC_SIGNAL


class NoisyPulse(Pulse):
    """The contract's pulse with additive Gaussian noise of std 0.1."""

    name = "noisy_pulse"
    stochastic = True

    def simulate(self, z, rng):
        x = super().simulate(z)
        return x + rng.normal(0.0, 0.1, x.shape).astype(np.float32)


def _noise(sim, z_normalised, x):
    """x minus the noise-free pulse at the same latents."""
    return x - Pulse.simulate(sim, base.denormalize(sim.latents, z_normalised))


# -- the contract and seeded noise -------------------------------------------------------------
def test_same_seed_stream_and_index_give_the_same_noise_and_other_indices_other_noise():
    sim = NoisyPulse()
    z1, x1 = data.simulate_batch(sim, 0, "stage1", 5, 4)
    z2, x2 = data.simulate_batch(sim, 0, "stage1", 5, 4)
    np.testing.assert_array_equal(z1, z2)
    np.testing.assert_array_equal(x1, x2)
    noise = _noise(sim, z1, x1)
    assert 0.05 < noise.std() < 0.2
    for index, stream in ((6, "stage1"), (5, "stage2")):
        assert not np.allclose(_noise(sim, *data.simulate_batch(sim, 0, stream, index, 4)), noise)
    # The noise has a generator of its own: the latents are those of the deterministic pulse.
    np.testing.assert_array_equal(data.simulate_batch(Pulse(), 0, "stage1", 5, 4)[0], z1)
    np.testing.assert_array_equal(data.physical_batch(sim, 3, "evaluation", 6)[1],
                                  data.physical_batch(sim, 3, "evaluation", 6)[1])


def test_a_stochastic_simulator_is_never_run_from_global_random_state():
    sim = NoisyPulse()
    z = sim.sample_latents(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="'noisy_pulse' is stochastic: pass a seeded rng"):
        data.simulate_checked(sim, z)
    a = data.simulate_checked(sim, z, data.noise_rng(0, "s"))
    np.testing.assert_array_equal(a, data.simulate_checked(sim, z, data.noise_rng(0, "s")))
    assert not np.allclose(a, data.simulate_checked(sim, z, data.noise_rng(1, "s")))
    # Deterministic simulators keep simulate(z) and ignore an rng.
    np.testing.assert_array_equal(data.simulate_checked(Pulse(), z),
                                  data.simulate_checked(Pulse(), z, np.random.default_rng(5)))


def test_the_workdir_record_says_stochastic_only_for_stochastic_simulators():
    assert NoisyPulse().describe()["stochastic"] is True
    assert "stochastic" not in Pulse().describe()  # records of deterministic runs are unchanged


def test_predictive_resimulation_draws_seeded_noise():
    sim = NoisyPulse()
    posterior = Posterior(sim.latents, np.zeros((2, 2), np.float32), np.full((2, 2), -3.0, np.float32))
    first = predictive.resimulate(sim, posterior, k=3, seed=4)
    np.testing.assert_array_equal(first, predictive.resimulate(sim, posterior, k=3, seed=4))
    assert not np.allclose(first, predictive.resimulate(sim, posterior, k=3, seed=5))


def test_the_examples_draw_only_from_the_generator_they_are_given():
    for sim in (NoisyDampedOscillator(), NoisyRLC(backend="closed_form"), LinearGaussian()):
        assert sim.stochastic
        z = sim.sample_latents(np.random.default_rng(0), 4)
        a = sim.simulate(z, np.random.default_rng(1))
        np.testing.assert_array_equal(a, sim.simulate(z, np.random.default_rng(1)))
        assert a.shape == (4, *sim.output_spec.shape) and a.dtype == np.float32
    rlc = NoisyRLC(backend="closed_form", noise_db=0.5, noise_rad=0.05)
    z = rlc.sample_latents(np.random.default_rng(0), 2000)
    noise = rlc.simulate(z, np.random.default_rng(1)) - rlc.response(z)
    np.testing.assert_allclose(noise.reshape(-1, 2).std(axis=0), [0.5, 0.05], rtol=0.02)


def test_linear_gaussian_prior_and_exact_posterior():
    sim = LinearGaussian()
    theta = sim.sample_latents(np.random.default_rng(0), 20000)
    assert np.all(np.abs(theta) <= sim.latents[0].high)
    np.testing.assert_allclose(theta.var(axis=0), 0.1, rtol=0.05)
    mean, std = sim.exact_posterior(np.ones((2, 10)))
    np.testing.assert_allclose(mean, 0.5)
    np.testing.assert_allclose(std ** 2, 0.05)  # sbibm gaussian_linear: posterior covariance 0.05 I


# -- resume --------------------------------------------------------------------------------------
def test_resumed_workers_and_cached_streams_of_a_stochastic_simulator_are_exact(tmp_path):
    sim = NoisyPulse()
    full = take(data.make_dataset(sim, seed=3, stream="stage1", batch_size=4), 5)
    resumed = take(data.make_dataset(sim, seed=3, stream="stage1", batch_size=4, start_batch=3), 2)
    for a, b in zip(full[3:], resumed):
        np.testing.assert_array_equal(a[1], b[1])
    workers = take(data.make_dataset(sim, seed=3, stream="stage1", batch_size=4, num_workers=2), 2)
    for a, b in zip(full, workers):
        np.testing.assert_array_equal(a[1], b[1])
    cached = data.materialize(sim, 10, 0, str(tmp_path / "a"), batch_size=4, progress=False)
    again = data.materialize(sim, 10, 0, str(tmp_path / "b"), batch_size=4, progress=False)
    np.testing.assert_array_equal(cached[1], again[1])


def test_stage1_resumed_from_a_checkpoint_ends_where_an_uninterrupted_run_does(tmp_path):
    """Stage 1 of a stochastic simulator, 4 steps at once vs 2 + (restore, 2 more)."""
    import ml_collections

    tf.config.experimental.enable_op_determinism()
    sim = NoisyPulse()
    scaler = data.fit_output_scaler(sim, 0, n=256)

    def stage(steps, directory):
        keras.utils.set_random_seed(0)
        generator = mlp.build_generator(2, (32,), width=8, depth=1, heteroscedastic=True)
        generator.compile(optimizer=keras.optimizers.Adam(1e-2), loss=losses.Discrepancy(HETEROSCEDASTIC))
        generator.optimizer.build(generator.trainable_variables)
        config = ml_collections.ConfigDict({"steps": steps, "steps_per_loop": 2, "summaries_every": 1})
        writer = tf.summary.create_noop_writer()
        training.run_stage("stage1", generator, config, str(directory), lambda start: data.make_dataset(
            sim, seed=0, stream="stage1", batch_size=8, start_batch=start, scaler=scaler), writer, verbose=0)
        return generator.get_weights()

    uninterrupted = stage(4, tmp_path / "one")
    stage(2, tmp_path / "two")
    resumed = stage(4, tmp_path / "two")
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_array_equal(a, b)


# -- the likelihood ------------------------------------------------------------------------------
def test_heteroscedastic_discrepancy_is_the_gaussian_negative_log_likelihood():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 2)).astype(np.float32)
    mean = rng.normal(size=x.shape).astype(np.float32)
    log_scale = rng.uniform(-2, 1, size=x.shape).astype(np.float32)
    d = losses.per_example_discrepancy(HETEROSCEDASTIC, x, tf.stack([mean, log_scale], axis=-1)).numpy()
    scale = np.exp(log_scale.astype(np.float64))
    log_density = -0.5 * ((x - mean) / scale) ** 2 - np.log(scale) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(d, -log_density.reshape(3, -1).sum(axis=1), rtol=1e-5)
    # Its expectation under N(m, s^2) noise is least at the true scale: G learns the spread.
    noise = rng.normal(0.0, 0.3, size=(20000, 1)).astype(np.float32)
    candidates = np.log([0.1, 0.2, 0.3, 0.45, 0.9])
    expected = [losses.per_example_discrepancy(HETEROSCEDASTIC, noise, tf.constant(
        np.stack([np.zeros_like(noise), np.full_like(noise, c)], axis=-1))).numpy().mean() for c in candidates]
    assert int(np.argmin(expected)) == 2
    # The mean and the spread the pair and the export report.
    prediction = tf.constant(np.stack([mean, log_scale], axis=-1))
    np.testing.assert_allclose(losses.prediction_to_output(HETEROSCEDASTIC, prediction), mean)
    np.testing.assert_allclose(losses.prediction_spread(HETEROSCEDASTIC, prediction), scale, rtol=1e-5)


def test_bernoulli_pixels_and_deterministic_signals_keep_their_discrepancy():
    """Images: the cross-entropy already is the Bernoulli NLL; its spread and draws."""
    logits = tf.constant([[[-1.0, 0.0, 2.0]]])
    x = tf.constant([[[0.0, 1.0, 1.0]]])
    p = 1.0 / (1.0 + np.exp(-logits.numpy()))
    bernoulli_nll = -(x.numpy() * np.log(p) + (1 - x.numpy()) * np.log(1 - p)).sum()
    assert losses.per_example_discrepancy("binary_image", x, logits).numpy()[0] == pytest.approx(bernoulli_nll, rel=1e-5)
    np.testing.assert_allclose(losses.prediction_spread("binary_image", logits), np.sqrt(p * (1 - p)), rtol=1e-5)
    draws = np.stack([losses.sample_prediction("binary_image", tf.tile(logits, [4000, 1, 1]), tf.constant([s, 0]))
                      for s in range(2)])
    assert set(np.unique(draws)) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(axis=(0, 1)), p[0], atol=0.02)
    assert losses.likelihood_of("signal", True) == HETEROSCEDASTIC
    assert losses.likelihood_of("binary_image", True) == "binary_image"
    assert losses.likelihood_of("signal", False) == "signal"
    signal = tf.constant([[0.5, -1.0]])
    np.testing.assert_array_equal(losses.prediction_spread("signal", signal), 0.0)
    np.testing.assert_array_equal(losses.sample_prediction("signal", signal, tf.constant([0, 0])), signal)


def test_stage2_reconstruction_scores_x_under_the_generators_distribution():
    class ZeroNoiseInverse(training.InverseModel):
        def sample_noise(self, shape):
            return tf.zeros(shape)

    keras.utils.set_random_seed(0)
    generator = mlp.build_generator(2, (6,), width=8, depth=1, heteroscedastic=True)
    encoder = mlp.build_encoder((6,), 2, width=8, depth=1)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    model = ZeroNoiseInverse(encoder, generator, HETEROSCEDASTIC)
    terms = model.per_example_losses(tf.constant(x))
    mean_u, _ = tf.split(encoder(x), 2, axis=-1)
    prediction = generator(mean_u).numpy().astype(np.float64)
    scale = np.exp(prediction[..., 1])
    nll = (0.5 * ((x - prediction[..., 0]) / scale) ** 2 + np.log(scale) + 0.5 * math.log(2 * math.pi)).sum(axis=1)
    np.testing.assert_allclose(terms["reconstruction"].numpy(), nll, rtol=1e-5)


# -- a whole run ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    config = sv.get_config(NoisyDampedOscillator)
    for key, value in {**TINY, "stage2.latent_weight": 1.0}.items():
        block, _, name = key.rpartition(".")
        setattr(config[block] if block else config, name, value)
    workdir = tmp_path_factory.mktemp("noisy") / "run"
    return sv.fit(NoisyDampedOscillator, config=config, workdir=str(workdir), verbose=0)


def test_a_stochastic_signal_simulator_trains_evaluates_exports_and_loads(noisy_run):
    run, sim = noisy_run, NoisyDampedOscillator()
    metrics = run.metrics
    assert set(metrics["stage1"]["noise_coverage"]) == {"within_1_spread", "within_2_spread", "calibrated"}
    assert "calibration" in metrics and "predictive_check" in metrics
    z = sim.sample_latents(np.random.default_rng(0), 5)
    x = sim.simulate(z, np.random.default_rng(1))
    post = run.posterior(x)
    assert post.mean.shape == post.std.shape == (5, 3) and np.all(post.std > 0)
    model = sv.load(run.export_dir)
    assert model.stochastic and model.likelihood == HETEROSCEDASTIC
    loaded = model.posterior(x)
    np.testing.assert_allclose(loaded.mean, post.mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.discrepancy, post.discrepancy, rtol=1e-4)
    np.testing.assert_allclose(model.generate(z), run.generate(z), atol=1e-5)


def test_the_generator_export_returns_the_mean_the_spread_and_seeded_draws(noisy_run):
    run = noisy_run
    pair = run.trained_pair()
    metadata = sv.load(run.export_dir).metadata
    assert metadata["stochastic"] is True and metadata["likelihood"] == HETEROSCEDASTIC
    assert set(metadata["signatures"]["generator"]) == {"serve", "spread", "sample", "discrepancy"}
    generator = tf.saved_model.load(os.path.join(run.export_dir, "generator"))  # without simvae_tf
    z = np.repeat([[1.2, 3.0, 0.1]], 4000, axis=0).astype(np.float32)
    mean = generator.serve(tf.constant(z)).numpy()
    spread = generator.spread(tf.constant(z)).numpy()
    np.testing.assert_allclose(mean, pair.generate(z), atol=1e-5)
    np.testing.assert_allclose(spread, pair.spread(z), rtol=1e-5)
    assert mean.shape == spread.shape == (4000, 128) and np.all(spread > 0)
    draws = generator.sample(tf.constant(z), tf.constant(7)).numpy()
    np.testing.assert_array_equal(draws, generator.sample(tf.constant(z), tf.constant(7)).numpy())
    assert not np.allclose(draws, generator.sample(tf.constant(z), tf.constant(8)).numpy())
    np.testing.assert_allclose(draws, pair.sample(z, seed=7), atol=1e-4)
    # The draws scatter around serve's mean with the spread that `spread` reports.
    np.testing.assert_allclose(draws.mean(axis=0), mean[0], atol=5 * spread[0].max() / np.sqrt(4000))
    np.testing.assert_allclose(draws.std(axis=0), spread[0], rtol=0.1)
