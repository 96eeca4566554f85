"""Bring your own simulator (biology, an ODE integrated numerically): predator and prey
populations of the Lotka-Volterra model, the textbook case of simulation-based inference.

    prey' = a prey - b prey predators,    predators' = -c predators + d prey predators

from 30 prey and 10 predators, observed every 4 months for 16 years. solve_ivp steps the
whole batch together (one system of 2n equations, far faster than n calls), so a sample
moves by ~1e-5 of the populations' scale with the batch it is in: far below what the
networks resolve. Train from the repository root:

    python -m simvae_tf.main --sim=examples.lotka_volterra:LotkaVolterra --workdir=runs/lotka_volterra
"""

import numpy as np
from scipy.integrate import solve_ivp

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator


class LotkaVolterra(Simulator):
    name = "lotka_volterra"
    latents = (
        Latent("prey_growth", 0.5, 1.5, unit="1/yr", scale="log"),  # a
        Latent("predation", 0.02, 0.08, unit="1/yr", scale="log"),  # b, per predator
        Latent("predator_death", 0.5, 1.5, unit="1/yr", scale="log"),  # c
        Latent("conversion", 0.01, 0.05, unit="1/yr", scale="log"),  # d, per prey
    )
    output_spec = OutputSpec(shape=(48, 2), kind="signal")
    channels = ("prey", "predators")
    years = np.linspace(0.0, 16.0, 48)

    def simulate(self, z):
        a, b, c, d = np.asarray(z, np.float64).T

        def rates(t, y):  # all n systems at once: y = [prey_1..prey_n, predators_1..predators_n]
            prey, predators = np.split(y, 2)
            return np.concatenate([a * prey - b * prey * predators, -c * predators + d * prey * predators])

        start = np.concatenate([np.full(len(a), 30.0), np.full(len(a), 10.0)])
        solution = solve_ivp(rates, (0.0, 16.0), start, t_eval=self.years, rtol=1e-6, atol=1e-6)
        prey, predators = np.split(solution.y, 2)  # [n, 48] each
        return np.stack([prey, predators], axis=-1).astype(np.float32)
