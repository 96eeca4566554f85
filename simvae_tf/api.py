"""The Python API: `get_config`, `fit`, `load`, and the `Run` that `fit` returns.

    import simvae_tf as sv
    config = sv.get_config("box")               # or "module:Class", a Simulator subclass, an instance
    config.stage1.steps = 500
    run = sv.fit("box", config=config, workdir="runs/mine")
    run.metrics                                 # what metrics.json holds
    post = run.posterior(x)                     # post.mean, post.std, post.sample(100, seed=0)
    run.generate(z)                             # the surrogate G on physical latents
    model = sv.load(run.export_dir)             # SavedModels + metadata alone

`fit` is what `python -m simvae_tf.main` runs: the same seeding and op determinism, config
checks, resume, refusal of a workdir holding another run, progress lines and TensorBoard.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from simvae_tf import config as config_lib
from simvae_tf import multiworker, simulators
from simvae_tf.errors import ConfigError
from simvae_tf.posterior import Posterior
from simvae_tf.simulators import SimulatorLike
from simvae_tf.workdir import Workdir, default_workdir, run_record

MODES = ("all", "train", "evaluate", "export")
get_config = config_lib.get_config


class Run:
    """One run in one workdir: its simulator, data, trained pair, metrics and export."""

    def __init__(self, sim: SimulatorLike, config, workdir: str, strategy, verbose: int = 1):
        from simvae_tf.training_data import TrainingData

        self.sim_name = simulators.name_of(sim)
        self.config = config
        self.strategy = strategy
        self.role = multiworker.role(strategy)
        self.verbose = verbose
        self.workdir = Workdir(workdir)
        self.simulator = simulators.make(sim, config.simulator.to_dict())
        self.data = TrainingData(self.simulator, config, self.workdir.root, verbose)
        self._pair = None
        self._restored = False

    def __repr__(self) -> str:
        return f"Run({self.sim_name!r}, workdir={self.workdir.root!r})"

    # -- state ---------------------------------------------------------------------------------
    @property
    def export_dir(self) -> str:
        return self.workdir.export_dir

    @property
    def metrics(self) -> dict:
        return self.workdir.read_metrics()

    def is_trained(self) -> bool:
        from simvae_tf import training

        return training.is_trained(self.config, self.workdir.root)

    def is_complete(self) -> bool:
        return self.workdir.is_complete(self.is_trained())

    @property
    def pair(self):
        """The run's generator and encoder (`pair.TrainedPair`), built in the strategy scope."""
        if self._pair is None:
            from simvae_tf.models import build_models
            from simvae_tf.pair import TrainedPair

            with self.strategy.scope():
                generator, encoder = build_models(self.config, self.simulator)
            self._pair = TrainedPair(generator, encoder, self.simulator, self.data.scaler())
        return self._pair

    def trained_pair(self):
        """The pair with both stages' final weights (restored once from the checkpoints)."""
        if not self._restored:
            from simvae_tf import training

            if not self.is_trained():
                raise ConfigError(f"training in {self.workdir.root} is not complete; finish it with "
                                  "sv.fit(..., mode='train') or --mode=train (it resumes)")
            training.restore_pair(self.pair, self.workdir.root)
            self._restored = True
            self.pair.misfit_reference = None  # of the networks before, if any
            self._fitted_calibration()
        return self.pair

    def std_scale(self) -> np.ndarray:
        """The post-hoc factor on each latent's posterior std (`std_calibration`; ones when
        eval.calibrate_std is off), fitted once and kept in the workdir."""
        return self.posterior_calibration()[0]

    def posterior_calibration(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(factor on each latent's posterior std, its tail shape as Student-t degrees of
        freedom (np.inf: none) and generalised normal power (2: none); `tail_shapes`): the
        post-hoc calibration of `std_calibration` (ones and Gaussians when
        eval.calibrate_std is off; Gaussians when eval.posterior_tails is off), fitted once on
        the trained pair and kept in the workdir."""
        self.trained_pair()
        return self._fitted_calibration()

    def _fitted_calibration(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """posterior_calibration of the restored pair (read from the workdir, or fitted),
        applied to the pair."""
        from simvae_tf import std_calibration

        n, seed, tails = self.config.eval.std_calibration_samples, self.config.seed, self.config.eval.posterior_tails
        if not self.config.eval.calibrate_std:
            record = std_calibration.identity_record(self.simulator.latent_names)
        else:
            record = self.workdir.read_std_calibration()
            if not std_calibration.is_current(record, n, seed, tails):
                record = std_calibration.fitted_record(self.simulator, self.pair, seed, n, tails)
                self.workdir.write_std_calibration(record)
        return std_calibration.apply(self.pair, record)

    def misfit_reference(self):
        """The sorted reference discrepancies of the trained pair (`simvae_tf.misfit`),
        computed once on config.eval.reference_samples held-out simulations."""
        pair = self.trained_pair()
        if pair.misfit_reference is None:
            from simvae_tf import misfit

            pair.misfit_reference = misfit.reference_discrepancies(self.simulator, pair, self.config.seed,
                                                                   self.config.eval.reference_samples)
        return pair.misfit_reference

    # -- the steps -----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Runs the simulator once and checks data.dataset_dir (a missing library, a bad data
        file or a mismatched dataset is reported before anything is written), then records
        the run in its workdir."""
        from simvae_tf import data

        data.simulate_batch(self.simulator, self.config.seed, "probe", 0, 2)
        self.data.check_dataset()
        self.workdir.record(self.sim_name, self.simulator, self.config)
        self.data.record_dataset()

    def train(self) -> dict:
        """Both stages, each resuming from its last checkpoint; records their final losses."""
        from simvae_tf import training
        from simvae_tf.evaluation import plots

        def summaries(stage):
            def write(step):
                z, x = self.data.figure_samples()
                self.workdir.write_images(stage, step, plots.training_summaries(self.simulator, self.pair, z, x, stage))
            return write

        root = self.workdir.root
        results = {"stage1": training.train_generator(
            self.pair, self.config, root, self.strategy, self._stream(self.data.stage1_dataset),
            self.workdir.writer("stage1", self.config), summaries("stage1"), self.verbose)}
        results["stage2"] = training.train_encoder(
            self.pair, self.config, root, self.strategy, self._stream(self.data.stage2_dataset),
            self.workdir.writer("stage2"), summaries("stage2"), self.verbose)
        self._restored = False  # the encoder in memory is the last step's; evaluation restores
        self.workdir.record_training(results)
        return results

    def _stream(self, make_dataset):
        """`make_data(start_batch)` for a stage: the global batches as they are on one worker;
        on several, each worker builds (and simulates) only its own rows of each."""
        if not self.role.is_multi_worker:
            return make_dataset
        return lambda start: multiworker.distribute_stream(
            self.strategy, lambda shard: make_dataset(start, shard), self.config.batch_size)

    def leave_workers(self) -> None:
        """After a multi-worker training, the chief evaluates and exports alone: the pair is
        rebuilt outside the strategy, whose variable creation and `predict` would wait for
        the other workers."""
        import tensorflow as tf

        self.strategy = tf.distribute.get_strategy()
        self._pair, self._restored = None, False

    def evaluate(self, scorers=None) -> dict:
        """Runs the named scorers (all by default), writes metrics.json and figures/."""
        from simvae_tf import diagnosis, evaluation, figures, tail_shapes

        pair = self.trained_pair()
        started = time.time()
        self.misfit_reference()  # once per run: the misspecification scorer and the export share it
        results, figs = evaluation.evaluate(self.simulator, pair, self.config.eval, self.config.seed, scorers)
        if "calibration" in results:
            names = self.simulator.latent_names
            results["calibration"]["std_scale"] = dict(zip(names, np.exp(pair.log_std_offset).round(4).tolist()))
            results["calibration"]["posterior_dof"] = dict(zip(names, tail_shapes.to_json(pair.posterior_dof,
                                                                                          tail_shapes.GAUSSIAN_DOF)))
            results["calibration"]["posterior_power"] = dict(zip(names, tail_shapes.to_json(pair.posterior_power,
                                                                                            tail_shapes.GAUSSIAN_POWER)))
        # of the merged metrics: a partial re-evaluation keeps the other scorers' blocks
        results["diagnosis"] = diagnosis.diagnose({**self.workdir.read_metrics(), **results}, self.config)
        results["evaluation_seconds"] = round(time.time() - started, 1)
        for name, figure in figs.items():
            self.workdir.save_figure(name, figures.to_png(figure))
        self.workdir.update_metrics(results)
        self.workdir.write_hparams(self.config, headline_metrics(results))
        return results

    def export(self) -> str:
        """export/ (SavedModels, metadata.json with the misfit reference and the model card,
        README.md); returns its path."""
        return self.write_export(self.trained_pair(), self.export_dir, self.misfit_reference(), self.metrics)

    def write_export(self, pair, export_dir: str, reference: np.ndarray, card_metrics: dict,
                     extra: dict | None = None) -> str:
        """Exports `pair` (this run's, or an adapted one) with the run's metadata, the misfit
        `reference` and a model card of `card_metrics`."""
        from simvae_tf import export, files, misfit, model_card

        export.export_pair(pair, export_dir, extra_metadata={
            "sim": self.sim_name,
            "simulator_options": self.config.simulator.to_dict(),
            "misspecification": misfit.to_metadata(reference, self.config.seed),
            "model_card": model_card.summary(card_metrics),
            "invariance": self._invariance_metadata(),
            "config": self.config.to_dict(),
            **(extra or {}),
        })
        card = model_card.markdown(export.read_metadata(export_dir))
        files.atomic_write(os.path.join(export_dir, "README.md"), lambda f: f.write(card.encode()))
        return export_dir

    def forget_pair(self) -> None:
        """Drops the weights in memory: the next use restores the trained ones."""
        self._restored = False

    def adapt(self, observations, output_dir: str | None = None, steps: int | None = None) -> dict:
        """Adapts the inverse to unlabeled observations [N, *output shape] (physical units):
        stage 2 continues on them (reconstruction through the frozen G) mixed with fresh
        simulations (config `adapt`). Writes WORKDIR/adapted/ (or `output_dir`): export/
        with the signatures of export/, and adaptation.json, the returned report (before /
        after discrepancy and p-values on the observations, held-out simulated recovery).
        Resumes when rerun with the same observations."""
        from simvae_tf import adaptation

        if not self.is_trained():
            raise ConfigError(f"adapting needs a trained run, but training in {self.workdir.root} is not complete; "
                              "finish it first (it resumes)")
        if steps is not None:
            self.config.adapt.steps = steps
            config_lib.validate(self.config)
        return adaptation.Adaptation(self, observations, output_dir).run_all(self.verbose)

    def fingerprint(self) -> str:
        """What every worker of a multi-worker run must share: its config.json record."""
        return json.dumps(run_record(self.sim_name, self.simulator, self.config), sort_keys=True, default=str)

    def _invariance_metadata(self) -> dict:
        from simvae_tf.simulators import invariance

        sim = self.simulator
        continuous = invariance.has_continuous_invariance(sim)
        determined = list(sim.derived_quantities(sim.sample_latents(np.random.default_rng(0), 1))) if continuous else None
        return {"present": bool(sim.has_invariance), "continuous": continuous,
                "description": sim.invariance_description, "determined": determined}

    # -- using the trained pair ----------------------------------------------------------------
    def posterior(self, x) -> Posterior:
        """q(z | x) for observations x [B, *output shape] (physical units), with each
        observation's misspecification p-value (`Posterior.p_value`)."""
        self.misfit_reference()
        return self.trained_pair().posterior(x)

    def generate(self, z):
        """The surrogate G: physical latents [B, K] -> observations [B, *output shape]."""
        return self.trained_pair().generate(z)


def _check_workers(sim: SimulatorLike, config) -> None:
    """Worker processes re-import the simulator's class by module: one defined in a
    notebook cell or an interactive session (module __main__) cannot be found there."""
    if config.data.num_workers > 0 and not isinstance(sim, str):
        cls = simulators.resolve_class(sim)
        if cls.__module__ == "__main__":
            raise ConfigError(f"data.num_workers={config.data.num_workers} needs a simulator importable by worker "
                              f"processes, but {cls.__qualname__} is defined in __main__ (a notebook or script); "
                              "set config.data.num_workers = 0 or move the class into a .py module")


def _make_strategy(strategy):
    from simvae_tf import strategies

    return strategies.make_strategy(strategy) if isinstance(strategy, str) else strategy


def headline_metrics(results: dict) -> dict[str, float | None]:
    """The numbers the HParams dashboard compares runs by."""
    headline = {"mig": results.get("stage2", {}).get("mig"),
                "ground_truth_mig": results.get("ground_truth", {}).get("mig"),
                "surrogate_mean_abs_error": results.get("stage1", {}).get("mean_abs_error")}
    for name, r2 in results.get("stage2", {}).get("r2_per_latent", {}).items():
        headline[f"r2/{name}"] = r2
    for name, error in results.get("calibration", {}).get("max_coverage_error", {}).items():
        headline[f"coverage_error/{name}"] = error
    headline["false_alarm_rate"] = results.get("misspecification", {}).get("false_alarm_rate", {}).get("0.01")
    for name, block in results.get("categorical", {}).items():
        headline[f"accuracy/{name}"] = block["accuracy"]
    return headline


def summary_line(results: dict) -> str:
    """The evaluation line: latent R^2, MIG and the diagnosis (what to try when a latent is
    poorly recovered or badly calibrated)."""
    from simvae_tf import diagnosis

    r2 = results["stage2"]["r2_per_latent"]
    parts = ", ".join(f"{k}={v:.3f}" if v is not None else f"{k}=n/a" for k, v in r2.items())
    accuracy = "".join(f"; {name} accuracy {block['accuracy']:.3f}"
                       for name, block in results.get("categorical", {}).items())
    line = (f"Evaluation ({results['eval_samples']} samples, source {results['data_source']}): "
            f"latent R^2 [{parts}]; MIG {results['stage2']['mig']:.3f} "
            f"(ground truth {results['ground_truth']['mig']:.3f}){accuracy}")
    return line + (f"; {diagnosis.summary(results['diagnosis'])}" if "diagnosis" in results else "")


def fit(sim: SimulatorLike, config=None, workdir: str | None = None, strategy="auto", mode: str = "all",
        verbose: int | None = None, stage1_from: str | None = None) -> Run:
    """Trains what is missing, evaluates and exports (mode="all"); "train", "evaluate" or
    "export" runs that part. `sim`: a built-in name, "module:Class", a Simulator subclass or
    an instance; `config`: default `get_config(sim)`; `workdir`: default runs/<sim>;
    `strategy`: auto, mirrored, multiworker, default, or a tf.distribute.Strategy;
    `stage1_from`: the workdir of a run whose finished stage 1 this one reuses (same
    simulator and stage-1 config; stage2, eval and adapt keys may differ; one worker).

    With several workers (`multiworker` and TF_CONFIG, docs/multiworker.md) every worker
    calls fit; only the chief writes `workdir` and evaluates and exports, and the Run that
    fit returns on another worker holds no results (its scratch folder is removed)."""
    if mode not in MODES:
        raise ConfigError(f"--mode={mode!r} unknown; use one of {', '.join(MODES)}")
    config = get_config(sim) if config is None else config
    config_lib.validate(config)
    if config.method != "simvae":
        raise ConfigError(f"config.method={config.method!r}: fit trains SimVAE; the beta-VAE baseline is "
                          "simvae_tf.beta_vae.fit(sim, config, workdir) (or the CLI with --config.method=beta_vae)")
    _check_workers(sim, config)
    workdir = workdir or default_workdir(simulators.name_of(sim))
    verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose

    import tensorflow as tf

    from simvae_tf import strategies

    say = print if verbose else (lambda *a, **k: None)
    if config.model.jit_compile:  # Keras refuses XLA under op determinism: the run is not bitwise reproducible
        say("simvae_tf: model.jit_compile: XLA-compiled steps, without TensorFlow's op determinism", flush=True)
    else:
        tf.config.experimental.enable_op_determinism()
    if strategy == "multiworker":
        say("simvae_tf: waiting for every worker of TF_CONFIG to start", flush=True)
    distribution = _make_strategy(strategy)
    strategies.check_batch_divides(config, distribution)
    role = multiworker.role(distribution)
    # Only the chief writes into the workdir; the other workers write into scratch folders.
    with multiworker.scratch_dir(workdir, role) as own_dir, multiworker.lost_workers_fail_the_run(distribution):
        run = Run(sim, config, own_dir, distribution, verbose)
        where = f"workdir={run.workdir.root}" if role.is_chief else f"{role}, writing to {own_dir} (removed at the end)"
        say(f"simvae_tf: sim={run.sim_name} mode={mode} {where} "
            f"replicas={distribution.num_replicas_in_sync} data={run.simulator.source}", flush=True)
        if stage1_from and role.is_multi_worker:
            raise ConfigError("--stage1_from works with one worker; copy the stage 1 with a one-process run "
                              "(--mode=train with the same config is enough) before training on several workers")
        if role.is_chief:
            _run_on_chief(run, mode, say, stage1_from)
        else:
            _run_on_worker(run, mode, say, workdir)
        multiworker.barrier(distribution)  # the others wait for the chief: their exit would look like a failure
    return run


def _run_on_chief(run: Run, mode: str, say, stage1_from: str | None = None) -> None:
    """What fit does on a single worker, or on the chief of several."""
    import keras

    if mode in ("evaluate", "export") and not run.workdir.holds_run():
        raise ConfigError(f"--mode={mode} needs a trained run, but --workdir={run.workdir.root} holds none; "
                          "run --mode=all (or --mode=train) there first")
    source = run.workdir.stage1_source(stage1_from, run.sim_name, run.simulator, run.config) if stage1_from else None
    if mode in ("all", "train"):  # before anything is written
        multiworker.check_same_run(run.strategy, run.fingerprint())
    run.prepare()
    if source is not None:
        run.workdir.copy_stage1(source)
        say(f"stage 1: reusing {source.root} (copied its generator, output scaler and cached samples)", flush=True)
    if mode in ("evaluate", "export") and not run.is_trained():
        raise ConfigError(f"--mode={mode} needs a trained run, but training in {run.workdir.root} is not "
                          "complete; finish it with --mode=train (it resumes)")
    keras.utils.set_random_seed(run.config.seed)
    started = time.time()
    if mode == "all" and multiworker.chief_decides(run.strategy, run.is_complete()):
        say(f"Run in {run.workdir.root} is already complete; nothing to do "
            "(--mode=evaluate re-evaluates, --mode=export re-exports, a new --workdir trains anew).", flush=True)
        return
    if mode in ("all", "train"):
        run.train()
    if run.role.is_multi_worker:
        run.leave_workers()
    if mode in ("all", "evaluate"):
        say(summary_line(run.evaluate()), flush=True)
    if mode in ("all", "export"):
        run.export()
    say(f"Done in {time.time() - started:.0f}s. Results in {run.workdir.root}: metrics.json, figures/, export/, "
        f"TensorBoard: tensorboard --logdir {run.workdir.path('tensorboard')}", flush=True)


def _run_on_worker(run: Run, mode: str, say, workdir: str) -> None:
    """What fit does on a worker other than the chief: its share of training (the same
    steps, in the same order), then it waits while the chief evaluates and exports."""
    import keras

    if mode not in ("all", "train"):
        say(f"{run.role}: --mode={mode} runs on the chief alone; waiting for it", flush=True)
        return
    multiworker.check_same_run(run.strategy, run.fingerprint())
    run.prepare()  # the simulator runs here too; the record goes to the scratch folder
    keras.utils.set_random_seed(run.config.seed)
    if mode == "all" and multiworker.chief_decides(run.strategy, False):
        return
    run.train()
    then = "; waiting while the chief evaluates and exports" if mode == "all" else ""
    say(f"{run.role}: training done; results in the chief's --workdir ({workdir} on its machine){then}", flush=True)


def open_run(workdir: str, strategy="auto", verbose: int | None = None) -> Run:
    """The finished run in `workdir` (its simulator and config from config.json), to use
    its trained pair (`posterior`, `generate`), re-evaluate, re-export or `adapt`. Keys
    added to the config since the run keep their defaults."""
    import ml_collections

    from simvae_tf import defaults
    from simvae_tf.files import read_json

    record_path = os.path.join(workdir, "config.json")
    if not os.path.exists(record_path):
        raise ConfigError(f"--model={workdir} holds no simvae_tf run (no config.json); pass a run's workdir "
                          "(the --workdir it was trained in)")
    record = read_json(record_path)
    if record.get("config", {}).get("method", "simvae") != "simvae":
        raise ConfigError(f"--model={workdir} holds a {record['config']['method']} baseline run, not a SimVAE "
                          "one: its scores are in its metrics.json; pass a SimVAE run's workdir")
    config = defaults.base_config().to_dict()
    _merge(config, record["config"])
    config = ml_collections.ConfigDict(config)
    verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    run = Run(record["sim"], config, workdir, _make_strategy(strategy), verbose)
    trained, now = record.get("simulator", {}), json.loads(json.dumps(run.simulator.describe()))
    from simvae_tf.simulators.base import Latent

    if "latents" in trained and [Latent(**entry) for entry in trained["latents"]] != list(run.simulator.latents):
        raise ConfigError(f"--model={workdir}: the simulator's latents changed since the run was trained "
                          f"({trained['latents']} then, {now['latents']} now); retrain in a new workdir")
    if "output_spec" in trained and trained["output_spec"] != now["output_spec"]:
        raise ConfigError(f"--model={workdir}: the simulator's output changed since the run was trained "
                          f"({trained['output_spec']} then, {now['output_spec']} now); retrain in a new workdir")
    return run


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def load(export_dir: str):
    """A trained export (WORKDIR/export) as an `export.ExportedPair`: `posterior(x)`,
    `generate(z)`, `latents`, from the SavedModels and metadata alone."""
    from simvae_tf import export

    return export.load(os.fspath(export_dir))
