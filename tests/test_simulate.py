"""Simulations on Apache Beam stored as a TFDS dataset (`python -m simvae_tf.simulate`):
equal element for element to the in-process cache stream whatever the runner and worker
count, resumed after a kill without duplicated or missing samples, read by training
(`data.dataset_dir`), and refused, with nothing written, when another setup made it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

import simvae_tf as sv
from conftest import REPO, run_cli, tiny_config
from simvae_tf import beam_simulation, data, simulate, simulated_dataset, simulators, training_data
from simvae_tf.errors import ConfigError

FAULTY_SIMS = os.path.join(REPO, "tests", "reliability")
NUM_SAMPLES = 300  # a full batch of 256 and a cut one


@pytest.fixture(scope="module")
def box_dataset(tmp_path_factory):
    """300 box samples, seed 0, simulated in this process on Beam's DirectRunner."""
    output = str(tmp_path_factory.mktemp("datasets") / "box")
    beam_simulation.generate("box", sv.get_config("box"), NUM_SAMPLES, output, seed=0, verbose=0)
    return output


def read_all(directory: str) -> dict:
    builder = tfds.builder_from_directory(directory)
    return tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False, batch_size=-1))


def test_dataset_equals_the_in_process_cache_element_for_element(box_dataset, tmp_path):
    box = simulators.make("box")
    cache_z, cache_x = data.materialize(box, NUM_SAMPLES, 0, str(tmp_path), progress=False)
    stored = read_all(box_dataset)
    np.testing.assert_array_equal(stored["index"], np.arange(NUM_SAMPLES))
    np.testing.assert_array_equal(stored["z"], cache_z)
    np.testing.assert_array_equal(data.decode_x(stored["x"]), cache_x)
    latents = np.concatenate([data.batch_latents(box, 0, data.CACHE_STREAM, i, data.CACHE_BATCH_SIZE)
                              for i in range(2)])[:NUM_SAMPLES]
    np.testing.assert_array_equal(stored["latents"], latents)
    # What training reads is the same, and the record says what made it.
    z, x = simulated_dataset.load(box_dataset, "box", box)
    assert np.array_equal(z, cache_z) and np.array_equal(x, cache_x)
    metadata = tfds.builder_from_directory(box_dataset).info.metadata
    assert metadata["simulator"] == simulated_dataset.jsonable(box.describe())
    assert metadata["simulator_options"]["renderer"] == "numpy"
    assert (metadata["seed"], metadata["num_samples"], metadata["sim"]) == (0, NUM_SAMPLES, "box")
    assert metadata["simvae_tf_version"] == sv.__version__ and metadata["runner"] == "DirectRunner"
    assert not os.path.exists(os.path.join(box_dataset, ".partial"))


def test_killed_job_rerun_on_two_workers_completes_without_duplicated_or_missing_samples(tmp_path, monkeypatch):
    output, seed, n = tmp_path / "pulse", 5, 4 * data.CACHE_BATCH_SIZE + 10  # 5 batches, the last of 10
    command = [sys.executable, "-m", "simvae_tf.simulate", "--sim=faulty_sims:HangingPulse", f"--num_samples={n}",
               f"--output={output}", f"--seed={seed}"]
    env = {**os.environ, "PYTHONPATH": FAULTY_SIMS, "TF_CPP_MIN_LOG_LEVEL": "3"}
    batches = output / ".partial" / "batches"
    first = subprocess.Popen([*command, "--runner=DirectRunner"], cwd=REPO, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**env, "SIMVAE_TEST_HANG_AFTER": f"{batches}/batch-*.npz:3"})
    try:
        deadline = time.monotonic() + 240
        while len(list(batches.glob("batch-*.npz"))) < 3:
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the first job never simulated 3 batches"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the job and any worker it started
        first.wait()
    assert not simulated_dataset.is_dataset(str(output))
    with pytest.raises(ConfigError, match="is unfinished .*rerun the same"):
        simulated_dataset.read_metadata(str(output))

    calls = tmp_path / "calls.log"
    rerun = subprocess.run([*command, "--runner=DirectRunner", "--direct_num_workers=2",
                            "--direct_running_mode=multi_processing", "--default_sdk_harness_log_level=WARNING"],
                           cwd=REPO, capture_output=True, text=True, timeout=300,
                           env={**env, "SIMVAE_TEST_CALLS_LOG": str(calls)})
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "5 batches of 256, 3 already simulated (resuming)" in rerun.stdout, rerun.stdout
    # Only the two missing batches were simulated (besides the 2-sample start-up probe).
    assert sorted(int(line) for line in calls.read_text().split()) == [2, 10, 256]

    monkeypatch.syspath_prepend(FAULTY_SIMS)
    pulse = simulators.make("faulty_sims:Pulse")
    cache_z, cache_x = data.materialize(pulse, n, seed, str(tmp_path / "cache"), progress=False)
    stored = read_all(str(output))
    np.testing.assert_array_equal(stored["index"], np.arange(n))
    np.testing.assert_array_equal(stored["z"], cache_z)
    np.testing.assert_array_equal(stored["x"], cache_x)
    assert sorted(os.listdir(output)) == ["dataset_info.json", "features.json", "metadata.json",
                                          "simvae_simulations-train.tfrecord-00000-of-00001", "tensorboard"]


def test_training_reads_the_dataset_as_it_reads_the_cache(box_dataset, tmp_path, capsys):
    config = tiny_config("box", **{"data.dataset_dir": box_dataset})
    run = sv.fit("box", config=config, workdir=str(tmp_path / "run"), mode="train", verbose=1)
    assert f"Training data: {NUM_SAMPLES} samples from {box_dataset}" in capsys.readouterr().out
    assert run.metrics["training"]["stage1"]["loss"] > 0
    assert json.load(open(tmp_path / "run" / training_data.DATASET_RECORD))["seed"] == 0
    # Batch i is drawn from the dataset exactly as from a cache of the same seed and size,
    # so resuming stays exact and a dataset_dir run equals a cache_size run.
    cached = training_data.TrainingData(run.simulator, tiny_config("box", **{"data.cache_size": NUM_SAMPLES}),
                                        str(tmp_path / "cached"), verbose=0)
    for ours, theirs in zip(run.data.stage2_dataset(3).take(2), cached.stage2_dataset(3).take(2)):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def edited_copy(source: str, target, edit) -> str:
    shutil.copytree(source, target)
    path = os.path.join(target, "metadata.json")
    metadata = json.load(open(path))
    edit(metadata)
    json.dump(metadata, open(path, "w"))
    return str(target)


def other_range(metadata):
    metadata["simulator"]["latents"][0]["high"] = 0.6  # as if the class's range of w was edited since


def other_seed(metadata):
    metadata["seed"] = 1


@pytest.mark.parametrize("sim, overrides, edit, message", [
    ("polygon", {}, None, "simulator 'box' (simvae_tf.simulators.box:BoxSimulator) there, 'polygon'"),
    ("box", {"simulator.renderer": "matplotlib"}, None, "simulator option renderer: 'numpy' there, 'matplotlib' now"),
    ("box", {}, other_range, "latent 'w': range [0.1, 0.6] (linear) there, [0.1, 0.5] (linear) now"),
])
def test_a_dataset_of_another_setup_is_refused_before_anything_is_written(box_dataset, tmp_path, sim, overrides,
                                                                          edit, message):
    dataset = edited_copy(box_dataset, tmp_path / "edited", edit) if edit else box_dataset
    config = tiny_config(sim, **{"data.dataset_dir": dataset, **overrides})
    with pytest.raises(ConfigError, match="holds simulations of another setup") as refusal:
        sv.fit(sim, config=config, workdir=str(tmp_path / "run"), verbose=0)
    assert message in str(refusal.value) and "\n" not in str(refusal.value)
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_refuses_a_dataset_changed_under_its_path(box_dataset, tmp_path):
    dataset = tmp_path / "dataset"
    shutil.copytree(box_dataset, dataset)
    workdir, config = tmp_path / "run", tiny_config("box", **{"data.dataset_dir": str(dataset)})
    import tensorflow as tf

    sv.Run("box", config, str(workdir), tf.distribute.get_strategy(), verbose=0).prepare()  # what fit does first
    edited_copy(box_dataset, tmp_path / "other", other_seed)
    shutil.rmtree(dataset)
    os.rename(tmp_path / "other", dataset)
    with pytest.raises(ConfigError, match="changed since this run began .*seed: 0 there, 1 now"):
        sv.fit("box", config=config, workdir=str(workdir), verbose=0)


def test_the_training_cli_refuses_what_is_no_dataset_in_one_line(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    result = run_cli(["--sim=box", f"--workdir={tmp_path / 'run'}", f"--config.data.dataset_dir={tmp_path / 'mine'}"])
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: --config.data.dataset_dir={tmp_path / 'mine'} is not a dataset made by simvae_tf.simulate "
        "(no dataset_info.json); pass such a folder"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (["--runer=DirectRunner"], "unknown flag(s) --runer: neither a flag of simvae_tf.simulate"),
    (["--runner=NoSuchRunner"], "--runner=NoSuchRunner: Unexpected pipeline runner"),
    (["--direct_num_workers=two"], "bad Beam pipeline option ("),
    (["DirectRunner"], "unexpected arguments ['DirectRunner']"),
])
def test_bad_pipeline_options_are_refused_in_one_line(args, message):
    with pytest.raises(ConfigError) as refusal:
        simulate.pipeline_options(args)
    assert message in str(refusal.value) and "\n" not in str(refusal.value)


def test_bad_requests_and_outputs_are_refused_with_nothing_written(box_dataset, tmp_path, capsys):
    config = sv.get_config("box")
    for num_samples, seed, message in ((0, 0, "--num_samples=0 is invalid"), (10, -1, "--seed=-1 is invalid")):
        with pytest.raises(ConfigError, match=message):
            beam_simulation.generate("box", config, num_samples, str(tmp_path / "new"), seed=seed)
    assert not (tmp_path / "new").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="non-empty folder that holds no simvae_tf dataset"):
        beam_simulation.generate("box", config, 10, str(foreign))
    assert os.listdir(foreign) == ["notes.txt"]
    with pytest.raises(ConfigError, match="holds another dataset .*seed: 0 there, 1 now.*num_samples: 300 there, 10 now"):
        beam_simulation.generate("box", config, 10, box_dataset, seed=1)
    before = sorted(os.listdir(box_dataset))
    beam_simulation.generate("box", config, NUM_SAMPLES, box_dataset, seed=0)
    assert "is already complete; nothing to do" in capsys.readouterr().out
    assert sorted(os.listdir(box_dataset)) == before


def test_the_simulate_cli_refuses_an_unknown_flag_in_one_line(tmp_path):
    result = run_cli(["--sim=box", "--num_samples=10", f"--output={tmp_path / 'out'}", "--num_worker=2"],
                     module="simvae_tf.simulate")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: unknown flag(s) --num_worker: neither a flag of simvae_tf.simulate (--help) nor a Beam pipeline "
        "option; check the spelling"]
    assert not (tmp_path / "out").exists()


def test_reading_a_dataset_needs_no_beam(box_dataset):
    done = subprocess.run([sys.executable, "-c", "import sys, simvae_tf as sv\n"
                           "from simvae_tf import simulated_dataset, simulators\n"
                           f"z, x = simulated_dataset.load({box_dataset!r}, 'box', simulators.make('box'))\n"
                           "print(len(z), 'apache_beam' in sys.modules)"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.stdout.split() == [str(NUM_SAMPLES), "False"], done.stderr[-2000:]


@pytest.mark.parametrize("calls_before, batches_kept", [(1, 0), (0, 1)])
def test_a_failing_simulator_stops_the_job_in_one_line(tmp_path, monkeypatch, calls_before, batches_kept):
    """CrashingPulse fails on its 3rd call: the probe is call 2 (then no batch is finished and
    nothing is left behind) or call 1 (then one batch is kept for the rerun)."""
    monkeypatch.syspath_prepend(FAULTY_SIMS)
    import faulty_sims

    monkeypatch.setattr(faulty_sims.CrashingPulse, "calls", calls_before)
    output = tmp_path / "out"
    with pytest.raises(sv.RunFailure) as failure:
        beam_simulation.generate(faulty_sims.CrashingPulse, sv.get_config(faulty_sims.CrashingPulse),
                                 3 * data.CACHE_BATCH_SIZE, str(output), verbose=0)
    message = str(failure.value)
    assert message.startswith("the Beam pipeline failed: simulator 'pulse' failed on latents [[") and \
        "FloatingPointError: solver diverged" in message and "\n" not in message, message
    if batches_kept:
        assert "1 finished batches are kept" in message and "rerun the same command to resume" in message
        assert len(list((output / ".partial" / "batches").glob("batch-*.npz"))) == batches_kept
    else:
        assert "nothing was written" in message and not output.exists()


def test_simulating_and_loading_touch_no_network(tmp_path, network_calls):
    output = str(tmp_path / "offline")
    beam_simulation.generate("box", sv.get_config("box"), 10, output, verbose=0)
    assert len(simulated_dataset.load(output, "box", simulators.make("box"))[0]) == 10
    assert network_calls == []
