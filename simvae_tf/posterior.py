"""The amortized posterior q(z | x) of a batch of observations, in the simulator's units.

The encoder's posterior is a diagonal Gaussian in the networks' normalised coordinates
([-1, 1] per latent; log value for log-scale latents), so samples are drawn there and
mapped to physical units: a log-scale latent's posterior is log-normal. A trained run
(`Run.posterior`) and a loaded export (`load(...).posterior`) both return this class.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from simvae_tf.simulators import base


class Posterior:
    """q(z | x) for B observations over K latents.

    mean, std: [B, K] physical units (std of a log-scale latent by the delta method:
    value x sigma of the log); mean_normalized, log_std_normalized: [B, K], the Gaussian
    itself; sample(n, seed): [B, n, K] physical units. When the pair knows its reference
    distribution (`simvae_tf.misfit`): discrepancy [B], p_value [B] and atypical(level),
    whether each observation looks like the simulator's outputs at all."""

    def __init__(self, latents: Sequence[base.Latent], mean_normalized: np.ndarray, log_std_normalized: np.ndarray,
                 discrepancy: np.ndarray | None = None, p_value: np.ndarray | None = None):
        self.latents = tuple(latents)
        self.discrepancy = None if discrepancy is None else np.asarray(discrepancy, np.float64)
        self.p_value = None if p_value is None else np.asarray(p_value, np.float64)
        # Kept in the precision the networks gave (float32): the metrics are computed on it.
        self.mean_normalized = np.asarray(mean_normalized)
        self.log_std_normalized = np.asarray(log_std_normalized)
        if self.mean_normalized.shape != self.log_std_normalized.shape or self.mean_normalized.ndim != 2 \
                or self.mean_normalized.shape[1] != len(self.latents):
            raise ValueError(f"posterior parameters of shapes {self.mean_normalized.shape} and "
                             f"{self.log_std_normalized.shape} do not fit {len(self.latents)} latents")

    def atypical(self, level: float = 0.01) -> np.ndarray:
        """[B] bool: observations the simulator is unlikely to have produced (p < level)."""
        if self.p_value is None:
            raise ValueError("this posterior carries no misspecification score (its export predates it, or the "
                             "pair has no reference distribution)")
        return self.p_value < level

    def __len__(self) -> int:
        return len(self.mean_normalized)

    def __repr__(self) -> str:
        return f"Posterior({len(self)} observations, latents {', '.join(self.latent_names)})"

    @property
    def latent_names(self) -> list[str]:
        return [latent.name for latent in self.latents]

    @property
    def std_normalized(self) -> np.ndarray:
        return np.exp(self.log_std_normalized)

    @property
    def mean(self) -> np.ndarray:
        return base.denormalize(self.latents, self.mean_normalized)

    @property
    def std(self) -> np.ndarray:
        low, high, is_log = base.latent_bounds(self.latents)
        sigma = self.std_normalized * 0.5 * (high - low)
        return np.where(is_log, self.mean * sigma, sigma)

    def clipped_mean(self) -> np.ndarray:
        """The mean, clipped to the latent ranges the simulator accepts (to simulate it)."""
        return base.denormalize(self.latents, np.clip(self.mean_normalized, -1.0, 1.0))

    def sample_normalized(self, n: int, seed: int = 0) -> np.ndarray:
        """n draws per observation in normalised coordinates, [B, n, K]."""
        if not (isinstance(n, (int, np.integer)) and n >= 0):
            raise ValueError(f"n={n!r}: the number of samples must be a non-negative integer")
        eps = np.random.default_rng(seed).standard_normal((len(self), int(n), len(self.latents)))
        std = np.exp(self.log_std_normalized.astype(np.float64))
        return self.mean_normalized[:, None] + std[:, None] * eps

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n posterior draws per observation in physical units, [B, n, K] (seeded)."""
        return base.denormalize(self.latents, self.sample_normalized(n, seed))
