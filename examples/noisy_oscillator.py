"""A stochastic simulator: the damped oscillator of `damped_oscillator.py` seen through a
noisy sensor (white Gaussian measurement noise of `noise_mm` per sample, 0.1 mm by default:
5-20% of the amplitude).

    python -m simvae_tf.main --sim=examples.noisy_oscillator:NoisyDampedOscillator \
        --workdir=runs/noisy_oscillator --config.stage2.latent_weight=100

A stochastic simulator sets `stochastic = True` and draws its noise from the seeded
generator `simulate` receives (never from global random state), so every sample is a pure
function of (seed, stream, index) and resumed runs see the same noise. Stage 1 then learns
the noise's spread along with the mean (export/generator: `spread`, `sample`), stage 2
scores x under that distribution, and the posterior widens with the noise.
"""

import numpy as np

from examples.damped_oscillator import DampedOscillator


class NoisyDampedOscillator(DampedOscillator):
    name = "noisy_damped_oscillator"
    stochastic = True

    def __init__(self, noise_mm: float = 0.1):
        if not noise_mm >= 0:
            raise ValueError(f"noisy_damped_oscillator: noise_mm={noise_mm!r}; use a number >= 0")
        self.noise_mm = float(noise_mm)

    def simulate(self, z, rng):
        x = super().simulate(z)
        return x + rng.normal(0.0, self.noise_mm, x.shape).astype(np.float32)
