"""The data of one run: its materialised samples (`data.cache_size`), the output
standardisation of signals, and the seeded streams each stage and figure reads.

Files live in the run's workdir (`data/`, `output_scaler.json`), so a resumed run reuses
them; every stream is a pure function of (seed, stream name, batch index).
"""

from __future__ import annotations

import os

import numpy as np

from simvae_tf import data
from simvae_tf.files import read_json, write_json
from simvae_tf.simulators.base import Simulator


class TrainingData:
    def __init__(self, simulator: Simulator, config, directory: str, verbose: int = 1):
        self.simulator = simulator
        self.config = config
        self.directory = directory
        self.verbose = verbose
        self._cache = None
        self._scaler = None
        self._figure_samples = None

    def cache(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.config.data.cache_size > 0 and self._cache is None:
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

    def dataset(self, stream: str, start_batch: int, element: str = "z_and_x", shard: tuple[int, int] = (0, 1)):
        """Global batches from `start_batch` on; `shard` (i, n): the i-th of n workers' rows of each."""
        return data.make_dataset(self.simulator, seed=self.config.seed, stream=stream,
                                 batch_size=self.config.batch_size, start_batch=start_batch,
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
