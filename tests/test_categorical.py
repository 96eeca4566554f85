"""Categorical latents (`Latent(values=...)`, dSprites shape): the latent itself, the
networks' layout (one-hot generator input, class logits), the straight-through stage-2
sample and the categorical latent term, the posterior's class probabilities, the metrics,
and a whole tiny dSprites run through the export and invert."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import simvae_tf as sv
from conftest import run_cli, tiny_config
from simvae_tf import calibration, losses, training
from simvae_tf.models.latent_layout import LatentLayout
from simvae_tf.posterior import Posterior
from simvae_tf.simulators import base

SHAPE = sv.Latent("shape", 1.0, 3.0, values=(1, 2, 3), labels=("square", "ellipse", "heart"))
LATENTS = (sv.Latent("a", -1.0, 1.0), SHAPE, sv.Latent("b", 0.1, 10.0, scale="log"))


def test_a_categorical_latent_checks_its_values_and_samples_only_them():
    assert SHAPE.is_categorical and SHAPE.discrete and SHAPE.values == (1.0, 2.0, 3.0)
    for bad, message in [(dict(values=(2, 1)), "increasing"), (dict(values=(1,)), "two or more"),
                         (dict(values=(0, 1)), "outside"), (dict(values=(1, 2), labels=("a",)), "one label per value")]:
        with pytest.raises(ValueError, match=message):
            sv.Latent("s", 1.0, 3.0, **bad)
    z = base.from_unit_interval(LATENTS, np.random.default_rng(0).uniform(size=(3000, 3)))
    counts = np.unique(z[:, 1], return_counts=True)
    assert counts[0].tolist() == [1.0, 2.0, 3.0] and np.all(np.abs(counts[1] / 3000 - 1 / 3) < 0.03)


def test_layout_codes_categories_one_hot_and_reads_the_encoder_output():
    layout = LatentLayout(LATENTS)
    assert layout.continuous == [0, 2] and layout.categorical == [1] and layout.sizes == [3]
    assert layout.network_width == 5 and layout.encoder_width == 7
    u = base.normalize(LATENTS, np.array([[0.5, 3.0, 1.0], [-0.5, 1.0, 0.1]]))
    coded = layout.network_input(u).numpy()
    np.testing.assert_allclose(coded, [[u[0, 0], 0, 0, 1, u[0, 2]], [u[1, 0], 1, 0, 0, u[1, 2]]], atol=1e-6)
    # Encoder output [mean (2) | log_std (2) | logits (3)].
    output = np.array([[0.1, 0.2, -1.0, -2.0, 0.0, 3.0, 0.0]], np.float32)
    mean, log_std, probabilities = (np.asarray(a) if not isinstance(a, list) else [np.asarray(p) for p in a]
                                    for a in layout.posterior_parts(output))
    p = np.exp([0.0, 3.0, 0.0]) / np.exp([0.0, 3.0, 0.0]).sum()
    np.testing.assert_allclose(probabilities[0][0], p, rtol=1e-5)
    values_u = np.array([-1.0, 0.0, 1.0])
    expected_std = np.sqrt(np.sum(p * values_u ** 2) - np.sum(p * values_u) ** 2)
    np.testing.assert_allclose(mean[0], [0.1, 0.0, 0.2], atol=1e-6)  # the mode (ellipse) in the middle
    np.testing.assert_allclose(log_std[0], [-1.0, np.log(expected_std), -2.0], rtol=1e-5)
    # Without categorical latents the coding is u itself and the output [mean | log_std].
    plain = LatentLayout(LATENTS[:1])
    first = u[:, :1]
    assert plain.network_input(first) is first and plain.encoder_width == 2


def test_straight_through_sample_is_one_hot_with_the_relaxed_gradient():
    logits = tf.Variable([[0.5, 1.0, -0.5]])
    uniform = tf.constant([[0.3, 0.6, 0.9]])
    with tf.GradientTape(persistent=True) as tape:
        sample = losses.straight_through_gumbel_softmax(logits, uniform, 0.5)
        soft = tf.nn.softmax((logits - tf.math.log(-tf.math.log(uniform))) / 0.5)
        weighted, weighted_soft = (tf.reduce_sum(s * tf.constant([[1.0, 2.0, 3.0]])) for s in (sample, soft))
    np.testing.assert_array_equal(sample.numpy(), tf.one_hot(tf.argmax(soft, -1), 3).numpy())
    np.testing.assert_allclose(tape.gradient(weighted, logits), tape.gradient(weighted_soft, logits), rtol=1e-6)
    nll = losses.categorical_nll_per_target(tf.constant([[1, 2]]), logits)
    np.testing.assert_allclose(nll.numpy(), -tf.nn.log_softmax(logits).numpy()[0, [1, 2]][None], rtol=1e-6)


def test_latent_term_adds_the_class_negative_log_likelihood():
    layout = LatentLayout(LATENTS)
    inputs = keras.Input((4,))
    encoder = keras.Model(inputs, keras.layers.Dense(layout.encoder_width)(inputs))
    generator_inputs = keras.Input((layout.network_width,))
    generator = keras.Model(generator_inputs, keras.layers.Dense(4)(generator_inputs))
    model = training.InverseModel(encoder, generator, "signal", latent_weight=1.0, layout=layout)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    targets = base.normalize(LATENTS, np.array([[0.5, 2.0, 1.0]] * 6))[:, None, :]
    logs = model.evaluate(tf.data.Dataset.from_tensors((x, targets)), verbose=0, return_dict=True)
    mean, log_std, (logits,) = layout.split(encoder(x))
    expected = (losses.gaussian_nll_per_target(targets[:, :, [0, 2]], mean, log_std)[:, 0]
                - tf.nn.log_softmax(logits)[:, 1]).numpy().mean()
    assert logs["latent_nll"] == pytest.approx(expected, rel=1e-5)


def test_posterior_draws_categories_with_their_probabilities():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]])
    mean_u = np.array([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    posterior = Posterior(LATENTS, mean_u, np.full((2, 3), -2.0, np.float32), probabilities={"shape": probabilities})
    np.testing.assert_allclose(posterior.mean[:, 1], [1.0, 3.0])
    draws = posterior.sample(4000, seed=0)[:, :, 1]
    assert set(np.unique(draws)) <= {1.0, 2.0, 3.0}
    np.testing.assert_allclose([np.mean(draws[0] == v) for v in (1, 2, 3)], probabilities[0], atol=0.03)
    assert np.all(draws[1] == 3.0)
    assert posterior[np.array([1])].probabilities["shape"].tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="do not fit the categorical latents"):
        Posterior(LATENTS, mean_u, mean_u)


def test_expected_calibration_error_is_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=20000)
    truth = (rng.uniform(size=(20000, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    assert calibration.expected_calibration_error(p, truth) < 0.02
    sure = np.eye(3)[p.argmax(axis=1)] * 0.98 + 0.01
    assert calibration.expected_calibration_error(sure, truth) > 0.2


@pytest.fixture(scope="module")
def dsprites_run(tmp_path_factory):
    config = tiny_config("dsprites", **{"simulator.source": "procedural"})
    return sv.fit("dsprites", config=config, workdir=str(tmp_path_factory.mktemp("cat") / "ds"), verbose=0)


def test_a_dsprites_run_scores_exports_and_inverts_the_shape_as_a_category(dsprites_run, tmp_path):
    run = dsprites_run
    block = run.metrics["categorical"]["shape"]
    assert block["labels"] == ["square", "ellipse", "heart"] and 0 <= block["accuracy"] <= 1
    assert np.asarray(block["confusion"]).sum() == run.metrics["eval_samples"]
    assert 0 <= block["expected_calibration_error"] <= 1
    assert "shape" not in run.metrics["calibration"]["quantities"]
    simulator = run.simulator
    x = simulator.simulate(simulator.sample_latents(np.random.default_rng(3), 5))
    ours, model = run.posterior(x), sv.load(run.export_dir)
    theirs = model.posterior(x)
    np.testing.assert_allclose(theirs.probabilities["shape"], ours.probabilities["shape"], atol=1e-5)
    np.testing.assert_allclose(theirs.mean, ours.mean, rtol=1e-5, atol=1e-5)
    served = model.encoder.serve(tf.constant(x))
    assert "shape_probabilities" in served and "shape_probabilities" in model.metadata["signatures"]["encoder"][
        "serve"]["outputs"]
    draws = model.encoder.sample(tf.constant(x), num_samples=tf.constant(50), seed=tf.constant(0)).numpy()
    assert set(np.unique(draws[..., 0])) <= {1.0, 2.0, 3.0}
    # G reads the shape one-hot: the export's generator and the run's agree on physical latents.
    z = simulator.sample_latents(np.random.default_rng(4), 3)
    np.testing.assert_allclose(model.generate(z), run.generate(z), atol=1e-5)
    path = str(tmp_path / "sprites.npy")
    np.save(path, x[:2])
    result = run_cli([f"--model={run.export_dir}", f"--input={path}", f"--output={tmp_path / 'out'}",
                      "--predictive_draws=0"], module="simvae_tf.invert")
    assert result.returncode == 0, result.stderr[-2000:]
    shape_rows = [line for line in result.stdout.splitlines() if line.strip().startswith("shape")]
    assert len(shape_rows) == 2 and "p=" in shape_rows[0]
    assert any(label in shape_rows[0] for label in ("square", "ellipse", "heart"))
    assert os.path.exists(tmp_path / "out" / "results.json")
