"""Does an observation look like anything the simulator makes? A misspecification score.

The statistic is the surrogate's reconstruction discrepancy D[x, G(E(x))] (the stage-1
loss at the posterior mean, clipped to the trained ranges): small for inputs like the
training simulations, large for inputs the simulator cannot produce. Its distribution on
held-out simulations (stream "reference", never used in training or evaluation) is
stored with the export; an input's p-value is the fraction of reference inputs at least
as discrepant: (1 + #{reference >= d}) / (1 + n), so p < 0.01 on 1% of fresh simulated
inputs by construction, and on most inputs from elsewhere.
"""

from __future__ import annotations

import numpy as np

REFERENCE_STREAM = "reference"
STATISTIC = "D[x, G(E(x))]: the stage-1 discrepancy of the surrogate at the posterior mean (clipped to the ranges)"
ALARM_LEVEL = 0.01


def discrepancy_at_posterior(pair, x: np.ndarray, posterior) -> np.ndarray:
    """D[x, G(E(x))] per observation, [B]."""
    return np.asarray(pair.discrepancy(posterior.clipped_mean(), x), np.float64)


def scored(pair, x: np.ndarray, posterior):
    """The posterior with each observation's discrepancy and p-value, when the pair has a
    reference distribution (`pair.misfit_reference`); as it is otherwise."""
    reference = pair.misfit_reference
    if reference is None or len(posterior) == 0:
        return posterior
    d = discrepancy_at_posterior(pair, x, posterior)
    return posterior.with_misfit(d, p_values(reference, d))


def reference_discrepancies(simulator, pair, seed: int, n: int) -> np.ndarray:
    """The statistic on n held-out simulations, sorted ascending."""
    from simvae_tf import data

    _, x = data.physical_batch(simulator, seed, REFERENCE_STREAM, n)
    return np.sort(discrepancy_at_posterior(pair, x, pair.posterior(x, score_misfit=False)))


def p_values(reference_sorted: np.ndarray, discrepancy: np.ndarray) -> np.ndarray:
    """One-sided upper-tail p-values of each discrepancy against the sorted reference."""
    reference_sorted = np.asarray(reference_sorted, np.float64)
    at_least = len(reference_sorted) - np.searchsorted(reference_sorted, np.asarray(discrepancy, np.float64),
                                                       side="left")
    return (1.0 + at_least) / (1.0 + len(reference_sorted))


def verdict(p_value: float, level: float = ALARM_LEVEL) -> str:
    """In words, for reports."""
    if p_value < level:
        return f"atypical for this simulator (p = {p_value:.2g}): the posterior is an extrapolation"
    return f"typical of the simulator's outputs (p = {p_value:.2g})"


def to_metadata(reference_sorted: np.ndarray, seed: int) -> dict:
    return {"statistic": STATISTIC, "stream": REFERENCE_STREAM, "seed": int(seed), "samples": int(len(reference_sorted)),
            "reference": [float(f"{v:.6g}") for v in reference_sorted]}


def from_metadata(metadata: dict) -> np.ndarray | None:
    block = metadata.get("misspecification")
    if not isinstance(block, dict) or not block.get("reference"):
        return None
    return np.sort(np.asarray(block["reference"], np.float64))
