"""Bring your own simulator (physics, a weakly identifiable parameter): a ball thrown
through air, its drag quadratic in speed, integrated numerically and seen by a camera
as its position every 1/30 s for 2 s.

The drag coefficient k (the deceleration is k |v| v) moves the path by only 1-5% of its
size at these speeds: the other two latents dominate the output. Train from the
repository root:

    python -m simvae_tf.main --sim=examples.projectile:Projectile --workdir=runs/projectile
"""

import numpy as np
from scipy.integrate import solve_ivp

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator

GRAVITY = 9.81  # m/s^2


class Projectile(Simulator):
    name = "projectile"
    latents = (
        Latent("speed", 10.0, 30.0, unit="m/s"),
        Latent("angle", 20.0, 70.0, unit="deg"),
        Latent("drag", 5e-4, 5e-3, unit="1/m", scale="log"),
    )
    output_spec = OutputSpec(shape=(60, 2), kind="signal")
    channels = ("x_m", "y_m")
    times_s = np.arange(60) / 30.0  # starts at the launch point: (0, 0) whatever the latents

    def simulate(self, z):
        speed, angle, drag = np.asarray(z, np.float64).T
        n = len(speed)

        def motion(t, state):  # all n balls at once: [x, y, vx, vy] blocks of n
            vx, vy = state[2 * n:3 * n], state[3 * n:]
            v = np.hypot(vx, vy)
            return np.concatenate([vx, vy, -drag * v * vx, -GRAVITY - drag * v * vy])

        radians = np.radians(angle)
        start = np.concatenate([np.zeros(2 * n), speed * np.cos(radians), speed * np.sin(radians)])
        solution = solve_ivp(motion, (0.0, self.times_s[-1]), start, t_eval=self.times_s, rtol=1e-8, atol=1e-8)
        return np.stack([solution.y[:n], solution.y[n:2 * n]], axis=-1).astype(np.float32)
