"""A stochastic simulator: the RLC circuit's Bode plot (simvae_tf/simulators/rlc.py) as a
network analyser measures it, with independent Gaussian measurement noise of `noise_db` on
each gain point (0.5 dB by default) and `noise_rad` on each phase point (0.05 rad, about
3 degrees).

    python -m simvae_tf.main --sim=examples.noisy_rlc:NoisyRLC --workdir=runs/noisy_rlc \
        --config=configs/rlc.py --config.simulator.backend=closed_form

Everything else (latents, ranges, the (R/s, L/s, C s) invariance, f0 and Q) is the RLC
simulator's. The noise comes from the seeded generator `simulate` receives, so the cached
dataset, resumed runs and every evaluation stream are reproducible.
"""

import numpy as np

from simvae_tf.simulators.rlc import DEFAULT_CIRCUITS_PER_RUN, RLCSimulator


class NoisyRLC(RLCSimulator):
    name = "noisy_rlc"
    stochastic = True

    def __init__(self, backend: str = "ngspice", circuits_per_run: int = DEFAULT_CIRCUITS_PER_RUN,
                 invariance_scale_max: float = 10.0, noise_db: float = 0.5, noise_rad: float = 0.05):
        super().__init__(backend, circuits_per_run, invariance_scale_max)
        for label, value in (("noise_db", noise_db), ("noise_rad", noise_rad)):
            if not value >= 0:
                raise ValueError(f"noisy_rlc: {label}={value!r}; use a number >= 0")
        self.noise_db, self.noise_rad = float(noise_db), float(noise_rad)

    def simulate(self, z, rng):
        x = super().simulate(z)
        noise = rng.standard_normal(x.shape) * np.array([self.noise_db, self.noise_rad])  # channels: gain, phase
        return (x + noise).astype(np.float32)
