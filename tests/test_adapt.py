"""Adapting a trained inverse to unlabeled observations (`Run.adapt`, `simvae-adapt`) on a
tiny box run: the mixed batches, the outputs, resume, and the refusals."""

import os

import numpy as np
import pytest

import simvae_tf as sv
from conftest import read_json, run_cli, tiny_config
from simvae_tf import adaptation


def grey_paper(x):
    """A shift the model never saw: the white paper turned grey."""
    return np.where(x > 0.99, 0.8, x).astype(np.float32)


@pytest.fixture(scope="module")
def box_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("adapt") / "box")
    return sv.fit("box", config=tiny_config("box", **{"adapt.steps": 4, "adapt.steps_per_loop": 2}), workdir=workdir,
                  verbose=0)


@pytest.fixture(scope="module")
def observations(box_run):
    simulator = box_run.simulator
    return grey_paper(simulator.simulate(simulator.sample_latents(np.random.default_rng(5), 12)))


def test_batches_mix_observations_without_latents_and_simulations_with_them(box_run, observations):
    config = box_run.config
    observed, simulated = adaptation.batch_split(config)
    assert observed + simulated == config.batch_size and observed == simulated == 4
    x, targets, weights = next(iter(adaptation.mixed_dataset(box_run, observations, 0)))
    assert x.shape == (8, 64, 64, 3) and targets.shape == (8, 1, 4)
    np.testing.assert_array_equal(weights.numpy(), [0, 0, 0, 0, 1, 1, 1, 1])
    assert not np.any(targets.numpy()[:4])
    # The observed rows are observations (grey paper), the others fresh simulations (white).
    assert all(np.any(np.all(np.isclose(observations, row), axis=(1, 2, 3))) for row in x.numpy()[:4])
    assert np.all(x.numpy()[4:].max(axis=(1, 2, 3)) > 0.99)
    # Batch i is a pure function of (seed, i): a resumed adaptation sees the same data.
    again = next(iter(adaptation.mixed_dataset(box_run, observations, 0)))[0]
    np.testing.assert_array_equal(again.numpy(), x.numpy())


def test_adapt_writes_an_export_and_a_before_after_report_and_resumes(box_run, observations, capsys):
    box_run.adapt(observations, steps=2)
    # More steps later (a fresh process would do the same): it resumes from the last checkpoint.
    report = sv.open_run(box_run.workdir.root, verbose=1).adapt(observations, steps=4)
    assert "adapt: resuming from step 2/4" in capsys.readouterr().out
    folder = box_run.workdir.path("adapted")
    assert report["export"] == os.path.join(folder, "export") and report["observations"] == 12
    assert report["steps"] == 4 and read_json(os.path.join(folder, "adaptation.json")) == report
    for when in ("before", "after"):
        scores = report[when]["observations"]
        assert len(scores["p_value"]) == 12 and set(report[when]["simulated_recovery_r2"]) == {"w", "h", "x", "y"}
    assert set(report["simulated_recovery_r2_change"]) == {"w", "h", "x", "y"}
    assert np.isfinite(report["training"]["loss"]) and report["training"]["latent_nll"] >= -1e3
    # The adapted export has the signatures of export/ and says what it was adapted to.
    adapted, original = sv.load(report["export"]), sv.load(box_run.export_dir)
    assert adapted.metadata["signatures"] == original.metadata["signatures"]
    assert adapted.metadata["adaptation"]["observations_sha256"] == report["observations_sha256"]
    assert not np.allclose(adapted.posterior(observations).mean_normalized,
                           original.posterior(observations).mean_normalized)
    # The run's own pair is untouched.
    np.testing.assert_allclose(box_run.posterior(observations).mean_normalized,
                               original.posterior(observations).mean_normalized, atol=1e-5)
    # Rerun with the same observations and config: nothing to do, the same report.
    assert sv.open_run(box_run.workdir.root, verbose=1).adapt(observations, steps=4) == report
    assert "already holds this adaptation (4 steps); nothing to do" in capsys.readouterr().out


def test_other_observations_and_foreign_folders_are_refused_with_nothing_written(box_run, observations, tmp_path):
    folder = box_run.workdir.path("adapted")
    if not os.path.exists(os.path.join(folder, "record.json")):
        box_run.adapt(observations)
    before = sorted(os.listdir(folder))
    with pytest.raises(sv.UserError, match="holds an adaptation to other observations"):
        box_run.adapt(observations[:5])
    assert sorted(os.listdir(folder)) == before
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(sv.UserError, match="non-empty folder that holds no adaptation"):
        box_run.adapt(observations, output_dir=str(foreign))
    assert os.listdir(foreign) == ["notes.txt"]
    with pytest.raises(sv.UserError, match=r"shape \(3, 8\)"):
        box_run.adapt(np.zeros((3, 8), np.float32))


def test_command_line_reads_invert_inputs_and_refuses_bad_input_in_one_line(box_run, observations, tmp_path):
    path = str(tmp_path / "obs.npy")
    np.save(path, observations)
    output = str(tmp_path / "adapted")
    result = run_cli([f"--model={box_run.workdir.root}", f"--observations={path}", f"--output={output}",
                      "--steps=2"], module="simvae_tf.adapt")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Adapted on 12 observations (2 steps)" in result.stdout
    assert os.path.exists(os.path.join(output, "export", "metadata.json"))
    for args, message in [
        ([f"--model={box_run.workdir.root}", f"--observations={tmp_path / 'missing'}"], "--observations="),
        ([f"--model={tmp_path}", f"--observations={path}"], "holds no simvae_tf run"),
        ([f"--model={box_run.workdir.root}", f"--observations={path}", "--steps=0"], "--steps=0"),
    ]:
        result = run_cli(args, module="simvae_tf.adapt")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
