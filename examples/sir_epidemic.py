"""Bring your own simulator (biology): an SIR epidemic in a large population, stepped day
by day as epidemiologists often write it, observed as the fraction of people infectious
and recovered on each of 120 days.

Train from the repository root:

    python -m simvae_tf.main --sim=examples.sir_epidemic:SIREpidemic --workdir=runs/sir
"""

import numpy as np

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator


class SIREpidemic(Simulator):
    name = "sir_epidemic"
    latents = (
        Latent("R0", 1.3, 4.0),  # basic reproduction number
        Latent("infectious_days", 3.0, 12.0, unit="days", scale="log"),
        Latent("initially_infected", 1e-5, 1e-2, scale="log"),  # fraction of the population
    )
    output_spec = OutputSpec(shape=(120, 2), kind="signal")
    channels = ("infectious", "recovered")
    steps_per_day = 10

    def simulate(self, z):
        r0, days, infected = np.asarray(z, np.float64).T
        recovery = 1.0 / days
        susceptible, recovered = 1.0 - infected, np.zeros_like(infected)
        dt = 1.0 / self.steps_per_day
        out = np.empty((len(r0), 120, 2))
        for day in range(120):
            out[:, day] = np.stack([infected, recovered], axis=-1)
            for _ in range(self.steps_per_day):
                new_infections = r0 * recovery * susceptible * infected * dt
                new_recoveries = recovery * infected * dt
                susceptible = susceptible - new_infections
                infected = infected + new_infections - new_recoveries
                recovered = recovered + new_recoveries
        return out.astype(np.float32)
