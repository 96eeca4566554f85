"""`python -m simvae_tf.main --sim=NAME [--workdir=DIR] [--config=configs/NAME.py] [--config.KEY=V]`

Trains stage 1 (generator) and stage 2 (encoder), evaluates, and exports, resuming from
the workdir's checkpoints when rerun. `--mode` picks a part: all (default), train,
evaluate, export.
"""

from __future__ import annotations

import os
import sys
import time

# TensorFlow's C++ start-up chatter (CUDA probing, op-version notices) hides our progress.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags
from ml_collections import config_flags

from simvae_tf import cli

MODES = ("all", "train", "evaluate", "export")

flags.DEFINE_string("sim", None, "Simulator: box, polygon, fourier, rlc, dsprites, or module:Class.")
flags.DEFINE_string("workdir", None, "Output directory (default: runs/<sim> under the current directory).")
flags.DEFINE_string("mode", "all", f"What to run: {', '.join(MODES)}.")
flags.DEFINE_string("strategy", "auto", "tf.distribute strategy: auto, mirrored, multiworker, default.")
flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
config_flags.DEFINE_config_file("config", None, "Config file (default: configs/<sim>.py).", lock_config=True)
FLAGS = flags.FLAGS


def run(argv) -> None:
    if len(argv) > 1:
        raise cli.UsageError(f"unexpected arguments {argv[1:]}; options are --flag=value (see --help)")
    if FLAGS.mode not in MODES:
        raise cli.UsageError(f"--mode={FLAGS.mode!r} unknown; use one of {', '.join(MODES)}")
    config = cli.load_config(lambda: FLAGS.config)
    cli.validate_config(config)
    workdir = FLAGS.workdir or cli.default_workdir(FLAGS.sim)

    tf = cli.import_tensorflow_quietly(FLAGS.verbose)  # after flag checks: a typo costs no TF start-up
    from absl import logging

    logging.set_verbosity(logging.WARNING)

    import keras

    from simvae_tf import experiment, training

    tf.config.experimental.enable_op_determinism()
    strategy = training.make_strategy(FLAGS.strategy)
    cli.check_batch_divides(config, strategy)
    job = experiment.Experiment(FLAGS.sim, config, workdir, strategy, verbose=1 if sys.stdout.isatty() else 2)
    print(f"simvae_tf: sim={FLAGS.sim} mode={FLAGS.mode} workdir={job.workdir} "
          f"replicas={strategy.num_replicas_in_sync} data={getattr(job.simulator, 'source', 'simulator')}", flush=True)
    if FLAGS.mode in ("evaluate", "export") and not os.path.exists(job.path("config.json")):
        raise cli.UsageError(f"--mode={FLAGS.mode} needs a trained run, but --workdir={job.workdir} holds none; "
                             "run --mode=all (or --mode=train) there first")
    job.prepare_workdir()
    if FLAGS.mode in ("evaluate", "export") and not job.is_trained():
        raise cli.UsageError(f"--mode={FLAGS.mode} needs a trained run, but training in {job.workdir} is not "
                             "complete; finish it with --mode=train (it resumes)")
    keras.utils.set_random_seed(config.seed)
    started = time.time()
    if FLAGS.mode == "all" and job.is_complete():
        print(f"Run in {job.workdir} is already complete; nothing to do "
              "(--mode=evaluate re-evaluates, --mode=export re-exports, a new --workdir trains anew).")
        return
    if FLAGS.mode in ("all", "train"):
        job.record_training(job.train())
    if FLAGS.mode in ("all", "evaluate"):
        print(cli.summary_line(job.evaluate()), flush=True)
    if FLAGS.mode in ("all", "export"):
        job.export()
    print(f"Done in {time.time() - started:.0f}s. Results in {job.workdir}: metrics.json, figures/, export/, "
          f"TensorBoard: tensorboard --logdir {job.path('tensorboard')}", flush=True)


def main() -> None:
    argv = cli.with_default_config(sys.argv)
    app.run(lambda args: cli.exit_on_user_error(run, args, lambda: FLAGS.verbose), argv=argv,
            flags_parser=cli.parse_flags)


if __name__ == "__main__":
    main()
