"""Configs: which file configures a simulator, loading one into a ConfigDict, and the
checks of the keys every simulator shares.

The shipped files are `configs/<sim>.py` in a source tree, installed as the package
`simvae_tf_configs` (so a wheel install finds them from any folder); a simulator of your
own gets `custom.py` in the variant of its output kind (`custom.py:signal` or `:image`). Config files are Python and are executed:
only load files you trust.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback

from simvae_tf.errors import ConfigError
from simvae_tf.simulators import BUILTIN, SimulatorLike, name_of, resolve_class

CUSTOM_CONFIG = "custom.py"
PRECISIONS = ("float32", "mixed_bfloat16")
METHODS = ("simvae", "beta_vae")


def config_dir() -> str:
    """The folder of the shipped configs, wherever simvae_tf is installed."""
    spec = importlib.util.find_spec("simvae_tf_configs")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the package simvae_tf_configs (the shipped configs/) is not installed; reinstall "
                          "simvae_tf (pip install .), or pass --config=PATH/TO/configs/<sim>.py")
    return os.path.abspath(list(spec.submodule_search_locations)[0])


def default_config_file(sim: SimulatorLike) -> str:
    """configs/<name>.py for a built-in simulator, configs/custom.py for any other."""
    name = name_of(sim)
    if isinstance(sim, str) and ":" not in sim and sim not in BUILTIN:
        raise ConfigError(f"--sim={sim!r} is not a built-in simulator; use one of {', '.join(BUILTIN)} "
                          "or a path module:Class to your own Simulator subclass")
    path = os.path.join(config_dir(), f"{name}.py" if name in BUILTIN else CUSTOM_CONFIG)
    if not os.path.exists(path):
        raise ConfigError(f"default config {path} not found (simvae_tf installed without its configs); "
                          "pass --config=PATH/TO/configs/<sim>.py")
    return path


def default_variant(sim: SimulatorLike) -> str | None:
    """None for a built-in simulator (its file's CPU default); for your own, the variant of
    custom.py that fits its output kind: "image" or "signal" (imports its module)."""
    if name_of(sim) in BUILTIN:
        return None
    return "image" if resolve_class(sim).output_spec.is_image else "signal"


def default_config(sim: SimulatorLike) -> str:
    """`configs/<sim>.py`, or `custom.py:<output kind>` for a simulator of your own: what
    --config is when not given."""
    path, variant = default_config_file(sim), default_variant(sim)
    return f"{path}:{variant}" if variant else path


def get_config(sim: SimulatorLike, variant: str | None = None):
    """The ConfigDict the CLI would use for `sim` (a built-in name, "module:Class", a
    Simulator subclass or an instance); `variant="gpu"` for the paper-scale variant of a
    built-in one (your own simulator's is its output kind, "signal" or "image")."""
    return load_config_file(default_config_file(sim), variant or default_variant(sim))


def load_config_file(path: str, variant: str | None = None):
    """Runs a config file's `get_config([variant])`; any failure inside it is a one-line
    ConfigError naming the file and line."""
    if not os.path.isfile(path):
        raise ConfigError(f"--config={path} does not exist; pass an existing configs/<sim>.py")
    module_name = f"_simvae_tf_config_{abs(hash(os.path.abspath(path)))}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "get_config", None)):
            raise ConfigError(f"--config={path} defines no get_config(); see configs/custom.py for the shape")
        takes_variant = bool(inspect.signature(module.get_config).parameters)
        if variant is not None and not takes_variant:
            raise ConfigError(f"--config={path}:{variant}: this file's get_config() takes no variant; drop ':{variant}'")
        return module.get_config(variant) if variant is not None else module.get_config()
    except ConfigError:
        raise
    except Exception as e:  # the file is the user's: report where it failed, in one line
        raise config_file_error(path, e) from None
    finally:
        sys.modules.pop(module_name, None)


def config_file_error(path: str, error: BaseException) -> ConfigError:
    """`--config=FILE line N: Type: message` for an exception raised by a config file."""
    if isinstance(error, SyntaxError):
        line, message = error.lineno, error.msg
    else:
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if os.path.abspath(f.filename) == os.path.abspath(path)]
        line, message = (frames[-1].lineno if frames else None), str(error).splitlines()[0] if str(error) else ""
    where = f" line {line}" if line else ""
    return ConfigError(f"--config={path}{where}: {type(error).__name__}: {message}; fix the config file")


def _check(condition: bool, key: str, value, requirement: str) -> None:
    if not condition:
        raise ConfigError(f"--config.{key}={value!r} is invalid: it must be {requirement}")


def _get(config, dotted: str):
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


def validate(config) -> None:
    """Type and range checks of the keys every simulator shares."""
    def positive_int(key):
        value = _get(config, key)
        _check(isinstance(value, int) and not isinstance(value, bool) and value > 0, key, value, "a positive integer")

    def non_negative(key, kind=int):
        value = _get(config, key)
        _check(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 and
               (kind is float or isinstance(value, int)), key, value, f"a non-negative {kind.__name__}")

    for key in ("batch_size", "model.width", "model.depth", "stage1.steps", "stage2.steps", "stage1.steps_per_loop",
                "stage2.steps_per_loop", "stage1.summaries_every", "stage2.summaries_every", "eval.num_samples",
                "adapt.steps", "adapt.steps_per_loop",
                "eval.num_bins", "eval.num_figure_samples", "eval.reference_samples",
                "eval.predictive_draws", "eval.std_calibration_samples"):
        positive_int(key)
    for key in ("stage2.gumbel_temperature", "stage2.gumbel_temperature_end"):
        value = _get(config, key)
        _check(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, key, value,
               "a positive number (the Gumbel-softmax temperature)")
    for key in ("stage1.learning_rate", "stage2.learning_rate", "adapt.learning_rate"):
        value = _get(config, key)
        _check(isinstance(value, (int, float)) and value > 0, key, value, "a positive number (Adam's step size)")
    non_negative("stage1.detail_weight", float)
    non_negative("stage2.kl_weight", float)
    non_negative("stage2.latent_weight", float)
    non_negative("stage2.reconstruction_weight", float)
    _check(config.stage2.reconstruction_weight > 0 or config.stage2.latent_weight > 0, "stage2.reconstruction_weight",
           config.stage2.reconstruction_weight, "positive, or stage2.latent_weight positive (else stage 2 has no loss)")
    non_negative("model.stem_layers")
    _check(isinstance(config.model.ink_profiles, bool), "model.ink_profiles", config.model.ink_profiles, "True or False")
    _check(isinstance(config.model.posterior_components, int) and not isinstance(config.model.posterior_components, bool)
           and 1 <= config.model.posterior_components <= 64, "model.posterior_components",
           config.model.posterior_components, "an integer from 1 (one Gaussian) to 64")
    _check(config.method in METHODS, "method", config.method, f"one of {', '.join(repr(m) for m in METHODS)}")
    non_negative("beta_vae.beta", float)
    _check(isinstance(config.beta_vae.latent_dim, int) and config.beta_vae.latent_dim >= 2, "beta_vae.latent_dim",
           config.beta_vae.latent_dim, "an integer >= 2 (MIG needs two latents)")
    non_negative("beta_vae.steps")
    non_negative("data.num_workers")
    non_negative("data.cache_size")
    dataset_dir = config.data.dataset_dir
    _check(isinstance(dataset_dir, str), "data.dataset_dir", dataset_dir,
           "a folder made by python -m simvae_tf.simulate, or '' (none)")
    _check(config.model.family in ("auto", "dcgan", "mlp"), "model.family", config.model.family,
           "one of 'auto', 'dcgan', 'mlp'")
    _check(config.model.precision in PRECISIONS, "model.precision", config.model.precision,
           f"one of {', '.join(repr(p) for p in PRECISIONS)}")
    _check(isinstance(config.model.jit_compile, bool), "model.jit_compile", config.model.jit_compile, "True or False")
    fraction = config.adapt.observed_fraction
    _check(isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 < fraction <= 1,
           "adapt.observed_fraction", fraction, "a fraction in (0, 1] (of each batch: observations; the rest simulations)")
    for stage in ("stage1", "stage2", "adapt"):
        schedule = config[stage].lr_schedule
        _check(schedule in ("constant", "cosine"), f"{stage}.lr_schedule", schedule, "'constant' or 'cosine'")
