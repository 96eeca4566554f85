"""The standardised shapes a calibrated posterior may take per latent, all with the Gaussian
as their member at the default parameter:

  Student-t, `dof` degrees of freedom (np.inf: the Gaussian): heavier tails than a Gaussian,
      for errors that are now and then far off (RLC's f0 and Q, polygon's vertex orders);
  generalised normal, `power` beta (2: the Gaussian; density ~ exp(-|z / sqrt 2|^beta)):
      lighter tails, for errors bounded by a quantisation (box's pixel-grid positions cover
      too little at 50% and too much at 95% under a Gaussian of any width).

A latent has one shape: a finite dof and a power other than 2 never go together. The
posterior is location + scale * (a draw of the shape); at dof = inf and power = 2 the scale
is the Gaussian's std. Pure numpy and scipy; the export has its TF twin of `draws`.
"""

from __future__ import annotations

import numpy as np

GAUSSIAN_DOF, GAUSSIAN_POWER = np.inf, 2.0
# Shapes a post-hoc calibration may choose, as (dof, power), the Gaussian first. dof 3 is the
# heaviest with a finite variance (a std to report); power 6 is already close to a uniform.
CANDIDATES = ((GAUSSIAN_DOF, GAUSSIAN_POWER),
              *((dof, GAUSSIAN_POWER) for dof in (30.0, 10.0, 7.0, 5.0, 4.0, 3.0)),
              *((GAUSSIAN_DOF, power) for power in (2.5, 3.0, 4.0, 6.0)))
GAUSSIAN_ONLY = ((GAUSSIAN_DOF, GAUSSIAN_POWER),)


def checked(dof, power, k: int) -> tuple[np.ndarray, np.ndarray]:
    """dof and power as float arrays [k] (scalars broadcast), validated: dof > 2 (a finite
    std), power > 0, and no latent both heavier- and lighter-tailed."""
    dof = np.broadcast_to(np.asarray(dof, np.float64), (k,)).copy()
    power = np.broadcast_to(np.asarray(power, np.float64), (k,)).copy()
    if np.any(dof <= 2):
        raise ValueError(f"dof {dof.tolist()} must exceed 2 (np.inf: Gaussian)")
    if np.any(~(power > 0)) or not np.all(np.isfinite(power)):
        raise ValueError(f"power {power.tolist()} must be finite and positive (2: Gaussian)")
    if np.any(np.isfinite(dof) & (power != GAUSSIAN_POWER)):
        raise ValueError(f"dof {dof.tolist()} and power {power.tolist()}: a latent is Student-t (finite dof) or "
                         "generalised normal (power != 2), not both")
    return dof, power


def std_factor(dof, power=GAUSSIAN_POWER) -> np.ndarray:
    """std / scale of each shape: sqrt(dof / (dof - 2)) for a Student-t,
    sqrt(2 Gamma(3/beta) / Gamma(1/beta)) for a generalised normal, 1 for the Gaussian."""
    from scipy import special

    dof, power = checked(dof, power, np.broadcast(np.asarray(dof), np.asarray(power)).size)
    t_factor = np.sqrt(dof / np.where(np.isinf(dof), 3.0, dof - 2.0))
    light_factor = np.sqrt(2.0 * np.exp(special.gammaln(3.0 / power) - special.gammaln(1.0 / power)))
    return np.where(np.isfinite(dof), t_factor, np.where(power == GAUSSIAN_POWER, 1.0, light_factor))


def cdf(z: np.ndarray, dof, power=GAUSSIAN_POWER) -> np.ndarray:
    """P(Z <= z) of the standardised shape per latent (last axis of z [..., k])."""
    from scipy import special

    z = np.asarray(z, np.float64)
    dof, power = checked(dof, power, z.shape[-1])
    dof, power = np.broadcast_to(dof, z.shape), np.broadcast_to(power, z.shape)
    light = 0.5 + 0.5 * np.sign(z) * special.gammainc(1.0 / power, (np.abs(z) / np.sqrt(2.0)) ** power)
    return np.where(power == GAUSSIAN_POWER, special.stdtr(dof, z), light)


def central_half_width(level, dof, power=GAUSSIAN_POWER) -> np.ndarray:
    """The half width of the central interval at `level` [L] of one standardised shape
    (scalars dof, power), [L]."""
    from scipy import special

    p = np.asarray(level, np.float64)
    if power == GAUSSIAN_POWER:
        return special.stdtrit(dof, 0.5 + p / 2.0)
    return np.sqrt(2.0) * special.gammaincinv(1.0 / power, p) ** (1.0 / power)


def draws(rng: np.random.Generator, gaussian: np.ndarray, dof, power, mixing_floor: float) -> np.ndarray:
    """Standardised draws [..., k] of each latent's shape, made from Gaussian ones (changed
    only where the shape is not Gaussian). Student-t: the Gaussian over sqrt(chi^2_dof /
    dof), the mixing floored at `mixing_floor`; generalised normal: the Gaussian's sign times
    sqrt(2) * Gamma(1/beta)^(1/beta)."""
    eps = np.array(gaussian, np.float64)
    dof, power = checked(dof, power, eps.shape[-1])
    heavy = np.flatnonzero(np.isfinite(dof))
    if len(heavy):
        mixing = rng.chisquare(dof[heavy], size=eps[..., heavy].shape) / dof[heavy]
        eps[..., heavy] /= np.sqrt(np.maximum(mixing, mixing_floor))
    light = np.flatnonzero(power != GAUSSIAN_POWER)
    if len(light):
        magnitude = rng.gamma(1.0 / power[light], size=eps[..., light].shape) ** (1.0 / power[light])
        eps[..., light] = np.sign(eps[..., light]) * np.sqrt(2.0) * magnitude
    return eps


def describe(dof: float | None, power: float | None) -> str:
    """One latent's shape in words (JSON values: null is the Gaussian's)."""
    if dof is not None:
        return f"Student-t, {dof:g} dof"
    if power is not None:
        return f"generalised normal, power {power:g}"
    return "Gaussian"


def to_json(values, gaussian: float) -> list[float | None]:
    """dof or power as JSON values: null where the latent is Gaussian in it."""
    return [None if v == gaussian else float(v) for v in np.asarray(values, np.float64)]


def from_json(values, gaussian: float, k: int | None = None) -> np.ndarray:
    """The inverse of `to_json`; values None (a record written before the parameter existed)
    gives k Gaussians."""
    if values is None:
        return np.full(k, gaussian, np.float64)
    return np.array([gaussian if v is None else v for v in values], np.float64)
