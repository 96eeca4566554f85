"""Inverting your own data: `python -m simvae_tf.invert --model=WORKDIR/export --input=PATH [--output=DIR] [--samples=N]`

Runs a trained inverse simulator on your own data: a drawing or photo for an image model,
a measured curve for a signal model. For every input it reports the posterior over the
simulator's latents in physical units (mean and std, a table on stdout and
OUT_DIR/results.json), N posterior samples on request, the simulator's derived quantities
(RLC: f0 and Q) when its class can be imported, and a figure comparing the input with
G(E(x)) (the surrogate's re-rendering) and S(E(x)) (the simulator's, when importable).

Inputs (`--input` is a file or a folder; a folder is a batch of every supported file in it):
  images  .png .jpg .jpeg .bmp .gif .tif .tiff .webp, any size, colour or grey, any
          background (transparency is composited on white). Brought to the model's format:
            1. grey-scale (luminance, ITU-R BT.601 weights);
            2. background vs ink: Otsu's threshold splits the pixels in two; the background
               is the side most border pixels fall on, the ink the other side. A dark
               background (chalkboard, white-on-black plot) is inverted;
            3. contrast: the background's median level -> 0, the darkest ink (5th
               percentile) -> 1, giving an ink map in [0, 1]; a blank image is refused;
            4. framing (--framing): `ink` (default) crops to the ink's bounding box plus
               --margin (a fraction of its longer side) on every side, `full` keeps the whole
               frame; either way the frame is padded with background to the model's aspect
               ratio (square for 64x64). Use `full` when position in the frame is a latent
               (box plotter, dSprites) and the picture is framed like the simulator's;
            5. resize to the model's size (area averaging when shrinking, bilinear when
               enlarging);
            6. to the model's convention, read off the simulator's own images (or, when the
               simulator cannot be imported, the generator's): one-channel models get the
               ink map with the model's polarity (ink 1 on 0 for binary_image models such as
               Fourier and dSprites), binarised for binary_image at half the typical stroke
               level so that strokes thinner than a pixel survive; RGB models get the
               picture's own colours, white-balanced so that its background matches the
               model's background colour and the darkest ink is black (a dark background is
               inverted in luminance only, which keeps hues: light-blue chalk stays blue).
  signals .csv with a header naming the columns, one measurement per file, e.g.
          `frequency_hz,gain_db,phase_rad`. Columns are matched to the model's channels
          (metadata `channels`) by name; names are compared case-insensitively with units in
          brackets allowed ("Gain (dB)" is gain_db), and phase/frequency/time units convert
          (phase_deg for phase_rad, frequency_khz for frequency_hz). When the export names its
          axis (metadata `frequencies_hz`, `times_s`), the data may be on any grid that
          covers the model's: it is interpolated onto the model's grid (in log frequency for
          frequencies_hz, linearly in time); data that do not cover the grid are refused with
          the missing range. Without an axis the rows must be the model's points, in order.
  arrays  .npy in the model's own format: one observation shaped like the output spec, or a
          batch [B, ...] of them (images in [0, 1]); never unpickled.

Outputs (default OUT_DIR: `<input stem>_inverted/` next to the input): results.json, one
figure `<name>.png` per input. The folder is built under a temporary name and renamed into
place, so an error leaves nothing behind; rerunning replaces a previous invert output but
never a folder holding anything else.

From Python: `simvae_tf.invert.invert(model_dir, input_path, ...)` returns (results,
OUT_DIR); `format_report(results, OUT_DIR)` is the table the command line prints. The
package's modules, one job each: spec (what an export's metadata says), inputs (which
files, read how), images and signals (bringing pictures and measurements to the model's
format), simulator (re-importing the export's simulator), run (the pipeline), outputs
(the folder), report (the table and figures), cli (flags).
"""

from simvae_tf.invert.images import DEFAULT_MARGIN, FRAMINGS, preprocess_image, read_image
from simvae_tf.invert.inputs import Observation, input_files, read_inputs
from simvae_tf.invert.outputs import RESULTS_FORMAT, default_output_dir
from simvae_tf.invert.report import format_report
from simvae_tf.invert.run import MAX_SAMPLES, invert
from simvae_tf.invert.signals import read_signal_csv, resample
from simvae_tf.invert.spec import ExportSpec

__all__ = ["DEFAULT_MARGIN", "FRAMINGS", "MAX_SAMPLES", "RESULTS_FORMAT", "ExportSpec", "Observation",
           "default_output_dir", "format_report", "input_files", "invert", "preprocess_image", "read_image",
           "read_inputs", "read_signal_csv", "resample"]
