"""`python -m simvae_tf.invert` (also `simvae-invert`): flags -> `invert.run.invert` -> the report."""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter (CUDA probing, op-version notices) hides our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import sys

from absl import app, flags

from simvae_tf import cli
from simvae_tf.errors import UserError
from simvae_tf.invert.images import DEFAULT_MARGIN, FRAMINGS


def define_flags() -> flags.FlagValues:
    flags.DEFINE_string("model", None, "A trained run's export directory (WORKDIR/export).")
    flags.DEFINE_string("input", None, "An image, a .csv signal, a .npy array, or a folder of them (a batch).")
    flags.DEFINE_string("output", None, "Output folder (default: <input stem>_inverted next to the input).")
    flags.DEFINE_integer("samples", 0, "Posterior samples per input to write to results.json.")
    flags.DEFINE_enum("framing", "ink", FRAMINGS, "Images: crop to the ink (ink) or keep the whole frame (full).")
    flags.DEFINE_float("margin", DEFAULT_MARGIN, "Images, --framing=ink: margin around the ink, a fraction of its size.")
    flags.DEFINE_integer("predictive_draws", 20, "Posterior draws simulated with S for the predictive check (0: skip).")
    flags.DEFINE_integer("seed", 0, "Seed of the posterior samples.")
    flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
    return flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        cli.fail(f"{str(e).splitlines()[0]}; see python -m simvae_tf.invert --help")
    return []


def run(argv: list[str]) -> None:
    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; options are --flag=value (see --help)")
    if not FLAGS.model:
        raise UserError("--model is required: pass a trained run's export directory (WORKDIR/export)")
    if not FLAGS.input:
        raise UserError("--input is required: pass an image, a .csv or .npy file, or a folder of them")
    cli.import_tensorflow_quietly(FLAGS.verbose)
    from simvae_tf.invert.report import format_report
    from simvae_tf.invert.run import invert

    results, output_dir = invert(FLAGS.model, FLAGS.input, FLAGS.output, FLAGS.samples, FLAGS.framing,
                                 FLAGS.margin, FLAGS.seed, FLAGS.predictive_draws)
    print(format_report(results, output_dir), flush=True)


def main() -> None:
    flag_values = define_flags()
    app.run(lambda args: cli.exit_on_user_error(run, args, lambda: flag_values.verbose), argv=sys.argv,
            flags_parser=parse_flags)


if __name__ == "__main__":
    main()
