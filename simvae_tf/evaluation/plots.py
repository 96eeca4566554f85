"""The evaluation's figures from a simulator and a pair (figs. 1 and 2, also drawn as
TensorBoard summaries during training) and from metrics (figs. 3 and 4)."""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from simvae_tf import data, figures
from simvae_tf.simulators import base


def _signal_kwargs(simulator: base.Simulator) -> dict:
    axis = simulator.frequencies_hz
    return {"axis_values": axis, "log_axis": axis is not None, "channel_names": simulator.channels}


def comparison_figure(simulator: base.Simulator, pair, z: np.ndarray, x: np.ndarray, with_encoder: bool) -> Figure:
    """Fig. 1: S(z) and G(z) for fixed samples; with the encoder also S(E(x)) and G(E(x))."""
    rows = [x, pair.generate(z)]
    if with_encoder:
        z_hat = pair.posterior(x).clipped_mean()
        # A stochastic simulator's S(E(x)) with noise of its own (fixed seed: the same in every summary).
        rows += [data.simulate_checked(simulator, z_hat, data.noise_rng(0, "comparison")), pair.generate(z_hat)]
    return figures.comparison_figure(rows, simulator.output_spec.is_image,
                                     f"{simulator.name}: simulator vs generator", **_signal_kwargs(simulator))


def traversal_figure(simulator: base.Simulator, pair, z0: np.ndarray, num_steps: int = 7) -> Figure:
    """Fig. 2: G along each latent's range, the others held at z0 [1, K]."""
    base_u = base.normalize(simulator.latents, z0[:1])[0]
    steps = np.linspace(-1.0, 1.0, num_steps)
    k = simulator.num_latents
    u = np.repeat(base_u[None, None], k, 0).repeat(num_steps, 1)
    for i in range(k):
        u[i, :, i] = steps
    values = base.denormalize(simulator.latents, u.reshape(-1, k)).reshape(k, num_steps, k)
    outputs = pair.generate(values.reshape(-1, k)).reshape((k, num_steps) + simulator.output_spec.shape)
    latent_values = np.stack([values[i, :, i] for i in range(k)])
    return figures.traversal_figure(outputs, simulator.latent_names, latent_values, simulator.output_spec.is_image,
                                    f"{simulator.name}: generator latent traversals", **_signal_kwargs(simulator))


def training_summaries(simulator: base.Simulator, pair, z: np.ndarray, x: np.ndarray, stage: str) -> dict[str, bytes]:
    """The image summaries of a training stage, as PNG bytes."""
    return {"comparison": figures.to_png(comparison_figure(simulator, pair, z, x, with_encoder=stage != "stage1")),
            "traversals": figures.to_png(traversal_figure(simulator, pair, z))}


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


def calibration_figure(names, pit: np.ndarray, truth: np.ndarray, mean: np.ndarray, std: np.ndarray,
                       coverage_curve: np.ndarray, against: str, max_points: int = 300) -> Figure:
    """Fig. 5, one row per quantity: PIT rank histogram, ECDF difference with its 95%
    simultaneous band, expected coverage, and recovery (posterior mean +- std vs truth)."""
    from simvae_tf import calibration as calib

    rows = len(names)
    figure = Figure(figsize=(11.0, 2.3 * rows + 0.6))
    axes = figure.subplots(rows, 4, squeeze=False)
    counts = calib.rank_histogram(pit)
    difference = calib.ecdf_difference(pit)
    lower, upper = calib.simultaneous_ecdf_band(len(pit))
    levels = np.asarray(calib.COVERAGE_LEVELS)
    for q, name in enumerate(names):
        histogram, ecdf_axes, coverage_axes, recovery_axes = axes[q]
        bins = counts.shape[0]
        histogram.bar((np.arange(bins) + 0.5) / bins, counts[:, q], width=1.0 / bins, color="tab:blue", alpha=0.7)
        histogram.axhline(len(pit) / bins, color="k", lw=0.8, ls="--")
        histogram.set_ylabel(name)
        ecdf_axes.fill_between(calib.ECDF_GRID, lower, upper, color="0.85", label="95% band")
        ecdf_axes.plot(calib.ECDF_GRID, difference[:, q], color="tab:red")
        ecdf_axes.axhline(0.0, color="k", lw=0.5)
        coverage_axes.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
        coverage_axes.plot(levels, coverage_curve[:, q], "o-", ms=3, color="tab:green")
        coverage_axes.set_xlim(0, 1)
        coverage_axes.set_ylim(0, 1)
        shown = slice(0, min(max_points, len(truth)))
        recovery_axes.errorbar(truth[shown, q], mean[shown, q], yerr=std[shown, q], fmt=".", ms=2, lw=0.5,
                               alpha=0.6)
        low, high = np.min(truth[:, q]), np.max(truth[:, q])
        recovery_axes.plot([low, high], [low, high], color="k", lw=0.8, ls="--")
        if q == 0:
            histogram.set_title("PIT rank histogram", fontsize=9)
            ecdf_axes.set_title("ECDF - uniform (95% band)", fontsize=9)
            coverage_axes.set_title("coverage vs credible level", fontsize=9)
            recovery_axes.set_title("posterior mean +- std vs truth", fontsize=9)
        for each in axes[q]:
            each.tick_params(labelsize=7)
    figure.suptitle(textwrap.fill(f"calibration against {against}", 150), fontsize=8)
    figure.tight_layout()
    return figure


def predictive_figure(simulator: base.Simulator, x: np.ndarray, generated: np.ndarray, resimulated: np.ndarray
                      ) -> Figure:
    """Fig. 6: observations with their posterior predictive re-simulations S(z ~ q(z | x)):
    images with the re-renders' mean and spread, signals with their 5-95% band."""
    k = resimulated.shape[1]
    if simulator.output_spec.is_image:
        spread = resimulated.std(axis=1)
        spread = spread / max(float(spread.max()), 1e-6)
        return figures.image_grid([x, generated, resimulated.mean(axis=1), spread],
                                  ["x", "G(E(x))", f"S(z~q) mean ({k})", "S(z~q) spread"],
                                  f"{simulator.name}: posterior predictive check")
    figure = figures.signal_grid([x, generated], ["x", "G(E(x))"], title=f"{simulator.name}: posterior predictive "
                                 f"check, 5-95% of S over {k} posterior draws", **_signal_kwargs(simulator))
    band = resimulated if resimulated.ndim == 4 else resimulated[..., None]  # [n, k, N, C]
    low, high = np.quantile(band, 0.05, axis=1), np.quantile(band, 0.95, axis=1)
    axis_values = simulator.frequencies_hz if simulator.frequencies_hz is not None else np.arange(band.shape[2])
    axes = np.asarray(figure.axes).reshape(band.shape[-1], len(x))
    for j in range(len(x)):
        for c in range(band.shape[-1]):
            axes[c, j].fill_between(axis_values, low[j, :, c], high[j, :, c], color="tab:orange", alpha=0.3)
    return figure
