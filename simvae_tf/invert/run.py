"""One invert run: read the inputs, bring them to the model's format, encode them, sample
the posterior, re-render with the surrogate (and the simulator, when importable), and write
results.json plus one figure per input."""

from __future__ import annotations

import os

import numpy as np

from simvae_tf import data, misfit, predictive
from simvae_tf.errors import UserError
from simvae_tf.invert.images import DEFAULT_MARGIN, FRAMINGS, model_background, preprocess_image
from simvae_tf.invert.inputs import Observation, input_files, read_inputs
from simvae_tf.invert.outputs import RESULTS_FORMAT, check_output_dir, default_output_dir, write_outputs
from simvae_tf.invert.simulator import load_simulator
from simvae_tf.invert.spec import ExportSpec
from simvae_tf.simulators import base

# Posterior means this far outside [-1, 1] (normalised units) are flagged as extrapolation.
RANGE_TOLERANCE = 0.05
REFERENCE_SAMPLES = 16
MAX_SAMPLES = 100_000
MAX_PREDICTIVE_DRAWS = 1000


def check_options(num_samples: int, framing: str, margin: float, predictive_draws: int = 0) -> None:
    if framing not in FRAMINGS:
        raise UserError(f"--framing={framing!r} unknown; use one of {', '.join(FRAMINGS)}")
    if not 0.0 <= margin <= 2.0:
        raise UserError(f"--margin={margin} is invalid: it must be a fraction of the drawing's size in [0, 2]")
    if not (isinstance(num_samples, (int, np.integer)) and 0 <= num_samples <= MAX_SAMPLES):
        raise UserError(f"--samples={num_samples} is invalid: it must be an integer in [0, {MAX_SAMPLES}]")
    if not (isinstance(predictive_draws, (int, np.integer)) and 0 <= predictive_draws <= MAX_PREDICTIVE_DRAWS):
        raise UserError(f"--predictive_draws={predictive_draws} is invalid: it must be an integer in "
                        f"[0, {MAX_PREDICTIVE_DRAWS}] (0 skips the check)")


def reference_images(spec: ExportSpec, simulator: base.Simulator | None, pair, seed: int) -> np.ndarray:
    """Typical model images, to read off its background: the simulator's, else the generator's."""
    rng = np.random.default_rng([seed, 1])
    if simulator is not None:
        try:
            z = simulator.sample_latents(rng, REFERENCE_SAMPLES)
            x = data.simulate_checked(simulator, z, data.noise_rng(seed, "invert_reference"))
            return np.asarray(x, dtype=np.float64).reshape((-1,) + spec.shape)
        except Exception:  # a failing black box only costs us the better reference
            pass
    u = rng.uniform(-1.0, 1.0, size=(REFERENCE_SAMPLES, len(spec.latents)))
    return pair.generate(base.denormalize(spec.latents, u)).astype(np.float64)


def bring_images_to_model(observations: list[Observation], spec: ExportSpec, background: np.ndarray,
                          framing: str, margin: float) -> None:
    for observation in observations:
        if observation.x is None:
            observation.x, observation.steps = preprocess_image(
                observation.picture, spec.shape, spec.kind, background, framing, margin, observation.source)


def model_inputs(observations: list[Observation], spec: ExportSpec, simulator: base.Simulator | None, pair,
                 framing: str, margin: float, seed: int) -> np.ndarray:
    """The observations in the model's format, [B, *shape] float32 (pictures framed and
    coloured like the model's images)."""
    if spec.is_image:
        background = model_background(reference_images(spec, simulator, pair, seed))
        bring_images_to_model(observations, spec, background, framing, margin)
    return np.stack([observation.x for observation in observations]).astype(np.float32)


def reconstructions_of(x: np.ndarray, posterior, pair, simulator: base.Simulator | None,
                       notes: list[str], seed: int = 0) -> dict[str, np.ndarray]:
    """G(E(x)) and, when the simulator is importable, S(E(x)) at the clipped mean (the
    simulator is only defined on its latent ranges; a stochastic one draws its noise from
    `seed`)."""
    reconstructions = {"G(E(x))": pair.generate(posterior.mean)}
    if simulator is not None:
        try:
            resimulated = data.simulate_checked(simulator, posterior.clipped_mean(), data.noise_rng(seed, "invert"))
            reconstructions["S(E(x))"] = np.asarray(resimulated, np.float32).reshape(x.shape)
        except Exception as e:  # the simulator is a black box
            notes.append(f"simulator failed on the posterior means ({type(e).__name__}: {e}); S(E(x)) skipped")
    return reconstructions


def derived_quantities(simulator: base.Simulator | None, mean: np.ndarray, samples: np.ndarray | None,
                       notes: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """The simulator's derived quantities at the posterior mean and, with samples, their
    posterior mean and std: {name: {"at_mean": [B], "posterior_mean": [B], "posterior_std": [B]}}."""
    if simulator is None:
        return {}
    try:
        at_mean = simulator.derived_quantities(mean)
        result = {name: {"at_mean": np.asarray(value, np.float64).reshape(len(mean))} for name, value in at_mean.items()}
        if samples is not None and result:
            flat = simulator.derived_quantities(samples.reshape(-1, samples.shape[-1]))
            for name, value in flat.items():
                value = np.asarray(value, np.float64).reshape(samples.shape[:2])
                result[name]["posterior_mean"] = value.mean(axis=1)
                result[name]["posterior_std"] = value.std(axis=1)
        return result
    except Exception as e:
        notes.append(f"derived_quantities failed ({type(e).__name__}: {e}); skipped")
        return {}


def predictive_check(simulator, pair, x: np.ndarray, posterior, draws: int, seed: int, notes: list[str]):
    """`predictive.check` when the simulator imports (and draws > 0), else None."""
    if simulator is None or draws == 0:
        return None
    try:
        return predictive.check(simulator, pair, x, posterior, draws, seed)
    except Exception as e:  # the simulator is a black box
        notes.append(f"predictive check skipped: the simulator failed on posterior draws ({type(e).__name__}: {e})")
        return None


def build_results(spec: ExportSpec, simulator, observations: list[Observation], x: np.ndarray, posterior,
                  samples: np.ndarray | None, reconstructions: dict, derived: dict, notes: list[str],
                  check: dict | None = None) -> dict:
    """The JSON document results.json holds (format RESULTS_FORMAT)."""
    mean, std = posterior.mean, posterior.std
    canonical = None
    if simulator is not None and (spec.metadata.get("invariance") or {}).get("continuous"):
        canonical = simulator.canonicalize(posterior.clipped_mean())  # one representative of the fitting set
    results = {
        "format": RESULTS_FORMAT,
        "model": os.path.abspath(spec.directory),
        "simulator": {"name": spec.metadata.get("name"), "class": spec.metadata.get("class"),
                      "importable": simulator is not None},
        "latents": [{"name": l.name, "unit": l.unit, "low": l.low, "high": l.high, "scale": l.scale,
                     **({"values": list(l.values), "labels": list(l.labels or [])} if l.is_categorical else {})}
                    for l in spec.latents],
        "invariance": spec.metadata.get("invariance"),
        "num_samples": 0 if samples is None else samples.shape[1],
        "notes": notes,
        "inputs": [],
    }
    for i, observation in enumerate(observations):
        entry = {
            "name": observation.name,
            "source": os.path.abspath(observation.source),
            "preprocessing": observation.steps,
            "posterior": {latent.name: {"mean": float(mean[i, k]), "std": float(std[i, k]), "unit": latent.unit,
                                        **_probabilities_entry(latent, posterior, i)}
                          for k, latent in enumerate(spec.latents)},
            "mean_normalized": posterior.mean_normalized[i].astype(float).tolist(),
            "log_std_normalized": posterior.log_std_normalized[i].astype(float).tolist(),
            "outside_trained_range": [latent.name for k, latent in enumerate(spec.latents)
                                      if abs(posterior.mean_normalized[i, k]) > 1.0 + RANGE_TOLERANCE],
            "reconstruction_rmse": {name: float(np.sqrt(np.mean((rows[i] - x[i]) ** 2)))
                                    for name, rows in reconstructions.items()},
            "derived": {name: {key: float(value[i]) for key, value in quantity.items()}
                        for name, quantity in derived.items()},
            "figure": f"{observation.name}.png",
        }
        if canonical is not None:
            entry["canonical"] = {latent.name: float(canonical[i, k]) for k, latent in enumerate(spec.latents)}
        if check is not None:
            entry["predictive_check"] = predictive.summary(check, i)
        if posterior.p_value is not None:
            entry["misspecification"] = {"discrepancy": float(posterior.discrepancy[i]),
                                         "p_value": float(posterior.p_value[i]),
                                         "atypical": bool(posterior.p_value[i] < misfit.ALARM_LEVEL),
                                         "verdict": misfit.verdict(float(posterior.p_value[i]))}
        if samples is not None:
            entry["samples"] = samples[i].tolist()
        results["inputs"].append(entry)
    return results


def _probabilities_entry(latent: base.Latent, posterior, i: int) -> dict:
    """{"probabilities": {label or value: p}} of a categorical latent, else {}."""
    if not latent.is_categorical:
        return {}
    keys = latent.labels or [f"{value:g}" for value in latent.values]
    return {"probabilities": {key: float(p) for key, p in zip(keys, posterior.probabilities[latent.name][i])}}


def invert(model_dir: str, input_path: str, output_dir: str | None = None, num_samples: int = 0,
           framing: str = "ink", margin: float = DEFAULT_MARGIN, seed: int = 0,
           predictive_draws: int = predictive.DEFAULT_DRAWS) -> tuple[dict, str]:
    """Inverts every input; writes OUT_DIR/results.json and figures; returns (results, OUT_DIR).

    Every check that needs no TensorFlow (options, inputs, output folder, the export's
    metadata) runs before the SavedModels load, so bad input fails fast."""
    check_options(num_samples, framing, margin, predictive_draws)
    paths = input_files(input_path)
    spec = ExportSpec.read(model_dir)
    output_dir = os.path.abspath(output_dir or default_output_dir(input_path))
    check_output_dir(output_dir)
    observations = read_inputs(paths, spec)

    simulator, why_no_simulator = load_simulator(spec)
    notes = [f"{why_no_simulator}; S(E(x)) and derived quantities are skipped"] if simulator is None else []
    from simvae_tf import export  # TensorFlow: after every cheap check

    pair = export.load(model_dir)
    x = model_inputs(observations, spec, simulator, pair, framing, margin, seed)
    posterior = pair.posterior(x)
    if posterior.p_value is None:
        notes.append("the export holds no misspecification reference (exported before simvae_tf 0.2); re-export it "
                     "(--mode=export) to have each input scored")
    reconstructions = reconstructions_of(x, posterior, pair, simulator, notes, seed)
    samples = posterior.sample(num_samples, seed) if num_samples else None
    derived = derived_quantities(simulator, posterior.mean, samples, notes)
    check = predictive_check(simulator, pair, x, posterior, predictive_draws, seed, notes)
    results = build_results(spec, simulator, observations, x, posterior, samples, reconstructions, derived, notes,
                            check)

    from simvae_tf.invert.report import input_figures_png

    write_outputs(output_dir, results, input_figures_png(spec, observations, reconstructions, posterior.mean,
                                                         None if check is None else check["resimulated"]))
    return results, output_dir
