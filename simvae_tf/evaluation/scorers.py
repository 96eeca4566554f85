"""The named scorers. Each reads the shared `EvaluationSamples` and returns its part of
metrics.json (a dict of top-level blocks, merged one level deep) and its figures.

Z is the encoder's posterior mean on fresh simulator samples (stream "evaluation", never
seen in training), V the simulator inputs that produced them. Definitions are in
`simvae_tf/metrics.py` and docs/metrics.md.
"""

from __future__ import annotations

import numpy as np

from simvae_tf import data, metrics
from simvae_tf.evaluation import plots
from simvae_tf.evaluation.samples import EvaluationSamples
from simvae_tf.simulators import base, invariance

# Observable-space consistency simulates S(E(x)) again: capped so that slow simulators
# (ngspice) keep evaluation in seconds.
MAX_CONSISTENCY_SAMPLES = 1000


def _named(names, values) -> dict:
    return {name: (None if not np.isfinite(v) else float(v)) for name, v in zip(names, values)}


def _matrix(m: np.ndarray) -> list:
    return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in np.asarray(m)]


def _channels_last(x: np.ndarray) -> np.ndarray:
    return x if x.ndim >= 3 else x[..., None]


def surrogate(s: EvaluationSamples):
    """Stage 1: how well the surrogate G matches S on unseen latents."""
    generated = s.pair.generate(s.v)
    stage1 = {"mean_abs_error": float(np.abs(generated - s.x).mean())}
    if s.simulator.output_spec.is_image:
        stage1["foreground_iou"] = metrics.observable_consistency_images(s.x, generated)
    else:
        stage1["mean_abs_error_per_channel"] = metrics.observable_consistency_signals(
            _channels_last(s.x), _channels_last(generated)).tolist()
    stage1["discrepancy"] = float(np.mean(s.pair.discrepancy(s.v, s.x)))
    return {"stage1": stage1}, {}


def recovery(s: EvaluationSamples):
    """Stage 2: the encoder's posterior mean against the true latents (R^2, MIM, MIG)."""
    names = s.simulator.latent_names
    mig, mig_per_factor = metrics.mig(s.model_mim, s.mig_factors)
    stage2 = {
        "r2_per_latent": _named(names, metrics.r2_per_latent(s.v_u, s.z_u)),
        "mean_posterior_std_normalized": _named(names, s.posterior.std_normalized.mean(axis=0)),
        "mim": _matrix(s.model_mim),
        "mig": float(mig),
        "mig_per_factor": _named([names[i] for i in (s.mig_factors or range(len(names)))], mig_per_factor),
    }
    return {"stage2": stage2}, {}


def coverage(s: EvaluationSamples):
    """How often the truth lies within 1 and 2 posterior stds (normalised coordinates),
    against the equivalent true latent vector nearest the posterior mean. Skipped for
    continuous invariances (RLC): there the encoder may answer any point of a curve."""
    sim = s.simulator
    if sim.has_invariance and sim.orbit(base.denormalize(sim.latents, s.v_u[:1])) is None:
        return {}, {}
    mean_u = s.posterior.mean_normalized
    truth = invariance.nearest_equivalent(invariance.latent_targets_of(sim, s.v_u), mean_u)
    within = metrics.posterior_coverage(truth, mean_u, s.posterior.std_normalized)
    return {"stage2": {"posterior_coverage": {"within_1_std": _named(sim.latent_names, within[1.0]),
                                              "within_2_std": _named(sim.latent_names, within[2.0]),
                                              "calibrated": {"within_1_std": 0.683, "within_2_std": 0.954}}}}, {}


def ground_truth(s: EvaluationSamples):
    """MIM(V, V), or MIM(V, V-bar) under the simulator's invariance (paper 4.2); fig. 4."""
    sim, latents = s.simulator, s.simulator.latents
    identity = metrics.ground_truth(s.v_u, None, num_bins=s.num_bins, discrete=s.discrete, factors=s.mig_factors)
    block = {"definition": "MIM(V, V)", "mim": _matrix(identity["mim"]), "mig": float(identity["mig"])}
    truth_mim = identity["mim"]
    if sim.has_invariance:
        rng = np.random.default_rng([s.seed, 1])

        def invariance_normalized(vs, generator):
            return base.normalize(latents, sim.apply_random_invariance(base.denormalize(latents, vs), generator))

        invariant = metrics.ground_truth(s.v_u, invariance_normalized, rng, s.num_bins, s.discrete, s.mig_factors)
        block = {"definition": "MIM(V, V-bar), V-bar = V under a random invariance element",
                 "mim": _matrix(invariant["mim"]), "mig": float(invariant["mig"]),
                 "mim_identity": block["mim"], "mig_identity": block["mig"]}
        truth_mim = invariant["mim"]
    figure = plots.mim_figure(s.model_mim, truth_mim, sim.latent_names, block["definition"])
    return {"ground_truth": block}, {"fig4_mim": figure}


def canonical(s: EvaluationSamples):
    """Beyond the paper: recovery in canonical form, and for finite invariance groups
    against the equivalent answer nearest the truth ("aligned")."""
    sim = s.simulator
    recovered = metrics.canonical_recovery(s.z, s.v, lambda zs: base.normalize(sim.latents, sim.canonicalize(zs)),
                                           s.num_bins, s.discrete, s.mig_factors)
    block = {"r2_per_latent": _named(sim.latent_names, recovered["r2"]), "mim": _matrix(recovered["mim"]),
             "mig": float(recovered["mig"]), "invariance": bool(sim.has_invariance)}
    aligned = _aligned_recovery(s)
    if aligned:
        block["aligned"] = aligned
    return {"canonical": block}, {}


def _aligned_recovery(s: EvaluationSamples) -> dict:
    """Each answer replaced by the element of its orbit nearest the truth (normalised
    coordinates), then R^2 and MIG. Lexicographic canonical forms jump when two points
    swap rank under tiny errors; the nearest equivalent answer does not, so this scores
    the encoder's precision."""
    orbit_u = invariance.normalized_orbit(s.simulator, s.z)
    if orbit_u is None:
        return {}
    z_aligned = invariance.nearest_equivalent(orbit_u, s.v_u)
    mim = metrics.mutual_information_matrix(z_aligned, s.v_u, s.num_bins, discrete_v=s.discrete)
    mig, _ = metrics.mig(mim, s.mig_factors)
    return {"r2_per_latent": _named(s.simulator.latent_names, metrics.r2_per_latent(s.v_u, z_aligned)),
            "mim": _matrix(mim), "mig": float(mig)}


def consistency(s: EvaluationSamples):
    """Beyond the paper: S(z) against S(E(S(z))), blind to which preimage E chose."""
    sim = s.simulator
    m = min(s.num_samples, MAX_CONSISTENCY_SAMPLES)
    resimulated = data.simulate_checked(sim, s.z[:m])
    if sim.output_spec.is_image:
        block = {"foreground_iou": metrics.observable_consistency_images(s.x[:m], resimulated)}
    else:
        per_channel = metrics.observable_consistency_signals(_channels_last(s.x[:m]), _channels_last(resimulated))
        channel_names = sim.channels or [f"channel{i}" for i in range(len(per_channel))]
        block = {"mean_abs_error": _named(channel_names, per_channel)}
    block["samples"] = m
    return {"observable_consistency": block}, {}


def derived(s: EvaluationSamples):
    """Invariant quantities (RLC f0, Q) from Z vs from V: slope, intercept, R^2 of a line
    fit over the simulator's validity region (paper fig. 3 right), and their scatter."""
    sim = s.simulator
    from_v, from_z = sim.derived_quantities(s.v), sim.derived_quantities(s.z)
    if not from_v:
        return {}, {}
    mask = sim.validity_mask(s.v)
    fits = {"samples_in_validity_region": int(mask.sum())}
    if mask.sum() < 3:  # too few points for a line (a tiny eval.num_samples)
        return {"derived": fits}, {}
    points = {}
    for name in from_v:
        slope, intercept, r2 = metrics.fit_slope(from_v[name][mask], from_z[name][mask])
        fits[name] = {"slope": slope, "intercept": intercept, "r2": r2}
        points[name] = (from_v[name][mask][:2000], from_z[name][mask][:2000])
    return {"derived": fits}, {"fig3_derived": plots.derived_figure(points, fits)}


def paper_figures(s: EvaluationSamples):
    """Figs. 1 (simulator vs generator vs inverse) and 2 (latent traversals)."""
    z, x = s.figure_samples()
    return {}, {"fig1_comparison": plots.comparison_figure(s.simulator, s.pair, z, x, with_encoder=True),
                "fig2_traversals": plots.traversal_figure(s.simulator, s.pair, z)}
