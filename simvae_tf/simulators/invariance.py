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
    if simulator.invariance_direction is not None:
        return True
    return bool(simulator.has_invariance and simulator.orbit(simulator.sample_latents(np.random.default_rng(0), 1))
                is None)


def normalized_direction(latents, direction) -> np.ndarray | None:
    """A declared `Simulator.invariance_direction` (affine coordinates: value, or log value
    for log-scale latents) in the networks' [-1, 1] coordinates, as a unit vector [K];
    None when none is declared."""
    if direction is None:
        return None
    low, high, _ = base.latent_bounds(latents)
    direction = np.asarray(direction, np.float64)
    if direction.shape != (len(latents),) or not np.all(np.isfinite(direction)) or not np.any(direction):
        raise ValueError(f"invariance_direction={direction.tolist()} must hold one finite number per latent "
                         f"({len(latents)}), not all zero")
    scaled = direction * 2.0 / (high - low)
    return (scaled / np.linalg.norm(scaled)).astype(np.float32)


def orbit_segment(point_u: np.ndarray, direction_u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The part of each orbit line the prior allows: (base [B, K], low [B], high [B]) such
    that base + t * direction_u lies inside the sampling ranges [-1, 1]^K for t in
    [low, high]. The base is point_u [B, K] itself (latents the direction leaves alone
    clipped): a point outside the ranges is moved along its own orbit, never off it.
    Where the line misses the ranges altogether, the base is the clipped point."""
    direction = np.asarray(direction_u, np.float64)
    moving = direction != 0
    point = np.asarray(point_u, np.float64)
    base = np.where(moving, point, np.clip(point, -1.0, 1.0))

    def segment(p):
        to_lower = (-1.0 - p[:, moving]) / direction[moving]
        to_upper = (1.0 - p[:, moving]) / direction[moving]
        return np.minimum(to_lower, to_upper).max(axis=1), np.maximum(to_lower, to_upper).min(axis=1)

    low, high = segment(base)
    missed = low > high
    if missed.any():
        base[missed] = np.clip(point[missed], -1.0, 1.0)
        low[missed], high[missed] = (a[missed] for a in segment(base))
    return base, low, high


def num_equivalent_latents(simulator: Simulator) -> int:
    """G of `latent_targets_of`: the size of a finite invariance group, else 1."""
    orbit = simulator.orbit(simulator.sample_latents(np.random.default_rng(0), 1))
    return 1 if orbit is None else orbit.shape[1]


def derived_truth_and_draws(simulator, v: np.ndarray, draws: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The derived quantities of the true latents v [n, K] and of posterior draws [n, S, K]:
    (names, truth [n, Q], drawn [n, S, Q]), as log values where positive (where the
    posterior of a product of log-normal latents is close to Gaussian). Draws are not
    clipped to the ranges: clipping moves a draw off its orbit and changes the very
    quantities the orbit leaves alone."""
    truth_by_name = simulator.derived_quantities(v)
    drawn_by_name = simulator.derived_quantities(draws.reshape(-1, draws.shape[-1]))
    names = list(truth_by_name)
    truth = np.stack([np.asarray(truth_by_name[q], np.float64) for q in names], axis=1)
    drawn = np.stack([np.asarray(drawn_by_name[q], np.float64).reshape(draws.shape[:2]) for q in names], axis=2)
    positive = np.all(truth > 0, axis=0) & np.all(drawn > 0, axis=(0, 1))
    truth = np.where(positive, np.log(np.where(positive, truth, 1.0)), truth)
    drawn = np.where(positive, np.log(np.where(positive, drawn, 1.0)), drawn)
    return names, truth, drawn
