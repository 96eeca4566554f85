"""Adapting a trained inverse to unlabeled real observations (`Run.adapt`, `simvae-adapt`).

Stage 2 continues from the trained encoder on batches that mix the user's observations
with fresh simulations (config `adapt`): the observations contribute the paper's eq. 4
alone (the reconstruction D[x, G(E(x))] through the frozen surrogate, which needs no
latents), the simulations stage 2's own objective (eq. 4 plus the latent term when the run
trained with one), so that the inverse moves towards the observations without forgetting
the simulator. The surrogate G never changes.

Layout (owned here), ADAPTED = WORKDIR/adapted unless another folder is given:
  ADAPTED/record.json          which observations (SHA-256), how many, the adapt config
  ADAPTED/checkpoints/         tf.train checkpoints of the adaptation (resume points)
  ADAPTED/tensorboard/         its loss curves
  ADAPTED/posterior_std_scale.json   the width calibration refitted for the adapted encoder
  ADAPTED/export/              SavedModels + metadata.json, the same signatures as export/
  ADAPTED/adaptation.json      before/after: discrepancy and misspecification p-values on
                               the observations, recovery on held-out simulations

Every step is a pure function of (seed, step): a killed adaptation resumes exactly.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from simvae_tf.errors import ConfigError
from simvae_tf.files import read_json, write_json

RECORD = "record.json"
REPORT = "adaptation.json"
SIMULATED_STREAM = "adapt"
OBSERVED_STREAM = "adapt_observations"
CHECK_STREAM = "adapt_check"
CHECK_SAMPLES = 2000  # at most; eval.num_samples when smaller


def fingerprint(x: np.ndarray) -> str:
    """SHA-256 of the observations (shape and float32 values): a resumed adaptation must
    see the same ones."""
    x = np.ascontiguousarray(x, np.float32)
    return hashlib.sha256(repr(x.shape).encode() + x.tobytes()).hexdigest()


def check_observations(x, simulator) -> np.ndarray:
    """[N, *output shape] float32, finite; a one-line error otherwise."""
    x = np.asarray(x, np.float32)
    shape = tuple(simulator.output_spec.shape)
    if x.shape == shape:
        x = x[None]
    if x.ndim != len(shape) + 1 or x.shape[1:] != shape or len(x) == 0:
        raise ConfigError(f"observations of shape {x.shape}; the model takes a batch [N, {', '.join(map(str, shape))}]")
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise ConfigError(f"observation {int(np.argmax(bad))} holds NaN or Inf values; remove or fill it")
    return x


def batch_split(config) -> tuple[int, int]:
    """(observations, simulations) per batch of config.batch_size."""
    observed = int(round(config.adapt.observed_fraction * config.batch_size))
    observed = min(max(observed, 1), config.batch_size)
    return observed, config.batch_size - observed


def mixed_dataset(run, x_model: np.ndarray, start_batch: int):
    """Batches of observations (model space) and simulations: x alone, or with the latent
    term (x, targets, weights) where observations carry zero targets and weight 0."""
    import tensorflow as tf

    from simvae_tf import data

    config, simulator = run.config, run.simulator
    observed, simulated = batch_split(config)
    observations = data.random_rows((x_model,), seed=config.seed, stream=OBSERVED_STREAM, batch_size=observed,
                                    start_batch=start_batch).map(lambda x: x)
    with_targets = config.stage2.latent_weight > 0
    if simulated == 0:
        if not with_targets:
            return observations.prefetch(tf.data.AUTOTUNE)
        from simvae_tf.simulators import invariance

        num_targets = invariance.num_equivalent_latents(simulator)
        zeros = tf.zeros((observed, num_targets, simulator.num_latents))
        return observations.map(lambda x: (x, zeros, tf.zeros((observed,)))).prefetch(tf.data.AUTOTUNE)
    element = "x_and_targets" if with_targets else "x"
    simulations = run.data.dataset(SIMULATED_STREAM, start_batch, element=element, batch_size=simulated)

    def combine(x_observed, simulation):
        if not with_targets:
            return tf.concat([x_observed, simulation], axis=0)
        x_simulated, targets = simulation
        return (tf.concat([x_observed, x_simulated], axis=0),
                tf.concat([tf.zeros((observed,) + tuple(targets.shape[1:]), targets.dtype), targets], axis=0),
                tf.concat([tf.zeros((observed,)), tf.ones((simulated,))], axis=0))

    return tf.data.Dataset.zip(observations, simulations).map(combine).prefetch(tf.data.AUTOTUNE)


def simulated_recovery(simulator, pair, seed: int, n: int) -> dict[str, float]:
    """`recovery_r2` on n held-out simulations (stream CHECK_STREAM)."""
    from simvae_tf import data

    v, x = data.physical_batch(simulator, seed, CHECK_STREAM, n)
    return recovery_r2(simulator, pair.posterior(x, score_misfit=False), v)


def recovery_r2(simulator, posterior, v: np.ndarray) -> dict[str, float]:
    """R^2 of the posterior mean against the true latents v: per latent against the nearest
    equivalent truth (normalised coordinates); under a continuous invariance per derived
    quantity (log values, inside the validity region), since the latents are undetermined."""
    from simvae_tf import metrics
    from simvae_tf.simulators import base, invariance

    if invariance.has_continuous_invariance(simulator) and simulator.derived_quantities(v[:1]):
        rows = simulator.validity_mask(v)
        truth, estimate = simulator.derived_quantities(v[rows]), simulator.derived_quantities(posterior.clipped_mean()[rows])
        return {name: float(metrics.r2_per_latent(np.log(truth[name])[:, None], np.log(estimate[name])[:, None])[0])
                for name in truth}
    v_u = base.normalize(simulator.latents, v)
    mean_u = posterior.center_normalized
    truth = invariance.nearest_equivalent(invariance.latent_targets_of(simulator, v_u), mean_u)
    return dict(zip(simulator.latent_names, metrics.r2_per_latent(truth, mean_u).astype(float).tolist()))


def observation_scores(pair, x: np.ndarray) -> dict:
    """The misspecification score of each observation under `pair` (discrepancy, p-value),
    summarised."""
    posterior = pair.posterior(x)
    d, p = posterior.discrepancy, posterior.p_value
    return {"discrepancy_mean": float(np.mean(d)), "discrepancy_median": float(np.median(d)),
            "p_value_median": float(np.median(p)), "atypical_fraction_0.01": float(np.mean(p < 0.01)),
            "discrepancy": d.tolist(), "p_value": p.tolist()}


class Adaptation:
    """One adaptation of a run's inverse to observations, in its folder."""

    def __init__(self, run, observations, output_dir: str | None = None):
        self.run = run
        self.x = check_observations(observations, run.simulator)
        self.directory = os.path.abspath(output_dir or run.workdir.path("adapted"))
        self.fingerprint = fingerprint(self.x)

    def path(self, *parts: str) -> str:
        return os.path.join(self.directory, *parts)

    def check_folder(self) -> None:
        """A new or empty folder, or an adaptation of these observations (which resumes)."""
        record_path = self.path(RECORD)
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ConfigError(f"--output={self.directory} is a file; pass a folder path")
        if os.path.exists(record_path):
            record = read_json(record_path)
            if record.get("observations_sha256") != self.fingerprint:
                raise ConfigError(f"{self.directory} holds an adaptation to other observations "
                                  f"({record.get('observations')} of them); pass --output=NEW_FOLDER or delete it")
        elif os.path.isdir(self.directory) and os.listdir(self.directory):
            raise ConfigError(f"--output={self.directory} is a non-empty folder that holds no adaptation; pass a new "
                              "or empty folder")

    def finished_report(self) -> dict | None:
        """The report of a finished adaptation of these observations with this config."""
        from simvae_tf import training

        if not os.path.exists(self.path(REPORT)):
            return None
        report = read_json(self.path(REPORT))
        done = training.committed_step(self.path("checkpoints"))
        if report.get("config") == self.run.config.adapt.to_dict() and done is not None and done >= report["steps"]:
            return report
        return None

    def record(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        write_json(self.path(RECORD), {"observations_sha256": self.fingerprint, "observations": len(self.x),
                                       "adapt": self.run.config.adapt.to_dict(),
                                       "batch": dict(zip(("observations", "simulations"), batch_split(self.run.config)))})

    def run_all(self, verbose: int = 1) -> dict:
        """Adapts (resuming), recalibrates the width, scores before/after, exports; returns
        the report written to adaptation.json."""
        from simvae_tf import misfit, std_calibration, training

        self.check_folder()
        run, config = self.run, self.run.config
        finished = self.finished_report()
        if finished is not None:
            if verbose:
                print(f"adapt: {self.directory} already holds this adaptation ({finished['steps']} steps); "
                      "nothing to do", flush=True)
            return finished
        pair = run.trained_pair()
        run.misfit_reference()
        check_samples = min(CHECK_SAMPLES, config.eval.num_samples)
        before = {"observations": observation_scores(pair, self.x),
                  "simulated_recovery_r2": simulated_recovery(run.simulator, pair, config.seed, check_samples)}
        self.record()

        x_model = pair.to_model_space(self.x).astype(np.float32)
        # Observations have no latents: reconstruction is all they can teach, so it keeps weight 1
        # even for a run trained on the latent term alone (stage2.reconstruction_weight=0).
        model = training.inverse_model(pair, config, run.strategy, reconstruction_weight=1.0)
        with run.strategy.scope():
            model.compile(optimizer=training.make_optimizer(config.adapt), jit_compile=config.model.jit_compile)
            model.optimizer.build(pair.encoder.trainable_variables)
        if verbose:
            observed, simulated = batch_split(config)
            print(f"adapt: continuing stage 2 on {len(self.x)} observations ({observed} per batch, reconstruction "
                  f"only) and fresh simulations ({simulated} per batch) for {config.adapt.steps} steps", flush=True)
        import tensorflow as tf

        writer = tf.summary.create_file_writer(self.path("tensorboard"))
        logs = training.run_stage("adapt", model, config.adapt, self.path("checkpoints"),
                                  lambda start: mixed_dataset(run, x_model, start), writer, verbose=verbose)
        training.restore_weights(pair.encoder, self.path("checkpoints"), "adapted encoder", ("model", "encoder"))

        record = std_calibration.fitted_record(run.simulator, pair, config.seed, config.eval.std_calibration_samples,
                                               config.eval.posterior_tails) \
            if config.eval.calibrate_std else std_calibration.identity_record(run.simulator.latent_names)
        write_json(self.path("posterior_std_scale.json"), record)
        std_calibration.apply(pair, record)
        pair.misfit_reference = misfit.reference_discrepancies(run.simulator, pair, config.seed,
                                                               config.eval.reference_samples)
        # The observations' p-values after adaptation are against the adapted pair's own reference.
        after = {"observations": observation_scores(pair, self.x),
                 "simulated_recovery_r2": simulated_recovery(run.simulator, pair, config.seed, check_samples)}
        report = {
            "observations": len(self.x),
            "observations_sha256": self.fingerprint,
            "steps": int(config.adapt.steps),
            "config": config.adapt.to_dict(),
            "training": logs,
            "before": before,
            "after": after,
            "simulated_recovery_r2_change": {name: after["simulated_recovery_r2"][name] - value
                                             for name, value in before["simulated_recovery_r2"].items()},
            "export": self.path("export"),
        }
        run.write_export(pair, self.path("export"), pair.misfit_reference,
                         card_metrics=run.metrics, extra={"adaptation": {key: report[key] for key in (
                             "observations", "observations_sha256", "steps", "config", "simulated_recovery_r2_change")}})
        write_json(self.path(REPORT), report, sort_keys=False)
        # Leave the run's own pair as training made it.
        run.forget_pair()
        return report


def summary_line(report: dict) -> str:
    before, after = report["before"], report["after"]
    r2 = ", ".join(f"{name} {value:+.3f}" for name, value in report["simulated_recovery_r2_change"].items())
    return (f"Adapted on {report['observations']} observations ({report['steps']} steps): median discrepancy "
            f"{before['observations']['discrepancy_median']:.4g} -> {after['observations']['discrepancy_median']:.4g}, "
            f"atypical at p < 0.01 {before['observations']['atypical_fraction_0.01']:.0%} -> "
            f"{after['observations']['atypical_fraction_0.01']:.0%}; held-out simulated R^2 change [{r2}]")
