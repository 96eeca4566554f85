"""The workdir of one run: its layout, the record of what was trained there (and the
refusal of anything else), the metrics file, TensorBoard writers and saved figures.

Layout:
  config.json              the config, simulator and package version of the run
  output_scaler.json       standardisation of signal outputs (training_data)
  checkpoints/stage{1,2}/  tf.train checkpoints, resume points (training owns them)
  tensorboard/{stage1,stage2,evaluation}/
  data/                    materialised simulator samples (data.cache_size > 0)
  figures/*.png            paper figs. 1, 2 (and 3, 4 where they apply)
  metrics.json             losses and evaluation metrics
  export/                  SavedModels and metadata.json (export owns them)
"""

from __future__ import annotations

import inspect
import json
import os

import simvae_tf
from simvae_tf import defaults
from simvae_tf.errors import ConfigError
from simvae_tf.files import atomic_replace_dir, atomic_write, read_json, write_json

CONFIG_RECORD = "config.json"
METRICS = "metrics.json"
# Config blocks that may change between runs in one workdir (they do not change what was
# trained); any other difference is refused.
MUTABLE_CONFIG_BLOCKS = ("eval", "adapt")
# What stage 1 depends on: a finished stage 1 serves another workdir whose config agrees on
# these (`Workdir.reuse_stage1`); stage2, eval and adapt may differ.
STAGE1_CONFIG_BLOCKS = ("seed", "batch_size", "simulator", "model", "stage1", "data")
STAGE1_SOURCE = "stage1_source.json"
STD_CALIBRATION = "posterior_std_scale.json"


def default_workdir(sim_name: str) -> str:
    """runs/<sim> under the current folder (module:Class as module.Class)."""
    return os.path.join("runs", sim_name.replace(":", ".").replace("/", "_"))


def config_differences(old: dict, new: dict, defaults_: dict, prefix: str = "") -> list[str]:
    """Differences between a workdir's config and the current one. A key that a newer
    simvae_tf added is no difference while it holds its default (the old behaviour)."""
    differences = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        if prefix == "" and key in MUTABLE_CONFIG_BLOCKS:
            continue
        if key not in old and key in defaults_ and new.get(key) == defaults_[key]:
            continue
        # A workdir without a newer key ran with its default.
        a, b = old.get(key, defaults_.get(key, "<missing>")), new.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            nested = defaults_.get(key) if isinstance(defaults_.get(key), dict) else {}
            differences += config_differences(a, b, nested, name + ".")
        elif a != b:
            differences.append(f"{name}: {a!r} in the workdir, {b!r} now")
    return differences


def _copy(source: str, destination: str) -> None:
    """A folder's files, hard-linked where the file system allows (cached samples can be
    large), else copied."""
    import shutil

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link_or_copy)


def constructor_defaults(cls) -> dict:
    """A simulator's option defaults: a workdir whose config predates an option ran with them."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def run_record(sim_name: str, simulator, config) -> dict:
    """What config.json records of a run: what was trained, and with which version."""
    return {"sim": sim_name, "simulator": simulator.describe(), "config": config.to_dict(),
            "simvae_tf_version": simvae_tf.__version__}


class Workdir:
    def __init__(self, path: str):
        self.root = os.path.abspath(path)
        self._writers = {}

    def __repr__(self) -> str:
        return f"Workdir({self.root})"

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def export_dir(self) -> str:
        return self.path("export")

    def holds_run(self) -> bool:
        return os.path.exists(self.path(CONFIG_RECORD))

    def is_complete(self, trained: bool) -> bool:
        """Trained (as training reports), evaluated and exported."""
        return trained and os.path.exists(self.path(METRICS)) and os.path.exists(self.path("export", "metadata.json"))

    # -- the run's record ----------------------------------------------------------------------
    def record(self, sim_name: str, simulator, config) -> None:
        """Creates the workdir, or checks that the run in it used the same setup; refuses a
        file, a non-empty folder that is no workdir, and a workdir of another run."""
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise ConfigError(f"--workdir={self.root} is a file; pass a directory path")
        record = run_record(sim_name, simulator, config)
        if self.holds_run():
            old = read_json(self.path(CONFIG_RECORD))
            differences = []
            if old.get("sim") != sim_name:
                differences.append(f"sim: {old.get('sim')!r} in the workdir, {sim_name!r} now")
            reference = {**defaults.base_config().to_dict(), "simulator": constructor_defaults(type(simulator))}
            differences += config_differences(old.get("config", {}), json.loads(json.dumps(record["config"])),
                                              reference)
            if differences:
                raise ConfigError(f"--workdir={self.root} holds a different run ({'; '.join(differences[:3])}"
                                  f"{'; ...' if len(differences) > 3 else ''}); use a new --workdir or the same config")
        elif os.path.isdir(self.root) and os.listdir(self.root):
            raise ConfigError(f"--workdir={self.root} is a non-empty folder that holds no simvae_tf run (no "
                              f"{CONFIG_RECORD}); pass a new or empty folder so nothing is written among your files")
        try:
            os.makedirs(self.root, exist_ok=True)
            write_json(self.path(CONFIG_RECORD), record)
        except OSError as e:
            raise ConfigError(f"--workdir={self.root} is not writable ({e.strerror}); pass a writable directory") from None

    # -- reusing another workdir's stage 1 --------------------------------------------------------
    def stage1_source(self, source: str, sim_name: str, simulator, config) -> "Workdir | None":
        """The workdir `source` whose finished stage 1 this run may reuse: same simulator,
        same STAGE1_CONFIG_BLOCKS, stage 1 complete (else a one-line error). None when this
        workdir has a stage 1 of its own already (a rerun)."""
        from simvae_tf import training

        if training.committed_step(training.checkpoint_dir(self.root, "stage1")) is not None:
            return None
        other = Workdir(source)
        if other.root == self.root or not other.holds_run():
            raise ConfigError(f"--stage1_from={source} holds no simvae_tf run; pass the workdir of a run whose "
                              "stage 1 is complete")
        record = read_json(other.path(CONFIG_RECORD))
        wanted = {key: value for key, value in json.loads(json.dumps(config.to_dict())).items()
                  if key in STAGE1_CONFIG_BLOCKS}
        theirs = {key: value for key, value in record.get("config", {}).items() if key in STAGE1_CONFIG_BLOCKS}
        reference = {**defaults.base_config().to_dict(), "simulator": constructor_defaults(type(simulator))}
        differences = ([f"sim: {record.get('sim')!r} there, {sim_name!r} here"] if record.get("sim") != sim_name else [])
        differences += [d.replace("in the workdir", "there") for d in config_differences(theirs, wanted, reference)]
        if differences:
            raise ConfigError(f"--stage1_from={source} trained another stage 1 ({'; '.join(differences[:3])}"
                              f"{'; ...' if len(differences) > 3 else ''}); only stage2, eval and adapt keys may "
                              "differ")
        if not training.stage_is_complete(config.stage1, training.checkpoint_dir(other.root, "stage1")):
            raise ConfigError(f"--stage1_from={source}: its stage 1 is not complete; finish that run's training first")
        return other

    def copy_stage1(self, other: "Workdir") -> None:
        """Copies `other`'s stage 1 (generator checkpoint, output standardisation, cached
        samples) here, and records where it came from (stage1_source.json)."""
        from simvae_tf import training

        for name in ("output_scaler.json", "data", os.path.join("checkpoints", "stage1")):
            if os.path.isdir(other.path(name)):
                os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)
                atomic_replace_dir(self.path(name), lambda staging, n=name: _copy(other.path(n), staging))
            elif os.path.exists(other.path(name)):
                write_json(self.path(name), read_json(other.path(name)))
        write_json(self.path(STAGE1_SOURCE), {
            "source": other.root, "step": training.committed_step(training.checkpoint_dir(other.root, "stage1"))})

    # -- metrics.json --------------------------------------------------------------------------
    def read_metrics(self) -> dict:
        return read_json(self.path(METRICS)) if os.path.exists(self.path(METRICS)) else {}

    def update_metrics(self, results: dict) -> None:
        """Merges top-level blocks into metrics.json (atomically)."""
        write_json(self.path(METRICS), {**self.read_metrics(), **results})

    def record_training(self, logs_by_stage: dict) -> None:
        metrics = self.read_metrics()
        for stage, logs in logs_by_stage.items():
            if logs:
                metrics.setdefault("training", {})[stage] = logs
        write_json(self.path(METRICS), metrics)

    # -- posterior_std_scale.json: the post-hoc width calibration of the trained encoder ------
    def read_std_calibration(self) -> dict | None:
        path = self.path(STD_CALIBRATION)
        return read_json(path) if os.path.exists(path) else None

    def write_std_calibration(self, record: dict) -> None:
        write_json(self.path(STD_CALIBRATION), record)

    # -- TensorBoard and figures ---------------------------------------------------------------
    def writer(self, name: str, config=None):
        """The summary writer of tensorboard/<name>; the first stage1 writer records the config."""
        import tensorflow as tf

        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(self.path("tensorboard", name))
            if name == "stage1" and config is not None:  # the config as text, once per run
                with self._writers[name].as_default(step=0):
                    tf.summary.text("config", "```\n" + json.dumps(config.to_dict(), indent=2) + "\n```")
        return self._writers[name]

    def write_images(self, writer_name: str, step: int, pngs: dict[str, bytes]) -> None:
        import tensorflow as tf

        with self.writer(writer_name).as_default(step=step):
            for name, png in pngs.items():
                tf.summary.image(name, tf.image.decode_png(png, channels=4)[None])

    def write_hparams(self, config, headline: dict[str, float]) -> None:
        """TensorBoard's HParams dashboard (tensorboard/hparams): the config's scalar keys as
        hyperparameters and the evaluation's headline numbers as its metrics, so runs under
        one --logdir compare side by side (the ablation tables of docs/objective.md)."""
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        def flat(d, prefix=""):
            for key, value in d.items():
                if isinstance(value, dict):
                    yield from flat(value, f"{prefix}{key}.")
                elif isinstance(value, (bool, int, float, str)):
                    yield f"{prefix}{key}", value

        with self.writer("hparams").as_default(step=0):
            hp.hparams(dict(flat(config.to_dict())), trial_id=self.root)
            for name, value in headline.items():
                if value is not None:
                    tf.summary.scalar(name, float(value))

    def save_figure(self, name: str, png: bytes) -> str:
        """figures/<name>.png (atomically) and the same image in tensorboard/evaluation."""
        os.makedirs(self.path("figures"), exist_ok=True)
        path = self.path("figures", f"{name}.png")
        atomic_write(path, lambda f: f.write(png))
        self.write_images("evaluation", 0, {name: png})
        return path
