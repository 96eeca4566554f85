"""Shared test set-up: quiet TensorFlow, two logical CPU devices (so MirroredStrategy can
be tested with two replicas on a CPU-only machine), and tiny-config helpers."""

import functools
import json
import os
import socket
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A config small enough that the whole CLI runs in seconds on 2 cores.
TINY = {
    "batch_size": 8, "model.width": 4, "stage1.steps": 4, "stage2.steps": 4,
    "stage1.steps_per_loop": 2, "stage2.steps_per_loop": 2, "eval.num_samples": 64,
    "eval.num_figure_samples": 3, "eval.reference_samples": 128, "eval.predictive_draws": 4,
    "eval.std_calibration_samples": 128,
}


@functools.lru_cache(maxsize=None)
def two_replica_strategy():
    """A MirroredStrategy over the two logical CPUs; one per process: separate
    MirroredStrategy objects clash on collective keys."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "conftest splits the CPU into two logical devices"
    return tf.distribute.MirroredStrategy(devices)


def tiny_flags(**overrides) -> list[str]:
    values = {**TINY, **overrides}
    return [f"--config.{key}={value}" for key, value in values.items()]


def tiny_config(sim, **overrides):
    """`sv.get_config(sim)` with TINY and `overrides` (dotted keys) applied."""
    import simvae_tf as sv

    config = sv.get_config(sim)
    for key, value in {**TINY, **overrides}.items():
        block, _, name = key.rpartition(".")
        setattr(config[block] if block else config, name, value)
    return config


def run_cli(args: list[str], timeout: float = 300, module: str = "simvae_tf.main", env=None
            ) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=environment)


def committed_step(workdir: str, stage: str) -> int | None:
    """The step a rerun resumes `stage` from (not the newest checkpoint files on disk: a kill
    can land between writing them and committing them)."""
    from simvae_tf import training

    return training.committed_step(os.path.join(workdir, "checkpoints", stage))


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)


@pytest.fixture
def network_calls(monkeypatch):
    """Makes every socket connection and every gs:// probe raise; returns the attempts made.
    (TF's GCS filesystem is C++, so the TFDS probe function is watched as well.)"""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise ConnectionRefusedError("the network is off in this test")

    for owner, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                        (socket, "create_connection"), (socket, "getaddrinfo")):
        monkeypatch.setattr(owner, name, refuse)
    from tensorflow_datasets.core.utils import gcs_utils

    monkeypatch.setattr(gcs_utils, "exists", refuse)
    return attempts
