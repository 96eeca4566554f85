"""Posterior predictive checks through the real simulator S.

For each observation x: draw k latents from q(z | x), clip them to the ranges S is defined
on, simulate S(z_i), and compare with x. Alongside, the error split at the posterior mean:
inversion error |x - G(E(x))| (how well the encoder explains x through the surrogate) and
surrogate error |S(E(x)) - G(E(x))| (how well G stands in for S there). Errors are RMSE in
the observation's own units (images: pixel values in [0, 1]).
"""

from __future__ import annotations

import numpy as np

DEFAULT_DRAWS = 20


def _rmse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[B]: sqrt(mean((a - b)^2)) over each observation's elements."""
    difference = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.sqrt(np.mean(difference.reshape(len(difference), -1) ** 2, axis=1))


def resimulate(simulator, posterior, k: int = DEFAULT_DRAWS, seed: int = 0) -> np.ndarray:
    """S at k posterior draws per observation (clipped to the ranges): [B, k, *shape]; a
    stochastic simulator draws its noise from `seed` too."""
    from simvae_tf import data
    from simvae_tf.simulators import base

    draws = posterior.sample(k, seed)  # [B, k, K]
    flat_u = np.clip(base.normalize(simulator.latents, draws.reshape(-1, draws.shape[-1])), -1.0, 1.0)
    x = data.simulate_checked(simulator, base.denormalize(simulator.latents, flat_u), data.noise_rng(seed, "predictive"))
    return np.asarray(x, np.float32).reshape(draws.shape[:2] + tuple(simulator.output_spec.shape))


def check(simulator, pair, x: np.ndarray, posterior, k: int = DEFAULT_DRAWS, seed: int = 0) -> dict:
    """Per observation [B]: the RMSE of x against each re-simulation (its mean and 5/50/95%
    quantiles over the k draws), the inversion and surrogate errors, and the re-simulations
    themselves ("resimulated", [B, k, *shape], for figures)."""
    from simvae_tf import data

    x = np.asarray(x, np.float32)
    resimulated = resimulate(simulator, posterior, k, seed)
    errors = np.stack([_rmse(x, resimulated[:, i]) for i in range(k)], axis=1)  # [B, k]
    at_mean = posterior.clipped_mean()
    generated = pair.generate(at_mean)
    simulated = np.asarray(data.simulate_checked(simulator, at_mean, data.noise_rng(seed, "predictive_at_mean")),
                           np.float32).reshape(x.shape)
    return {
        "draws": k,
        "rmse_mean": errors.mean(axis=1),
        "rmse_q05": np.quantile(errors, 0.05, axis=1),
        "rmse_q50": np.quantile(errors, 0.5, axis=1),
        "rmse_q95": np.quantile(errors, 0.95, axis=1),
        "inversion_rmse": _rmse(x, generated),
        "surrogate_rmse": _rmse(simulated, generated),
        "resimulated": resimulated,
    }


def summary(result: dict, index: int) -> dict:
    """The JSON-able numbers of one observation."""
    return {key: (int(value) if key == "draws" else float(value[index])) for key, value in result.items()
            if key != "resimulated"}
