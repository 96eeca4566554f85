"""One SimVAE run in a workdir: train (stage 1, stage 2), evaluate, export.

Workdir layout:
  config.json              the config, simulator and package version of the run
  output_scaler.json       standardisation of signal outputs (identity for images)
  checkpoints/stage{1,2}/  tf.train checkpoints (resume points)
  tensorboard/{stage1,stage2,evaluation}/
  data/                    materialised simulator samples (data.cache_size > 0)
  figures/*.png            paper figs. 1, 2 (and 3, 4 where they apply)
  metrics.json             losses and evaluation metrics
  export/{generator,encoder}/  SavedModels, export/metadata.json
"""

from __future__ import annotations

import inspect
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

import simvae_tf
from simvae_tf import data, defaults, export, figures, losses, training
from simvae_tf import simulators
from simvae_tf.simulators import base
from simvae_tf.training import ConfigError

# Config blocks that may change between runs in one workdir (they do not change what was
# trained); any other difference is refused.
MUTABLE_CONFIG_BLOCKS = ("eval",)


def _config_differences(old: dict, new: dict, defaults: dict, prefix: str = "") -> list[str]:
    """Differences between a workdir's config and the current one. A key that a newer
    simvae_tf added is no difference while it holds its default (the old behaviour)."""
    differences = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        if prefix == "" and key in MUTABLE_CONFIG_BLOCKS:
            continue
        if key not in old and key in defaults and new.get(key) == defaults[key]:
            continue
        # A workdir without a newer key ran with its default.
        a, b = old.get(key, defaults.get(key, "<missing>")), new.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            differences += _config_differences(a, b, defaults.get(key, {}) if isinstance(defaults.get(key), dict) else {},
                                               name + ".")
        elif a != b:
            differences.append(f"{name}: {a!r} in the workdir, {b!r} now")
    return differences


def _constructor_defaults(cls) -> dict:
    """A simulator's option defaults: a workdir whose config predates an option ran with them."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


class Experiment:
    def __init__(self, sim: str, config, workdir: str, strategy: tf.distribute.Strategy, verbose: int = 1):
        self.sim_name = sim
        self.config = config
        self.workdir = os.path.abspath(workdir)
        self.strategy = strategy
        self.verbose = verbose
        self.simulator = simulators.make(sim, config.simulator.to_dict())
        self.kind = self.simulator.output_spec.kind
        self._models = None
        self._scaler = None
        self._cache = None
        self._figure_samples = None
        self._writers = {}

    # -- paths and workdir ------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)

    def prepare_workdir(self) -> None:
        """Creates the workdir, or checks that an existing run used the same setup.

        The simulator runs once first, so a missing library or bad data file is reported
        before anything is written."""
        data.simulate_batch(self.simulator, self.config.seed, "probe", 0, 2)
        if os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
            raise ConfigError(f"--workdir={self.workdir} is a file; pass a directory path")
        record = {"sim": self.sim_name, "simulator": self.simulator.describe(),
                  "config": self.config.to_dict(), "simvae_tf_version": simvae_tf.__version__}
        config_path = self.path("config.json")
        if os.path.exists(config_path):
            with open(config_path) as f:
                old = json.load(f)
            differences = []
            if old.get("sim") != self.sim_name:
                differences.append(f"sim: {old.get('sim')!r} in the workdir, {self.sim_name!r} now")
            reference = {**defaults.base_config().to_dict(), "simulator": _constructor_defaults(type(self.simulator))}
            differences += _config_differences(old.get("config", {}), json.loads(json.dumps(record["config"])),
                                               reference)
            if differences:
                raise ConfigError(f"--workdir={self.workdir} holds a different run ({'; '.join(differences[:3])}"
                                  f"{'; ...' if len(differences) > 3 else ''}); use a new --workdir or the same config")
        try:
            os.makedirs(self.workdir, exist_ok=True)
            data.write_json(config_path, record)
        except OSError as e:
            raise ConfigError(f"--workdir={self.workdir} is not writable ({e.strerror}); pass a writable directory") from None

    def writer(self, name: str):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(self.path("tensorboard", name))
            if name == "stage1":  # the config as text, once per run
                with self._writers[name].as_default(step=0):
                    tf.summary.text("config", "```\n" + json.dumps(self.config.to_dict(), indent=2) + "\n```")
        return self._writers[name]

    # -- data -------------------------------------------------------------------------------
    def cache(self):
        if self.config.data.cache_size > 0 and self._cache is None:
            self._cache = data.materialize(self.simulator, self.config.data.cache_size, self.config.seed,
                                           self.path("data"), num_workers=self.config.data.num_workers,
                                           progress=self.verbose > 0)
        return self._cache

    def scaler(self) -> data.OutputScaler:
        if self._scaler is None:
            path = self.path("output_scaler.json")
            if os.path.exists(path):
                with open(path) as f:
                    self._scaler = data.OutputScaler.from_json(json.load(f))
            else:
                self._scaler = data.fit_output_scaler(self.simulator, self.config.seed, self.cache())
                data.write_json(path, self._scaler.to_json())
        return self._scaler

    def dataset(self, stream: str, start_batch: int, element: str = "z_and_x"):
        return data.make_dataset(self.simulator, seed=self.config.seed, stream=stream,
                                 batch_size=self.config.batch_size, start_batch=start_batch,
                                 num_workers=self.config.data.num_workers, cache=self.cache(),
                                 scaler=self.scaler(), element=element)

    def figure_samples(self) -> tuple[np.ndarray, np.ndarray]:
        if self._figure_samples is None:
            self._figure_samples = data.physical_batch(self.simulator, self.config.seed, "figures",
                                                       self.config.eval.num_figure_samples)
        return self._figure_samples

    # -- models -----------------------------------------------------------------------------
    @property
    def models(self) -> tuple[keras.Model, keras.Model]:
        if self._models is None:
            with self.strategy.scope():
                self._models = training.build_models(self.config, self.simulator)
        return self._models

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Generator in physical units: latents [n, K] -> observations [n, ...]."""
        generator = self.models[0]
        u = base.normalize(self.simulator.latents, z)
        prediction = generator.predict(u, batch_size=256, verbose=0)
        out = np.asarray(losses.prediction_to_output(self.kind, tf.constant(prediction)))
        return out * self.scaler().std + self.scaler().mean  # identity scaler for images

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encoder: observations -> (posterior mean, log-std) in normalised latent units."""
        encoder = self.models[1]
        x_model = (x - self.scaler().mean) / self.scaler().std  # identity scaler for images
        posterior = encoder.predict(x_model.astype(np.float32), batch_size=256, verbose=0)
        mean, log_std = np.split(posterior, 2, axis=-1)
        return mean, log_std

    def to_physical(self, u: np.ndarray) -> np.ndarray:
        """Normalised -> physical, clipped to the latent ranges the simulator accepts."""
        return base.denormalize(self.simulator.latents, np.clip(u, -1.0, 1.0))

    # -- training ---------------------------------------------------------------------------
    def train(self) -> dict:
        results = {"stage1": self.train_stage1()}
        results["stage2"] = self.train_stage2()
        return results

    def _optimizer(self, stage_config) -> keras.optimizers.Optimizer:
        learning_rate = stage_config.learning_rate
        if stage_config.lr_schedule == "cosine":
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=stage_config.steps)
        return keras.optimizers.Adam(learning_rate=learning_rate)

    def train_stage1(self) -> dict:
        generator, _ = self.models
        with self.strategy.scope():
            generator.compile(optimizer=self._optimizer(self.config.stage1), loss=losses.Discrepancy(self.kind))
            generator.optimizer.build(generator.trainable_variables)
        self._print(f"stage 1: fitting the generator G(z) ~ S(z) ({self.config.stage1.steps} steps)")
        return training.run_stage("stage1", generator, self.config.stage1, self.path("checkpoints", "stage1"),
                                  lambda start: self.dataset("stage1", start), self.writer("stage1"),
                                  summary_fn=lambda step: self.write_image_summaries("stage1", step),
                                  verbose=self.verbose)

    def inverse_model(self) -> training.InverseModel:
        generator, encoder = self.models
        with self.strategy.scope():
            model = training.InverseModel(encoder, generator, self.kind, self.config.stage2.kl_weight,
                                          seed=self.config.seed, latent_weight=self.config.stage2.latent_weight)
        return model

    def train_stage2(self) -> dict:
        generator, encoder = self.models
        training.restore_weights(generator, self.path("checkpoints", "stage1"), "stage-1 generator")
        model = self.inverse_model()
        with self.strategy.scope():
            model.compile(optimizer=self._optimizer(self.config.stage2))
            model.optimizer.build(encoder.trainable_variables)
        latent_term = (f" + the simulated-latent term (weight {self.config.stage2.latent_weight:g})"
                       if self.config.stage2.latent_weight > 0 else "")
        self._print(f"stage 2: fitting the encoder through the frozen generator{latent_term} "
                    f"({self.config.stage2.steps} steps)")
        return training.run_stage("stage2", model, self.config.stage2, self.path("checkpoints", "stage2"),
                                  lambda start: self.stage2_dataset(start), self.writer("stage2"),
                                  summary_fn=lambda step: self.write_image_summaries("stage2", step),
                                  verbose=self.verbose)

    def stage2_dataset(self, start_batch: int):
        """x only, as in the paper, unless the latent term needs the simulated latents."""
        if self.config.stage2.latent_weight > 0:
            return self.dataset("stage2", start_batch, element="x_and_targets")
        return self.dataset("stage2", start_batch, element="x")

    def restore_trained(self) -> None:
        generator, encoder = self.models
        training.restore_weights(generator, self.path("checkpoints", "stage1"), "stage-1 generator")
        training.restore_weights(encoder, self.path("checkpoints", "stage2"), "stage-2 encoder",
                                 path=("model", "encoder"))

    def is_complete(self) -> bool:
        """Both stages trained, evaluated and exported."""
        return (self.is_trained() and os.path.exists(self.path("metrics.json"))
                and os.path.exists(self.path("export", "metadata.json")))

    def is_trained(self) -> bool:
        return (training.stage_is_complete(self.config.stage1, self.path("checkpoints", "stage1"))
                and training.stage_is_complete(self.config.stage2, self.path("checkpoints", "stage2")))

    # -- figures ----------------------------------------------------------------------------
    def _signal_kwargs(self) -> dict:
        axis = getattr(self.simulator, "frequencies_hz", None)
        return {"axis_values": axis, "log_axis": axis is not None,
                "channel_names": getattr(self.simulator, "channels", None)}

    def comparison(self, with_encoder: bool) -> tuple[list[np.ndarray], object]:
        z, x = self.figure_samples()
        rows = [x, self.generate(z)]
        if with_encoder:
            z_hat = self.to_physical(self.encode(x)[0])
            rows += [data.simulate_checked(self.simulator, z_hat), self.generate(z_hat)]
        figure = figures.comparison_figure(rows, self.simulator.output_spec.is_image,
                                           f"{self.simulator.name}: simulator vs generator", **self._signal_kwargs())
        return rows, figure

    def traversal(self, num_steps: int = 7):
        z, _ = self.figure_samples()
        base_u = base.normalize(self.simulator.latents, z[:1])[0]
        steps = np.linspace(-1.0, 1.0, num_steps)
        k = self.simulator.num_latents
        u = np.repeat(base_u[None, None], k, 0).repeat(num_steps, 1)
        for i in range(k):
            u[i, :, i] = steps
        values = base.denormalize(self.simulator.latents, u.reshape(-1, k)).reshape(k, num_steps, k)
        outputs = self.generate(values.reshape(-1, k)).reshape((k, num_steps) + self.simulator.output_spec.shape)
        latent_values = np.stack([values[i, :, i] for i in range(k)])
        return figures.traversal_figure(outputs, self.simulator.latent_names, latent_values,
                                        self.simulator.output_spec.is_image,
                                        f"{self.simulator.name}: generator latent traversals", **self._signal_kwargs())

    def write_image_summaries(self, stage: str, step: int) -> None:
        _, comparison = self.comparison(with_encoder=stage != "stage1")
        images = {"comparison": comparison, "traversals": self.traversal()}
        with self.writer(stage).as_default(step=step):
            for name, figure in images.items():
                png = figures.to_png(figure)
                tf.summary.image(name, tf.image.decode_png(png, channels=4)[None])

    def save_figure(self, name: str, figure) -> str:
        os.makedirs(self.path("figures"), exist_ok=True)
        path = self.path("figures", f"{name}.png")
        png = figures.to_png(figure)
        data.atomic_write(path, lambda f: f.write(png))
        with self.writer("evaluation").as_default(step=0):
            tf.summary.image(name, tf.image.decode_png(png, channels=4)[None])
        return path

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self) -> dict:
        from simvae_tf import evaluation

        self.restore_trained()
        started = time.time()
        results, figures = evaluation.evaluate(self)
        results["evaluation_seconds"] = round(time.time() - started, 1)
        self.save_figure("fig1_comparison", self.comparison(with_encoder=True)[1])
        self.save_figure("fig2_traversals", self.traversal())
        for name, figure in figures.items():
            self.save_figure(name, figure)
        previous = self.read_metrics()
        data.write_json(self.path("metrics.json"), {**previous, **results})
        return results

    def read_metrics(self) -> dict:
        path = self.path("metrics.json")
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def record_training(self, results: dict) -> None:
        metrics = self.read_metrics()
        for stage, logs in results.items():
            if logs:
                metrics.setdefault("training", {})[stage] = logs
        data.write_json(self.path("metrics.json"), metrics)

    # -- export -----------------------------------------------------------------------------
    def export(self) -> str:
        self.restore_trained()
        generator, encoder = self.models
        return export.export_models(generator, encoder, self.simulator, self.scaler(), self.path("export"),
                                    extra_metadata={"sim": self.sim_name,
                                                    "simulator_options": self.config.simulator.to_dict()})

    def _print(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)
