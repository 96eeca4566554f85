"""The export's model card: what the SavedModels hold and how good they are, so that a
downstream user needs neither the workdir nor simvae_tf to judge them. Stored in
export/metadata.json (`model_card`) and as export/README.md."""

from __future__ import annotations

import json

from simvae_tf import tail_shapes


def summary(metrics: dict) -> dict:
    """The evaluation's headline numbers (empty parts when a run was never evaluated)."""
    stage1, stage2 = metrics.get("stage1", {}), metrics.get("stage2", {})
    calibration, misspecification = metrics.get("calibration", {}), metrics.get("misspecification", {})
    card = {
        "evaluation_samples": metrics.get("eval_samples"),
        "surrogate": {key: stage1[key] for key in ("mean_abs_error", "foreground_iou", "discrepancy") if key in stage1},
        "recovery_r2_per_latent": stage2.get("r2_per_latent"),
        "mig": stage2.get("mig"),
        "canonical_r2_per_latent": metrics.get("canonical", {}).get("r2_per_latent"),
        "derived": {name: fit for name, fit in metrics.get("derived", {}).items() if isinstance(fit, dict)},
        "categorical": {name: {key: block[key] for key in ("accuracy", "expected_calibration_error")}
                        for name, block in metrics.get("categorical", {}).items()},
        "calibration": {key: calibration.get(key) for key in ("against", "coverage", "max_coverage_error", "std_scale",
                                                                  "posterior_dof", "posterior_power")
                        if key in calibration},
        "misspecification": {key: misspecification.get(key) for key in ("false_alarm_rate", "detection_rate",
                                                                          "reference_quantiles")
                             if key in misspecification},
    }
    return {key: value for key, value in card.items() if value not in (None, {}, [])}


def markdown(metadata: dict) -> str:
    """export/README.md from the export's metadata."""
    card = metadata.get("model_card", {})
    lines = [f"# {metadata.get('name')}: a SimVAE export (simvae_tf {metadata.get('simvae_tf_version')}, "
             f"TensorFlow {metadata.get('tensorflow_version')})", "",
             "`generator/` is the surrogate simulator G (latents in physical units -> observation), `encoder/` the "
             "amortized inverse q(z | x). Both load without simvae_tf: "
             "`tf.saved_model.load(DIR).serve(...)` or `keras.layers.TFSMLayer(DIR, call_endpoint=\"serve\")`; "
             "`metadata.json` lists every endpoint's signature.", "",
             f"Output: {metadata['output_spec']['kind']} {tuple(metadata['output_spec']['shape'])}. "
             f"Simulator class: `{metadata.get('class')}`.", "", "## Trained ranges", "",
             "| latent | low | high | unit | scale |", "|---|---|---|---|---|"]
    for latent in metadata["latents"]:
        lines.append(f"| {latent['name']} | {latent['low']:g} | {latent['high']:g} | {latent.get('unit') or '-'} | "
                     f"{latent.get('scale', 'linear')} |")
    lines += ["", "Inputs unlike the training simulations get a misspecification p-value "
              "(`metadata.json` `misspecification`); outside these ranges the networks extrapolate.", ""]
    if card:
        lines += ["## How good it is (held-out simulations)", ""] + _latent_table(metadata, card) + [
            "All figures (surrogate error, derived quantities, calibration, misspecification rates):", "",
            "```json", json.dumps(card, indent=1), "```", ""]
    else:
        lines += ["The run was exported without an evaluation: no quality figures are recorded.", ""]
    return "\n".join(lines)


def _latent_table(metadata: dict, card: dict) -> list[str]:
    r2 = card.get("recovery_r2_per_latent") or {}
    coverage = card.get("calibration", {}).get("coverage", {})
    scale = card.get("calibration", {}).get("std_scale", {})
    dof = card.get("calibration", {}).get("posterior_dof", {})
    power = card.get("calibration", {}).get("posterior_power", {})

    def cell(value):
        return "-" if value is None else f"{value:.3f}"

    def tail(name):
        return tail_shapes.describe(dof.get(name), power.get(name))

    lines = ["| latent | recovery R^2 | 68% interval covers | 95% interval covers | std factor | posterior |",
             "|---|---|---|---|---|---|"]
    for latent in metadata["latents"]:
        name = latent["name"]
        lines.append(f"| {name} | {cell(r2.get(name))} | {cell(coverage.get('0.68', {}).get(name))} | "
                     f"{cell(coverage.get('0.95', {}).get(name))} | {cell(scale.get(name))} | {tail(name)} |")
    return lines + [""]
