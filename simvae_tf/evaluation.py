"""Evaluation of a trained run: surrogate accuracy, latent recovery, MI / MIM / MIG,
ground truth under invariances, invariance-aware scores and derived physical quantities.

Z is the encoder's posterior mean on fresh simulator samples (stream "evaluation", never
seen in training), V the simulator inputs that produced them. Definitions are in
`simvae_tf/metrics.py` and the README ("Metrics").
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from simvae_tf import data, losses, metrics
from simvae_tf.simulators import base

# Observable-space consistency simulates S(E(x)) again: capped so that slow simulators
# (ngspice) keep evaluation in seconds.
MAX_CONSISTENCY_SAMPLES = 1000


def _named(names, values) -> dict:
    return {name: (None if not np.isfinite(v) else float(v)) for name, v in zip(names, values)}


def _matrix(m: np.ndarray) -> list:
    return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in np.asarray(m)]


def evaluate(experiment) -> tuple[dict, dict[str, Figure]]:
    """The metrics (metrics.json) and the figures drawn from the same samples: fig. 4 (MIM
    heat maps, model vs ground truth) and, for derived quantities, the fig. 3-right scatter."""
    sim, config = experiment.simulator, experiment.config
    names, latents = sim.latent_names, sim.latents
    num_bins, n = config.eval.num_bins, config.eval.num_samples
    discrete = [latent.discrete for latent in latents]
    mig_factors = getattr(sim, "mig_factors", None)
    v, x = data.physical_batch(sim, config.seed, "evaluation", n)

    # Stage 1: how well the surrogate G matches S on unseen latents.
    generated = experiment.generate(v)
    stage1 = {"mean_abs_error": float(np.abs(generated - x).mean())}
    scaler = experiment.scaler()
    if sim.output_spec.is_image:
        stage1["foreground_iou"] = metrics.observable_consistency_images(x, generated)
    else:
        stage1["mean_abs_error_per_channel"] = metrics.observable_consistency_signals(
            _channels_last(x), _channels_last(generated)).tolist()
    logits = experiment.models[0].predict(base.normalize(latents, v), batch_size=256, verbose=0)
    x_model = (x - scaler.mean) / scaler.std  # identity scaler for images
    stage1["discrepancy"] = float(np.mean(losses.per_example_discrepancy(sim.output_spec.kind, x_model, logits)))

    # Stage 2: the encoder's posterior mean against the true latents.
    mean_u, log_std_u = experiment.encode(x)
    z = experiment.to_physical(mean_u)  # the answer in physical units, inside the latent ranges
    z_u, v_u = base.normalize(latents, z), base.normalize(latents, v)
    # MI is binned in the networks' coordinates (log value for log-scale latents), where
    # the sampling is uniform; equal-width bins of a log-uniform value would be useless.
    mim = metrics.mutual_information_matrix(z_u, v_u, num_bins, discrete_v=discrete)
    mig, mig_per_factor = metrics.mig(mim, mig_factors)
    stage2 = {
        "r2_per_latent": _named(names, metrics.r2_per_latent(v_u, z_u)),
        "mean_posterior_std_normalized": _named(names, np.exp(log_std_u).mean(axis=0)),
        "mim": _matrix(mim),
        "mig": float(mig),
        "mig_per_factor": _named([names[i] for i in (mig_factors or range(len(names)))], mig_per_factor),
    }

    identity = metrics.ground_truth(v_u, None, num_bins=num_bins, discrete=discrete, factors=mig_factors)
    ground_truth = {"definition": "MIM(V, V)", "mim": _matrix(identity["mim"]), "mig": float(identity["mig"])}
    truth_mim = identity["mim"]
    if sim.has_invariance:
        rng = np.random.default_rng([config.seed, 1])

        def invariance_normalized(vs, generator):
            return base.normalize(latents, sim.apply_random_invariance(base.denormalize(latents, vs), generator))

        invariant = metrics.ground_truth(v_u, invariance_normalized, rng, num_bins, discrete, mig_factors)
        ground_truth = {"definition": "MIM(V, V-bar), V-bar = V under a random invariance element",
                        "mim": _matrix(invariant["mim"]), "mig": float(invariant["mig"]),
                        "mim_identity": ground_truth["mim"], "mig_identity": ground_truth["mig"]}
        truth_mim = invariant["mim"]

    # Beyond the paper: (a) recovery in canonical form, (b) consistency in observable space.
    def canonical(zs):
        return base.normalize(latents, sim.canonicalize(zs))

    recovery = metrics.canonical_recovery(z, v, canonical, num_bins, discrete, mig_factors)
    canonical_scores = {"r2_per_latent": _named(names, recovery["r2"]), "mim": _matrix(recovery["mim"]),
                        "mig": float(recovery["mig"]), "invariance": bool(sim.has_invariance)}
    aligned = _aligned_recovery(sim, z, v, num_bins, discrete, mig_factors)
    if aligned:
        canonical_scores["aligned"] = aligned
    coverage = _posterior_coverage(sim, mean_u, log_std_u, v_u)
    if coverage:
        stage2["posterior_coverage"] = coverage
    m = min(n, MAX_CONSISTENCY_SAMPLES)
    resimulated = data.simulate_checked(sim, z[:m])
    if sim.output_spec.is_image:
        consistency = {"foreground_iou": metrics.observable_consistency_images(x[:m], resimulated)}
    else:
        per_channel = metrics.observable_consistency_signals(_channels_last(x[:m]), _channels_last(resimulated))
        channel_names = getattr(sim, "channels", None) or [f"channel{i}" for i in range(len(per_channel))]
        consistency = {"mean_abs_error": _named(channel_names, per_channel)}
    consistency["samples"] = m

    results = {
        "simulator": sim.name,
        "data_source": getattr(sim, "source", "simulator"),
        "seed": config.seed,
        "eval_samples": n,
        "num_bins": num_bins,
        "latent_names": names,
        "stage1": stage1,
        "stage2": stage2,
        "ground_truth": ground_truth,
        "canonical": canonical_scores,
        "observable_consistency": consistency,
    }
    figures = {"fig4_mim": mim_figure(mim, truth_mim, names, ground_truth["definition"])}
    derived, points = _derived_quantities(sim, v, z)
    if derived:
        results["derived"] = derived
    if points:
        figures["fig3_derived"] = derived_figure(points, derived)
    return results, figures


def _aligned_recovery(sim, z: np.ndarray, v: np.ndarray, num_bins: int, discrete, mig_factors) -> dict:
    """For finite invariance groups (polygon point orders): each answer replaced by the
    element of its orbit nearest the truth (normalised coordinates), then R^2 and MIG.
    Lexicographic canonical forms jump when two points swap rank under tiny errors; the
    nearest equivalent answer does not, so this scores the encoder's precision."""
    orbit_u = data.normalized_orbit(sim, z)
    if orbit_u is None:
        return {}
    v_u = base.normalize(sim.latents, v)
    z_aligned = _nearest_equivalent(orbit_u, v_u)
    mim = metrics.mutual_information_matrix(z_aligned, v_u, num_bins, discrete_v=discrete)
    mig, _ = metrics.mig(mim, mig_factors)
    return {"r2_per_latent": _named(sim.latent_names, metrics.r2_per_latent(v_u, z_aligned)),
            "mim": _matrix(mim), "mig": float(mig)}


def _posterior_coverage(sim, mean_u: np.ndarray, log_std_u: np.ndarray, v_u: np.ndarray) -> dict:
    """How often the truth lies within 1 and 2 posterior stds (normalised coordinates),
    against the equivalent true latent vector nearest the posterior mean. Skipped for
    continuous invariances (RLC): there the encoder may answer any point of a curve."""
    if sim.has_invariance and sim.orbit(base.denormalize(sim.latents, v_u[:1])) is None:
        return {}
    truth = _nearest_equivalent(data.latent_targets_of(sim, v_u), mean_u)
    coverage = metrics.posterior_coverage(truth, mean_u, np.exp(log_std_u))
    return {"within_1_std": _named(sim.latent_names, coverage[1.0]),
            "within_2_std": _named(sim.latent_names, coverage[2.0]),
            "calibrated": {"within_1_std": 0.683, "within_2_std": 0.954}}


def _nearest_equivalent(candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per row, the one of its G equivalent vectors candidates [n, G, K] nearest (Euclidean)
    to reference [n, K]."""
    nearest = np.argmin(((candidates - reference[:, None]) ** 2).sum(axis=-1), axis=1)
    return candidates[np.arange(len(candidates)), nearest]


def _channels_last(x: np.ndarray) -> np.ndarray:
    return x if x.ndim >= 3 else x[..., None]


def _derived_quantities(sim, v: np.ndarray, z: np.ndarray) -> tuple[dict, dict]:
    """Invariant quantities (RLC f0, Q) from Z vs from V: slope, intercept, R^2 of a line
    fit, over the simulator's validity region when it declares one (paper fig. 3 right);
    and the (V, Z) points of each, up to 2,000, for the scatter plot ({} without a fit)."""
    from_v, from_z = sim.derived_quantities(v), sim.derived_quantities(z)
    if not from_v:
        return {}, {}
    mask = sim.validity_mask(v) if hasattr(sim, "validity_mask") else np.ones(len(v), bool)
    fits = {"samples_in_validity_region": int(mask.sum())}
    if mask.sum() < 3:  # too few points for a line (a tiny eval.num_samples)
        return fits, {}
    points = {}
    for name in from_v:
        slope, intercept, r2 = metrics.fit_slope(from_v[name][mask], from_z[name][mask])
        fits[name] = {"slope": slope, "intercept": intercept, "r2": r2}
        points[name] = (from_v[name][mask][:2000], from_z[name][mask][:2000])
    return fits, points


def mim_figure(model_mim: np.ndarray, truth_mim: np.ndarray, names, truth_label: str) -> Figure:
    figure = Figure(figsize=(9, 4.2), dpi=80)
    axes = figure.subplots(1, 2)
    for ax, matrix, title in ((axes[0], model_mim, "MIM(Z, V): model"), (axes[1], truth_mim, truth_label)):
        image = ax.imshow(np.nan_to_num(matrix), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("factor V")
        ax.set_ylabel("latent Z" if ax is axes[0] else "V-bar / V")
        ax.set_title(title, fontsize=8)
        figure.colorbar(image, ax=ax, fraction=0.046)
    figure.tight_layout()
    return figure


def derived_figure(points: dict, fits: dict) -> Figure:
    figure = Figure(figsize=(4 * len(points), 3.8), dpi=80)
    axes = np.atleast_1d(figure.subplots(1, len(points)))
    for ax, (name, (v, z)) in zip(axes, points.items()):
        ax.scatter(v, z, s=3, alpha=0.5)
        lims = [min(v.min(), z.min()), max(v.max(), z.max())]
        ax.plot(lims, lims, "k--", linewidth=0.8)
        fit = fits[name]
        ax.set_title(f"{name}: slope {fit['slope']:.3f}, R^2 {fit['r2']:.4f}", fontsize=8)
        ax.set_xlabel(f"{name} from V (simulator input)")
        ax.set_ylabel(f"{name} from Z (encoder)")
    figure.tight_layout()
    return figure
