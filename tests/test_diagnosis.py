"""The run's diagnosis (metrics.json `diagnosis`, the end of the evaluation line): which
latents are poorly recovered or badly calibrated, judged on invariance-aware figures so that
nothing the data cannot determine is flagged, and the config keys that usually help."""

import pytest

from simvae_tf import api, defaults, diagnosis


def metrics(r2, errors, canonical=None):
    results = {"eval_samples": 100, "data_source": "simulator", "stage2": {"r2_per_latent": r2, "mig": 0.5},
               "ground_truth": {"mig": 0.9}, "calibration": {"max_coverage_error": errors},
               "canonical": canonical or {"r2_per_latent": r2, "invariance": False}}
    return results


def config(**overrides):
    cfg = defaults.base_config()
    cfg.model.width, cfg.stage2.steps, cfg.stage2.latent_weight = 256, 10_000, 100.0
    cfg.stage1.lr_schedule = cfg.stage2.lr_schedule = "cosine"
    for key, value in overrides.items():
        block, _, name = key.rpartition(".")
        setattr(cfg[block] if block else cfg, name, value)
    return cfg


def test_a_weak_latent_and_a_collapsed_posterior_are_named_with_the_keys_that_help():
    results = metrics({"amplitude": 0.99, "f0": 0.999, "damping_ratio": 0.04},
                      {"amplitude": 0.60, "f0": 0.02, "damping_ratio": 0.31})
    found = diagnosis.diagnose(results, config(**{"stage2.latent_weight": 0.0, "model.width": 32,
                                                  "stage2.steps": 2000, "stage2.lr_schedule": "constant"}))
    assert found["poorly_recovered"] == {"damping_ratio": 0.04}
    assert found["badly_calibrated"] == {"amplitude": 0.6, "damping_ratio": 0.31}
    assert not found["ok"] and found["undetermined"] == []
    # The paper objective first: it is what collapses the posterior and ignores a weak latent.
    assert found["suggestions"][0] == "stage2.latent_weight=100"
    assert {"stage2.steps=4000", "model.width=64", "stage2.lr_schedule=cosine"} <= set(found["suggestions"])
    line = api.summary_line({**results, "diagnosis": found})
    assert "poorly recovered: damping_ratio (R^2 0.040)" in line
    assert "badly calibrated: amplitude (coverage error 0.600), damping_ratio (coverage error 0.310)" in line
    assert "try --config.stage2.latent_weight=100 " in line


def test_a_good_run_says_so_and_suggests_nothing():
    results = metrics({"a": 0.95, "b": 0.999}, {"a": 0.03, "b": 0.049})
    found = diagnosis.diagnose(results, config())
    assert found["ok"] and found["suggestions"] == [] and not found["poorly_recovered"]
    assert api.summary_line({**results, "diagnosis": found}).endswith(
        "every determined latent recovered (R^2 >= 0.9) and calibrated (coverage within 0.05)")


def test_with_the_latent_term_on_miscalibration_suggests_a_longer_wider_stage_2_not_the_term():
    found = diagnosis.diagnose(metrics({"a": 0.99}, {"a": 0.09}), config(**{"eval.calibrate_std": False}))
    assert "stage2.latent_weight=100" not in found["suggestions"]
    assert found["suggestions"][:3] == ["eval.calibrate_std=True", "stage2.steps=20000", "model.width=512"]
    found = diagnosis.diagnose(metrics({"a": 0.99}, {"a": 0.09}), config(**{"eval.posterior_tails": False}))
    assert found["suggestions"][:2] == ["eval.posterior_tails=True", "stage2.steps=20000"]


def test_invariance_aware_figures_decide_and_undetermined_latents_are_never_flagged():
    # RLC-like: plain R^2 is poor because R, L, C are determined only up to a scaling; the
    # canonical form fixes R (no R^2 there) and scores L and C; f0 and Q are calibrated.
    rlc = metrics({"R": 0.1, "L": 0.2, "C": 0.3}, {"f0_hz": 0.04, "Q": 0.114},
                  canonical={"r2_per_latent": {"R": None, "L": 0.9999, "C": 0.9998}, "invariance": True})
    found = diagnosis.diagnose(rlc, config())
    assert found["poorly_recovered"] == {} and found["undetermined"] == ["R"]
    assert found["badly_calibrated"] == {"Q": 0.114}
    assert found["recovery_measure"].startswith("canonical")
    # A finite group (polygon's point orders): the aligned R^2 decides.
    polygon = metrics({"x1": 0.0}, {"x1": 0.01}, canonical={
        "r2_per_latent": {"x1": 0.4}, "invariance": True, "aligned": {"r2_per_latent": {"x1": 0.93}}})
    assert diagnosis.diagnose(polygon, config())["ok"]


@pytest.mark.parametrize("missing", ["calibration", "canonical"])
def test_a_partial_evaluation_is_diagnosed_on_what_it_has(missing):
    results = metrics({"a": 0.5}, {"a": 0.2})
    del results[missing]
    found = diagnosis.diagnose(results, config())
    assert found["poorly_recovered"] == {"a": 0.5}
    assert bool(found["badly_calibrated"]) == (missing != "calibration")
