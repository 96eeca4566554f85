"""Calibration of a posterior against known truths: pure numpy functions, no models.

A posterior is calibrated when the truth is a draw from it: then its probability integral
transform (PIT: the posterior CDF at the truth) is uniform on [0, 1], and every central
credible interval at level a holds the truth a fraction a of the time (simulation-based
calibration, Talts et al. 2018; ECDF bands of Saeilynoja et al. 2022). Two ways in:

  Gaussian posteriors (the encoder's, in normalised coordinates): `gaussian_pit`, closed form;
  Student-t and generalised normal posteriors (the encoder's after a tail calibration,
  `tail_shapes`): `shaped_pit`, closed form;
  any posterior given by samples (e.g. a derived quantity such as RLC's f0 computed from
  posterior draws): `sample_pit`.

From PIT values [n, Q] (Q quantities) everything else follows: `rank_histogram`,
`ecdf_difference` with `simultaneous_ecdf_band`, `expected_coverage` (the central interval
at level a holds the truth iff |PIT - 1/2| <= a/2). `z_scores` and `contraction` are the
two numbers of BayesFlow's z-score / contraction plot.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from simvae_tf import tail_shapes

COVERAGE_LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 ... 0.95
REPORTED_LEVELS = (0.5, 0.68, 0.9, 0.95)
ECDF_GRID = np.linspace(0.0, 1.0, 101)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(np.asarray(x, np.float64) / math.sqrt(2.0)))


def gaussian_pit(truth: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Phi((truth - mean) / std) elementwise, [n, Q]."""
    truth, mean, std = (np.asarray(a, np.float64) for a in (truth, mean, std))
    if not truth.shape == mean.shape == std.shape:
        raise ValueError(f"truth {truth.shape}, mean {mean.shape} and std {std.shape} must have the same shape")
    if np.any(std <= 0):
        raise ValueError("std must be positive")
    return normal_cdf((truth - mean) / std)


def shaped_pit(truth: np.ndarray, mean: np.ndarray, scale: np.ndarray, dof=tail_shapes.GAUSSIAN_DOF,
               power=tail_shapes.GAUSSIAN_POWER) -> np.ndarray:
    """The CDF at the truth [n, Q] of a posterior with location `mean`, scale `scale` and
    per quantity a tail shape (`tail_shapes`: Student-t dof [Q], generalised normal power
    [Q]; the defaults give `gaussian_pit`)."""
    truth, mean, scale = (np.asarray(a, np.float64) for a in (truth, mean, scale))
    if not truth.shape == mean.shape == scale.shape:
        raise ValueError(f"truth {truth.shape}, mean {mean.shape} and scale {scale.shape} must have the same shape")
    if np.any(scale <= 0):
        raise ValueError("scale must be positive")
    return tail_shapes.cdf((truth - mean) / scale, dof, power)


def sample_pit(truth: np.ndarray, samples: np.ndarray, seed: int = 0) -> np.ndarray:
    """The fraction of posterior samples [n, S, Q] below the truth [n, Q]; ties (a posterior
    collapsed on the truth) are split at random, so that a calibrated posterior still gives
    uniform values."""
    truth, samples = np.asarray(truth, np.float64), np.asarray(samples, np.float64)
    if samples.ndim != 3 or samples.shape[::2] != truth.shape:
        raise ValueError(f"samples {samples.shape} must be [n, S, Q] for truth {truth.shape} [n, Q]")
    below = np.mean(samples < truth[:, None], axis=1)
    ties = np.mean(samples == truth[:, None], axis=1)
    return below + ties * np.random.default_rng(seed).uniform(size=below.shape)


def rank_histogram(pit: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Counts of PIT values per equal bin of [0, 1], [num_bins, Q]; flat when calibrated."""
    pit = np.atleast_2d(np.asarray(pit, np.float64).T).T
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    return np.stack([np.histogram(np.clip(pit[:, q], 0.0, 1.0), edges)[0] for q in range(pit.shape[1])], axis=1)


def ecdf(pit: np.ndarray, grid: np.ndarray = ECDF_GRID) -> np.ndarray:
    """The empirical CDF of each column of pit [n, Q] on grid [G]: [G, Q]."""
    pit = np.sort(np.asarray(pit, np.float64), axis=0)
    return np.stack([np.searchsorted(pit[:, q], grid, side="right") / len(pit) for q in range(pit.shape[1])], axis=1)


def ecdf_difference(pit: np.ndarray, grid: np.ndarray = ECDF_GRID) -> np.ndarray:
    """ECDF(grid) - grid, [G, Q]: zero for a calibrated posterior, above zero where the truth
    falls low in the posterior (overestimates), an S-shape when the posterior is too narrow."""
    return ecdf(pit, grid) - np.asarray(grid)[:, None]


def simultaneous_ecdf_band(n: int, grid: np.ndarray = ECDF_GRID, confidence: float = 0.95,
                           num_simulations: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) [G] of ECDF(grid) - grid that n uniform values stay inside at every
    grid point at once with probability `confidence`. Pointwise quantile bands of
    simulated uniform ECDFs, widened until the simultaneous coverage is reached."""
    rng = np.random.default_rng([seed, n])
    simulated = ecdf(rng.uniform(size=(n, num_simulations)), grid) - np.asarray(grid)[:, None]  # [G, M]
    lower, upper = np.zeros(len(grid)), np.zeros(len(grid))
    for pointwise in np.linspace(confidence, 1.0, 201):
        lower = np.quantile(simulated, (1.0 - pointwise) / 2.0, axis=1)
        upper = np.quantile(simulated, (1.0 + pointwise) / 2.0, axis=1)
        inside = np.all((simulated >= lower[:, None] - 1e-12) & (simulated <= upper[:, None] + 1e-12), axis=0)
        if inside.mean() >= confidence:
            break
    return lower, upper


def outside_band(pit: np.ndarray, confidence: float = 0.95, seed: int = 0) -> np.ndarray:
    """Per quantity [Q], whether its ECDF difference leaves the simultaneous band anywhere:
    the calibration test at level 1 - confidence."""
    difference = ecdf_difference(pit)
    lower, upper = simultaneous_ecdf_band(len(pit), confidence=confidence, seed=seed)
    return np.any((difference < lower[:, None] - 1e-12) | (difference > upper[:, None] + 1e-12), axis=0)


def expected_coverage(pit: np.ndarray, levels: Sequence[float] = COVERAGE_LEVELS) -> np.ndarray:
    """Empirical coverage of the central credible interval at each level, [L, Q]; the
    diagonal (coverage == level) when calibrated, below it when overconfident."""
    distance = np.abs(np.asarray(pit, np.float64) - 0.5)
    return np.stack([np.mean(distance <= level / 2.0, axis=0) for level in levels])


def z_scores(truth: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(mean - truth) / std, [n, Q]: mean 0 and std 1 when calibrated."""
    return (np.asarray(mean, np.float64) - np.asarray(truth, np.float64)) / np.asarray(std, np.float64)


def contraction(std: np.ndarray, prior_std: np.ndarray | float) -> np.ndarray:
    """1 - posterior variance / prior variance, [n, Q]: 1 when the data pin a quantity
    down, 0 when they teach nothing about it."""
    return 1.0 - (np.asarray(std, np.float64) / np.asarray(prior_std, np.float64)) ** 2


def max_coverage_error(pit: np.ndarray, levels: Sequence[float] = REPORTED_LEVELS) -> float:
    """The largest distance of the empirical coverage from nominal, over `levels` and the
    quantities of pit [n, Q]."""
    return float(np.max(np.abs(expected_coverage(pit, levels) - np.asarray(levels)[:, None])))


def fit_scales_by_search(coverage_error, num_scales: int, grid: np.ndarray = np.geomspace(1.0 / 32.0, 8.0, 81),
                         sweeps: int = 2, start: np.ndarray | None = None) -> np.ndarray:
    """Factors [num_scales] minimising `coverage_error(scales)` by coordinate search over
    `grid` (starting at `start`, default 1; ties go to the factor nearest the start): a grid
    search for one factor. For posteriors scored through functions of several latents
    (derived quantities), where no closed form separates them."""
    scales = np.ones(num_scales) if start is None else np.array(start, np.float64)
    best = coverage_error(scales)
    for _ in range(sweeps):
        for k in range(num_scales):
            order = np.argsort(np.abs(np.log(grid / scales[k])), kind="stable")  # nearest first: ties keep it
            for candidate in grid[order]:
                trial = scales.copy()
                trial[k] = candidate
                error = coverage_error(trial)
                if error < best - 1e-12:
                    best, scales = error, trial
    return scales


def fit_std_scale(truth: np.ndarray, mean: np.ndarray, std: np.ndarray, levels: Sequence[float] = REPORTED_LEVELS,
                  grid: np.ndarray = np.geomspace(0.25, 4.0, 161)) -> np.ndarray:
    """Per quantity [Q], the factor s on the posterior std whose central intervals cover the
    truth closest to nominal at `levels` (the largest miss, minimised over a grid of s; ties
    go to the s nearest 1). A post-hoc recalibration of a Gaussian posterior's width: it
    leaves the mean alone, so recovery is unchanged."""
    return fit_scale_and_tail(truth, mean, std, levels, grid, shapes=tail_shapes.GAUSSIAN_ONLY)[0]


# A tail shape other than the Gaussian is chosen only when it lowers the largest coverage
# miss by more than this: coverage measured on ~2,000 held-out simulations has a sampling
# error of about 0.01, and a Gaussian is the simpler answer.
TAIL_MIN_GAIN = 0.01


def fit_scale_and_tail(truth: np.ndarray, mean: np.ndarray, std: np.ndarray, levels: Sequence[float] = REPORTED_LEVELS,
                       grid: np.ndarray = np.geomspace(0.25, 4.0, 161),
                       shapes=tail_shapes.CANDIDATES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per quantity [Q], (s, dof, power): the posterior becomes location `mean`, scale
    s * std and the tail shape (dof, power) of `shapes` (`tail_shapes`), chosen so that its
    central intervals cover the truth closest to nominal at `levels`. `fit_std_scale` with a
    tail shape too: a width factor alone cannot fix errors whose tails are heavier than a
    Gaussian's (too wide at 50% and too narrow at 95% at once) or lighter (the reverse). The
    shape stays the Gaussian (the first of `shapes`) unless another gains more than
    TAIL_MIN_GAIN."""
    z = np.abs(np.asarray(truth, np.float64) - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)  # [n, Q]
    levels = np.asarray(levels, np.float64)
    order = np.argsort(np.abs(np.log(grid)), kind="stable")  # nearest 1 first: ties keep it
    scales = np.ones(z.shape[1])
    dofs, powers = np.full(z.shape[1], tail_shapes.GAUSSIAN_DOF), np.full(z.shape[1], tail_shapes.GAUSSIAN_POWER)
    for q in range(z.shape[1]):
        best_miss = np.inf
        for dof, power in shapes:
            half_widths = tail_shapes.central_half_width(levels, dof, power)  # [L]
            # coverage[s, l] = P(|z| <= s * half_width[l])
            covered = np.mean(z[:, q][None, None, :] <= grid[:, None, None] * half_widths[None, :, None], axis=2)
            miss = np.max(np.abs(covered - levels[None, :]), axis=1)[order]
            needed = 0.0 if np.isinf(best_miss) else TAIL_MIN_GAIN
            if miss.min() < best_miss - needed:
                best_miss, scales[q], dofs[q], powers[q] = miss.min(), grid[order][np.argmin(miss)], dof, power
    return scales, dofs, powers


# -- categorical posteriors ----------------------------------------------------------------------
def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, num_bins: int = 10) -> float:
    """ECE of class probabilities [n, V] against true class indices [n] (Guo et al. 2017):
    predictions binned by their confidence (the largest probability) into equal bins of
    [0, 1]; the bins' |accuracy - mean confidence|, weighted by their share of predictions.
    0 when a class said with probability p is right a fraction p of the time."""
    probabilities, truth = np.asarray(probabilities, np.float64), np.asarray(truth)
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    correct = predicted == truth
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    error = 0.0
    for b in range(num_bins):
        members = bins == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)
