"""Command-line plumbing shared by the entry points: default config lookup, config
validation, and the error policy (bad input -> one line naming the value and the fix,
exit code 2, no traceback unless --verbose, nothing written)."""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from absl import flags

from simvae_tf.simulators import BUILTIN, SimulatorNotFound

EXIT_USAGE = 2
EXIT_FAILURE = 1
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
# Config used for `--sim=module:Class` without --config: the shared defaults, with the
# model family picked from the simulator's output kind.
CUSTOM_CONFIG = "custom.py"


class UsageError(ValueError):
    """Bad command-line input; the message names the value and the fix."""


class ConfigError(ValueError):
    """A bad value in the config or environment; the message names it and the fix."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the input is wrong", not "the program is wrong"."""
    from simvae_tf.simulators.base import SimulatorSetupError

    return (UsageError, ConfigError, SimulatorNotFound, SimulatorSetupError,
            *_if_loaded("simvae_tf.export", "NotAnExportError"))


def _if_loaded(module: str, name: str) -> tuple:
    """An exception class from a heavy module, only if something already imported it (so
    that checking errors never imports TensorFlow)."""
    return (getattr(sys.modules[module], name),) if module in sys.modules else ()


def runtime_failures() -> tuple[type[BaseException], ...]:
    """Failures of a run that are not bugs of ours: reported in one line, exit code 1."""
    from simvae_tf.data import SimulatorError

    return (SimulatorError, *_if_loaded("simvae_tf.training", "NonFiniteLossError"))


def import_tensorflow_quietly(verbose: bool = False):
    """Imports TensorFlow with its C++ start-up chatter (CUDA probing, oneDNN notices,
    written straight to file descriptor 2 before any log setting applies) silenced, so a
    user sees our progress and one-line errors. --verbose keeps it."""
    if verbose or "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tf


def fail(message: str, exit_code: int = EXIT_USAGE) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(exit_code)


def _flag_value(argv: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def with_default_config(argv: list[str]) -> list[str]:
    """Adds `--config=configs/<sim>.py` when no --config is given, so that
    `--config.KEY=VALUE` overrides work with the simulator's own defaults."""
    if any(a == "--config" or a.startswith("--config=") for a in argv) or any(a in ("--help", "-h", "--helpfull") for a in argv):
        return argv
    sim = _flag_value(argv, "sim")
    if not sim:
        fail(f"--sim is required; use one of {', '.join(BUILTIN)} or module:Class")
    filename = f"{sim}.py" if sim in BUILTIN else CUSTOM_CONFIG
    if ":" not in sim and sim not in BUILTIN:
        fail(f"--sim={sim!r} is not a built-in simulator; use one of {', '.join(BUILTIN)} "
             "or a path module:Class to your own Simulator subclass")
    path = os.path.join(CONFIG_DIR, filename)
    if not os.path.exists(path):
        fail(f"default config {path} not found (simvae_tf installed without its configs/ folder); "
             "pass --config=PATH/TO/configs/<sim>.py")
    return [argv[0], f"--config={path}", *argv[1:]]


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing with the project's error policy (unknown flags, unknown or
    mistyped config keys)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        message = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
        fail(f"{message} (see --help; config keys are listed in configs/<sim>.py)")
    except OSError as e:
        fail(f"cannot read the config file: {e}; pass --config=PATH to an existing configs/<sim>.py")
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        fail(f"bad config: {e}; check the key names and value types in configs/<sim>.py")
    return []


def load_config(read):
    """The parsed --config; config_flags reports a file that fails to load only on first
    access, as an OSError without the file's name."""
    try:
        config = read()
        list(config.keys())  # a failed load surfaces on first access
        return config
    except OSError:
        path = _flag_value(sys.argv, "config")
        raise UsageError(f"--config={path} could not be loaded (missing file, or an error inside it); "
                         "pass an existing configs/<sim>.py, or --verbose for the details") from None


def exit_on_user_error(fn: Callable, args, verbose: Callable[[], bool]):
    try:
        return fn(args)
    except user_errors() as e:
        if verbose():
            raise
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except runtime_failures() as e:
        if verbose():
            raise
        fail(str(e).splitlines()[0], exit_code=EXIT_FAILURE)


def _check(condition: bool, key: str, value, requirement: str) -> None:
    if not condition:
        raise UsageError(f"--config.{key}={value!r} is invalid: it must be {requirement}")


def validate_config(config) -> None:
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
                "eval.num_bins", "eval.num_figure_samples"):
        positive_int(key)
    for key in ("stage1.learning_rate", "stage2.learning_rate"):
        value = _get(config, key)
        _check(isinstance(value, (int, float)) and value > 0, key, value, "a positive number (Adam's step size)")
    non_negative("stage2.kl_weight", float)
    non_negative("stage2.latent_weight", float)
    non_negative("model.stem_layers")
    non_negative("data.num_workers")
    non_negative("data.cache_size")
    _check(config.model.family in ("auto", "dcgan", "mlp"), "model.family", config.model.family,
           "one of 'auto', 'dcgan', 'mlp'")
    for stage in ("stage1", "stage2"):
        schedule = config[stage].lr_schedule
        _check(schedule in ("constant", "cosine"), f"{stage}.lr_schedule", schedule, "'constant' or 'cosine'")


def _get(config, dotted: str):
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


def check_batch_divides(config, strategy) -> None:
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UsageError(f"--config.batch_size={config.batch_size} does not divide over {replicas} replicas; "
                         f"use a multiple of {replicas}")


def default_workdir(sim: str) -> str:
    return os.path.join("runs", sim.replace(":", ".").replace("/", "_"))


def summary_line(results: dict) -> str:
    r2 = results["stage2"]["r2_per_latent"]
    parts = ", ".join(f"{k}={v:.3f}" if v is not None else f"{k}=n/a" for k, v in r2.items())
    return (f"Evaluation ({results['eval_samples']} samples, source {results['data_source']}): "
            f"latent R^2 [{parts}]; MIG {results['stage2']['mig']:.3f} "
            f"(ground truth {results['ground_truth']['mig']:.3f})")
