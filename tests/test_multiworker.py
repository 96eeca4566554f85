"""--strategy=multiworker with two CPU worker processes on localhost (TF_CONFIG): the run
matches a one-process run with the same global batch, only the chief writes the workdir,
and after a SIGKILL of one worker mid-stage a rerun of both resumes from the chief's last
committed checkpoint. Also the pieces that make it so: worker roles, each worker's rows
of a global batch, and stage-2 noise that depends on the example, not on the replica."""

import json
import os
import signal
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from simvae_tf import data, multiworker, training
from simvae_tf.models import dcgan
from simvae_tf.simulators.box import BoxSimulator

from conftest import REPO, committed_step, read_json, run_cli, tiny_flags, two_replica_strategy

# Stage 2 is long enough to SIGKILL a worker between two of its checkpoints.
STAGE1_STEPS, STAGE2_STEPS = 4, 12
FLAGS = ["--sim=box", *tiny_flags(**{"stage1.steps": STAGE1_STEPS, "stage2.steps": STAGE2_STEPS})]


# -- the pieces, in one process -------------------------------------------------------------
def _role(monkeypatch, tf_config: dict) -> multiworker.Role:
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return multiworker.role(types.SimpleNamespace(cluster_resolver=resolver))


def test_worker_roles_follow_tf_config(monkeypatch):
    workers = ["localhost:1", "localhost:2"]
    second = _role(monkeypatch, {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 1}})
    assert second == (1, 2) and not second.is_chief and second.is_multi_worker
    assert _role(monkeypatch, {"cluster": {"worker": workers}, "task": {"type": "worker", "index": 0}}).is_chief
    with_chief = {"chief": ["localhost:3"], "worker": workers}
    assert _role(monkeypatch, {"cluster": with_chief, "task": {"type": "chief", "index": 0}}) == (0, 3)
    assert _role(monkeypatch, {"cluster": with_chief, "task": {"type": "worker", "index": 0}}) == (1, 3)
    assert multiworker.role(tf.distribute.get_strategy()) == (0, 1)


@pytest.mark.parametrize("source", ["simulator", "cache", "worker processes"])
def test_the_shards_of_a_global_batch_are_its_rows(source):
    sim = BoxSimulator()
    kwargs = {"seed": 0, "stream": "s", "batch_size": 8, "start_batch": 3, "element": "x_and_targets",
              "cache": data.simulate_batch(sim, 0, "cache", 0, 32) if source == "cache" else None,
              "num_workers": 2 if source == "worker processes" else 0}
    full = next(iter(data.make_dataset(sim, **kwargs)))
    shards = [next(iter(data.make_dataset(sim, **kwargs, shard=(i, 2)))) for i in range(2)]
    for part in range(2):  # x, targets
        assert shards[0][part].shape[0] == 4
        np.testing.assert_array_equal(np.concatenate([shard[part] for shard in shards]), full[part])


def test_each_replica_gets_its_rows_of_the_global_batch():
    strategy = two_replica_strategy()
    sim = BoxSimulator()
    kwargs = {"seed": 0, "stream": "s", "batch_size": 8}
    z, x = next(iter(data.make_dataset(sim, **kwargs)))
    stream = multiworker.distribute_stream(strategy, lambda shard: data.make_dataset(sim, **kwargs, shard=shard), 8)
    per_replica_z, per_replica_x = next(iter(stream))
    np.testing.assert_array_equal(np.concatenate(strategy.experimental_local_results(per_replica_z)), z)
    np.testing.assert_array_equal(np.concatenate(strategy.experimental_local_results(per_replica_x)), x)


def _stage2_update(strategy, seed: int) -> list[np.ndarray]:
    """One stage-2 SGD step on a fixed batch with the posterior noise drawn for real."""
    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator, encoder = dcgan.build_generator(4, 3, width=2), dcgan.build_encoder(3, 4, width=2)
        model = training.InverseModel(encoder, generator, "image", seed=seed)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np.asarray(v) for v in encoder.trainable_variables]
    x = (np.random.default_rng(0).uniform(size=(8, 64, 64, 3)) > 0.5).astype(np.float32)
    model.fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0)
    return [np.asarray(v) - b for v, b in zip(encoder.trainable_variables, before)]


def test_stage2_noise_belongs_to_the_example_not_the_replica():
    """Each example draws the same eps with one replica or two, so the update agrees to
    float summation order; another seed changes it far beyond that."""
    one, two = _stage2_update(tf.distribute.get_strategy(), 7), _stage2_update(two_replica_strategy(), 7)
    other_seed = _stage2_update(tf.distribute.get_strategy(), 8)
    norm = np.sqrt(sum(np.sum(u ** 2) for u in one))
    assert np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(one, two))) <= 1e-4 * norm
    assert np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(one, other_seed))) > 1e-2 * norm


# -- two worker processes ------------------------------------------------------------------
class Cluster:
    """Two worker processes of one run (`--strategy=multiworker`, TF_CONFIG on free
    localhost ports), $TMPDIR pointing at `scratch`; whatever still runs at exit is killed."""

    def __init__(self, workdir: str, logs: str, scratch: str, extra: tuple[str, ...] = (),
                 worker_extra: dict[int, tuple[str, ...]] | None = None):
        self.workdir, self.logs, self.scratch, self.extra = workdir, logs, scratch, extra
        self.worker_extra = worker_extra or {}
        self.processes: list[subprocess.Popen] = []
        os.makedirs(logs, exist_ok=True)
        os.makedirs(scratch, exist_ok=True)

    def __enter__(self):
        for _ in range(3):  # a port picked as free may be taken before TF binds it
            self._start()
            if self._wait_until_connected():
                return self
            self._kill()
        pytest.fail(f"no cluster after 3 tries:\n{self.log(0)[-2000:]}\n{self.log(1)[-2000:]}")

    def __exit__(self, *exc):
        self._kill()

    def _start(self) -> None:
        self.processes = []
        for index, tf_config in enumerate(multiworker.local_tf_configs(2)):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": tf_config, "TMPDIR": self.scratch}
            with open(self._log_path(index), "w") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "simvae_tf.main", f"--workdir={self.workdir}", "--strategy=multiworker",
                     *FLAGS, *self.extra, *self.worker_extra.get(index, ())], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))

    def _wait_until_connected(self, timeout: float = 240) -> bool:
        """True once both workers passed the strategy's start (they print their run line);
        False if one could not listen on its port (then try others)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all("simvae_tf: sim=box" in self.log(i) for i in range(2)):
                return True
            for i, process in enumerate(self.processes):
                if process.poll() is not None:
                    if "could not listen" in self.log(i):
                        return False
                    pytest.fail(f"worker {i} ended (rc={process.returncode}) before the cluster formed:\n"
                                f"{self.log(i)[-3000:]}")
            time.sleep(0.2)
        pytest.fail(f"the two workers did not connect within {timeout}s")

    def wait(self, index: int | None = None, timeout: float = 480) -> list[int]:
        """The exit codes of worker `index` (default: all) once it ended."""
        chosen = self.processes if index is None else [self.processes[index]]
        deadline = time.time() + timeout
        for process in chosen:
            try:
                process.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"a worker still runs after {timeout}s:\n{self.log(0)[-2000:]}\n{self.log(1)[-2000:]}")
        return [process.returncode for process in chosen]

    def sigkill(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait()

    def _kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def _log_path(self, index: int) -> str:
        return os.path.join(self.logs, f"worker{index}.log")

    def log(self, index: int) -> str:
        with open(self._log_path(index)) as f:
            return f.read()


def _run_cluster(tmp: str, *extra: str) -> tuple[str, list[str]]:
    """A whole two-worker run in tmp/run; returns the workdir and both workers' output."""
    with Cluster(os.path.join(tmp, "run"), os.path.join(tmp, "logs"), os.path.join(tmp, "scratch"), extra) as cluster:
        codes = cluster.wait()
        logs = [cluster.log(0), cluster.log(1)]
    assert codes == [0, 0], f"{logs[0][-3000:]}\n{logs[1][-3000:]}"
    return cluster.workdir, logs


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """The workdir and logs of a whole two-worker run (train, evaluate, export)."""
    tmp = str(tmp_path_factory.mktemp("two_workers"))
    workdir, logs = _run_cluster(tmp)
    return types.SimpleNamespace(tmp=tmp, workdir=workdir, logs=logs)


def _scratch_folders(tmpdir) -> list[str]:
    """The workers' scratch folders in their $TMPDIR (TF's autograph writes there too)."""
    return [name for name in os.listdir(tmpdir) if name.startswith("simvae_tf-")]


def _layout(root: str) -> list[str]:
    """The files of a workdir, TensorBoard event files by folder (their names hold a pid)."""
    paths = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.relpath(os.path.join(folder, name), root)
            paths.append(os.path.join(os.path.dirname(path), "events") if name.startswith("events.out") else path)
    return sorted(paths)


def _checkpoint(workdir: str, stage: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints", stage)))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _outputs(workdir: str) -> dict[str, np.ndarray]:
    """The exported networks on fixed held-out inputs (normalised units)."""
    z, x = data.physical_batch(BoxSimulator(), 123, "comparison", 32)
    generator = tf.saved_model.load(os.path.join(workdir, "export", "generator"))
    encoder = tf.saved_model.load(os.path.join(workdir, "export", "encoder"))  # kept: its variables must live
    posterior = encoder.serve(tf.constant(x))
    return {"G(z)": generator.serve(tf.constant(z, tf.float32)).numpy(),
            "mean": posterior["mean_normalized"].numpy(), "log_std": posterior["log_std_normalized"].numpy()}


@pytest.mark.timeout(900)
def test_two_workers_match_one_process_and_only_the_chief_writes(two_workers, tmp_path):
    """Every example meets the same weights, noise and batch statistics (synchronized
    BatchNorm) as in one process; what differs is float summation order: the gradient is
    the all-reduced sum of two half-batch sums instead of one sum over the batch. Adam
    turns that round-off into up to +-learning_rate steps of parameters whose gradient is
    ~0, so the weights are not bit-identical; the networks' outputs agree to 1e-4
    (measured: 6e-6 after 4 + 12 steps) and the losses to 1e-5 relative."""
    one_process = str(tmp_path / "one_process")
    result = run_cli([f"--workdir={one_process}", "--strategy=default", *FLAGS])
    assert result.returncode == 0, result.stderr[-3000:]
    chief, worker = two_workers.logs
    assert "Done in" in chief and "worker 1 of 2: training done" in worker
    assert "Evaluation (" not in worker

    # Only the chief wrote into the workdir: the same files as one process writes, one
    # TensorBoard event file per folder; the other worker's scratch folder is gone.
    assert _layout(two_workers.workdir) == _layout(one_process)
    scratch = os.path.join(two_workers.tmp, "scratch")
    assert f"writing to {scratch}{os.sep}simvae_tf-" in worker
    assert _scratch_folders(scratch) == []

    ours, reference = read_json(os.path.join(two_workers.workdir, "metrics.json")), \
        read_json(os.path.join(one_process, "metrics.json"))
    for stage, logs in reference["training"].items():
        for name, value in logs.items():
            assert ours["training"][stage][name] == pytest.approx(value, rel=1e-5), (stage, name)
    for name, value in reference["stage2"]["r2_per_latent"].items():
        assert ours["stage2"]["r2_per_latent"][name] == pytest.approx(value, abs=1e-3), name
    ours, reference = _outputs(two_workers.workdir), _outputs(one_process)
    for name in reference:
        np.testing.assert_allclose(ours[name], reference[name], rtol=0, atol=1e-4, err_msg=name)


@pytest.mark.timeout(900)
def test_sigkill_one_worker_mid_stage_then_rerun_both_resumes(two_workers, tmp_path):
    workdir = str(tmp_path / "run")
    cluster = Cluster(workdir, str(tmp_path / "logs"), str(tmp_path / "scratch"), ("--mode=train",))
    with cluster:
        deadline = time.time() + 480
        while (committed_step(workdir, "stage2") or 0) < 2:
            assert all(p.poll() is None for p in cluster.processes), f"{cluster.log(0)[-3000:]}\n{cluster.log(1)[-3000:]}"
            assert time.time() < deadline, "no stage-2 checkpoint in time"
            time.sleep(0.05)
        cluster.sigkill(1)
        # The chief loses its partner in the middle of a step: one line and exit code 1.
        assert cluster.wait(0, timeout=300) == [1]
        assert "lost contact with another worker" in cluster.log(0) and "Traceback" not in cluster.log(0)
    killed_at = committed_step(workdir, "stage2")  # read once the chief is gone: what a rerun restores
    assert 2 <= killed_at < STAGE2_STEPS, "stage 2 ended before the kill; make it longer"
    assert _scratch_folders(tmp_path / "scratch"), "a SIGKILLed worker leaves its scratch folder"

    _, (chief, worker) = _run_cluster(str(tmp_path), "--mode=train")
    assert f"stage1: already complete ({STAGE1_STEPS}/{STAGE1_STEPS} steps)" in chief
    assert f"stage2: resuming from step {killed_at}/{STAGE2_STEPS} ({workdir}" in chief
    assert f"stage2: resuming from step {killed_at}/{STAGE2_STEPS} (the chief worker)" in worker
    assert committed_step(workdir, "stage1") == STAGE1_STEPS and committed_step(workdir, "stage2") == STAGE2_STEPS
    assert _scratch_folders(tmp_path / "scratch") == [], "the rerun removes the killed worker's leftovers"
    # The same data, noise and order as the uninterrupted run: the same weights and optimizer state.
    for stage in training.STAGES:
        resumed, uninterrupted = _checkpoint(workdir, stage), _checkpoint(two_workers.workdir, stage)
        assert resumed.keys() == uninterrupted.keys()
        different = [name for name in resumed if not np.array_equal(resumed[name], uninterrupted[name])]
        assert different == [], different


@pytest.mark.timeout(600)
def test_workers_started_with_different_configs_stop_before_writing(tmp_path):
    workdir = tmp_path / "run"
    with Cluster(str(workdir), str(tmp_path / "logs"), str(tmp_path / "scratch"),
                 worker_extra={1: ("--config.seed=1",)}) as cluster:
        assert cluster.wait(timeout=300) == [2, 2]
        for index in range(2):
            assert "error: the workers of TF_CONFIG run different simulators, configs or versions" in cluster.log(index)
            assert "Traceback" not in cluster.log(index)
    assert not workdir.exists() and _scratch_folders(tmp_path / "scratch") == []
