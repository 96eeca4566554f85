"""What differs between the workers of a multi-worker run (`--strategy=multiworker`,
`TF_CONFIG`): which one is the chief, where the others write, the state they take from
the chief, and the checks that keep them in step.

Every worker runs the same training steps (Keras `fit` under MultiWorkerMirroredStrategy,
each on its own rows of every global batch) and every worker takes part in saving each
checkpoint. Only the chief (the `chief` task, else worker 0) reads and writes --workdir;
each other worker writes into a scratch folder of its own (`scratch_dir`) that it removes
when it stops. A resume restores the chief's checkpoint on the chief and copies it to the
others over the network (`broadcast_from_chief`), so only the chief needs the workdir's
files. Evaluation and export run on the chief alone, while the others wait for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from typing import NamedTuple

from simvae_tf.errors import ConfigError, RunFailure


class Role(NamedTuple):
    """This worker's place in the cluster: index 0 is the chief."""

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def is_multi_worker(self) -> bool:
        return self.count > 1

    def __str__(self) -> str:
        return f"worker {self.index} of {self.count}" + (" (chief)" if self.is_chief else "")


def role(strategy) -> Role:
    """The worker's index in TF's order (the chief task first, then the workers); a
    strategy without a cluster is one worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    tasks = [(job, i) for job in ("chief", "worker") for i in range(len(spec.get(job, ())))]
    if len(tasks) <= 1:
        return Role()
    return Role(tasks.index((resolver.task_type, resolver.task_id)), len(tasks))


def local_tf_configs(num_workers: int) -> list[str]:
    """TF_CONFIG values for `num_workers` worker processes on this machine, on free
    localhost ports (a port may still be taken by someone else before TF binds it): to try
    or test a multi-worker run on one machine."""
    sockets = [socket.socket() for _ in range(num_workers)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        addresses = [f"localhost:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()
    return [json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})
            for i in range(num_workers)]


@contextlib.contextmanager
def scratch_dir(workdir: str, this: Role):
    """The folder this worker writes into: `workdir` on the chief; on another worker a
    folder of its own under the system's temporary folder ($TMPDIR), emptied first (a
    killed worker's leftovers) and removed when the block ends."""
    if this.is_chief:
        yield workdir
        return
    key = hashlib.sha256(os.path.abspath(workdir).encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), f"simvae_tf-{key}-worker{this.index}")
    shutil.rmtree(path, ignore_errors=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def distribute_stream(strategy, make_shard, global_batch_size: int):
    """A stream of global batches in which each worker builds (and simulates) only its own
    rows: `make_shard((i, n))` is the i-th of n workers' tf.data stream of them, split here
    into its replicas' batches. Replica r gets rows r*B..(r+1)*B-1 of each global batch, as
    when Keras splits a whole global batch on one worker; the replica-summed gradient is the
    one-process update. (Keras's own split of an undivided stream would have every worker
    simulate every row and keep its share.)"""
    def worker_dataset(context):
        dataset = make_shard((context.input_pipeline_id, context.num_input_pipelines))
        per_replica = context.get_per_replica_batch_size(global_batch_size)
        if per_replica * context.num_input_pipelines != global_batch_size:  # several replicas on this worker
            dataset = dataset.rebatch(per_replica)
        return dataset

    return strategy.distribute_datasets_from_function(worker_dataset)


def broadcast_from_chief(strategy, variables) -> None:
    """Sets `variables` (created in the strategy's scope) to the chief's values on every
    worker: after the chief restored a checkpoint that the others do not have. An all-reduce
    of the chief's first replica's values and zeros elsewhere (tf.distribute has no public
    broadcast); one per variable, since an all-reduce packs its tensors into one dtype."""
    if not role(strategy).is_multi_worker or not variables:
        return
    import tensorflow as tf

    @tf.function
    def chief_values():
        def share():
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group, 0)
            return [context.all_reduce(tf.distribute.ReduceOp.SUM,
                                       tf.where(first, v.value, tf.zeros_like(v.value))) for v in variables]
        return strategy.run(share)

    for variable, value in zip(variables, chief_values()):
        variable.assign(strategy.experimental_local_results(value)[0])


def gather(strategy, value: float) -> list[float]:
    """`value` of every replica in the cluster (each worker's once per local replica),
    chief first; waits for every worker: a barrier."""
    import tensorflow as tf

    per_replica = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant([float(value)], tf.float64))
    return strategy.gather(per_replica, axis=0).numpy().tolist()


def chief_decides(strategy, flag: bool) -> bool:
    """The chief's `flag`, on every worker."""
    if not role(strategy).is_multi_worker:
        return flag
    return bool(gather(strategy, float(flag))[0])


def check_same_run(strategy, fingerprint: str) -> None:
    """Refuses on every worker a cluster whose workers were started with different
    simulators, configs or data (`fingerprint` describes them): their steps would not add
    up, or would wait for each other forever."""
    if not role(strategy).is_multi_worker:
        return
    digest = int(hashlib.sha256(fingerprint.encode()).hexdigest()[:12], 16)  # exact in float64
    values = gather(strategy, digest)
    if len(set(values)) > 1:
        raise ConfigError(f"the workers of TF_CONFIG run different simulators, configs or versions (this is "
                          f"{role(strategy)}); start every worker with the same flags, config and simvae_tf")


def barrier(strategy) -> None:
    """Returns once every worker has reached it."""
    if role(strategy).is_multi_worker:
        gather(strategy, 0.0)


@contextlib.contextmanager
def lost_workers_fail_the_run(strategy):
    """A worker that stops (killed, crashed, refused its flags) aborts the collectives of the
    others: each one then ends with one line instead of a traceback."""
    if not role(strategy).is_multi_worker:
        yield
        return
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.FailedPreconditionError) as e:
        first_line = next((line for line in str(e).splitlines() if line.strip()), "")
        reason = re.sub(r"\{\{.*?\}\}\s*", "", first_line).strip()[:160]  # drop TF's {{function_node ...}}
        raise RunFailure(f"{role(strategy)}: lost contact with another worker ({type(e).__name__}: {reason}); "
                         "see the other workers' output, then rerun every worker with the same flags: "
                         "training resumes from the chief's last checkpoint") from None
