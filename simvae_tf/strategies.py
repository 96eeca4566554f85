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
        return _multi_worker_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "auto" and tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _multi_worker_strategy():
    """MultiWorkerMirroredStrategy with the `reduce` that Keras 3's `fit` expects of it
    (keras-team/keras#20585): before the first step Keras reduces a whole (z, x) batch,
    a nested structure that TF's `reduce` refuses ("unsupported type PerReplica"); after
    each step it averages the scalar losses "along axis 0", which TF refuses for a scalar.
    Here each leaf is reduced on its own, and a scalar across the replicas."""
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def reduce_one(v):
                rank = self.experimental_local_results(v)[0].shape.rank
                return super(MultiWorkerMirroredStrategy, self).reduce(reduce_op, v, None if rank == 0 else axis)

            return tf.nest.map_structure(reduce_one, value)

    try:
        return MultiWorkerMirroredStrategy()
    except tf.errors.UnknownError as e:  # TF's whole message: "Could not start gRPC server"
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        address = resolver.cluster_spec().task_address(resolver.task_type, resolver.task_id)
        raise ConfigError(f"--strategy=multiworker: this worker could not listen on {address}, its address in "
                          f"TF_CONFIG ({e.message}); is the port taken? Give it a free port in every worker's "
                          "TF_CONFIG") from None


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("--strategy=multiworker needs the TF_CONFIG environment variable "
                          '(e.g. {"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": 0}})')
    try:
        tf_config = json.loads(raw)
        task_type, index = tf_config["task"]["type"], tf_config["task"]["index"]
        tasks = tf_config["cluster"][task_type]
        assert task_type in ("worker", "chief") and isinstance(tasks, list) and 0 <= index < len(tasks)
    except Exception as e:
        raise ConfigError(f"TF_CONFIG={raw!r} is not a valid multi-worker config ({type(e).__name__}); it needs "
                          "cluster.worker (a list of host:port; optionally cluster.chief, one more) and "
                          "task.type/task.index naming one of them") from None


def check_batch_divides(config, strategy) -> None:
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"--config.batch_size={config.batch_size} does not divide over {replicas} replicas; "
                          f"use a multiple of {replicas}")
