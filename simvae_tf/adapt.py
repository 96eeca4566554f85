"""`python -m simvae_tf.adapt --model=WORKDIR --observations=PATH [--steps=N] [--output=DIR]`
(also installed as `simvae-adapt`).

Adapts a trained run's inverse to unlabeled observations: stage 2 continues on them
(reconstruction through the frozen surrogate, the paper's eq. 4) mixed with fresh
simulations, so the inverse does not forget the simulator (`simvae_tf.adaptation`). Reads
the inputs `invert` reads (images, CSV signals, .npy arrays, folders of them); writes
WORKDIR/adapted/export (the signatures of export/) and WORKDIR/adapted/adaptation.json;
resumes when rerun with the same observations. A thin layer over `Run.adapt`.
"""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter (CUDA probing, op-version notices) hides our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from simvae_tf import cli  # noqa: E402
from simvae_tf.errors import UserError  # noqa: E402
from simvae_tf.invert.images import DEFAULT_MARGIN, FRAMINGS  # noqa: E402

flags.DEFINE_string("model", None, "The trained run's workdir (the --workdir it was trained and exported in).")
flags.DEFINE_string("observations", None, "Images, .csv signals, .npy arrays, or a folder of them (unlabeled).")
flags.DEFINE_string("output", None, "Output folder (default: WORKDIR/adapted).")
flags.DEFINE_integer("steps", None, "Adaptation steps (default: the run's config adapt.steps, 1000).")
flags.DEFINE_enum("framing", "ink", FRAMINGS, "Images: crop to the ink (ink) or keep the whole frame (full).")
flags.DEFINE_float("margin", DEFAULT_MARGIN, "Images, --framing=ink: margin around the ink, a fraction of its size.")
flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
FLAGS = flags.FLAGS


def run(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; options are --flag=value (see --help)")
    if not FLAGS.model:
        raise UserError("--model is required: pass the trained run's workdir")
    if not FLAGS.observations:
        raise UserError("--observations is required: pass images, .csv or .npy files, or a folder of them")
    if FLAGS.steps is not None and FLAGS.steps <= 0:
        raise UserError(f"--steps={FLAGS.steps} is invalid: it must be a positive integer")
    from simvae_tf.invert.inputs import input_files, read_inputs
    from simvae_tf.invert.spec import ExportSpec

    paths = input_files(FLAGS.observations, flag="--observations")
    if not os.path.exists(os.path.join(FLAGS.model, "config.json")):
        raise UserError(f"--model={FLAGS.model} holds no simvae_tf run (no config.json); pass the run's workdir "
                        "(the --workdir it was trained in), not its export")
    spec = ExportSpec.read(os.path.join(FLAGS.model, "export"))
    observations = read_inputs(paths, spec)
    cli.import_tensorflow_quietly(FLAGS.verbose)
    from absl import logging

    from simvae_tf import adaptation, api
    from simvae_tf.invert.run import model_inputs

    logging.set_verbosity(logging.WARNING)
    run_ = api.open_run(FLAGS.model)
    x = model_inputs(observations, spec, run_.simulator, run_.trained_pair(), FLAGS.framing, FLAGS.margin,
                     run_.config.seed)
    report = run_.adapt(x, output_dir=FLAGS.output, steps=FLAGS.steps)
    print(adaptation.summary_line(report), flush=True)
    print(f"Wrote {os.path.dirname(report['export'])}: export/ (SavedModels), adaptation.json", flush=True)


def main() -> None:
    app.run(lambda args: cli.exit_on_user_error(run, args, lambda: FLAGS.verbose), argv=sys.argv,
            flags_parser=cli.parse_flags)


if __name__ == "__main__":
    main()
