"""The whole CLI on a tiny config: outputs, TensorBoard summaries, rerun behaviour, and the
exported SavedModels loaded by a process that never imports simvae_tf."""

import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import read_json, run_cli, tiny_flags


@pytest.fixture(scope="module")
def box_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("box"))
    result = run_cli(["--sim=box", f"--workdir={workdir}", *tiny_flags()])
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


def test_run_writes_every_promised_output(box_run):
    workdir, result = box_run
    for path in ("config.json", "metrics.json", "figures/fig1_comparison.png", "figures/fig2_traversals.png",
                 "figures/fig4_mim.png", "figures/fig5_calibration.png", "export/generator/saved_model.pb", "export/encoder/saved_model.pb",
                 "export/metadata.json"):
        assert os.path.exists(os.path.join(workdir, path)), path
    assert glob.glob(os.path.join(workdir, "checkpoints", "stage1", "ckpt-4*"))
    assert glob.glob(os.path.join(workdir, "checkpoints", "stage2", "ckpt-4*"))
    assert f"workdir={workdir}" in result.stdout and "Results in" in result.stdout
    config = read_json(os.path.join(workdir, "config.json"))
    assert config["sim"] == "box" and config["config"]["stage1"]["steps"] == 4 and config["simvae_tf_version"]


def test_metrics_hold_losses_and_latent_recovery(box_run):
    metrics = read_json(os.path.join(box_run[0], "metrics.json"))
    assert set(metrics["stage2"]["r2_per_latent"]) == {"w", "h", "x", "y"}
    assert np.isfinite(metrics["training"]["stage1"]["loss"]) and np.isfinite(metrics["training"]["stage2"]["loss"])
    assert 0 <= metrics["stage2"]["mig"] <= 1 and metrics["ground_truth"]["definition"] == "MIM(V, V)"
    assert np.array(metrics["stage2"]["mim"]).shape == (4, 4)
    assert metrics["eval_samples"] == 64 and metrics["data_source"] == "simulator"
    calibration = metrics["calibration"]
    assert calibration["quantities"] == ["w", "h", "x", "y"] and calibration["samples"] == 64
    assert calibration["against"].startswith("the true latents")
    assert len(calibration["expected_coverage"]["levels"]) == len(calibration["expected_coverage"]["w"]) == 19
    assert set(calibration["coverage"]) == {"0.5", "0.68", "0.9", "0.95"}
    assert all(sum(counts) == 64 for counts in calibration["pit_histogram"].values())
    assert set(calibration["contraction"]) == set("whxy")
    # A 4-step run recovers nothing: the diagnosis names every latent and what to try, in
    # metrics.json and at the end of the evaluation line.
    diagnosis = metrics["diagnosis"]
    assert set(diagnosis["poorly_recovered"]) == set("whxy") and not diagnosis["ok"]
    assert diagnosis["suggestions"] and all("=" in key for key in diagnosis["suggestions"])
    line = next(line for line in box_run[1].stdout.splitlines() if line.startswith("Evaluation ("))
    assert "poorly recovered: w (R^2 " in line and f"try --config.{diagnosis['suggestions'][0]}" in line


def test_latent_term_run_logs_its_loss_and_scores_calibration(tmp_path):
    """The whole loop with stage2.latent_weight > 0 on the polygon: stage 2 reads (x, the 8
    equivalent latent vectors), logs the term, and metrics.json holds the coverage."""
    workdir = str(tmp_path / "polygon")
    result = run_cli(["--sim=polygon", f"--workdir={workdir}", *tiny_flags(**{"stage2.latent_weight": 1.0})])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_json(os.path.join(workdir, "metrics.json"))
    assert np.isfinite(metrics["training"]["stage2"]["latent_nll"])
    coverage = metrics["stage2"]["posterior_coverage"]
    assert set(coverage["within_1_std"]) == {f"{a}{i}" for i in range(1, 5) for a in "xy"}
    assert all(0 <= c <= 1 for c in coverage["within_2_std"].values())
    assert all(coverage["within_1_std"][k] <= coverage["within_2_std"][k] for k in coverage["within_1_std"])
    assert metrics["calibration"]["against"].startswith("the equivalent latent vector nearest the posterior mean")


def test_signal_run_fits_derived_quantities_and_draws_fig3(tmp_path):
    """RLC (closed-form backend, no ngspice needed): f0 and Q from Z vs V are fitted into
    metrics.json and drawn as fig. 3-right; the plotted points stay out of the metrics."""
    workdir = str(tmp_path / "rlc")
    result = run_cli(["--sim=rlc", f"--workdir={workdir}", "--config.simulator.backend=closed_form",
                      *tiny_flags(**{"data.cache_size": 512, "eval.num_samples": 300})])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_json(os.path.join(workdir, "metrics.json"))
    derived = metrics["derived"]
    assert set(derived) == {"samples_in_validity_region", "f0_hz", "Q"}
    assert all(np.isfinite(derived[q]["slope"]) and derived[q]["r2"] <= 1 for q in ("f0_hz", "Q"))
    assert os.path.exists(os.path.join(workdir, "figures", "fig3_derived.png"))
    # Calibrated on the invariant f0 and Q, never on the unidentifiable R, L, C.
    assert metrics["calibration"]["quantities"] == ["f0_hz", "Q"]
    assert metrics["calibration"]["samples"] == derived["samples_in_validity_region"]
    assert "contraction" not in metrics["calibration"]

    # The export spreads the posterior along the scaling orbit, as `Posterior` does: its
    # mean/std equal the numpy posterior's, and its draws move R over a wide range.
    import tensorflow as tf

    import simvae_tf as sv
    from simvae_tf.simulators.rlc import RLCSimulator

    simulator = RLCSimulator(backend="closed_form")
    x = simulator.simulate(simulator.sample_latents(np.random.default_rng(3), 6))
    model = sv.load(os.path.join(workdir, "export"))
    assert model.metadata["orbit_direction"] is not None
    posterior = model.posterior(x)
    served = model.encoder.serve(tf.constant(x))
    np.testing.assert_allclose(served["mean"].numpy(), posterior.mean, rtol=1e-4)
    np.testing.assert_allclose(served["std"].numpy(), posterior.std, rtol=1e-3)
    draws = model.encoder.sample(tf.constant(x), num_samples=tf.constant(500), seed=tf.constant(0)).numpy()
    log_r = np.log(draws[..., 0])
    assert np.median(log_r.max(axis=1) - log_r.min(axis=1)) > 1.0
    u = np.stack([model.encoder.to_normalized(tf.constant(d)).numpy() for d in draws])
    np.testing.assert_allclose(u.mean(axis=1), posterior.center_normalized, atol=0.1)


def test_tensorboard_has_losses_images_and_config(box_run):
    import tensorflow as tf

    tags = set()
    for event_file in glob.glob(os.path.join(box_run[0], "tensorboard", "*", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(v.tag for v in event.summary.value)
    assert {"loss", "comparison", "traversals", "config", "reconstruction", "fig4_mim", "fig5_calibration",
            "fig6_predictive"} <= tags
    # The HParams dashboard: the config as hyperparameters, the headline numbers as metrics.
    assert {"_hparams_/session_start_info", "mig", "r2/w", "coverage_error/w", "false_alarm_rate"} <= tags


def test_rerun_of_a_finished_run_is_a_no_op(box_run):
    workdir, _ = box_run
    before = os.path.getmtime(os.path.join(workdir, "metrics.json"))
    result = run_cli(["--sim=box", f"--workdir={workdir}", *tiny_flags()])
    assert result.returncode == 0
    assert "already complete; nothing to do" in result.stdout
    assert os.path.getmtime(os.path.join(workdir, "metrics.json")) == before


def test_workdir_of_another_config_is_refused(box_run):
    result = run_cli(["--sim=box", f"--workdir={box_run[0]}", *tiny_flags(**{"model.width": 8})])
    assert result.returncode == 2
    assert "model.width: 4 in the workdir, 8 now" in result.stderr and "Traceback" not in result.stderr


def test_workdir_from_before_the_generator_stem_trained_without_it(box_run, tmp_path):
    """Such a workdir lacks `model.stem_layers`: it trained DCGAN's linear projection (0),
    so the image configs' 2 is a different run, and 0 continues it."""
    record = read_json(os.path.join(box_run[0], "config.json"))
    assert record["config"]["model"].pop("stem_layers") == 2
    workdir = tmp_path / "old"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps(record))
    refused = run_cli(["--sim=box", f"--workdir={workdir}", *tiny_flags()])
    assert refused.returncode == 2
    assert "model.stem_layers: 0 in the workdir, 2 now" in refused.stderr
    continued = run_cli(["--sim=box", f"--workdir={workdir}", *tiny_flags(**{"model.stem_layers": 0})])
    assert continued.returncode == 0, continued.stderr[-2000:]


LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    import keras
    export = sys.argv[1]
    latents = np.array([[0.3, 0.2, 0.1, 0.4], [0.15, 0.4, 0.6, 0.2]], np.float32)
    generator = tf.saved_model.load(export + "/generator")
    x = generator.serve(tf.constant(latents)).numpy()
    encoder = tf.saved_model.load(export + "/encoder")
    posterior = {k: v.numpy() for k, v in encoder.serve(tf.constant(x)).items()}
    # The same models as layers of a new Keras model.
    inputs = keras.Input((4,))
    images = keras.layers.TFSMLayer(export + "/generator", call_endpoint="serve")(inputs)
    outputs = keras.layers.TFSMLayer(export + "/encoder", call_endpoint="serve")(images)
    round_trip = keras.Model(inputs, outputs)
    keras_posterior = round_trip.predict(latents, verbose=0)
    print(json.dumps({
        "x_shape": list(x.shape), "x_min": float(x.min()), "x_max": float(x.max()),
        "keys": sorted(posterior), "mean": posterior["mean"].tolist(), "std": posterior["std"].tolist(),
        "keras_mean": np.asarray(keras_posterior["mean"]).tolist(),
        "imported_simvae_tf": any(m.startswith("simvae_tf") for m in sys.modules),
    }))
""")


def test_exports_load_without_simvae_tf(box_run, tmp_path):
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, str(script), os.path.join(box_run[0], "export")], capture_output=True,
                            text=True, timeout=300, cwd=str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["x_shape"] == [2, 64, 64, 3] and 0 <= out["x_min"] <= out["x_max"] <= 1
    assert out["keys"] == ["log_std_normalized", "mean", "mean_normalized", "std"]
    mean, std = np.array(out["mean"]), np.array(out["std"])
    low, high = np.array([0.1, 0.1, 0.0, 0.0]), np.array([0.5, 0.5, 0.9, 0.9])
    span = high - low
    assert ((mean >= low - 0.03 * span) & (mean <= high + 0.03 * span)).all()  # physical units
    assert (std > 0).all()
    np.testing.assert_allclose(out["keras_mean"], mean, rtol=1e-5, atol=1e-6)
    assert out["imported_simvae_tf"] is False


def test_export_metadata_documents_units(box_run):
    metadata = read_json(os.path.join(box_run[0], "export", "metadata.json"))
    assert [latent["name"] for latent in metadata["latents"]] == ["w", "h", "x", "y"]
    assert metadata["output_spec"] == {"shape": [64, 64, 3], "kind": "image"}
    assert metadata["format"] == "simvae_tf.export/1"
    # The model card: the evaluation's headline numbers travel with the SavedModels.
    card = metadata["model_card"]
    assert set(card["recovery_r2_per_latent"]) == {"w", "h", "x", "y"} and 0 <= card["mig"] <= 1
    assert set(card["calibration"]["coverage"]) == {"0.5", "0.68", "0.9", "0.95"}
    assert card["misspecification"]["false_alarm_rate"]["0.01"] is not None
    assert metadata["misspecification"]["samples"] == 128 and metadata["config"]["stage1"]["steps"] == 4
    with open(os.path.join(box_run[0], "export", "README.md")) as f:
        readme = f.read()
    assert readme.startswith("# box: a SimVAE export") and "| w | 0.1 | 0.5 | field | linear |" in readme
    assert "| latent | recovery R^2 |" in readme


def test_evaluate_and_export_modes_rerun_parts(box_run):
    workdir, _ = box_run
    result = run_cli(["--sim=box", f"--workdir={workdir}", "--mode=evaluate", *tiny_flags(**{"eval.num_samples": 32})])
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_json(os.path.join(workdir, "metrics.json"))["eval_samples"] == 32
    result = run_cli(["--sim=box", f"--workdir={workdir}", "--mode=export", *tiny_flags()])
    assert result.returncode == 0, result.stderr[-2000:]
    assert not glob.glob(os.path.join(workdir, "export", ".*"))  # no temporary leftovers


def test_flagfile_holds_every_flag_including_sim(tmp_path):
    """absl's --flagfile: --sim read from the file, as every other flag (the default
    --config follows it)."""
    workdir = tmp_path / "run"
    flagfile = tmp_path / "box.flags"
    flagfile.write_text("\n".join(["--sim=box", f"--workdir={workdir}", *tiny_flags(), "--mode=train"]) + "\n")
    result = run_cli([f"--flagfile={flagfile}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sim=box mode=train" in result.stdout
    assert read_json(os.path.join(workdir, "config.json"))["sim"] == "box"
    assert not os.path.exists(os.path.join(workdir, "export"))  # --mode=train came from the file too


def test_help_shows_the_real_config_default():
    result = run_cli(["--helpfull"], timeout=120)
    text = result.stdout + result.stderr
    from simvae_tf import config as config_lib

    assert config_lib.config_dir() in text


def test_a_stage2_variant_reuses_a_finished_stage1(box_run, tmp_path):
    source, _ = box_run
    workdir = str(tmp_path / "variant")
    result = run_cli(["--sim=box", f"--workdir={workdir}", f"--stage1_from={source}", *tiny_flags(),
                      "--config.stage2.latent_weight=0"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stage 1: reusing" in result.stdout and "stage1: already complete (4/4 steps)" in result.stdout
    assert read_json(os.path.join(workdir, "stage1_source.json"))["source"] == source
    import simvae_tf as sv

    z = np.array([[0.2, 0.3, 0.1, 0.4], [0.4, 0.1, 0.5, 0.2]])
    np.testing.assert_array_equal(sv.load(os.path.join(workdir, "export")).generate(z),
                                  sv.load(os.path.join(source, "export")).generate(z))  # the same generator
    assert "latent_nll" not in read_json(os.path.join(workdir, "metrics.json"))["training"]["stage2"]
    # A stage 1 of another config is refused in one line, before anything is written.
    refused = str(tmp_path / "refused")
    result = run_cli(["--sim=box", f"--workdir={refused}", f"--stage1_from={source}",
                      *tiny_flags(**{"model.width": 8})])
    assert result.returncode == 2 and "model.width: 4 there, 8 now" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not os.path.exists(refused)
