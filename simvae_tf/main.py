"""`python -m simvae_tf.main --sim=NAME [--workdir=DIR] [--config=configs/NAME.py[:gpu]] [--config.KEY=V]`
(also installed as `simvae`).

Trains stage 1 (generator) and stage 2 (encoder), evaluates, and exports, resuming from
the workdir's checkpoints when rerun; a thin layer over `simvae_tf.fit`. `--mode` picks a
part: all (default), train, evaluate, export. `--flagfile=FILE` reads flags from a file.
"""

from __future__ import annotations

import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing, op-version notices) hides our progress.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from simvae_tf import api, cli  # noqa: E402
from simvae_tf.config import config_dir, validate  # noqa: E402
from simvae_tf.errors import ConfigError  # noqa: E402
from simvae_tf.strategies import STRATEGIES  # noqa: E402


def _config_help() -> str:
    try:
        where = config_dir()
    except Exception:  # not installed with its configs: the flag still parses
        where = "configs"
    return (f"Config file (default: {os.path.join(where, '<sim>.py')}; {os.path.join(where, 'custom.py')}:signal "
            "or :image, by output kind, for module:Class); FILE:gpu for the paper-scale variant of a built-in one. "
            "Configs are executed: use files you trust.")


flags.DEFINE_string("sim", None, "Simulator: box, polygon, fourier, rlc, dsprites, or module:Class.")
flags.DEFINE_string("workdir", None, "Output directory (default: runs/<sim> under the current directory).")
flags.DEFINE_enum("mode", "all", api.MODES, "What to run.")
flags.DEFINE_enum("strategy", "auto", STRATEGIES, "tf.distribute strategy (auto: all visible GPUs, else default).")
flags.DEFINE_string("stage1_from", None, "Reuse the finished stage 1 of this workdir (same simulator and stage-1 "
                    "config; stage2, eval and adapt keys may differ), e.g. to try stage-2 variants.")
flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
config_flags.DEFINE_config_file("config", None, _config_help(), lock_config=True)
FLAGS = flags.FLAGS


def run(argv) -> None:
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; options are --flag=value (see --help)")
    config = cli.load_config(lambda: FLAGS.config)
    validate(config)  # before TensorFlow starts: a typo costs no start-up
    cli.import_tensorflow_quietly(FLAGS.verbose)
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    if config.method == "beta_vae":  # the unsupervised baseline: one process, trains and scores
        _fit_beta_vae(config)
        return
    api.fit(FLAGS.sim, config=config, workdir=FLAGS.workdir, strategy=FLAGS.strategy, mode=FLAGS.mode,
            stage1_from=FLAGS.stage1_from)


def _fit_beta_vae(config) -> None:
    from simvae_tf import beta_vae, simulators
    from simvae_tf.workdir import default_workdir

    if FLAGS.mode != "all" or FLAGS.strategy not in ("auto", "default") or FLAGS.stage1_from:
        raise ConfigError("--config.method=beta_vae trains and scores in one process: drop --mode, --strategy "
                          "and --stage1_from")
    workdir = FLAGS.workdir or default_workdir(simulators.name_of(FLAGS.sim)) + "_beta_vae"
    print(f"simvae_tf: sim={FLAGS.sim} method=beta_vae workdir={workdir}", flush=True)
    beta_vae.fit(FLAGS.sim, config, workdir, verbose=1 if sys.stdout.isatty() else 2)


def main() -> None:
    argv = cli.with_default_config(sys.argv)
    app.run(lambda args: cli.exit_on_user_error(run, args, lambda: FLAGS.verbose), argv=argv,
            flags_parser=cli.parse_flags)


if __name__ == "__main__":
    main()
