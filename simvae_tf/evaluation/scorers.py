"""The named scorers. Each reads the shared `EvaluationSamples` and returns its part of
metrics.json (a dict of top-level blocks, merged one level deep) and its figures.

Z is the encoder's posterior mean on fresh simulator samples (stream "evaluation", never
seen in training), V the simulator inputs that produced them. Definitions are in
`simvae_tf/metrics.py` and docs/metrics.md.
"""

from __future__ import annotations

import numpy as np

from simvae_tf import calibration as calib
from simvae_tf import data, metrics, misfit, predictive
from simvae_tf.evaluation import plots
from simvae_tf.evaluation.samples import EvaluationSamples
from simvae_tf.simulators import base, invariance

# Observable-space consistency simulates S(E(x)) again: capped so that slow simulators
# (ngspice) keep evaluation in seconds.
MAX_CONSISTENCY_SAMPLES = 1000
# Calibration of derived quantities (continuous invariances) draws posterior samples and
# maps each through derived_quantities: n x S evaluations.
DERIVED_CALIBRATION_OBSERVATIONS = 2000
DERIVED_CALIBRATION_DRAWS = 200
# Posterior predictive checks simulate S at every draw: observations x draws simulations.
PREDICTIVE_OBSERVATIONS = 200


def _named(names, values) -> dict:
    return {name: (None if not np.isfinite(v) else float(v)) for name, v in zip(names, values)}


def _matrix(m: np.ndarray) -> list:
    return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in np.asarray(m)]


def _channels_last(x: np.ndarray) -> np.ndarray:
    return x if x.ndim >= 3 else x[..., None]


def surrogate(s: EvaluationSamples):
    """Stage 1: how well the surrogate G matches S on unseen latents. For a stochastic
    simulator x carries its noise, so the errors include it; G's predicted spread is scored
    by how often x lies within 1 and 2 of it of G's mean (Gaussian: 68.3% / 95.4%)."""
    generated = s.pair.generate(s.v)
    stage1 = {"mean_abs_error": float(np.abs(generated - s.x).mean())}
    if s.simulator.output_spec.is_image:
        stage1["foreground_iou"] = metrics.observable_consistency_images(s.x, generated)
        stage1["psnr_db"] = metrics.psnr(s.x, generated)
        stage1.update(metrics.detail_error(s.x, generated))
    else:
        x, g = _channels_last(s.x), _channels_last(generated)
        stage1["mean_abs_error_per_channel"] = metrics.observable_consistency_signals(x, g).tolist()
        axes = tuple(range(x.ndim - 1))
        value_range = x.max(axis=axes) - x.min(axis=axes)
        varies = value_range > 0  # a channel the simulator never varies has no range to compare against
        stage1["psnr_db"] = (metrics.psnr(x[..., varies], g[..., varies], value_range[varies])  # peak: its range
                             if varies.any() else None)
    stage1["discrepancy"] = float(np.mean(s.pair.discrepancy(s.v, s.x)))
    from simvae_tf import losses  # TensorFlow: loaded by the pair already

    if s.pair.likelihood == losses.HETEROSCEDASTIC_SIGNAL:
        standardised = np.abs(s.x - generated) / np.maximum(s.pair.spread(s.v), 1e-12)
        stage1["noise_coverage"] = {"within_1_spread": float(np.mean(standardised <= 1.0)),
                                    "within_2_spread": float(np.mean(standardised <= 2.0)),
                                    "calibrated": {"within_1_spread": 0.683, "within_2_spread": 0.954}}
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
    if invariance.has_continuous_invariance(sim):
        return {}, {}
    mean_u = s.posterior.mean_normalized
    truth = invariance.nearest_equivalent(invariance.latent_targets_of(sim, s.v_u), mean_u)
    continuous = [k for k, latent in enumerate(sim.latents) if not latent.discrete]
    names = [sim.latent_names[k] for k in continuous]
    within = metrics.posterior_coverage(truth[:, continuous], mean_u[:, continuous],
                                        s.posterior.std_normalized[:, continuous])
    return {"stage2": {"posterior_coverage": {"within_1_std": _named(names, within[1.0]),
                                              "within_2_std": _named(names, within[2.0]),
                                              "calibrated": {"within_1_std": 0.683, "within_2_std": 0.954}}}}, {}


def calibration(s: EvaluationSamples):
    """Is the posterior honest? PIT values (rank histogram, ECDF difference with its 95%
    simultaneous band), the expected-coverage curve, z-scores and contraction (fig. 5).
    Against the true latents; for a finite invariance against the equivalent latent vector
    nearest the posterior mean; for a continuous one (RLC) on the invariant derived
    quantities, from posterior samples. Discrete latents are not scored here."""
    sim = s.simulator
    continuous_group = invariance.has_continuous_invariance(sim)
    if continuous_group:
        scored = _derived_calibration(s)
        if scored is None:
            return {}, {}
    else:
        scored = _latent_calibration(s)
    names, pit, truth, mean, std, against = scored
    coverage_curve = calib.expected_coverage(pit)
    reported = calib.expected_coverage(pit, calib.REPORTED_LEVELS)
    errors = np.max(np.abs(reported - np.asarray(calib.REPORTED_LEVELS)[:, None]), axis=0)
    z = calib.z_scores(truth, mean, std)
    block = {
        "against": against,
        "quantities": names,
        "samples": int(len(pit)),
        "expected_coverage": {"levels": list(calib.COVERAGE_LEVELS),
                              **{name: [round(float(c), 4) for c in coverage_curve[:, q]]
                                 for q, name in enumerate(names)}},
        "coverage": {f"{level:g}": _named(names, reported[i]) for i, level in enumerate(calib.REPORTED_LEVELS)},
        "max_coverage_error": _named(names, errors),
        "calibrated_within_0.05": {name: bool(e <= 0.05) for name, e in zip(names, errors)},
        "ecdf_outside_95_band": {name: bool(b) for name, b in zip(names, calib.outside_band(pit, seed=s.seed))},
        "z_score_mean": _named(names, z.mean(axis=0)),
        "z_score_std": _named(names, z.std(axis=0)),
        "pit_histogram": {name: counts.tolist() for name, counts in zip(names, calib.rank_histogram(pit).T)},
    }
    if not continuous_group:  # the prior in normalised coordinates is uniform on [-1, 1]: std 1/sqrt(3)
        block["contraction"] = _named(names, calib.contraction(std, 1.0 / np.sqrt(3.0)).mean(axis=0))
    figure = plots.calibration_figure(names, pit, truth, mean, std, coverage_curve, against)
    return {"calibration": block}, {"fig5_calibration": figure}


def categorical(s: EvaluationSamples):
    """Categorical latents (`Latent(values=...)`): per latent the accuracy of the most
    probable class, the expected calibration error of the class probabilities, the mean
    probability given to the true class, and the confusion matrix (rows: truth)."""
    block = {}
    for k, latent in enumerate(s.simulator.latents):
        if not latent.is_categorical:
            continue
        values = np.asarray(latent.values)
        truth = np.argmin(np.abs(s.v[:, k:k + 1] - values[None, :]), axis=1)
        probabilities = s.posterior.probabilities[latent.name]
        predicted = probabilities.argmax(axis=1)
        confusion = np.zeros((len(values), len(values)), int)
        np.add.at(confusion, (truth, predicted), 1)
        block[latent.name] = {
            "values": list(latent.values), "labels": list(latent.labels or []),
            "accuracy": float(np.mean(predicted == truth)),
            "expected_calibration_error": calib.expected_calibration_error(probabilities, truth),
            "mean_probability_of_truth": float(np.mean(probabilities[np.arange(len(truth)), truth])),
            "confusion": confusion.tolist(),
        }
    return ({"categorical": block} if block else {}), {}


def _latent_calibration(s: EvaluationSamples):
    sim = s.simulator
    continuous = [k for k, latent in enumerate(sim.latents) if not latent.discrete]
    mean_u, std_u = s.posterior.mean_normalized, s.posterior.std_normalized
    scale_u = np.exp(s.posterior.log_std_normalized)  # the tail shape's scale (the std for a Gaussian)
    truth = invariance.nearest_equivalent(invariance.latent_targets_of(sim, s.v_u), mean_u)
    against = ("the equivalent latent vector nearest the posterior mean (normalised coordinates)"
               if sim.has_invariance else "the true latents (normalised coordinates)")
    pit = calib.shaped_pit(truth[:, continuous], mean_u[:, continuous], scale_u[:, continuous],
                           s.posterior.dof[continuous], s.posterior.power[continuous])
    return ([sim.latent_names[k] for k in continuous], pit, truth[:, continuous], mean_u[:, continuous],
            std_u[:, continuous], against)


def _derived_calibration(s: EvaluationSamples):
    """The derived quantities' posterior from samples (log values where positive, where the
    posterior of a product of log-normal latents is close to Gaussian)."""
    sim = s.simulator
    rows = np.flatnonzero(sim.validity_mask(s.v))[:DERIVED_CALIBRATION_OBSERVATIONS]
    if not sim.derived_quantities(s.v[:1]) or len(rows) < 10:
        return None
    draws = s.posterior[rows].sample(DERIVED_CALIBRATION_DRAWS, seed=s.seed)  # [n, S, K]
    names, truth, sampled = invariance.derived_truth_and_draws(sim, s.v[rows], draws)
    pit = calib.sample_pit(truth, sampled, seed=s.seed)
    against = (f"the derived quantities (log values) of the true latents, from {DERIVED_CALIBRATION_DRAWS} "
               "posterior draws per observation inside the validity region: the latents themselves are not "
               "identifiable under a continuous invariance")
    return names, pit, truth, sampled.mean(axis=1), np.maximum(sampled.std(axis=1), 1e-12), against


def misspecification(s: EvaluationSamples):
    """The misspecification score (`simvae_tf.misfit`): its reference distribution, its
    false-alarm rate on fresh simulations, and how often it flags inputs the simulator
    does not make: the evaluation inputs with their elements shuffled (same values, no
    structure), and independent noise with the data's per-element mean and spread."""
    reference = s.pair.misfit_reference  # a run computes it once, for this and its export
    if reference is None:
        reference = misfit.reference_discrepancies(s.simulator, s.pair, s.seed, s.eval_config.reference_samples)
    levels = (0.01, 0.05)

    def flagged(x):
        p = misfit.p_values(reference, misfit.discrepancy_at_posterior(s.pair, x, s.pair.posterior(x, score_misfit=False)))
        return {f"{level:g}": float(np.mean(p < level)) for level in levels}

    fresh_p = s.posterior.p_value  # scored by the pair when it holds the reference
    if fresh_p is None:
        fresh_p = misfit.p_values(reference, misfit.discrepancy_at_posterior(s.pair, s.x, s.posterior))
    rng = np.random.default_rng([s.seed, 2])
    x = s.x[:min(len(s.x), 1000)]
    flat = x.reshape(len(x), -1)
    shuffled = rng.permuted(flat, axis=1).reshape(x.shape)
    noise = flat.mean(axis=0) + flat.std(axis=0) * rng.standard_normal(flat.shape)
    if s.simulator.output_spec.is_image:
        noise = (rng.uniform(size=flat.shape) < flat.mean(axis=0)).astype(np.float32)  # ink at the data's rate
    block = {
        "statistic": misfit.STATISTIC,
        "reference_samples": int(len(reference)),
        "reference_quantiles": {f"{q:g}": float(np.quantile(reference, q)) for q in (0.5, 0.9, 0.99)},
        "false_alarm_rate": {f"{level:g}": float(np.mean(fresh_p < level)) for level in levels},
        "detection_rate": {"shuffled": flagged(shuffled.astype(np.float32)),
                           "noise": flagged(noise.reshape(x.shape).astype(np.float32))},
    }
    return {"misspecification": block}, {}


def predictive_check(s: EvaluationSamples):
    """Posterior predictive check through S on fresh simulations (`simvae_tf.predictive`):
    the RMSE of x against S at posterior draws, and the error split into inversion error
    |x - G(E(x))| and surrogate error |S(E(x)) - G(E(x))|; fig. 6 shows four of them."""
    m = min(s.num_samples, PREDICTIVE_OBSERVATIONS)
    x = s.x[:m]
    posterior = s.pair.posterior(x, score_misfit=False)
    check = predictive.check(s.simulator, s.pair, x, posterior, s.eval_config.predictive_draws, s.seed)

    def spread(values):
        return {"mean": float(np.mean(values)), "q50": float(np.median(values)), "q95": float(np.quantile(values, 0.95))}

    block = {"observations": m, "draws": check["draws"],
             **{key: spread(check[key]) for key in ("rmse_q50", "rmse_q95", "inversion_rmse", "surrogate_rmse")}}
    shown = min(4, m)
    figure = plots.predictive_figure(s.simulator, x[:shown], s.pair.generate(posterior.clipped_mean()[:shown]),
                                     check["resimulated"][:shown])
    return {"predictive_check": block}, {"fig6_predictive": figure}


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
    resimulated = data.simulate_checked(sim, s.z[:m], data.noise_rng(s.seed, "consistency"))
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
