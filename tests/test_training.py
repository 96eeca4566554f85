"""Stage 1 and stage 2 under tf.distribute: loss scaling across replicas, stage 2 never
seeing z, and the NaN guard."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from simvae_tf import losses, strategies, training
from simvae_tf.models import dcgan

from conftest import two_replica_strategy as _two_replica_strategy


class ZeroNoiseInverse(training.InverseModel):
    """Deterministic posterior sample, so one and two replicas see identical inputs."""

    def sample_noise(self, shape):
        return tf.zeros(shape)


def _models(strategy, seed=0):
    with strategy.scope():
        keras.utils.set_random_seed(seed)
        generator = dcgan.build_generator(4, 3, width=2)
        encoder = dcgan.build_encoder(3, 4, width=2)
    return generator, encoder


def _batch(n=8):
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    x = (rng.uniform(size=(n, 64, 64, 3)) > 0.5).astype(np.float32)
    return z, x


def _assert_same_update(before, one, two):
    """The two updates agree to float summation order; a wrong replica scaling would make
    them differ by a factor of two."""
    for w0, a, b in zip(before, one, two):
        update_one, update_two = a - w0, b - w0
        assert np.linalg.norm(update_one) > 0
        assert np.linalg.norm(update_one - update_two) <= 1e-3 * np.linalg.norm(update_one)


def test_generator_stem_adds_hidden_layers_before_the_projection():
    linear = dcgan.build_generator(4, 3, width=2)
    stem = dcgan.build_generator(4, 3, width=2, stem_layers=2)
    kernels = [tuple(v.shape) for v in stem.trainable_variables if v.path.endswith("kernel")]
    assert kernels[:3] == [(4, 32), (32, 32), (32, 4 * 4 * 16)]
    assert [tuple(v.shape) for v in linear.trainable_variables][0] == (4, 4 * 4 * 16)
    z = np.zeros((2, 4), np.float32)
    assert stem(z).shape == linear(z).shape == (2, 64, 64, 3)


def _initial_weights(encoder_or_generator: int):
    return [np.asarray(v) for v in _models(tf.distribute.get_strategy())[encoder_or_generator].trainable_variables]


def _stage1_step(strategy):
    generator, _ = _models(strategy)
    z, x = _batch()
    with strategy.scope():
        generator.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses.Discrepancy("image"))
    generator.fit(tf.data.Dataset.from_tensors((z, x)), epochs=1, verbose=0)
    return [np.asarray(v) for v in generator.trainable_variables]


def _stage2_step(strategy, latent_weight=0.0):
    generator, encoder = _models(strategy)
    z, x = _batch()
    with strategy.scope():
        model = ZeroNoiseInverse(encoder, generator, "image", kl_weight=0.1, latent_weight=latent_weight)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    batch = (x, z[:, None, :]) if latent_weight > 0 else x
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    return [np.asarray(v) for v in encoder.trainable_variables], [np.asarray(v) for v in generator.weights]


def test_stage1_update_is_the_same_with_one_or_two_replicas():
    one, two = _stage1_step(tf.distribute.get_strategy()), _stage1_step(_two_replica_strategy())
    _assert_same_update(_initial_weights(0), one, two)


def test_stage2_update_is_the_same_with_one_or_two_replicas_and_generator_stays_frozen():
    (enc_one, gen_one), (enc_two, _) = _stage2_step(tf.distribute.get_strategy()), _stage2_step(_two_replica_strategy())
    _assert_same_update(_initial_weights(1), enc_one, enc_two)
    initial_generator, _ = _models(tf.distribute.get_strategy())
    for before, after in zip(initial_generator.weights, gen_one):
        np.testing.assert_array_equal(np.asarray(before), after)


def test_stage2_latent_term_update_is_the_same_with_one_or_two_replicas():
    (enc_one, _), (enc_two, _) = (_stage2_step(tf.distribute.get_strategy(), latent_weight=1.0),
                                  _stage2_step(_two_replica_strategy(), latent_weight=1.0))
    _assert_same_update(_initial_weights(1), enc_one, enc_two)
    (enc_without, _) = _stage2_step(tf.distribute.get_strategy())
    assert not np.allclose(enc_one[-1], enc_without[-1]), "the latent term must change the update"


def _nearest_nll(targets, mean, log_std):
    """-log N of the most likely of G targets [B, G, K] -> [B]: what the latent term must equal."""
    return tf.reduce_min(losses.gaussian_nll_per_target(targets, mean, log_std), axis=1)


def test_latent_nll_scores_the_nearest_equivalent_target():
    generator, encoder = _models(tf.distribute.get_strategy())
    model = ZeroNoiseInverse(encoder, generator, "image", latent_weight=1.0)
    mean = tf.constant([[0.1, -0.2]])
    log_std = tf.constant([[np.log(0.5), np.log(2.0)]], dtype=tf.float32)
    near, far = [0.2, 0.0], [-0.9, 0.8]
    expected = (0.5 * (0.1 / 0.5) ** 2 + 0.5 * (0.2 / 2.0) ** 2 + np.log(0.5) + np.log(2.0)
                + np.log(2 * np.pi))
    for targets in ([[far, near]], [[near, far]], [[near]]):
        nll = model._latent_nll(tf.constant(targets), mean, log_std, [])
        assert nll.shape == (1,) and float(nll[0]) == pytest.approx(expected, rel=1e-5)


def test_targets_slide_to_the_most_likely_point_of_their_orbit_line():
    direction = np.array([0.6, -0.8, 0.0], np.float32)
    mean = tf.constant([[0.1, -0.2, 0.3]])
    log_std = tf.constant([[np.log(0.1), np.log(0.3), np.log(0.2)]], dtype=tf.float32)
    target = np.array([[[0.5, 0.4, 0.0]]], np.float32)
    slid = losses.slide_along_orbit(tf.constant(target), mean, log_std, direction).numpy()
    best = float(_nearest_nll(tf.constant(slid), mean, log_std)[0])
    for t in np.linspace(-2, 2, 41):
        moved = tf.constant(target + t * direction)
        assert best <= float(_nearest_nll(moved, mean, log_std)[0]) + 1e-5
        # Wherever on the line the target starts, it slides to the same point.
        np.testing.assert_allclose(losses.slide_along_orbit(moved, mean, log_std, direction).numpy(), slid, atol=1e-5)
    np.testing.assert_allclose(slid[0, 0, 2], 0.0)  # latents the orbit leaves alone stay


def test_stage2_latent_term_is_logged_and_added_to_the_loss():
    generator, encoder = _models(tf.distribute.get_strategy())
    z, x = _batch()
    model = ZeroNoiseInverse(encoder, generator, "image", latent_weight=2.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = model.evaluate(tf.data.Dataset.from_tensors((x, z[:, None, :])), verbose=0, return_dict=True)
    mean, log_std = tf.split(encoder(x), 2, axis=-1)
    expected_nll = _nearest_nll(z[:, None, :], mean, log_std).numpy().mean()
    assert logs["latent_nll"] == pytest.approx(expected_nll, rel=1e-5)
    assert logs["loss"] == pytest.approx(logs["reconstruction"] + 2.0 * expected_nll, rel=1e-5)


@pytest.mark.parametrize("reconstruction_weight", [0.0, 0.5])
def test_stage2_reconstruction_weight_scales_eq4_and_zero_leaves_eq5_alone(reconstruction_weight):
    generator, encoder = _models(tf.distribute.get_strategy())
    z, x = _batch()
    model = ZeroNoiseInverse(encoder, generator, "image", latent_weight=2.0,
                             reconstruction_weight=reconstruction_weight)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    data = tf.data.Dataset.from_tensors((x, z[:, None, :]))
    logs = model.evaluate(data, verbose=0, return_dict=True)
    assert logs["reconstruction"] > 0  # still reported
    assert logs["loss"] == pytest.approx(reconstruction_weight * logs["reconstruction"] + 2.0 * logs["latent_nll"],
                                         rel=1e-5)
    if reconstruction_weight == 0:  # eq. 5 alone: the loss is the latent term only
        mean, log_std = tf.split(encoder(x), 2, axis=-1)
        expected = 2.0 * _nearest_nll(z[:, None, :], mean, log_std).numpy().mean()
        assert logs["loss"] == pytest.approx(expected, rel=1e-5)


def test_inverse_model_takes_the_weights_from_the_config_and_adaptation_overrides_reconstruction():
    from types import SimpleNamespace

    from conftest import tiny_config

    generator, encoder = _models(tf.distribute.get_strategy())
    pair = SimpleNamespace(encoder=encoder, generator=generator, likelihood="image", orbit_direction=None, layout=None)
    config = tiny_config("box", **{"stage2.reconstruction_weight": 0.0, "stage2.latent_weight": 3.0})
    model = training.inverse_model(pair, config, tf.distribute.get_strategy())
    assert (model.reconstruction_weight, model.latent_weight) == (0.0, 3.0)
    adapting = training.inverse_model(pair, config, tf.distribute.get_strategy(), reconstruction_weight=1.0)
    assert adapting.reconstruction_weight == 1.0


def test_stage2_loss_is_the_mean_per_example_discrepancy():
    generator, encoder = _models(tf.distribute.get_strategy())
    _, x = _batch()
    model = ZeroNoiseInverse(encoder, generator, "image", kl_weight=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    mean, _ = tf.split(encoder(x), 2, axis=-1)
    expected = losses.per_example_discrepancy("image", x, generator(mean, training=False)).numpy().mean()
    assert logs["reconstruction"] == pytest.approx(expected, rel=1e-5)


def test_stage2_never_reads_latents():
    """train_step takes x alone: fed (z, x) pairs it fails instead of quietly using z."""
    z, x = _batch()
    for batch, should_fail in (((z, x), True), (x, False)):
        generator, encoder = _models(tf.distribute.get_strategy())
        model = training.InverseModel(encoder, generator, "image")
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        if should_fail:
            with pytest.raises(Exception):
                model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
        else:
            model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)


def test_posterior_noise_depends_on_step_only():
    generator, encoder = _models(tf.distribute.get_strategy())
    model = training.InverseModel(encoder, generator, "image", seed=5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(encoder.trainable_variables)
    a, b = model.sample_noise((3, 4)), model.sample_noise((3, 4))
    np.testing.assert_array_equal(a, b)
    model.optimizer.iterations.assign(7)
    assert not np.allclose(a, model.sample_noise((3, 4)))


def test_nan_loss_stops_the_stage_with_a_clear_error():
    guard = training.FiniteLossGuard("stage1")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    guard.set_model(model)
    guard.on_train_batch_end(0, {"loss": 1.0})
    with pytest.raises(training.NonFiniteLossError, match=r"stage1: loss became nan at step 0.*last good checkpoint"):
        guard.on_train_batch_end(1, {"loss": float("nan")})


@pytest.mark.parametrize("steps, per_loop, expected", [(10, 5, (5, 2)), (4, 100, (4, 1))])
def test_loops_split_steps(steps, per_loop, expected):
    class Stage:
        pass

    stage = Stage()
    stage.steps, stage.steps_per_loop = steps, per_loop
    assert training.loops(stage) == expected


def test_loops_reject_uneven_split():
    class Stage:
        steps, steps_per_loop = 10, 4

    with pytest.raises(training.ConfigError, match="steps=10 is not a multiple of steps_per_loop=4"):
        training.loops(Stage())


def test_multiworker_without_tf_config_is_refused(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(training.ConfigError, match="needs the TF_CONFIG"):
        strategies.make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(training.ConfigError, match="not a valid multi-worker config"):
        strategies.make_strategy("multiworker")
    with pytest.raises(training.ConfigError, match="unknown; use one of"):
        strategies.make_strategy("tpu")


def test_restore_weights_refuses_a_checkpoint_missing_model_variables(tmp_path):
    def mlp(depth):
        model = keras.Sequential([keras.Input((3,))] + [keras.layers.Dense(2) for _ in range(depth)])
        return model

    saved = mlp(1)
    tf.train.Checkpoint(model=saved).save(str(tmp_path / "ckpt"))
    same = mlp(1)
    training.restore_weights(same, str(tmp_path), "test")
    np.testing.assert_array_equal(same.layers[0].kernel.numpy(), saved.layers[0].kernel.numpy())
    with pytest.raises(training.ConfigError, match="test checkpoint .* does not fit the model"):
        training.restore_weights(mlp(2), str(tmp_path), "test")
    with pytest.raises(FileNotFoundError, match="no test checkpoint"):
        training.restore_weights(mlp(1), str(tmp_path / "empty"), "test")


def test_the_orbit_line_likelihood_is_the_gaussian_mass_on_the_line():
    """The closed form against a numerical integral of the density along the line."""
    direction = np.array([0.6, -0.8, 0.0], np.float32)
    mean = tf.constant([[0.1, -0.2, 0.3]])
    log_std = tf.constant([[np.log(0.1), np.log(0.3), np.log(0.2)]], dtype=tf.float32)
    target = np.array([[[0.5, 0.4, 0.1]]], np.float32)
    nll = float(losses.orbit_line_gaussian_nll_per_target(tf.constant(target), mean, log_std, direction)[0, 0])
    t = np.linspace(-6, 6, 24001)
    points = target[0, 0] + t[:, None] * direction
    std = np.exp(log_std.numpy()[0])
    density = np.prod(np.exp(-0.5 * ((points - mean.numpy()[0]) / std) ** 2) / (np.sqrt(2 * np.pi) * std), axis=1)
    assert nll == pytest.approx(-np.log(np.trapezoid(density, t)), rel=1e-4)


def test_mixed_precision_computes_in_bfloat16_and_returns_float32():
    import simvae_tf as sv
    from simvae_tf import simulators
    from simvae_tf.models import build_models

    config = sv.get_config("box")
    config.model.precision = "mixed_bfloat16"
    generator, encoder = build_models(config, simulators.make("box", config.simulator.to_dict()))
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    for model in (generator, encoder):
        assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
        assert model.output.dtype == "float32" and all(w.dtype == "float32" for w in model.weights)
    assert generator(np.zeros((2, 4), np.float32)).dtype == "float32"


def test_stage1_detail_weights_mark_the_pixels_the_fidelity_score_reads():
    from simvae_tf import metrics
    from simvae_tf.simulators.box import BoxSimulator

    simulator = BoxSimulator()
    x = simulator.simulate(simulator.sample_latents(np.random.default_rng(0), 8)).astype(np.float32)
    weights = losses.detail_weights(tf.constant(x), 9.0).numpy()[..., 0]
    mask = metrics.detail_mask(x)
    assert 0 < mask.mean() < 0.2
    np.testing.assert_array_equal(weights, np.where(mask, 10.0, 1.0))
    # The weighted discrepancy: the plain one on flat pixels, 10x on detail pixels.
    logits = tf.zeros_like(tf.constant(x))
    elementwise = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits).numpy().sum(axis=-1)
    expected = (elementwise * np.where(mask, 10.0, 1.0)).reshape(len(x), -1).sum(axis=1)
    np.testing.assert_allclose(losses.per_example_discrepancy("image", x, logits, 9.0).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.per_example_discrepancy("image", x, logits).numpy(),
                               elementwise.reshape(len(x), -1).sum(axis=1), rtol=1e-5)
    assert losses.Discrepancy.from_config(losses.Discrepancy("image", 9.0).get_config()).detail_weight == 9.0
