"""The mixture posterior head (`models.mixture`, config `model.posterior_components`)."""

import numpy as np
import pytest
import tensorflow as tf

from simvae_tf import training
from simvae_tf.models import mixture, mlp


def test_the_encoder_answers_the_component_with_the_largest_gate():
    # [B=2, M=3, 2K+1=5]: (mean 2 | log_std 2 | gate).
    components = np.array([[[0.1, 0.2, -1.0, -1.1, 0.0], [0.3, 0.4, -2.0, -2.1, 5.0], [0.5, 0.6, -3.0, -3.1, 1.0]],
                           [[0.7, 0.8, -4.0, -4.1, 9.0], [0.9, 1.0, -5.0, -5.1, 5.0], [0.0, 0.0, -6.0, -6.1, 1.0]]],
                          np.float32)
    chosen = np.asarray(mixture.SelectComponent()(tf.constant(components)))
    np.testing.assert_allclose(chosen, [[0.3, 0.4, -2.0, -2.1], [0.7, 0.8, -4.0, -4.1]])


def test_mixture_nll_is_minus_the_log_of_the_weighted_densities():
    rng = np.random.default_rng(0)
    component_nll = rng.normal(size=(4, 3)).astype(np.float32)
    gate = rng.normal(size=(4, 3)).astype(np.float32)
    weights = np.exp(gate) / np.exp(gate).sum(axis=1, keepdims=True)
    expected = -np.log((weights * np.exp(-component_nll)).sum(axis=1))
    log_weights = tf.nn.log_softmax(tf.constant(gate), axis=1)
    np.testing.assert_allclose(mixture.mixture_nll(tf.constant(component_nll), log_weights), expected, rtol=1e-5)


def test_one_component_builds_the_one_gaussian_encoder():
    plain = mlp.build_encoder((6,), num_latents=2, width=8, depth=1)
    single = mlp.build_encoder((6,), num_latents=2, width=8, depth=1, num_components=1)
    assert [w.shape for w in plain.weights] == [w.shape for w in single.weights]
    assert mixture.num_components(single) == 1 and mixture.encoder_with_components(single) is None
    mixed = mlp.build_encoder((6,), num_latents=2, width=8, depth=1, num_components=3, num_logits=4)
    assert mixture.num_components(mixed) == 3 and mixed.output.shape[-1] == 2 * 2 + 4


def _unoriented_lines(n, rng):
    """x = (cos 2a, sin 2a), an undirected line; its two equivalent answers are the unit
    vectors +-(cos a, sin a). No continuous map picks one of them for every line."""
    angle = rng.uniform(0, np.pi, n)
    x = np.stack([np.cos(2 * angle), np.sin(2 * angle)], axis=1).astype(np.float32)
    answer = 0.9 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return x, np.stack([answer, -answer], axis=1).astype(np.float32)


def _fit_answers(num_components, steps=1500):
    import keras

    keras.utils.set_random_seed(0)
    encoder = mlp.build_encoder((2,), num_latents=2, width=32, depth=2, num_components=num_components)
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model = training.InverseModel(encoder, generator, "signal", latent_weight=1.0, reconstruction_weight=0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x, targets = _unoriented_lines(8192, np.random.default_rng(0))
    data = tf.data.Dataset.from_tensor_slices((x, targets)).shuffle(8192, seed=0).repeat().batch(128)
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    x_test, targets_test = _unoriented_lines(2000, np.random.default_rng(1))
    mean = encoder.predict(x_test, verbose=0)[:, :2]
    return np.min(np.linalg.norm(mean[:, None, :] - targets_test, axis=-1), axis=1)


def test_a_mixture_answers_where_one_gaussian_must_average_two_equivalent_answers():
    one, mixed = _fit_answers(1), _fit_answers(2)
    # One Gaussian has to cross between +v and -v somewhere on the circle of lines and
    # answers near 0 there; two components switch instead.
    assert np.mean(one > 0.2) > 0.03
    assert np.mean(mixed > 0.2) < 0.2 * np.mean(one > 0.2)


def test_a_mixture_run_exports_the_answer_it_evaluates(tmp_path):
    import simvae_tf as sv
    from conftest import tiny_config

    run = sv.fit("polygon", config=tiny_config("polygon", **{"model.posterior_components": 3}),
                 workdir=str(tmp_path / "polygon"), verbose=0)
    x = run.simulator.simulate(run.simulator.sample_latents(np.random.default_rng(0), 5))
    loaded = sv.load(str(run.export_dir))
    np.testing.assert_allclose(loaded.posterior(x).mean, run.posterior(x).mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.posterior(x).std, run.posterior(x).std, rtol=1e-5, atol=1e-6)
    assert loaded.metadata["posterior_components"] == 3


def test_the_number_of_components_is_checked():
    from simvae_tf import config as config_lib
    from simvae_tf.errors import ConfigError

    config = config_lib.get_config("polygon")
    config.model.posterior_components = 0
    with pytest.raises(ConfigError, match=r"model.posterior_components=0"):
        config_lib.validate(config)
