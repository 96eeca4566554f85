"""What a run shows: the table printed on stdout, and one figure per input comparing it
with its re-renderings G(E(x)) and S(E(x))."""

from __future__ import annotations

import os

import numpy as np

from simvae_tf.invert.images import thumbnail
from simvae_tf.invert.inputs import Observation
from simvae_tf.invert.spec import ExportSpec


def _number(value: float) -> str:
    return f"{value:.4g}"


def format_report(results: dict, output_dir: str) -> str:
    """What the command line prints: per input the posterior table, derived quantities and
    warnings; then the notes and what was written."""
    lines = []
    invariance = results.get("invariance") or {}
    if invariance.get("continuous"):
        determined = ", ".join(invariance.get("determined") or []) or "the invariant quantities"
        lines.append(f"note: {invariance.get('description') or 'a continuous invariance leaves some latents free'}. "
                     f"Read {determined} and the canonical form below; the latent table gives the middle of the "
                     "set of latents that fit, inside the trained ranges, and its std the spread along that set, "
                     "not a measurement of each latent.")
    for entry in results["inputs"]:
        lines.append(f"{entry['name']}  ({os.path.basename(entry['source'])}: {'; '.join(entry['preprocessing'])})")
        derived = []
        for name, quantity in entry["derived"].items():
            text = f"  derived {name} = {_number(quantity['at_mean'])} at the posterior mean"
            if "posterior_mean" in quantity:
                text += (f"; {_number(quantity['posterior_mean'])} +- {_number(quantity['posterior_std'])} over "
                         f"{results['num_samples']} samples")
            derived.append(text)
        if invariance.get("continuous"):  # what the data determine first
            lines += derived
            if "canonical" in entry:
                lines.append("  canonical form: " + ", ".join(
                    f"{name} = {_number(value)}{' ' + unit if unit else ''}"
                    for (name, value), unit in zip(entry["canonical"].items(),
                                                   (latent["unit"] for latent in results["latents"]))))
        rows = [("latent", "mean", "std", "unit", "range")]
        for latent in results["latents"]:
            p = entry["posterior"][latent["name"]]
            if "probabilities" in p:  # categorical: the most probable class and its probability
                ranked = sorted(p["probabilities"].items(), key=lambda item: -item[1])
                rows.append((latent["name"], ranked[0][0], f"p={ranked[0][1]:.2f}", latent["unit"] or "-",
                             "; ".join(f"{key} {value:.2f}" for key, value in ranked[1:])))
                continue
            rows.append((latent["name"], _number(p["mean"]), _number(p["std"]), latent["unit"] or "-",
                         f"[{_number(latent['low'])}, {_number(latent['high'])}]" +
                         (" log" if latent["scale"] == "log" else "")))
        widths = [max(len(row[c]) for row in rows) for c in range(5)]
        for row in rows:
            lines.append("  " + "  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                                           row[3].ljust(widths[3]), row[4]]).rstrip())
        if not invariance.get("continuous"):
            lines += derived
        if "predictive_check" in entry:
            check = entry["predictive_check"]
            lines.append(f"  predictive check: RMSE of x vs S at {check['draws']} posterior draws "
                         f"{_number(check['rmse_q50'])} (5-95% {_number(check['rmse_q05'])}-{_number(check['rmse_q95'])}); "
                         f"inversion error |x - G(E(x))| {_number(check['inversion_rmse'])}, surrogate error "
                         f"|S(E(x)) - G(E(x))| {_number(check['surrogate_rmse'])}")
        if "misspecification" in entry:
            score = entry["misspecification"]
            lines.append(f"  {'warning: ' if score['atypical'] else ''}input {score['verdict']}")
        if entry["outside_trained_range"]:
            lines.append(f"  warning: {', '.join(entry['outside_trained_range'])} outside the trained range "
                         "(the input is probably unlike the training data)")
        lines.append("  reconstruction RMSE: " + ", ".join(f"{k} {_number(v)}"
                                                          for k, v in entry["reconstruction_rmse"].items()))
    for note in results["notes"]:
        lines.append(f"note: {note}")
    samples = f", {results['num_samples']} posterior samples per input" if results["num_samples"] else ""
    lines.append(f"Wrote {output_dir}: results.json{samples}, "
                 f"{len(results['inputs'])} figure(s) ({', '.join(e['figure'] for e in results['inputs'][:3])}"
                 f"{', ...' if len(results['inputs']) > 3 else ''})")
    return "\n".join(lines)


def input_figure(spec: ExportSpec, observation: Observation, index: int, reconstructions: dict[str, np.ndarray],
                 posterior_mean: np.ndarray, resimulated: np.ndarray | None = None):
    """The input next to its re-renderings G(E(x)) and S(E(x)); the title gives E(x). With
    the posterior predictive re-simulations [k, *shape]: images gain their mean and spread,
    signals the 5-95% band of S over posterior draws."""
    from simvae_tf import figures

    estimate = "  ".join(f"{latent.name}={value:.3g}" for latent, value in zip(spec.latents, posterior_mean))
    title = f"{observation.name}: E(x) = {estimate}"
    if spec.is_image:
        panels = ([thumbnail(observation.picture)] if observation.picture is not None else []) + [observation.x] + \
                 [rows[index] for rows in reconstructions.values()]
        labels = (["as read"] if observation.picture is not None else []) + ["model input"] + list(reconstructions)
        if resimulated is not None:
            spread = resimulated.std(axis=0)
            panels += [resimulated.mean(axis=0), spread / max(float(spread.max()), 1e-6)]
            labels += [f"S(z~q) mean, {len(resimulated)}", "S(z~q) spread"]
        figure = figures.image_grid([panels], [""], title, column_labels=labels)
        figure.set_size_inches(max(figure.get_size_inches()[0], 0.12 * len(title)), figure.get_size_inches()[1] + 0.3)
        return figure
    rows = [observation.x[None]] + [rows[index][None] for rows in reconstructions.values()]
    axis = spec.axis
    figure = figures.signal_grid(rows, ["input"] + list(reconstructions),
                                 axis_values=axis.values if axis is not None else None,
                                 channel_names=spec.channels, title=title, log_axis=bool(axis and axis.log))
    if resimulated is not None:
        band = resimulated if resimulated.ndim == 3 else resimulated[..., None]
        x_axis = axis.values if axis is not None else np.arange(band.shape[1])
        low, high = np.quantile(band, 0.05, axis=0), np.quantile(band, 0.95, axis=0)
        for c, axes in enumerate(figure.axes[:band.shape[-1]]):
            axes.fill_between(x_axis, low[:, c], high[:, c], color="tab:orange", alpha=0.25,
                              label=f"S(z~q) 5-95%, {len(band)} draws")
        figure.axes[0].legend(fontsize=6)
    figure.set_size_inches(max(5.0, 0.09 * len(title)), figure.get_size_inches()[1] + 0.5)
    if axis is not None:
        for axes in figure.axes[-1:]:
            axes.set_xlabel(axis.key, fontsize=7)
    figure.tight_layout()
    return figure


def input_figures_png(spec: ExportSpec, observations: list[Observation], reconstructions: dict[str, np.ndarray],
                      posterior_mean: np.ndarray, resimulated: np.ndarray | None = None) -> dict[str, bytes]:
    """{input name: PNG bytes} of every input's figure."""
    from simvae_tf import figures

    # PNG bytes, not Figure objects: a folder of hundreds of inputs stays small in memory.
    return {observation.name: figures.to_png(input_figure(spec, observation, i, reconstructions, posterior_mean[i],
                                                          None if resimulated is None else resimulated[i]))
            for i, observation in enumerate(observations)}
