"""What every scorer reads: the simulator, the pair, the evaluation samples (V, X) and
the posterior of X, computed once."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from simvae_tf import data, metrics
from simvae_tf.posterior import Posterior
from simvae_tf.simulators import base


@dataclasses.dataclass
class EvaluationSamples:
    simulator: base.Simulator
    pair: object  # pair.TrainedPair or export.ExportedPair
    eval_config: object  # the config's `eval` block
    seed: int

    @property
    def num_samples(self) -> int:
        return self.eval_config.num_samples

    @property
    def num_bins(self) -> int:
        return self.eval_config.num_bins

    @property
    def discrete(self) -> list[bool]:
        return [latent.discrete for latent in self.simulator.latents]

    @property
    def mig_factors(self):
        return self.simulator.mig_factors

    @functools.cached_property
    def _v_and_x(self) -> tuple[np.ndarray, np.ndarray]:
        return data.physical_batch(self.simulator, self.seed, "evaluation", self.num_samples)

    @property
    def v(self) -> np.ndarray:
        """The simulator inputs, physical units [n, K]."""
        return self._v_and_x[0]

    @property
    def x(self) -> np.ndarray:
        return self._v_and_x[1]

    @functools.cached_property
    def posterior(self) -> Posterior:
        return self.pair.posterior(self.x)

    @functools.cached_property
    def z(self) -> np.ndarray:
        """The answer in physical units, inside the latent ranges (clipped mean)."""
        return self.posterior.clipped_mean()

    @functools.cached_property
    def z_u(self) -> np.ndarray:
        return base.normalize(self.simulator.latents, self.z)

    @functools.cached_property
    def v_u(self) -> np.ndarray:
        return base.normalize(self.simulator.latents, self.v)

    @functools.cached_property
    def model_mim(self) -> np.ndarray:
        """MIM(Z, V), binned in the networks' coordinates (log value for log-scale
        latents), where the sampling is uniform; equal-width bins of a log-uniform value
        would be useless."""
        return metrics.mutual_information_matrix(self.z_u, self.v_u, self.num_bins, discrete_v=self.discrete)

    def figure_samples(self) -> tuple[np.ndarray, np.ndarray]:
        return data.physical_batch(self.simulator, self.seed, "figures", self.eval_config.num_figure_samples)
