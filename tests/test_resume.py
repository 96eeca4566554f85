"""Kill -9 during stage 1 and stage 2, rerun the same command: training resumes from the
last checkpoint of that stage and ends with the same step counts."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, committed_step, run_cli, tiny_flags

STEPS = 24
FLAGS = tiny_flags(**{"stage1.steps": STEPS, "stage2.steps": STEPS, "stage1.steps_per_loop": 2,
                      "stage2.steps_per_loop": 2})


def _run_until_checkpoint(workdir: str, stage: str, min_step: int, timeout: float = 240) -> None:
    """Starts the CLI and SIGKILLs it once `stage` has committed a checkpoint at >= min_step."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "simvae_tf.main", "--sim=box", f"--workdir={workdir}", *FLAGS],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            step = committed_step(workdir, stage)
            if step is not None and step >= min_step:
                break
            assert process.poll() is None, f"run ended (rc={process.returncode}) before a {stage} checkpoint"
            time.sleep(0.05)
        else:
            pytest.fail(f"no {stage} checkpoint within {timeout}s")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_sigkill_in_each_stage_then_resume(tmp_path):
    workdir = str(tmp_path / "run")
    _run_until_checkpoint(workdir, "stage1", 4)
    assert committed_step(workdir, "stage1") < STEPS

    _run_until_checkpoint(workdir, "stage2", 4)
    assert committed_step(workdir, "stage1") == STEPS
    assert committed_step(workdir, "stage2") < STEPS

    # A kill in the middle of a checkpoint write: files of a newer checkpoint exist, but the
    # index never pointed at them. The resume must ignore them.
    for suffix in (".index", ".data-00000-of-00001"):
        with open(os.path.join(workdir, "checkpoints", "stage2", f"ckpt-{STEPS - 1}{suffix}"), "wb") as f:
            f.write(b"\x00truncated")

    result = run_cli(["--sim=box", f"--workdir={workdir}", *FLAGS])
    log = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stage1: already complete (24/24 steps)" in log
    assert "stage2: resuming from step" in log
    assert committed_step(workdir, "stage2") == STEPS
    assert os.path.exists(os.path.join(workdir, "export", "encoder", "saved_model.pb"))


def test_resume_mid_stage1_reports_the_step(tmp_path):
    workdir = str(tmp_path / "run")
    _run_until_checkpoint(workdir, "stage1", 2)
    # Read after the kill: this is what the rerun restores, even if the kill landed mid-write.
    done = committed_step(workdir, "stage1")
    result = run_cli(["--sim=box", f"--workdir={workdir}", "--mode=train", *FLAGS])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"stage1: resuming from step {done}/{STEPS}" in result.stdout
    assert committed_step(workdir, "stage1") == STEPS
    assert committed_step(workdir, "stage2") == STEPS
