"""Post-hoc calibration of the posterior's width: one factor per latent on the encoder's
std, fitted on held-out simulations (stream "std_calibration", used nowhere else) so that
central credible intervals cover the truth at their nominal levels
(`calibration.fit_std_scale`). The posterior mean is untouched, so recovery metrics do not
move. Latents the data cannot determine keep factor 1: discrete ones, and all of them under
a continuous invariance (RLC), where there is no true latent to cover."""

from __future__ import annotations

import numpy as np

STREAM = "std_calibration"


def fit(simulator, pair, seed: int, n: int) -> tuple[np.ndarray, str]:
    """(scale [K], how it was fitted, in words)."""
    from simvae_tf import calibration, data
    from simvae_tf.simulators import base, invariance

    scale = np.ones(simulator.num_latents)
    if invariance.has_continuous_invariance(simulator):
        return scale, "not fitted: a continuous invariance leaves the latents undetermined"
    v, x = data.physical_batch(simulator, seed, STREAM, n)
    v_u = base.normalize(simulator.latents, v)
    posterior = pair.posterior(x, score_misfit=False)
    mean_u, std_u = posterior.mean_normalized, posterior.std_normalized
    truth = invariance.nearest_equivalent(invariance.latent_targets_of(simulator, v_u), mean_u)
    continuous = [k for k, latent in enumerate(simulator.latents) if not latent.discrete]
    scale[continuous] = calibration.fit_std_scale(truth[:, continuous], mean_u[:, continuous], std_u[:, continuous])
    return scale, f"fitted on {n} held-out simulations (stream {STREAM!r}) at the 50/68/90/95% levels"
