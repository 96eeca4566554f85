"""A stochastic simulator whose exact posterior is known: sbibm's `gaussian_linear` task.

    theta ~ N(0, 0.1 I) in 10 dimensions,    x | theta ~ N(theta, 0.1 I)

so the posterior is Gaussian with mean x / 2 and covariance 0.05 I (in general
prior_var * noise_var / (prior_var + noise_var) per dimension, mean x * prior_var /
(prior_var + noise_var)). `benchmarks/stochastic.py` trains on it and compares the
encoder's posterior with the exact one.

simvae_tf's latents need ranges (the networks see them normalised to [-1, 1]): each
theta_i lives on [-5, 5] prior standard deviations, and `sample_latents` draws the
Gaussian prior truncated there (a draw beyond 5 standard deviations has probability 5.7e-7
per coordinate, 5.7e-6 for any of the 10: redrawn, and negligible for the posterior).
"""

import math

import numpy as np

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator

DIMENSIONS = 10
PRIOR_VARIANCE = 0.1
RANGE_IN_PRIOR_STDS = 5.0
_HALF_WIDTH = RANGE_IN_PRIOR_STDS * math.sqrt(PRIOR_VARIANCE)


class LinearGaussian(Simulator):
    name = "linear_gaussian"
    latents = tuple(Latent(f"theta{i}", -_HALF_WIDTH, _HALF_WIDTH) for i in range(DIMENSIONS))
    output_spec = OutputSpec(shape=(DIMENSIONS,), kind="signal")
    stochastic = True

    def __init__(self, noise_variance: float = 0.1):
        if not noise_variance > 0:
            raise ValueError(f"linear_gaussian: noise_variance={noise_variance!r}; use a number > 0")
        self.noise_variance = float(noise_variance)

    def sample_latents(self, rng: np.random.Generator, n: int) -> np.ndarray:
        theta = rng.normal(0.0, math.sqrt(PRIOR_VARIANCE), size=(n, DIMENSIONS))
        outside = np.abs(theta) > _HALF_WIDTH
        while outside.any():  # the truncated prior: redraw the (rare) values beyond the range
            theta[outside] = rng.normal(0.0, math.sqrt(PRIOR_VARIANCE), size=int(outside.sum()))
            outside = np.abs(theta) > _HALF_WIDTH
        return theta

    def simulate(self, z, rng):
        z = np.asarray(z, np.float64)
        return (z + rng.normal(0.0, math.sqrt(self.noise_variance), z.shape)).astype(np.float32)

    def exact_posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean [n, 10], std [n, 10]) of theta given x (the untruncated prior's; see above)."""
        shrink = PRIOR_VARIANCE / (PRIOR_VARIANCE + self.noise_variance)
        std = math.sqrt(PRIOR_VARIANCE * self.noise_variance / (PRIOR_VARIANCE + self.noise_variance))
        x = np.asarray(x, np.float64)
        return shrink * x, np.full(x.shape, std)
