"""Faults during a run: NaN losses, simulators that crash in worker processes, kills during
evaluation and export, and a workdir of another simulator."""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, committed_step, read_json, run_cli, tiny_flags

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {"PYTHONPATH": HERE}


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    flags = tiny_flags(**{"stage1.steps": 40, "stage1.steps_per_loop": 2, "stage1.learning_rate": 1e30,
                          "model.family": "mlp"})
    result = run_cli(["--sim=faulty_sims:Pulse", f"--workdir={workdir}", *flags], env=ENV)
    assert result.returncode == 1, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "stage1: loss became" in lines[0] and "last good checkpoint is kept" in lines[0]
    # Every checkpoint on disk predates the NaN and loads.
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(workdir / "checkpoints" / "stage1"))
    if latest is not None:
        reader = tf.train.load_checkpoint(latest)
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if hasattr(value, "dtype") and value.dtype.kind == "f":
                assert (abs(value) < float("inf")).all(), name


def test_simulator_crash_in_worker_processes_surfaces_with_latents(tmp_path):
    flags = tiny_flags(**{"data.num_workers": 2, "model.family": "mlp"})
    started = time.time()
    result = run_cli(["--sim=faulty_sims:CrashingPulse", f"--workdir={tmp_path / 'run'}", *flags], env=ENV, timeout=240)
    assert time.time() - started < 240
    assert result.returncode == 1, result.stderr[-2000:]
    assert "simulator 'pulse' failed on latents [[" in result.stderr
    assert "FloatingPointError: solver diverged" in result.stderr


def test_workdir_of_another_simulator_is_refused(tmp_path):
    workdir = tmp_path / "run"
    assert run_cli(["--sim=faulty_sims:Pulse", f"--workdir={workdir}", "--mode=train", *tiny_flags()],
                   env=ENV).returncode == 0
    result = run_cli(["--sim=box", f"--workdir={workdir}", *tiny_flags()], env=ENV)
    assert result.returncode == 2
    assert "sim: 'faulty_sims:Pulse' in the workdir, 'box' now" in result.stderr


def _kill_when(workdir, condition, timeout=240):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **ENV}
    process = subprocess.Popen([sys.executable, "-m", "simvae_tf.main", "--sim=box", f"--workdir={workdir}",
                                *tiny_flags()], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while not condition():
            assert process.poll() is None, "the run ended before the kill point"
            assert time.time() < deadline, "kill point never reached"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.mark.parametrize("phase", ["evaluation", "export"])
def test_kill_during_evaluation_or_export_then_rerun_completes(phase, tmp_path):
    workdir = tmp_path / "run"
    if phase == "evaluation":  # training done, evaluation started (figures folder not yet written)
        def reached():
            return committed_step(str(workdir), "stage2") == 4
    else:
        def reached():
            return bool(glob.glob(str(workdir / "export" / ".*.tmp-*")))
    _kill_when(workdir, reached)
    result = run_cli(["--sim=box", f"--workdir={workdir}", *tiny_flags()], env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stage1: already complete" in result.stdout and "stage2: already complete" in result.stdout
    assert read_json(str(workdir / "metrics.json"))["stage2"]["r2_per_latent"]
    assert (workdir / "export" / "encoder" / "saved_model.pb").exists()
    assert not glob.glob(str(workdir / "export" / ".*"))
