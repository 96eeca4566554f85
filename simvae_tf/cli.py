"""Command-line plumbing of the entry points (main, invert): flag parsing with the default
config, and the error policy: a `UserError` is one line naming the value and the fix,
exit code 2, no traceback unless --verbose, nothing written; a `RunFailure` is one line,
exit code 1. Library modules never import this one."""

from __future__ import annotations

import gc
import os
import sys
import traceback
from typing import Callable, Sequence

from absl import flags

from simvae_tf import config as config_lib
from simvae_tf.errors import EXIT_RUN_FAILURE, EXIT_USER_ERROR, ConfigError, RunFailure, UserError


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


def fail(message: str, exit_code: int = EXIT_USER_ERROR) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(exit_code)


def _flag_value(argv: Sequence[str], name: str) -> str | None:
    value = None
    for i, arg in enumerate(argv):  # the last occurrence wins, as in absl
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def with_default_config(argv: list[str]) -> list[str]:
    """Expands --flagfile=FILE, then adds `--config=<configs>/<sim>.py` (`custom.py:<output
    kind>` for a simulator of your own) when no --config is given, so that
    `--config.KEY=VALUE` overrides work with the simulator's own defaults."""
    try:
        args = flags.FLAGS.read_flags_from_files(argv[1:], force_gnu=False)
    except flags.Error as e:
        fail(f"{str(e).splitlines()[0]}; pass --flagfile=PATH to a readable file of --flag=value lines")
    if any(a == "--config" or a.startswith("--config=") for a in args) or \
            any(a in ("--help", "-h", "--helpfull") for a in args):
        return [argv[0], *args]
    sim = _flag_value(args, "sim")
    if not sim:
        fail(f"--sim is required; use one of {', '.join(config_lib.BUILTIN)} or module:Class")
    try:
        path = config_lib.default_config(sim)
    except UserError as e:
        fail(str(e))
    return [argv[0], f"--config={path}", *args]


def parse_flags(argv: list[str], known_only: bool = False) -> list[str]:
    """absl flag parsing with the project's error policy (unknown flags, bad enum values,
    unknown or mistyped config keys, a config file that fails to load). `known_only`: flags
    absl does not know are returned (after argv[0]) for another parser (Beam's)."""
    try:
        return flags.FLAGS(argv, known_only=known_only)
    except flags.Error as e:
        message = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
        fail(f"{message} (see --help; config keys are listed in configs/<sim>.py)")
    except OSError as e:
        fail(f"cannot read the config file: {e}; pass --config=PATH to an existing configs/<sim>.py")
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        fail(f"bad config: {e}; check the key names and value types in configs/<sim>.py")
    except Exception as e:  # raised inside the user's config file (SyntaxError, NameError...)
        fail(str(config_lib.config_file_error(_config_file(argv), e)))
    return []


def _config_file(argv: Sequence[str]) -> str:
    """The --config file, without a `:variant` suffix."""
    value = _flag_value(argv, "config") or "?"
    return value if os.path.exists(value) or ":" not in value else value.rsplit(":", 1)[0]


def load_config(read):
    """The parsed --config; config_flags reports a file that fails to load only on first
    access, as an OSError without the file's name."""
    try:
        config = read()
        list(config.keys())  # a failed load surfaces on first access
        return config
    except OSError:
        raise ConfigError(f"--config={_flag_value(sys.argv, 'config')} could not be loaded (missing file, or an "
                          "error inside it); pass an existing configs/<sim>.py, or --verbose for the details") from None


def exit_on_user_error(fn: Callable, args, verbose: Callable[[], bool]):
    """Runs `fn(args)` under the error policy; every way out but a clean return ends the
    process through `_exit_after_failure`."""
    try:
        return fn(args)
    except (UserError, RunFailure) as e:
        exit_code = EXIT_RUN_FAILURE if isinstance(e, RunFailure) else EXIT_USER_ERROR
        if verbose():
            traceback.print_exception(e)
        else:
            print(f"error: {(str(e).splitlines() or [type(e).__name__])[0]}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        exit_code = 130
    except Exception as e:  # a bug: its traceback, as Python prints it, and exit code 1
        traceback.print_exception(e)
        exit_code = 1
    _exit_after_failure(exit_code)


def _exit_after_failure(exit_code: int) -> None:
    """Ends a failed run's process without Python's shutdown. A tf.data iterator whose
    parallel map has a `numpy_function` call in flight waits in its destructor for a call
    the finalizing interpreter can no longer run: the process printed its error and then
    hung (measured: 2 of ~100 NaN-loss runs under load, the main thread in
    ParallelMapDatasetOp::Iterator::~Iterator from Py_FinalizeEx's last collection; a
    `gc.collect()` before `sys.exit`, still in a whole interpreter, hung 1 of ~25: a
    capture outside Python's reach keeps the iterator's handle). What the run wrote is
    already closed or atomically renamed; the collection still frees (and so flushes)
    what it can, e.g. TensorBoard writers."""
    gc.collect()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
