"""The data of one run: its materialised samples (`data.cache_size`, or a stored dataset:
`data.dataset_dir`), the output standardisation of signals, and the seeded streams each
stage and figure reads.

Files live in the run's workdir (`data/`, `output_scaler.json`), so a resumed run reuses
them; every stream is a pure function of (seed, stream name, batch index). A stored
dataset is read like the cache (in memory), and training batches are drawn from it the
same way, so a run on `dataset_dir` equals one on a cache of the same seed and size.
"""

from __future__ import annotations

import os

import numpy as np

from simvae_tf import data, simulators
from simvae_tf.errors import ConfigError
from simvae_tf.files import read_json, write_json
from simvae_tf.simulators.base import Simulator

# The record of the stored dataset a run trains on, so a resumed run refuses one whose
# contents changed under the same path.
DATASET_RECORD = os.path.join("data", "dataset.json")


class TrainingData:
    def __init__(self, simulator: Simulator, config, directory: str, verbose: int = 1):
        self.simulator = simulator
        self.config = config
        self.directory = directory
        self.verbose = verbose
        self._cache = None
        self._scaler = None
        self._figure_samples = None

    def check_dataset(self) -> None:
        """Refuses, in one line and before anything is written, a `data.dataset_dir` that
        another simulator, other latent ranges or other options made, that does not fit in
        memory, or whose contents changed since this workdir's run began."""
        directory = self.config.data.dataset_dir
        if not directory:
            return
        from simvae_tf import simulated_dataset

        metadata = simulated_dataset.check(directory, simulators.name_of(self.simulator), self.simulator)
        record = os.path.join(self.directory, DATASET_RECORD)
        if os.path.exists(record):
            differences = simulated_dataset.request_differences(read_json(record), simulated_dataset.request_of(metadata))
            if differences:
                raise ConfigError(f"{simulated_dataset.KEY}={directory} changed since this run began "
                                  f"({'; '.join(differences[:3])}); use a new --workdir, or restore the dataset")

    def record_dataset(self) -> None:
        """Remembers which dataset the run trains on (after the workdir is recorded)."""
        record = os.path.join(self.directory, DATASET_RECORD)
        if self.config.data.dataset_dir and not os.path.exists(record):
            from simvae_tf import simulated_dataset

            metadata = simulated_dataset.read_metadata(self.config.data.dataset_dir)
            os.makedirs(os.path.dirname(record), exist_ok=True)
            write_json(record, simulated_dataset.request_of(metadata))

    def cache(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.config.data.dataset_dir and self._cache is None:
            from simvae_tf import simulated_dataset

            self._cache = simulated_dataset.load(self.config.data.dataset_dir, simulators.name_of(self.simulator),
                                                 self.simulator)
            if self.verbose:
                unused = ", ".join(f"data.{key}={self.config.data[key]}" for key in ("cache_size", "num_workers")
                                   if self.config.data[key])
                print(f"Training data: {len(self._cache[0])} samples from {self.config.data.dataset_dir}"
                      + (f" ({unused} unused)" if unused else ""), flush=True)
        elif self.config.data.cache_size > 0 and self._cache is None:
            self._cache = data.materialize(self.simulator, self.config.data.cache_size, self.config.seed,
                                           os.path.join(self.directory, "data"),
                                           num_workers=self.config.data.num_workers, progress=self.verbose > 0)
        return self._cache

    def scaler(self) -> data.OutputScaler:
        if self._scaler is None:
            path = os.path.join(self.directory, "output_scaler.json")
            if os.path.exists(path):
                self._scaler = data.OutputScaler.from_json(read_json(path))
            else:
                self._scaler = data.fit_output_scaler(self.simulator, self.config.seed, self.cache())
                write_json(path, self._scaler.to_json())
        return self._scaler

    def dataset(self, stream: str, start_batch: int, element: str = "z_and_x", shard: tuple[int, int] = (0, 1),
                batch_size: int | None = None):
        """Global batches (of `batch_size`, default the config's) from `start_batch` on;
        `shard` (i, n): the i-th of n workers' rows of each."""
        return data.make_dataset(self.simulator, seed=self.config.seed, stream=stream,
                                 batch_size=batch_size or self.config.batch_size, start_batch=start_batch,
                                 num_workers=self.config.data.num_workers, cache=self.cache(),
                                 scaler=self.scaler(), element=element, shard=shard)

    def stage1_dataset(self, start_batch: int, shard: tuple[int, int] = (0, 1)):
        return self.dataset("stage1", start_batch, shard=shard)

    def stage2_dataset(self, start_batch: int, shard: tuple[int, int] = (0, 1)):
        """x only, as in the paper, unless the latent term needs the simulated latents."""
        element = "x_and_targets" if self.config.stage2.latent_weight > 0 else "x"
        return self.dataset("stage2", start_batch, element=element, shard=shard)

    def figure_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The fixed (z, x) pairs that figures 1 and 2 and the image summaries show."""
        if self._figure_samples is None:
            self._figure_samples = data.physical_batch(self.simulator, self.config.seed, "figures",
                                                       self.config.eval.num_figure_samples)
        return self._figure_samples
