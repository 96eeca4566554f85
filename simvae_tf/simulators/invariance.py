"""Invariances seen from outside a simulator: the equivalent latent vectors of an
observation (its finite orbit or canonical form), in the networks' normalised coordinates,
and the choice of the equivalent answer nearest another. Stage 2's latent term and the
invariance-aware evaluation both use them."""

from __future__ import annotations

import numpy as np

from simvae_tf.simulators import base
from simvae_tf.simulators.base import Simulator


def latent_targets_of(simulator: Simulator, z_normalised: np.ndarray) -> np.ndarray:
    """Every latent vector that simulates to the same x as each row, normalised, [B, G, K]:
    the finite invariance orbit when the simulator declares one (polygon: 8 vertex orders),
    else the canonical form (G = 1; the identity without an invariance). Stage 2's latent
    term scores the encoder against the nearest of them, so it never has to average
    equivalent answers."""
    latents = simulator.latents
    z = base.denormalize(latents, np.asarray(z_normalised, dtype=np.float64))
    targets = normalized_orbit(simulator, z)
    if targets is None:
        targets = base.normalize(latents, simulator.canonicalize(z))[:, None]
    return targets.astype(np.float32)


def normalized_orbit(simulator: Simulator, z: np.ndarray) -> np.ndarray | None:
    """`simulator.orbit` of physical latents z [n, K], in the networks' normalised
    coordinates [n, G, K]; None without a finite invariance group."""
    orbit = simulator.orbit(z)
    if orbit is None:
        return None
    return base.normalize(simulator.latents, orbit.reshape(-1, orbit.shape[-1])).reshape(orbit.shape)


def nearest_equivalent(candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per row, the one of its G equivalent vectors candidates [n, G, K] nearest (Euclidean)
    to reference [n, K]."""
    nearest = np.argmin(((candidates - reference[:, None]) ** 2).sum(axis=-1), axis=1)
    return candidates[np.arange(len(candidates)), nearest]


def has_continuous_invariance(simulator: Simulator) -> bool:
    """An invariance without a finite orbit (RLC's scaling): the latents are not
    identifiable, only quantities invariant under it are."""
    return bool(simulator.has_invariance and simulator.orbit(simulator.sample_latents(np.random.default_rng(0), 1))
                is None)


def num_equivalent_latents(simulator: Simulator) -> int:
    """G of `latent_targets_of`: the size of a finite invariance group, else 1."""
    orbit = simulator.orbit(simulator.sample_latents(np.random.default_rng(0), 1))
    return 1 if orbit is None else orbit.shape[1]
