"""`python -m simvae_tf.simulate --sim=NAME --num_samples=N --output=DIR [--seed=S]
[--config=configs/NAME.py] [--config.KEY=V] [Beam pipeline options]` (also `simvae-simulate`).

Simulates N samples on Apache Beam into a TFDS dataset folder that training reads with
`--config.data.dataset_dir=DIR`; a thin layer over `beam_simulation.generate`. Any flag
that is not one of ours is a Beam pipeline option, e.g. `--runner=DirectRunner
--direct_num_workers=2 --direct_running_mode=multi_processing` (docs/scale.md lists the
flags of Dataflow, Flink and Spark). Rerunning an interrupted command resumes it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing, op-version notices) hides our progress.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from simvae_tf import cli  # noqa: E402
from simvae_tf.config import validate  # noqa: E402
from simvae_tf.errors import ConfigError  # noqa: E402


def define_flags() -> flags.FlagValues:
    flags.DEFINE_string("sim", None, "Simulator: box, polygon, fourier, rlc, dsprites, or module:Class.")
    flags.DEFINE_integer("num_samples", None, "How many samples to simulate.")
    flags.DEFINE_string("output", None, "The dataset folder to write (new, empty, or an unfinished one to resume).")
    flags.DEFINE_integer("seed", None, "Seed of the samples (default: the config's seed, as training uses).")
    flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
    config_flags.DEFINE_config_file(
        "config", None, "Config file whose `simulator` block gives the simulator's options (default: "
        "configs/<sim>.py). Any other flag is a Beam pipeline option (--runner=..., see docs/scale.md).",
        lock_config=True)
    return flags.FLAGS


def pipeline_options(args: list[str]):
    """Beam `PipelineOptions` from command-line flags, refusing in one line what Beam would
    drop with a warning (an unknown or misspelt flag) or exit on (a bad value, an unknown
    runner)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # Beam warns at import that its optional GCP clients are absent
    try:
        from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
        from apache_beam.runners.runner import create_runner
    finally:
        logging.disable(previous)

    stray = [arg for arg in args if not arg.startswith("--")]
    if stray:
        raise ConfigError(f"unexpected arguments {stray}; options are --flag=value (see --help)")
    options = PipelineOptions(args)
    messages = io.StringIO()
    beam_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_logger.level
    beam_logger.setLevel(logging.ERROR)  # its "Discarding unparseable args" warning: refused below instead
    try:
        with contextlib.redirect_stderr(messages):  # argparse prints its usage, then exits
            known = options.get_all_options()
            given = options.get_all_options(retain_unknown_options=True)
    except SystemExit:
        last = [line for line in messages.getvalue().splitlines() if line.strip()]
        raise ConfigError(f"bad Beam pipeline option ({last[-1] if last else args}); see docs/scale.md") from None
    finally:
        beam_logger.setLevel(level)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown flag(s) {', '.join('--' + name for name in unknown)}: neither a flag of "
                          "simvae_tf.simulate (--help) nor a Beam pipeline option; check the spelling")
    runner = options.view_as(StandardOptions).runner
    if runner:
        try:
            create_runner(runner)
        except ValueError as e:
            raise ConfigError(f"--runner={runner}: {e}; use DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, "
                              "... (docs/scale.md)") from None
        except ImportError as e:
            raise ConfigError(f"--runner={runner} needs packages that are not installed ({e}); e.g. "
                              "pip install 'apache-beam[gcp]' for DataflowRunner") from None
    return options


def run(argv: list[str]) -> None:
    FLAGS = flags.FLAGS
    if FLAGS.num_samples is None:
        raise ConfigError("--num_samples is required: how many samples to simulate")
    if not FLAGS.output:
        raise ConfigError("--output is required: the folder to write the dataset to")
    config = cli.load_config(lambda: FLAGS.config)
    validate(config)
    options = pipeline_options(argv[1:])  # before TensorFlow starts: a typo costs no start-up
    cli.import_tensorflow_quietly(FLAGS.verbose)
    from absl import logging as absl_logging

    from simvae_tf import beam_simulation

    absl_logging.set_verbosity(absl_logging.WARNING)
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()  # its bar counts splits (one); ours counts batches
    beam_simulation.generate(FLAGS.sim, config, FLAGS.num_samples, FLAGS.output, FLAGS.seed, options)


def main() -> None:
    flag_values = define_flags()
    argv = cli.with_default_config(sys.argv)
    app.run(lambda args: cli.exit_on_user_error(run, args, lambda: flag_values.verbose), argv=argv,
            flags_parser=lambda args: cli.parse_flags(args, known_only=True))


if __name__ == "__main__":
    main()
