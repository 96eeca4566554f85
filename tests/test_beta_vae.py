"""The beta-VAE baseline (`--config.method=beta_vae`): its loss, a tiny run through the CLI
scored against the factors, the rerun that finds it complete, and the refusals."""

import os

import keras
import numpy as np
import pytest

import simvae_tf as sv
from simvae_tf import beta_vae
from simvae_tf import config as config_lib
from simvae_tf.errors import ConfigError
from simvae_tf.models import dcgan

from conftest import read_json, run_cli, tiny_config, tiny_flags


def test_loss_is_reconstruction_plus_beta_kl_and_both_networks_learn():
    keras.utils.set_random_seed(0)
    encoder, decoder = dcgan.build_encoder(1, 3, width=2), dcgan.build_generator(3, 1, width=2)
    model = beta_vae.BetaVAE(encoder, decoder, "binary_image", beta=4.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = (np.random.default_rng(0).uniform(size=(8, 64, 64, 1)) > 0.5).astype(np.float32)
    logs = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["reconstruction"] + 4.0 * logs["kl"], rel=1e-5)
    before = [np.asarray(v) for v in (encoder.trainable_variables[0], decoder.trainable_variables[0])]
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    after = [np.asarray(v) for v in (encoder.trainable_variables[0], decoder.trainable_variables[0])]
    assert all(np.abs(a - b).max() > 0 for a, b in zip(after, before))


def test_cli_trains_and_scores_against_the_factors_then_a_rerun_finds_it_complete(tmp_path):
    workdir = str(tmp_path / "box_beta")
    flags = ["--sim=box", f"--workdir={workdir}", "--config.method=beta_vae", "--config.beta_vae.latent_dim=5",
             *tiny_flags()]
    first = run_cli(flags)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "method=beta_vae" in first.stdout and "beta-VAE evaluation" in first.stdout
    results = read_json(os.path.join(workdir, "metrics.json"))
    block = results["beta_vae"]
    assert results["method"] == "beta_vae" and results["steps"] == 8  # stage1.steps + stage2.steps
    assert np.asarray(block["mim"], float).shape == (5, 4)  # latents x factors (w, h, x, y)
    assert 0.0 <= block["mig"] <= 1.0 and set(block["mig_per_factor"]) == {"w", "h", "x", "y"}
    assert 0.0 <= block["reconstruction"]["foreground_iou"] <= 1.0 and "detail_mean_abs_error" in block["reconstruction"]
    assert os.listdir(os.path.join(workdir, "tensorboard", "beta_vae"))

    again = run_cli(flags)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already complete (8/8 steps)" in again.stdout
    rescored = read_json(os.path.join(workdir, "metrics.json"))
    assert rescored["beta_vae"]["mig"] == pytest.approx(block["mig"])
    assert rescored["seconds"] == results["seconds"]  # the training run's time, not the rescoring's
    with pytest.raises(ConfigError, match="beta_vae baseline run"):
        sv.open_run(workdir)


def test_refusals_name_the_key_and_the_way_out(tmp_path):
    config = tiny_config("box")
    config.method = "beta_vae"
    with pytest.raises(ConfigError, match="beta_vae.fit"):
        sv.fit("box", config=config, workdir=str(tmp_path / "a"))
    assert not os.path.exists(tmp_path / "a")
    config.beta_vae.latent_dim = 1
    with pytest.raises(ConfigError, match=r"beta_vae.latent_dim=1.*>= 2"):
        config_lib.validate(config)
    result = run_cli(["--sim=box", f"--workdir={tmp_path / 'b'}", "--config.method=vae", *tiny_flags()])
    assert result.returncode != 0 and "method" in result.stderr and "'beta_vae'" in result.stderr
    assert not os.path.exists(tmp_path / "b")


def test_a_config_it_cannot_train_is_refused_before_anything_is_written(tmp_path):
    config = tiny_config("box")
    config.method = "beta_vae"
    config.stage1.steps, config.stage2.steps, config.stage2.steps_per_loop = 3, 4, 2  # 7 steps, loops of 2
    with pytest.raises(ConfigError, match="not a multiple"):
        beta_vae.fit("box", config, str(tmp_path / "c"), verbose=0)
    config.stage1.steps, config.model.precision = 4, "mixed_bfloat16"
    with pytest.raises(ConfigError, match="float32"):
        beta_vae.fit("box", config, str(tmp_path / "c"), verbose=0)
    assert not os.path.exists(tmp_path / "c")


def test_the_budget_defaults_to_both_stages_steps():
    config = sv.get_config("dsprites")
    assert beta_vae.stage_config(config).steps == config.stage1.steps + config.stage2.steps
    config.beta_vae.steps = 500
    assert beta_vae.stage_config(config).steps == 500
