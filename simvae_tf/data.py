"""Simulator -> tf.data pipelines of (normalised z, x) batches.

Batch number i of a stream depends only on (seed, stream name, i): training can resume
at any step and see exactly the data an uninterrupted run would have seen, and no two
streams (stage 1, stage 2, evaluation) share samples. A stochastic simulator draws its
noise from `noise_rng(seed, stream, i)`, so its batches are pure functions of the same three.

Three ways to feed a model:
  * streaming in-process (`num_workers=0`): fresh samples every step, simulated in
    tf.data's parallel map threads; right for fast, vectorised simulators;
  * streaming from worker processes (`num_workers>0`): for simulators that hold the GIL
    or are not thread-safe (matplotlib, ngspice);
  * materialised (`cache_size>0`): N samples simulated once (in parallel, with a progress
    bar), stored atomically as an .npz under the workdir and sampled from memory, so
    training never waits on an expensive simulator.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import sys
import threading
import weakref
import zlib
from typing import Iterator

import numpy as np

from simvae_tf.errors import SimulatorError, SimulatorSetupError
from simvae_tf.files import atomic_write
from simvae_tf.simulators import base, invariance
from simvae_tf.simulators.base import Simulator


def _stream_id(stream: str) -> int:
    return zlib.crc32(stream.encode())


def _latents_for_message(z: np.ndarray, limit: int = 3) -> str:
    rows = np.asarray(z)[:limit]
    more = f" (+{len(z) - limit} more)" if len(z) > limit else ""
    return np.array2string(rows, precision=6, separator=", ").replace("\n", "") + more


def check_output(simulator: Simulator, z: np.ndarray, x) -> np.ndarray:
    """Validates a simulator's output at the pipeline boundary; returns it as float32."""
    expected = (len(z),) + simulator.output_spec.shape
    name = simulator.name
    if not isinstance(x, np.ndarray):
        raise SimulatorError(f"simulator {name!r} returned {type(x).__name__}, not a numpy array, "
                             f"for latents {_latents_for_message(z)}")
    if x.shape != expected:
        raise SimulatorError(f"simulator {name!r} returned shape {x.shape}, expected {expected} "
                             f"(output_spec.shape {simulator.output_spec.shape}) for latents {_latents_for_message(z)}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
        raise SimulatorError(f"simulator {name!r} returned dtype {x.dtype}, expected a real number type "
                             f"for latents {_latents_for_message(z)}")
    x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise SimulatorError(f"simulator {name!r} returned NaN/Inf for latents {_latents_for_message(z[bad])}")
    return x


# One lock per simulator that is not thread-safe, shared by every caller in this process
# (tf.data threads, image summaries, evaluation).
_LOCKS: "weakref.WeakKeyDictionary[Simulator, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_for(simulator: Simulator):
    if simulator.thread_safe:
        return contextlib.nullcontext()
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(simulator, threading.Lock())


# Mixed into the noise generator's seed: the latents' generator of the same batch is another.
_NOISE_KEY = zlib.crc32(b"simulator noise")


def noise_rng(seed: int, stream: str, index: int = 0) -> np.random.Generator:
    """The generator a stochastic simulator draws the noise of batch `index` of `stream`
    from: a pure function of (seed, stream, index), independent of the generator of that
    batch's latents (so the latents do not depend on how much noise the simulator draws)."""
    return np.random.default_rng([seed, _stream_id(stream), int(index), _NOISE_KEY])


def simulate_checked(simulator: Simulator, z: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Runs the black box on physical latents and validates what it returns; a failure
    names the simulator and the latents (setup errors pass through with their fix). A
    stochastic simulator needs `rng` (seeded, e.g. `noise_rng`); a deterministic one ignores it."""
    if simulator.stochastic and rng is None:
        raise ValueError(f"simulator {simulator.name!r} is stochastic: pass a seeded rng (data.noise_rng) so its "
                         "noise is reproducible")
    try:
        with _lock_for(simulator):
            x = simulator.simulate(z, rng) if simulator.stochastic else simulator.simulate(z)
    except SimulatorSetupError:
        raise
    except Exception as e:  # the simulator is a black box: report what it was given
        raise SimulatorError(f"simulator {simulator.name!r} failed on latents {_latents_for_message(z)}: "
                             f"{type(e).__name__}: {e}") from e
    return check_output(simulator, z, x)


def batch_latents(simulator: Simulator, seed: int, stream: str, index: int, batch_size: int) -> np.ndarray:
    """The physical latents [B, K] of batch `index` of `stream`."""
    rng = np.random.default_rng([seed, _stream_id(stream), int(index)])
    return simulator.sample_latents(rng, batch_size)


def simulate_batch(simulator: Simulator, seed: int, stream: str, index: int, batch_size: int,
                   shard: tuple[int, int] = (0, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Batch `index` of `stream`: (normalised latents [B, K] float32, x [B, ...] float32).
    `shard` (i, n): only the i-th of n equal slices of its rows (all latents are drawn, the
    simulator runs on that slice alone; a stochastic simulator's noise then depends on the
    slice too)."""
    z = batch_latents(simulator, seed, stream, index, batch_size)[_shard_rows(batch_size, shard)]
    return base.normalize(simulator.latents, z), simulate_checked(simulator, z, noise_rng(seed, stream, index))


def _shard_rows(batch_size: int, shard: tuple[int, int]) -> slice:
    index, count = shard
    size = batch_size // count
    return slice(index * size, (index + 1) * size)


def physical_batch(simulator: Simulator, seed: int, stream: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n samples in physical units (for evaluation and figures)."""
    rng = np.random.default_rng([seed, _stream_id(stream), 0])
    z = simulator.sample_latents(rng, n)
    return z, simulate_checked(simulator, z, noise_rng(seed, stream, 0))


def _worker_context():
    # TensorFlow is loaded in the parent; forking it is unsafe, so workers start fresh.
    return multiprocessing.get_context("spawn")


def _process_batches(simulator: Simulator, seed: int, stream: str, batch_size: int, start: int,
                     num_workers: int, shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields batches start, start+1, ... (their `shard`) in order, simulated by a pool of processes."""
    pool = concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=_worker_context())
    try:
        pending = collections.deque()
        next_index = start
        while True:
            while len(pending) < 2 * num_workers:
                pending.append(pool.submit(simulate_batch, simulator, seed, stream, next_index, batch_size, shard))
                next_index += 1
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# -- output standardisation (signals) ---------------------------------------------------------
# An element whose std is below this fraction of its channel's median element std is one
# the simulator (practically) never varies: a time series' fixed starting value. Scaling it
# by its own std would amplify measurement noise there without bound (a floor at 1e-6 of
# the largest std, as before, did ~10^4-10^6-fold and threw noisy observations' posteriors
# off their ranges), so it gets the channel's median std instead: noise there counts as at
# a typical element. RLC's smallest element std is 0.92% of its channel's median, 9x above
# this threshold, so its scaler is unchanged (benchmarks/RESULTS.md, "output scaler").
CONSTANT_ELEMENT_STD = 1e-3


@dataclasses.dataclass
class OutputScaler:
    """x_model = (x - mean) / std. Identity for images; per-element for signals."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def identity(cls, shape: tuple[int, ...]) -> "OutputScaler":
        return cls(np.zeros(shape, np.float32), np.ones(shape, np.float32))

    @classmethod
    def fit(cls, x: np.ndarray) -> "OutputScaler":
        """Per-element mean and std of signals x [n, N] or [n, N, C] (channels last), an
        element that never varies scaled by its channel's median std."""
        std = x.std(axis=0).astype(np.float64)
        typical = typical_std(std)
        std = np.where(std < CONSTANT_ELEMENT_STD * typical, typical, std)
        return cls(x.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "OutputScaler":
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


def typical_std(std: np.ndarray) -> np.ndarray:
    """The median element std of each channel (the last axis of a 2-D signal), broadcast to
    `std`'s shape; a channel that never varies takes the median over all channels, and a
    signal that never varies at all 1."""
    per_channel = np.median(std.reshape(-1, std.shape[-1]), axis=0) if std.ndim >= 2 else np.median(std)[None]
    overall = np.median(std)
    fallback = overall if overall > 0 else (std.max() if std.max() > 0 else 1.0)
    per_channel = np.where(per_channel > 0, per_channel, fallback)
    return np.broadcast_to(per_channel if std.ndim >= 2 else per_channel[0], std.shape)


def fit_output_scaler(simulator: Simulator, seed: int, cache: tuple[np.ndarray, np.ndarray] | None = None,
                      n: int = 2048) -> OutputScaler:
    if simulator.output_spec.is_image:
        return OutputScaler.identity(simulator.output_spec.shape)
    x = cache[1] if cache is not None else simulate_batch(simulator, seed, "calibration", 0, n)[1]
    return OutputScaler.fit(x)


# -- materialised datasets ------------------------------------------------------------------
# Sample i of a materialised dataset is row i % CACHE_BATCH_SIZE of batch i // CACHE_BATCH_SIZE
# of this stream, whoever simulates it (`materialize`, or a Beam job: simvae_tf.beam_simulation).
CACHE_STREAM = "cache"
CACHE_BATCH_SIZE = 256


def cache_path(directory: str, simulator: Simulator, seed: int, size: int) -> str:
    key = json.dumps({"simulator": simulator.describe(), "options": simulator_options(simulator), "seed": seed,
                      "size": size}, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(directory, f"{simulator.name}-{size}-{digest}.npz")


def simulator_options(simulator: Simulator) -> dict:
    """The simulator's public state (its constructor options and what they set)."""
    return {k: v for k, v in vars(simulator).items() if not k.startswith("_")}


def materialize(simulator: Simulator, size: int, seed: int, directory: str, batch_size: int = CACHE_BATCH_SIZE,
                num_workers: int = 0, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Simulates `size` samples once and stores them; later calls load the stored file.

    Returns (normalised z [N, K] float32, x [N, ...] float32). Images are stored as uint8
    (exact for renderings quantised to 8 bits, 4x smaller)."""
    path = cache_path(directory, simulator, seed, size)
    if os.path.exists(path):
        return _load_cache(path, simulator, size)
    import keras  # progress bar only

    num_batches = -(-size // batch_size)
    # Redraw often on a terminal; in a log file every 10 s is plenty.
    interval = 0.05 if sys.stdout.isatty() else 10.0
    bar = keras.utils.Progbar(num_batches * batch_size, unit_name="sample", interval=interval) if progress else None
    if progress:
        print(f"Materialising {size} samples of {simulator.name!r} into {path}", flush=True)
    zs, xs = [], []
    if num_workers > 0:
        batches = _process_batches(simulator, seed, CACHE_STREAM, batch_size, 0, num_workers)
    else:
        batches = (simulate_batch(simulator, seed, CACHE_STREAM, i, batch_size) for i in range(num_batches))
    for _, (z, x) in zip(range(num_batches), batches):
        zs.append(z)
        xs.append(x)
        if bar is not None:
            bar.add(len(z))
    batches.close()
    z, x = np.concatenate(zs)[:size], np.concatenate(xs)[:size]
    stored_x = encode_x(simulator, x)
    os.makedirs(directory, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, z=z, x=stored_x))
    return z, decode_x(stored_x)


def encode_x(simulator: Simulator, x: np.ndarray) -> np.ndarray:
    """How stored datasets hold x: uint8 for images (exact for renderings quantised to 8 bits,
    4x smaller), float32 otherwise."""
    return np.round(x * 255).astype(np.uint8) if simulator.output_spec.is_image else x


def decode_x(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def _load_cache(path: str, simulator: Simulator, size: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            z, x = data["z"], data["x"]
    except Exception as e:
        raise SimulatorError(f"cached dataset {path} is unreadable ({e}); delete it to re-simulate") from e
    if z.shape != (size, simulator.num_latents) or x.shape != (size,) + simulator.output_spec.shape:
        raise SimulatorError(f"cached dataset {path} has shapes {z.shape}/{x.shape}, expected "
                             f"{(size, simulator.num_latents)}/{(size,) + simulator.output_spec.shape}; delete it")
    return z.astype(np.float32), decode_x(x)


# -- tf.data ---------------------------------------------------------------------------------
def random_rows(arrays: tuple[np.ndarray, ...], *, seed: int, stream: str, batch_size: int, start_batch: int = 0,
                rows: slice = slice(None)):
    """An endless tf.data.Dataset of batches of rows drawn with replacement from in-memory
    arrays (same length): batch i is a pure function of (seed, stream, i); `rows` keeps a
    worker's slice of each batch."""
    import tensorflow as tf

    constants = tuple(tf.constant(a) for a in arrays)
    stream_seed = _stream_id(stream) % (2 ** 31)

    def draw(index):
        ids = tf.random.stateless_uniform([batch_size], seed=tf.stack([tf.cast(seed, tf.int64) * 7919 + stream_seed, index]),
                                          maxval=len(arrays[0]), dtype=tf.int64)[rows]
        return tuple(tf.gather(c, ids) for c in constants)

    return tf.data.Dataset.range(start_batch, 2 ** 62).map(draw, num_parallel_calls=tf.data.AUTOTUNE)


# What a dataset yields per batch: (z_normalised, x_model) for stage 1; x_model alone for
# the paper's stage 2, which never sees z; (x_model, targets [B, G, K]) for stage 2 with the
# latent term (see `invariance.latent_targets_of`).
ELEMENTS = ("z_and_x", "x", "x_and_targets")


def make_dataset(simulator: Simulator, *, seed: int, stream: str, batch_size: int, start_batch: int = 0,
                 num_workers: int = 0, cache: tuple[np.ndarray, np.ndarray] | None = None,
                 scaler: OutputScaler | None = None, element: str = "z_and_x", shard: tuple[int, int] = (0, 1)):
    """An endless tf.data.Dataset of batches from `start_batch` on; `element` (one of
    ELEMENTS) picks what each batch holds. `shard` (i, n): each element holds only the i-th
    of n equal slices of the batch's rows (one worker's share of the global batch; only
    those rows are simulated)."""
    import tensorflow as tf

    if element not in ELEMENTS:
        raise ValueError(f"element={element!r} unknown; use one of {ELEMENTS}")

    num_latents, x_shape = simulator.num_latents, simulator.output_spec.shape
    rows = _shard_rows(batch_size, shard)
    size = rows.stop - rows.start  # rows per element
    if cache is not None:
        dataset = random_rows(cache, seed=seed, stream=stream, batch_size=batch_size, start_batch=start_batch,
                              rows=rows)
    elif num_workers > 0:
        signature = (tf.TensorSpec((size, num_latents), tf.float32),
                     tf.TensorSpec((size,) + x_shape, tf.float32))
        dataset = tf.data.Dataset.from_generator(
            lambda: _process_batches(simulator, seed, stream, batch_size, start_batch, num_workers, shard),
            output_signature=signature)
    else:
        def simulate(index):
            z, x = tf.numpy_function(lambda i: simulate_batch(simulator, seed, stream, i, batch_size, shard),
                                     [index], (tf.float32, tf.float32), stateful=False)
            return tf.ensure_shape(z, (size, num_latents)), tf.ensure_shape(x, (size,) + x_shape)

        dataset = tf.data.Dataset.range(start_batch, 2 ** 62).map(
            simulate, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if scaler is not None and not simulator.output_spec.is_image:
        mean, std = tf.constant(scaler.mean), tf.constant(scaler.std)
        dataset = dataset.map(lambda z, x: (z, (x - mean) / std))
    if element == "x":
        dataset = dataset.map(lambda z, x: x)
    elif element == "x_and_targets":
        num_targets = invariance.num_equivalent_latents(simulator)

        def with_targets(z, x):
            targets = tf.numpy_function(lambda u: invariance.latent_targets_of(simulator, u), [z], tf.float32, stateful=False)
            return x, tf.ensure_shape(targets, (size, num_targets, num_latents))

        dataset = dataset.map(with_targets, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
