"""One scorer for every method of benchmarks/peers/compare.py: posterior draws in simvae_tf's
normalised coordinates ([-1, 1], log value for log-scale latents) against the true latents
of the shared test set, with simvae_tf's own metric functions.

Simulators with a continuous invariance (RLC: only f0 and Q are determined) are scored on
their derived quantities, over the simulator's validity region; the others per latent.
  recovery: the posterior mean (of the draws, in normalised coordinates) as the estimate;
            derived quantities: slope and R^2 of the line estimate ~ truth
            (`metrics.fit_slope`, as metrics.json's `derived`) and the median relative
            error; latents: R^2 in normalised coordinates (`metrics.r2_per_latent`);
  coverage: the fraction of truths inside the central 68% / 95% interval of the draws
            (`calibration.sample_pit` -> `expected_coverage`; derived quantities in log).
"""

from __future__ import annotations

import numpy as np

from simvae_tf import calibration, metrics
from simvae_tf.simulators import base, invariance

COVERAGE_LEVELS = (0.68, 0.95)


def score(simulator, z_true: np.ndarray, draws_u: np.ndarray, seed: int = 0) -> dict:
    """z_true [n, K] physical units; draws_u [n, S, K] normalised coordinates."""
    draws_u = np.asarray(draws_u, np.float64)
    if draws_u.ndim != 3 or draws_u.shape[0] != len(z_true) or draws_u.shape[2] != simulator.num_latents:
        raise ValueError(f"draws of shape {draws_u.shape} do not fit {len(z_true)} observations of "
                         f"{simulator.num_latents} latents; expected [n, draws, K]")
    if invariance.has_continuous_invariance(simulator):
        return _derived_scores(simulator, np.asarray(z_true, np.float64), draws_u, seed)
    return _latent_scores(simulator, np.asarray(z_true, np.float64), draws_u, seed)


def _coverage(pit: np.ndarray, names: list[str]) -> dict:
    covered = calibration.expected_coverage(pit, COVERAGE_LEVELS)  # [levels, Q]
    return {name: {str(level): float(covered[i, q]) for i, level in enumerate(COVERAGE_LEVELS)}
            for q, name in enumerate(names)}


def _latent_scores(simulator, z_true, draws_u, seed) -> dict:
    names = simulator.latent_names
    truth_u = base.normalize(simulator.latents, z_true).astype(np.float64)
    r2 = metrics.r2_per_latent(truth_u, draws_u.mean(axis=1))
    pit = calibration.sample_pit(truth_u, draws_u, seed=seed)
    return {"scored_on": "latents (normalised coordinates)", "observations": len(z_true),
            "recovery": {name: {"r2": float(r2[k])} for k, name in enumerate(names)},
            "coverage": _coverage(pit, names),
            "median_posterior_std": {name: float(np.median(draws_u[:, :, k].std(axis=1))) for k, name in enumerate(names)}}


def _derived_scores(simulator, z_true, draws_u, seed) -> dict:
    mask = simulator.validity_mask(z_true)
    z_true, draws_u = z_true[mask], draws_u[mask]
    n, num_draws, k = draws_u.shape
    truth = simulator.derived_quantities(z_true)
    estimate = simulator.derived_quantities(base.denormalize(simulator.latents, draws_u.mean(axis=1)))
    sampled = simulator.derived_quantities(base.denormalize(simulator.latents, draws_u.reshape(-1, k)))
    names = list(truth)
    recovery, log_truth, log_draws = {}, [], []
    for name in names:
        slope, _, r2 = metrics.fit_slope(truth[name], estimate[name])
        relative_error = np.abs(estimate[name] / truth[name] - 1.0)
        recovery[name] = {"slope": slope, "r2": r2, "median_relative_error": float(np.median(relative_error))}
        log_truth.append(np.log(truth[name]))
        log_draws.append(np.log(sampled[name]).reshape(n, num_draws))
    log_draws = np.stack(log_draws, axis=2)
    pit = calibration.sample_pit(np.stack(log_truth, axis=1), log_draws, seed=seed)
    return {"scored_on": "derived quantities over the validity region", "observations": int(n),
            "recovery": recovery, "coverage": _coverage(pit, names),
            "median_posterior_std": {name: float(np.median(log_draws[:, :, q].std(axis=1)))
                                     for q, name in enumerate(names)}}
