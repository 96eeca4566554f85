"""Simulating a dataset on Apache Beam into a TFDS dataset folder (`python -m simvae_tf.simulate`).

The pipeline is TFDS's own Beam support: a builder whose `_generate_examples` returns a
Beam PTransform, prepared with the user's pipeline options; TFDS writes the shards (in
index order: shuffling is off) and dataset_info.json. A work item is one 256-sample batch
of the stream `data.materialize` reads, so every runner and worker count writes the same
dataset, equal to the in-memory cache of the same seed (the layout: `simulated_dataset`).

Resuming: a killed Beam batch job keeps nothing, so each simulated batch is also stored
(atomically) in DIR/.partial/batches/; rerunning the same command reuses those and
simulates only the rest. While it runs, DIR holds:

  .partial/request.json   what is being simulated (a rerun must ask for the same)
  .partial/batches/       finished batches, batch-NNNNNN.npz
  .partial/tfds/          TFDS's data_dir (its own *.incomplete* folder until written)
  tensorboard/simulate/   progress scalars (samples simulated, samples/s)

At the end the TFDS files move into DIR, dataset_info.json last (a folder without it is
unfinished), and .partial is removed. A `gs://` DIR goes through the same `epath` calls
(untested here: no network).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
import threading
import time

import apache_beam as beam
import numpy as np
import tensorflow_datasets as tfds
from etils import epath

import simvae_tf
from simvae_tf import data, simulated_dataset, simulators
from simvae_tf.errors import ConfigError, RunFailure, UserError
from simvae_tf.files import atomic_write
from simvae_tf.simulators import base
from simvae_tf.simulators.base import Simulator

WORK = simulated_dataset.WORK
REQUEST = "request.json"
BATCH_SIZE = data.CACHE_BATCH_SIZE


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the workers need (pickled into the pipeline): the simulator, the stream and where
    finished batches go."""

    simulator: Simulator
    seed: int
    num_samples: int
    batches_dir: str

    @property
    def num_batches(self) -> int:
        return -(-self.num_samples // BATCH_SIZE)

    def rows(self, index: int) -> int:
        return min(BATCH_SIZE, self.num_samples - index * BATCH_SIZE)

    def batch_path(self, index: int) -> epath.Path:
        return epath.Path(self.batches_dir) / f"batch-{index:06d}.npz"


def _is_local(path) -> bool:
    return "://" not in os.fspath(path)


def _write_bytes(path: epath.Path, payload: bytes) -> None:
    """Local files go through a temporary name (a kill never leaves half a file); an object
    store (gs://) only shows an object once it is fully written."""
    if _is_local(path):
        atomic_write(os.fspath(path), lambda f: f.write(payload))
    else:
        path.write_bytes(payload)


# -- the Beam steps (module functions: they are pickled by reference) -------------------------
def simulate_or_reuse(index: int, plan: Plan) -> tuple[int, dict[str, np.ndarray]]:
    """Batch `index`: read back when a previous attempt stored it, else simulated and stored.
    Rows are the first `rows(index)` of the stream's batch (the last batch is cut short; a
    simulator maps each latent row on its own, so the rows are those of the full batch)."""
    path, rows = plan.batch_path(index), plan.rows(index)
    stored = _read_batch(path, plan, rows) if path.exists() else None
    if stored is not None:
        beam.metrics.Metrics.counter("simvae_tf", "reused_batches").inc()
        return index, stored
    simulator = plan.simulator
    latents = data.batch_latents(simulator, plan.seed, data.CACHE_STREAM, index, BATCH_SIZE)[:rows]
    x = data.simulate_checked(simulator, latents, data.noise_rng(plan.seed, data.CACHE_STREAM, index))
    arrays = {"latents": np.asarray(latents, np.float64), "z": base.normalize(simulator.latents, latents),
              "x": data.encode_x(simulator, x)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _write_bytes(path, buffer.getvalue())
    beam.metrics.Metrics.counter("simvae_tf", "simulated_batches").inc()
    return index, arrays


def _read_batch(path: epath.Path, plan: Plan, rows: int) -> dict[str, np.ndarray] | None:
    """A stored batch, or None when it is unreadable or of the wrong shape (then it is
    simulated again: a batch is a pure function of its index)."""
    simulator = plan.simulator
    expected = {"latents": (rows, simulator.num_latents), "z": (rows, simulator.num_latents),
                "x": (rows,) + simulator.output_spec.shape}
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in expected}
    except Exception:  # damaged or foreign file: simulate the batch again
        return None
    if any(arrays[key].shape != shape for key, shape in expected.items()):
        return None
    return arrays


def examples_of_batch(indexed_batch: tuple[int, dict[str, np.ndarray]]):
    """(key, example) per sample; the key is the sample index, which orders the shards."""
    index, arrays = indexed_batch
    for row in range(len(arrays["z"])):
        i = index * BATCH_SIZE + row
        yield i, {"index": i, "z": arrays["z"][row], "latents": arrays["latents"][row], "x": arrays["x"][row]}


# -- the TFDS builder --------------------------------------------------------------------------
def features(simulator: Simulator) -> tfds.features.FeaturesDict:
    spec, k = simulator.output_spec, simulator.num_latents
    if spec.is_image and len(spec.shape) == 3 and spec.shape[-1] in (1, 3, 4):
        x = tfds.features.Image(shape=spec.shape, dtype=np.uint8)  # PNG: lossless, viewable with tfds tools
    elif spec.is_image:
        x = tfds.features.Tensor(shape=spec.shape, dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB)
    else:
        x = tfds.features.Tensor(shape=spec.shape, dtype=np.float32)
    return tfds.features.FeaturesDict({
        "index": tfds.features.Scalar(dtype=np.int64, doc="sample index i"),
        "z": tfds.features.Tensor(shape=(k,), dtype=np.float32, doc="latents normalised to [-1, 1]"),
        # As raw bytes: tf.train.Example's float lists are float32, which would round them.
        "latents": tfds.features.Tensor(shape=(k,), dtype=np.float64, encoding=tfds.features.Encoding.BYTES,
                                        doc="latents in physical units"),
        "x": x,
    })


class SimvaeSimulations(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Simulations of one simulator, as `Plan` and its metadata say (not registered by
    name: every dataset has its own features)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "simvae_tf dataset format 1 (docs/scale.md)."}
    # TFDS derives this with `importlib_resources`, absent on Python >= 3.9 (see
    # simvae_tf_datasets.dsprites_procedural).
    code_path = epath.Path(__file__)

    def __init__(self, *, plan: Plan, metadata: dict, **kwargs):
        self._plan, self._metadata = plan, metadata
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        m = self._metadata
        info = tfds.core.DatasetInfo(
            builder=self, features=features(self._plan.simulator), disable_shuffling=True,
            metadata=tfds.core.MetadataDict(m), homepage="https://arxiv.org/abs/1911.08051",
            description=(f"{m['num_samples']} simulations of {m['sim']!r} ({m['simulator']['class']}), seed "
                         f"{m['seed']}, options {m['simulator_options']}; made by simvae_tf {m['simvae_tf_version']} "
                         f"on Beam's {m['runner']}. Sample i is row i % {BATCH_SIZE} of batch i // {BATCH_SIZE} of "
                         f"the seeded stream {m['stream']!r} (simvae_tf.simulated_dataset)."))
        info.initialize_from_bucket = lambda: None  # nothing of ours is on GCS: no network look-up
        return info

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {simulated_dataset.SPLIT: self._generate_examples()}

    def _generate_examples(self):
        plan = self._plan
        return ("BatchIndices" >> beam.Create(range(plan.num_batches))
                | "SpreadOverWorkers" >> beam.Reshuffle()  # else Create's one bundle lands on one worker
                | "SimulateOrReuse" >> beam.Map(simulate_or_reuse, plan=plan)
                | "Examples" >> beam.FlatMap(examples_of_batch))

    # TFDS prints "Downloading and preparing dataset Unknown size ..."; our progress says more.
    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        pass


# -- the job -----------------------------------------------------------------------------------
def check_request(num_samples, seed) -> None:
    for name, value, minimum in (("--num_samples", num_samples, 1), ("--seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{name}={value!r} is invalid: it must be an integer >= {minimum}")


def output_state(output: epath.Path, wanted: dict) -> str:
    """'complete' (the same dataset is there), 'resume' (an unfinished run of the same
    request) or 'new'; a one-line ConfigError for anything else in the way."""
    where = f"--output={output}"
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{where} is a file; pass a directory path")
    if simulated_dataset.is_dataset(os.fspath(output)):
        metadata = simulated_dataset.read_metadata(os.fspath(output), key="--output")
        differences = simulated_dataset.request_differences(simulated_dataset.request_of(metadata), wanted)
        if differences:
            raise ConfigError(f"{where} holds another dataset ({'; '.join(differences[:3])}); pass a new --output")
        return "complete"
    request_path = output / WORK / REQUEST
    if request_path.exists():
        differences = simulated_dataset.request_differences(json.loads(request_path.read_text()), wanted)
        if differences:
            raise ConfigError(f"{where} holds an unfinished simulation of another request ({'; '.join(differences[:3])}"
                              "); rerun that command to finish it, or pass a new --output")
        return "resume"
    if output.exists() and any(output.iterdir()):
        raise ConfigError(f"{where} is a non-empty folder that holds no simvae_tf dataset; pass a new or empty folder "
                          "so nothing is written among your files")
    return "new"


def direct_runner(options):
    """What Beam's DirectRunner runs a batch pipeline on, the FnApiRunner (honouring
    --direct_num_workers and --direct_running_mode), built as the DirectRunner builds it
    (apache_beam/runners/direct/direct_runner.py, 2.77) but without its first attempt at
    the PrismRunner: that downloads a binary from GitHub (no timeout: offline, it can hang)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def _count_batches(batches_dir: epath.Path) -> int:
    return len(list(batches_dir.glob("batch-*.npz"))) if batches_dir.exists() else 0


class _Progress(threading.Thread):
    """Counts finished batch files (whatever runner writes them) and reports: a line when
    the count changes, and TensorBoard scalars."""

    def __init__(self, plan: Plan, say, logdir: str, already: int):
        super().__init__(daemon=True)
        import tensorflow as tf

        self._plan, self._say, self._already = plan, say, already
        self._writer = tf.summary.create_file_writer(logdir)
        self._stop_event = threading.Event()
        self._start_time = time.time()
        self._last = already
        self._interval = 1.0 if sys.stdout.isatty() else 10.0

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            self.report()

    def report(self) -> None:
        import tensorflow as tf

        done = _count_batches(epath.Path(self._plan.batches_dir))
        if done == self._last:
            return
        self._last = done
        samples = min(done * BATCH_SIZE, self._plan.num_samples)
        rate = (done - self._already) * BATCH_SIZE / max(time.time() - self._start_time, 1e-9)
        self._say(f"Simulated {done}/{self._plan.num_batches} batches ({samples}/{self._plan.num_samples} samples, "
                  f"{rate:.0f} samples/s)")
        with self._writer.as_default(step=samples):
            tf.summary.scalar("samples_per_second", rate)
            tf.summary.scalar("batches_done", done)
        self._writer.flush()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.report()
        self._writer.close()


def generate(sim, config, num_samples: int, output: str, seed: int | None = None, pipeline_options=None,
             verbose: int = 1) -> str:
    """Simulates `num_samples` samples of `sim` (options: `config.simulator`; seed: `seed`,
    default `config.seed`) on Beam with `pipeline_options` into the TFDS dataset folder
    `output`; resumes an unfinished one, does nothing for a finished one. Returns `output`."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    seed = config.seed if seed is None else seed
    check_request(num_samples, seed)
    options = pipeline_options or PipelineOptions([])
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    say = (lambda message: print(message, flush=True)) if verbose else (lambda message: None)
    out = epath.Path(os.path.abspath(output) if _is_local(output) else output)
    simulator = simulators.make(sim, config.simulator.to_dict())
    sim_name = simulators.name_of(sim)
    wanted = simulated_dataset.request(sim_name, simulator, seed, num_samples)
    state = output_state(out, wanted)
    work = out / WORK
    if state == "complete":
        if work.exists():  # killed between the last move and the clean-up
            work.rmtree()
        say(f"Dataset in {out} is already complete; nothing to do (a new --output simulates anew).")
        return os.fspath(out)
    data.simulate_batch(simulator, seed, "probe", 0, 2)  # a missing library is reported before anything is written

    plan = Plan(simulator, seed, num_samples, os.fspath(work / "batches"))
    metadata = {**wanted, "simvae_tf_version": simvae_tf.__version__, "apache_beam_version": beam.__version__,
                "tensorflow_datasets_version": tfds.__version__, "runner": runner}
    created = not out.exists()
    try:
        (work / "batches").mkdir(parents=True, exist_ok=True)
        if state == "new":
            _write_bytes(work / REQUEST, json.dumps(wanted, indent=2, sort_keys=True).encode())
    except OSError as e:
        raise ConfigError(f"--output={out} is not writable ({e.strerror or e}); pass a writable directory") from None
    already = _count_batches(epath.Path(plan.batches_dir))
    say(f"Simulating {num_samples} samples of {sim_name!r} (seed {seed}) on Beam's {runner} into {out}: "
        f"{plan.num_batches} batches of {BATCH_SIZE}" + (f", {already} already simulated (resuming)" if already else ""))
    progress = _Progress(plan, say, os.fspath(out / "tensorboard" / "simulate"), already)
    progress.start()
    prepared = work / "tfds" / "simvae_simulations" / str(SimvaeSimulations.VERSION)
    try:
        if not prepared.exists():  # TFDS renames its .incomplete folder to this when all shards are written
            builder = SimvaeSimulations(plan=plan, metadata=metadata, data_dir=os.fspath(work / "tfds"))
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                beam_options=options, beam_runner=direct_runner(options) if runner == "DirectRunner" else None,
                compute_stats=tfds.download.ComputeStatsMode.SKIP, try_download_gcs=False))
    except BaseException as e:
        progress.stop()
        kept = _count_batches(work / "batches")
        if not kept:
            _remove_all_of(out, created)
        if isinstance(e, UserError) or not isinstance(e, Exception):
            raise
        after = (f"{kept} finished batches are kept in {work}: rerun the same command to resume" if kept else
                 "nothing was written")
        raise RunFailure(f"the Beam pipeline failed: {_summary(e)}; {after} (--verbose for the traceback)") from e
    progress.stop()
    _move_into(prepared, out)
    work.rmtree()
    say(f"Done: {num_samples} samples in {out}. Load: tfds.builder_from_directory({os.fspath(out)!r}); "
        f"train: --config.data.dataset_dir={out}")
    return os.fspath(out)


def _summary(error: BaseException) -> str:
    """One line for an exception that Beam may have wrapped with its worker's traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    ours = [line for line in lines if "Error:" in line or "Exception:" in line]
    return (ours[-1] if ours else lines[-1] if lines else type(error).__name__)[:500]


def _remove_all_of(out: epath.Path, created: bool) -> None:
    """What a pipeline that failed before finishing one batch (bad runner options, a
    simulator failing at once) wrote: nothing is left behind."""
    for path in [out] if created else [out / WORK, out / "tensorboard"]:
        if path.exists():
            path.rmtree()


def _move_into(prepared: epath.Path, out: epath.Path) -> None:
    """TFDS's files into `out`, dataset_info.json last: until it arrives the folder is
    unfinished, and a rerun finishes the move."""
    info = prepared / "dataset_info.json"
    for path in sorted(prepared.iterdir()):
        if path != info:
            path.rename(out / path.name)
    info.rename(out / info.name)
