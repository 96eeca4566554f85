"""The amortized posterior q(z | x) of a batch of observations, in the simulator's units.

The encoder's posterior is a diagonal Gaussian in the networks' normalised coordinates
([-1, 1] per latent; log value for log-scale latents), so samples are drawn there and
mapped to physical units: a log-scale latent's posterior is log-normal. A trained run
(`Run.posterior`) and a loaded export (`load(...).posterior`) both return this class.

Under a continuous invariance declared as a direction (`Simulator.invariance_direction`,
RLC's scaling), the encoder's Gaussian sits at one arbitrary point of the line of latents
that all explain x. The posterior is then that Gaussian spread uniformly along the part of
the line inside the sampling ranges (the exact posterior along the orbit under the uniform
prior): draws cover the line, the mean is its centre and the std includes the spread, so no
latent the data leave free is presented as precisely known.

After a tail calibration (`std_calibration`, eval.posterior_tails) a latent's posterior may
have another shape (`tail_shapes`): a Student-t, `dof` [K] its degrees of freedom (np.inf:
Gaussian), or a lighter-tailed generalised normal, `power` [K] its exponent (2: Gaussian).
log_std_normalized is then the log of its scale (its std is scale * tail_shapes.std_factor).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from simvae_tf.simulators import base

# Student-t draws divide a Gaussian by sqrt(chi^2_dof / dof), floored here (the export does
# the same): a draw is at most ~32x a Gaussian one, so none overflows a log-scale latent's
# physical units, and the floor is reached with probability < 1e-4 at 3 dof.
T_MIXING_FLOOR = 1e-3


class Posterior:
    """q(z | x) for B observations over K latents.

    mean, std: [B, K] physical units (std of a log-scale latent by the delta method:
    value x sigma of the log); sample(n, seed): [B, n, K] physical units;
    mean_normalized, log_std_normalized: [B, K], the encoder's Gaussian in the networks'
    coordinates (the log of the scale for a Student-t or generalised normal latent); dof,
    power [K]: each latent's tail shape (`tail_shapes`; the defaults: Gaussian). With an
    `orbit_direction` [K] (normalised coordinates, a continuous invariance) the posterior
    adds a uniform offset along it (`orbit_range`), and mean, std, center_normalized,
    std_normalized and the draws include it. When the pair knows
    its reference distribution (`simvae_tf.misfit`): discrepancy [B], p_value [B] and
    atypical(level), whether each observation looks like the simulator's outputs at all.
    Categorical latents (`Latent(values=...)`): `probabilities` {name: [B, V]}; their
    columns of mean/mean_normalized hold the most probable value, of std the spread of
    the class distribution, and draws are categories drawn with those probabilities."""

    def __init__(self, latents: Sequence[base.Latent], mean_normalized: np.ndarray, log_std_normalized: np.ndarray,
                 discrepancy: np.ndarray | None = None, p_value: np.ndarray | None = None,
                 orbit_direction: np.ndarray | None = None, probabilities: dict[str, np.ndarray] | None = None,
                 dof: np.ndarray | None = None, power: np.ndarray | None = None):
        from simvae_tf import tail_shapes

        self.latents = tuple(latents)
        k = len(self.latents)
        dof = tail_shapes.from_json(dof, tail_shapes.GAUSSIAN_DOF, k)
        power = tail_shapes.from_json(power, tail_shapes.GAUSSIAN_POWER, k)
        if dof.shape != (k,) or power.shape != (k,):
            raise ValueError(f"dof {dof.tolist()} and power {power.tolist()} must hold one value per latent ({k})")
        self.dof, self.power = tail_shapes.checked(dof, power, k)
        self.std_factor = tail_shapes.std_factor(self.dof, self.power)  # [K]: std / scale
        self.probabilities = {name: np.asarray(p, np.float64) for name, p in (probabilities or {}).items()}
        categorical = [latent.name for latent in self.latents if latent.is_categorical]
        if sorted(self.probabilities) != sorted(categorical):
            raise ValueError(f"probabilities for {sorted(self.probabilities)} do not fit the categorical latents "
                             f"{categorical}")
        self.discrepancy = None if discrepancy is None else np.asarray(discrepancy, np.float64)
        self.p_value = None if p_value is None else np.asarray(p_value, np.float64)
        # Kept in the precision the networks gave (float32): the metrics are computed on it.
        self.mean_normalized = np.asarray(mean_normalized)
        self.log_std_normalized = np.asarray(log_std_normalized)
        self.orbit_direction = None if orbit_direction is None else np.asarray(orbit_direction, np.float64)
        if self.mean_normalized.shape != self.log_std_normalized.shape or self.mean_normalized.ndim != 2 \
                or self.mean_normalized.shape[1] != len(self.latents):
            raise ValueError(f"posterior parameters of shapes {self.mean_normalized.shape} and "
                             f"{self.log_std_normalized.shape} do not fit {len(self.latents)} latents")
        if self.orbit_direction is not None and self.orbit_direction.shape != (len(self.latents),):
            raise ValueError(f"orbit_direction of shape {self.orbit_direction.shape} does not fit "
                             f"{len(self.latents)} latents")

    def with_misfit(self, discrepancy: np.ndarray, p_value: np.ndarray) -> "Posterior":
        """The same posterior carrying each observation's misspecification score."""
        return Posterior(self.latents, self.mean_normalized, self.log_std_normalized, discrepancy, p_value,
                         self.orbit_direction, self.probabilities, self.dof, self.power)

    def __getitem__(self, rows) -> "Posterior":
        """The posterior of some observations (an index array, a slice or a mask)."""
        pick = (lambda a: None if a is None else a[rows])
        return Posterior(self.latents, self.mean_normalized[rows], self.log_std_normalized[rows],
                         pick(self.discrepancy), pick(self.p_value), self.orbit_direction,
                         {name: p[rows] for name, p in self.probabilities.items()}, self.dof, self.power)

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

    # -- the orbit of a continuous invariance ----------------------------------------------------
    @property
    def orbit_segment(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(base [B, K], low [B], high [B]): base + t * orbit_direction stays inside the
        sampling ranges for t in [low, high] (`invariance.orbit_segment` of the Gaussian's
        mean); None without an orbit."""
        if self.orbit_direction is None:
            return None
        from simvae_tf.simulators import invariance

        return invariance.orbit_segment(self.mean_normalized, self.orbit_direction)

    @property
    def orbit_range(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(low [B], high [B]) of `orbit_segment`."""
        return None if self.orbit_direction is None else self.orbit_segment[1:]

    @property
    def center_normalized(self) -> np.ndarray:
        """The posterior mean in normalised coordinates, [B, K]: the Gaussian's mean, or with
        an orbit the middle of its part inside the ranges."""
        if self.orbit_direction is None:
            return self.mean_normalized
        start, low, high = self.orbit_segment
        return (start + 0.5 * (low + high)[:, None] * self.orbit_direction).astype(np.float32)

    @property
    def std_normalized(self) -> np.ndarray:
        """The posterior std in normalised coordinates, [B, K]; with an orbit it adds the
        uniform spread along it: sqrt(sigma^2 + d^2 (high - low)^2 / 12)."""
        std = np.exp(self.log_std_normalized) * self.std_factor.astype(np.float32)
        if self.orbit_direction is None:
            return std
        low, high = self.orbit_range
        spread = (high - low)[:, None] * np.abs(self.orbit_direction) / np.sqrt(12.0)
        return np.sqrt(std.astype(np.float64) ** 2 + spread ** 2).astype(np.float32)

    # -- physical units ---------------------------------------------------------------------
    @property
    def mean(self) -> np.ndarray:
        return base.denormalize(self.latents, self.center_normalized)

    @property
    def std(self) -> np.ndarray:
        low, high, is_log = base.latent_bounds(self.latents)
        sigma = self.std_normalized * 0.5 * (high - low)
        return np.where(is_log, self.mean * sigma, sigma)

    def clipped_mean(self) -> np.ndarray:
        """The mean, clipped to the latent ranges the simulator accepts (to simulate it)."""
        return base.denormalize(self.latents, np.clip(self.center_normalized, -1.0, 1.0))

    def sample_normalized(self, n: int, seed: int = 0) -> np.ndarray:
        """n draws per observation in normalised coordinates, [B, n, K]."""
        if not (isinstance(n, (int, np.integer)) and n >= 0):
            raise ValueError(f"n={n!r}: the number of samples must be a non-negative integer")
        from simvae_tf import tail_shapes

        rng = np.random.default_rng(seed)
        eps = tail_shapes.draws(rng, rng.standard_normal((len(self), int(n), len(self.latents))), self.dof,
                                self.power, T_MIXING_FLOOR)
        std = np.exp(self.log_std_normalized.astype(np.float64))
        draws = self.mean_normalized[:, None] + std[:, None] * eps
        if self.orbit_direction is not None:
            start, low, high = self.orbit_segment
            offsets = low[:, None] + (high - low)[:, None] * rng.uniform(size=(len(self), int(n)))
            draws = start[:, None] + std[:, None] * eps + offsets[..., None] * self.orbit_direction
        for k, latent in enumerate(self.latents):
            if latent.is_categorical:
                cumulative = np.cumsum(self.probabilities[latent.name], axis=1)  # [B, V]
                picked = (rng.uniform(size=(len(self), int(n), 1)) * cumulative[:, None, -1:] >
                          cumulative[:, None, :]).sum(axis=-1)
                values_u = base.normalize([latent], np.asarray(latent.values)[:, None])[:, 0]
                draws[:, :, k] = values_u[np.minimum(picked, len(values_u) - 1)]
        return draws

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n posterior draws per observation in physical units, [B, n, K] (seeded)."""
        return base.denormalize(self.latents, self.sample_normalized(n, seed))
