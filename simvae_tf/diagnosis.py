"""Which latents a run recovers poorly or calibrates badly, and the config keys that usually
help: the `diagnosis` block of metrics.json and the end of the evaluation line.

Recovery is judged on the invariance-aware R^2 (`canonical`, or its `aligned` form for a
finite invariance group) so that nothing the data cannot determine is ever flagged: a
latent fixed by the canonical form (RLC's R) has no R^2 there and is listed as
undetermined instead. Calibration is judged on `calibration.max_coverage_error` (the
worst of the 50/68/90/95% central intervals), i.e. on the derived quantities under a
continuous invariance. Pure: reads the metrics dict and the config, computes nothing.
"""

from __future__ import annotations

from simvae_tf.defaults import LATENT_WEIGHT

# A latent is "poorly recovered" below this R^2, "badly calibrated" above this coverage
# error (the targets of issue 13).
MIN_R2 = 0.9
# A categorical latent (`Latent(values=...)`) is judged on its accuracy instead.
MIN_ACCURACY = 0.9
MAX_COVERAGE_ERROR = 0.05
# Suggestions on the evaluation line (all of them are in metrics.json).
SUGGESTIONS_SHOWN = 3


def recovery_r2(results: dict) -> tuple[dict, str]:
    """(R^2 per latent, which measure): the aligned R^2 under a finite invariance, the
    canonical one under another invariance, else plain R^2."""
    canonical = results.get("canonical", {})
    if "aligned" in canonical:
        return canonical["aligned"]["r2_per_latent"], "aligned R^2 (nearest equivalent answer)"
    if canonical.get("invariance"):
        return canonical["r2_per_latent"], "canonical R^2 (invariance-aware)"
    return results.get("stage2", {}).get("r2_per_latent", {}), "R^2"


def diagnose(results: dict, config) -> dict:
    """The `diagnosis` block: flagged latents with their figures, the latents the data do
    not determine, and suggested `--config.KEY=VALUE` overrides (most promising first)."""
    r2, measure = recovery_r2(results)
    categorical = results.get("categorical", {})
    poor = {name: round(value, 4) for name, value in r2.items()
            if value is not None and value < MIN_R2 and name not in categorical}
    poor.update({name: round(block["accuracy"], 4) for name, block in categorical.items()
                 if block["accuracy"] < MIN_ACCURACY})
    undetermined = [name for name, value in r2.items() if value is None]
    errors = results.get("calibration", {}).get("max_coverage_error", {})
    miscalibrated = {name: round(value, 4) for name, value in errors.items()
                     if value is not None and value > MAX_COVERAGE_ERROR}
    return {
        "thresholds": {"r2": MIN_R2, "accuracy": MIN_ACCURACY, "max_coverage_error": MAX_COVERAGE_ERROR},
        "recovery_measure": measure,
        "poorly_recovered": poor,
        "badly_calibrated": miscalibrated,
        "undetermined": undetermined,
        "suggestions": suggestions(config, bool(poor), bool(miscalibrated)),
        "ok": not poor and not miscalibrated,
    }


def suggestions(config, poor: bool, miscalibrated: bool) -> list[str]:
    """Config overrides that usually help, given what the run used (measured on the
    simulators of benchmarks/RESULTS.md, "Defaults for your own simulator")."""
    if not (poor or miscalibrated):
        return []
    stage1, stage2 = config.stage1, config.stage2
    keys = []
    if stage2.latent_weight == 0:  # the paper objective: a point estimate whose std collapses
        keys.append(f"stage2.latent_weight={LATENT_WEIGHT:g}")
    if miscalibrated and not config.eval.calibrate_std:
        keys.append("eval.calibrate_std=True")
    if miscalibrated and not config.eval.get("posterior_tails", True):
        keys.append("eval.posterior_tails=True")
    if poor or stage2.latent_weight > 0:
        keys.append(f"stage2.steps={2 * stage2.steps}")
        keys.append(f"model.width={2 * config.model.width}")
    if poor:
        keys.append(f"stage1.steps={2 * stage1.steps}")
    for stage in ("stage1", "stage2"):
        if config[stage].lr_schedule == "constant":
            keys.append(f"{stage}.lr_schedule=cosine")
    return keys


def summary(diagnosis: dict) -> str:
    """One clause for the evaluation line."""
    if diagnosis["ok"]:
        return (f"every determined latent recovered (R^2 >= {MIN_R2:g}) and calibrated "
                f"(coverage within {MAX_COVERAGE_ERROR:g})")
    parts = []
    if diagnosis["poorly_recovered"]:
        parts.append("poorly recovered: " + ", ".join(
            f"{name} (R^2 {value:.3f})" for name, value in diagnosis["poorly_recovered"].items()))
    if diagnosis["badly_calibrated"]:
        parts.append("badly calibrated: " + ", ".join(
            f"{name} (coverage error {value:.3f})" for name, value in diagnosis["badly_calibrated"].items()))
    shown = diagnosis["suggestions"][:SUGGESTIONS_SHOWN]
    tries = " ".join(f"--config.{key}" for key in shown)
    more = " (more in metrics.json diagnosis)" if len(diagnosis["suggestions"]) > len(shown) else ""
    return "; ".join(parts) + (f"; try {tries}{more}" if tries else "")
