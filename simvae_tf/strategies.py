"""tf.distribute strategies by name (`--strategy`, `fit(strategy=...)`), and the check
that the global batch divides over their replicas."""

from __future__ import annotations

import json
import os

from simvae_tf.errors import ConfigError

STRATEGIES = ("auto", "mirrored", "multiworker", "default")


def make_strategy(name: str):
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ConfigError(f"--strategy={name!r} unknown; use one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "auto" and tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("--strategy=multiworker needs the TF_CONFIG environment variable "
                          '(e.g. {"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": 0}})')
    try:
        tf_config = json.loads(raw)
        workers = tf_config["cluster"]["worker"]
        index = tf_config["task"]["index"]
        assert tf_config["task"]["type"] in ("worker", "chief") and isinstance(workers, list) and 0 <= index < len(workers)
    except Exception as e:
        raise ConfigError(f"TF_CONFIG={raw!r} is not a valid multi-worker config ({type(e).__name__}); it needs "
                          'cluster.worker (a list of host:port) and task.type/task.index') from None


def check_batch_divides(config, strategy) -> None:
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"--config.batch_size={config.batch_size} does not divide over {replicas} replicas; "
                          f"use a multiple of {replicas}")
