"""Simulators that misbehave on purpose, loaded by the CLI as `--sim=faulty_sims:NAME`."""

import glob
import os
import time

import numpy as np

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator


class Pulse(Simulator):
    name = "pulse"
    latents = (Latent("centre", -1.0, 1.0), Latent("width", 0.05, 0.5, scale="log"))
    output_spec = OutputSpec(shape=(16,), kind="signal")

    def simulate(self, z):
        t = np.linspace(-1.5, 1.5, 16)
        return np.exp(-0.5 * ((t - z[:, :1]) / z[:, 1:]) ** 2).astype(np.float32)


class CrashingPulse(Pulse):
    """Fails on its 3rd call in each process (after the start-up probe and the scaler)."""

    calls = 0

    def simulate(self, z):
        type(self).calls += 1
        if type(self).calls >= 3:
            raise FloatingPointError("solver diverged")
        return super().simulate(z)


class HangingPulse(Pulse):
    """Hangs, before simulating, once $SIMVAE_TEST_HANG_AFTER="GLOB:N" matches N files (a job
    to kill at a known point); appends the size of each batch it simulates to
    $SIMVAE_TEST_CALLS_LOG (shared by worker processes: one short append per call)."""

    def simulate(self, z):
        hang = os.environ.get("SIMVAE_TEST_HANG_AFTER")
        if hang:
            pattern, count = hang.rsplit(":", 1)
            while len(glob.glob(pattern)) >= int(count):
                time.sleep(0.2)
        log = os.environ.get("SIMVAE_TEST_CALLS_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{len(z)}\n")
        return super().simulate(z)
