"""`python -m simvae_tf.invert --model=WORKDIR/export --input=PATH [--output=DIR] [--samples=N]`

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
"""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter (CUDA probing, op-version notices) hides our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import csv
import dataclasses
import json
import math
import re
import sys
from typing import Sequence

import numpy as np

from simvae_tf import cli, data
from simvae_tf.cli import UsageError
from simvae_tf.simulators import base

RESULTS_FORMAT = "simvae_tf.invert/1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SIGNAL_SUFFIXES = (".csv",)
ARRAY_SUFFIXES = (".npy",)
FRAMINGS = ("ink", "full")
DEFAULT_MARGIN = 0.1
# Pictures are box-filtered on reading to at most this many pixels on their longest side:
# a 12 MP photo as float RGBA would take ~380 MB, and the models see 64x64.
MAX_READ_SIDE = 2048
# Below this background-to-ink difference (in [0, 1] grey levels) an image holds no drawing.
MIN_CONTRAST = 0.1
# Width of the frame, as a fraction of the shorter side, whose pixels decide the background.
BORDER_FRACTION = 0.04
LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114])
# Posterior means this far outside [-1, 1] (normalised units) are flagged as extrapolation.
RANGE_TOLERANCE = 0.05
REFERENCE_SAMPLES = 16
MAX_SAMPLES = 100_000


# -- the model: what its metadata says about its inputs and latents ---------------------------
@dataclasses.dataclass(frozen=True)
class SignalAxis:
    """A signal's sampling axis as named in the export metadata (e.g. `frequencies_hz`)."""

    key: str  # metadata key
    quantity: str  # unit family for conversions: "frequency" or "time"
    unit: str  # the metadata values' unit
    column_stems: tuple[str, ...]  # CSV column names accepted for it, before the unit
    log: bool  # interpolate in log(axis)
    values: np.ndarray


# Axes the export may name (export.py copies these simulator attributes into metadata).
AXIS_KINDS = {
    "frequencies_hz": dict(quantity="frequency", unit="hz", column_stems=("frequency", "freq", "f"), log=True),
    "times_s": dict(quantity="time", unit="s", column_stems=("time", "t"), log=False),
}
# Units a column may carry instead of the model's, with their factor to the family's base unit.
UNIT_FAMILIES = {
    "frequency": {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "angle": {"rad": 1.0, "deg": math.pi / 180.0},
}
SI_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"))


@dataclasses.dataclass
class Model:
    directory: str
    metadata: dict
    latents: tuple[base.Latent, ...]
    kind: str
    shape: tuple[int, ...]
    axis: SignalAxis | None
    channels: tuple[str, ...] | None

    @property
    def is_image(self) -> bool:
        return self.kind in ("binary_image", "image")

    @property
    def latent_names(self) -> list[str]:
        return [latent.name for latent in self.latents]

    def describe_output(self) -> str:
        return f"{self.kind} {tuple(self.shape)}"

    def expected_signal_input(self) -> str:
        axis_column = [f"{AXIS_KINDS[self.axis.key]['column_stems'][0]}_{self.axis.unit}"] if self.axis else []
        columns = axis_column + list(self.channels or (["value"] if len(self.shape) == 1 else
                                                        [f"channel_{c}" for c in range(self.shape[1])]))
        return f"a .csv with the header {','.join(columns)} (or a .npy array of shape {tuple(self.shape)})"


def model_from_metadata(directory: str, metadata: dict) -> Model:
    """Parses the parts of an export's metadata that invert relies on."""
    try:
        latents = tuple(base.Latent(**entry) for entry in metadata["latents"])
        kind = metadata["output_spec"]["kind"]
        shape = tuple(int(s) for s in metadata["output_spec"]["shape"])
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"--model={directory}: metadata.json lacks a valid latents/output_spec entry ({e}); "
                         "re-export the run (python -m simvae_tf.main --mode=export)") from None
    axis = None
    for key, spec in AXIS_KINDS.items():
        if metadata.get(key) is not None:
            values = np.asarray(metadata[key], dtype=np.float64)
            if kind == "signal" and values.shape == shape[:1]:
                axis = SignalAxis(key=key, values=values, **spec)
                break
    channels = metadata.get("channels")
    channels = tuple(str(c) for c in channels) if channels else None
    if channels is not None and (kind != "signal" or len(shape) != 2 or shape[1] != len(channels)):
        channels = None  # names that do not fit the output cannot be matched to columns
    return Model(directory, metadata, latents, kind, shape, axis, channels)


def load_model(directory: str) -> Model:
    from simvae_tf import export  # TensorFlow: after the flags have been checked

    return model_from_metadata(directory, export.read_metadata(directory))


# -- inputs -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Observation:
    """One input, brought to the model's format."""

    name: str  # unique within the run; names the figure
    source: str  # the file it came from
    x: np.ndarray | None = None  # model-shaped, float32 (images: set once the model's convention is known)
    steps: list[str] = dataclasses.field(default_factory=list)  # what preprocessing did, in words
    picture: np.ndarray | None = None  # the image as read (RGB in [0, 1]), for the figure


def input_files(path: str) -> list[str]:
    """The files to invert: `path` itself, or every supported file in the folder `path`."""
    if not os.path.exists(path):
        raise UsageError(f"--input={path} does not exist; pass an image, a .csv or .npy file, or a folder of them")
    if not os.path.isdir(path):
        return [path]
    supported = IMAGE_SUFFIXES + SIGNAL_SUFFIXES + ARRAY_SUFFIXES
    files = sorted(os.path.join(path, name) for name in os.listdir(path)
                   if not name.startswith(".") and os.path.splitext(name)[1].lower() in supported
                   and os.path.isfile(os.path.join(path, name)))
    if not files:
        raise UsageError(f"--input={path} is a folder with no {', '.join(supported)} files; "
                         "put the images or signals to invert in it")
    return files


def _file_type(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in SIGNAL_SUFFIXES:
        return "csv"
    if suffix in ARRAY_SUFFIXES:
        return "array"
    raise UsageError(f"--input={path}: unsupported file type {suffix or '(no suffix)'!r}; pass an image "
                     f"({', '.join(IMAGE_SUFFIXES)}), a signal (.csv) or an array (.npy)")


def check_input_kind(path: str, model: Model) -> str:
    """Refuses an image for a signal model and a signal for an image model."""
    file_type = _file_type(path)
    if file_type == "image" and not model.is_image:
        raise UsageError(f"{path} is an image, but the model {model.directory} is a signal model "
                         f"(output {model.describe_output()}); pass {model.expected_signal_input()}")
    if file_type == "csv" and model.is_image:
        raise UsageError(f"{path} is a CSV signal, but the model {model.directory} is an image model "
                         f"(output {model.describe_output()}); pass an image or a folder of images")
    return file_type


def read_inputs(paths: Sequence[str], model: Model) -> list[Observation]:
    """Reads and checks every input; images stay as read until the model's convention is known."""
    types = [check_input_kind(path, model) for path in paths]  # all kinds checked before any reading
    observations: list[Observation] = []
    for path, file_type in zip(paths, types):
        stem = os.path.splitext(os.path.basename(path))[0]
        if file_type == "image":
            observations.append(Observation(stem, path, picture=read_image(path)))
        elif file_type == "csv":
            x, steps = read_signal_csv(path, model)
            observations.append(Observation(stem, path, x, steps))
        else:
            batch = read_array(path, model)
            names = [stem] if len(batch) == 1 else [f"{stem}_{i}" for i in range(len(batch))]
            observations += [Observation(name, path, x, ["as given (.npy in the model's format)"])
                             for name, x in zip(names, batch)]
    _make_names_unique(observations)
    return observations


def _make_names_unique(observations: list[Observation]) -> None:
    """File-safe names, unique even on case-insensitive file systems (a.png vs A.jpg)."""
    taken: set[str] = set()
    for observation in observations:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", observation.name) or "input"
        name, number = base, 0
        while name.lower() in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name.lower())
        observation.name = name


# -- images -----------------------------------------------------------------------------------
def read_image(path: str) -> np.ndarray:
    """An image file as RGB floats in [0, 1], upright, transparency composited on white."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UsageError(f"cannot read image {path} ({type(e).__name__}: {e}); pass a PNG or JPEG file") from None
    if max(image.size) > MAX_READ_SIDE:
        if image.mode.startswith("I;16"):
            image = image.convert("I")
        elif image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):  # modes Image.reduce does not take
            image = image.convert("RGBA")
        image = image.reduce(math.ceil(max(image.size) / MAX_READ_SIDE))
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16/32-bit grey: scale its own range to [0, 1]
        grey = np.asarray(image, dtype=np.float64)
        span = grey.max() - grey.min()
        grey = (grey - grey.min()) / span if span > 0 else np.zeros_like(grey)
        return np.repeat(grey[..., None], 3, axis=-1)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    return rgb * alpha + (1.0 - alpha) if has_alpha else rgb


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ LUMINANCE_WEIGHTS


def invert_luminance(rgb: np.ndarray) -> np.ndarray:
    """Light <-> dark with hues kept: Y -> 1 - Y, chroma (rgb - Y) unchanged."""
    shift = 1.0 - 2.0 * luminance(rgb)
    return np.clip(rgb + shift[..., None], 0.0, 1.0)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The grey level that best splits `values` in two classes (max between-class variance)."""
    histogram, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    centres = 0.5 * (edges[1:] + edges[:-1])
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(histogram * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[1:][np.argmax(between)])


def border_pixels(image: np.ndarray) -> np.ndarray:
    width = max(1, int(round(BORDER_FRACTION * min(image.shape[:2]))))
    return np.concatenate([image[:width].reshape(-1), image[-width:].reshape(-1),
                           image[:, :width].reshape(-1), image[:, -width:].reshape(-1)])


@dataclasses.dataclass
class InkSeparation:
    ink: np.ndarray  # [H, W] in [0, 1], 1 = ink
    dark_background: bool
    background_level: float  # grey level of the background, after inverting a dark one
    ink_level: float


def separate_ink(grey: np.ndarray, source: str = "image") -> InkSeparation:
    """Steps 2 and 3: which side is background, and the contrast-normalised ink map."""
    threshold = otsu_threshold(grey)
    dark_background = bool(np.mean(border_pixels(grey) <= threshold) > 0.5)
    if dark_background:
        grey, threshold = 1.0 - grey, 1.0 - threshold
    background = grey > threshold
    if background.all() or not background.any():
        raise UsageError(f"{source} is a uniform image with no drawing in it; pass a picture with visible ink")
    background_level = float(np.median(grey[background]))
    ink_level = float(np.percentile(grey[~background], 5))
    if background_level - ink_level < MIN_CONTRAST:
        raise UsageError(f"{source} has almost no contrast (background {background_level:.2f}, ink "
                         f"{ink_level:.2f} in grey levels); pass a picture with clearly visible ink")
    ink = np.clip((background_level - grey) / (background_level - ink_level), 0.0, 1.0)
    return InkSeparation(ink, dark_background, background_level, ink_level)


def frame_box(ink: np.ndarray, framing: str, margin: float, aspect: float) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the region to keep, possibly reaching outside the image;
    aspect = width / height of the model's images."""
    height, width = ink.shape
    if framing == "full":
        top, left, box_h, box_w = 0.0, 0.0, float(height), float(width)
    else:
        mask = ink > 0.5
        if min(height, width) >= 16:  # a 3x3 median removes dust specks that would stretch the box
            from PIL import Image, ImageFilter

            mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MedianFilter(3))) > 127
            mask = mask if mask.any() else ink > 0.5
        rows, cols = np.nonzero(mask)
        top, left = rows.min(), cols.min()
        box_h, box_w = rows.max() - top + 1.0, cols.max() - left + 1.0
        pad = margin * max(box_h, box_w)
        top, left, box_h, box_w = top - pad, left - pad, box_h + 2 * pad, box_w + 2 * pad
    # Grow the shorter side, about the centre, to the model's aspect ratio.
    centre_r, centre_c = top + box_h / 2, left + box_w / 2
    box_h, box_w = max(box_h, box_w / aspect), max(box_w, box_h * aspect)
    return (int(round(centre_r - box_h / 2)), int(round(centre_c - box_w / 2)),
            max(1, int(round(box_h))), max(1, int(round(box_w))))


def crop_with_padding(image: np.ndarray, box: tuple[int, int, int, int], fill) -> np.ndarray:
    top, left, height, width = box
    out = np.empty((height, width) + image.shape[2:], dtype=image.dtype)
    out[...] = fill
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + height, image.shape[0]), min(left + width, image.shape[1])
    out[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
    return out


def resize(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """One float channel to (height, width): area averaging when shrinking, bilinear when enlarging."""
    if plane.shape == (height, width):
        return plane.astype(np.float64)
    from PIL import Image

    shrinking = plane.shape[0] >= height and plane.shape[1] >= width
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    image = Image.fromarray(plane.astype(np.float32), mode="F").resize((width, height), resample)
    return np.asarray(image, dtype=np.float64)


def binarize(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """Ink 1 / background 0 at half the typical stroke level, so strokes thinner than a pixel
    (whose area-averaged level is low) still come out as lines."""
    marked = ink[ink > 0.05]
    threshold = float(np.clip(0.5 * np.percentile(marked, 90), 0.05, 0.5)) if marked.size else 0.5
    return (ink >= threshold).astype(np.float64), threshold


def preprocess_image(picture: np.ndarray, shape: Sequence[int], kind: str, model_background: np.ndarray,
                     framing: str = "ink", margin: float = DEFAULT_MARGIN, source: str = "image"
                     ) -> tuple[np.ndarray, list[str]]:
    """An RGB picture [H, W, 3] in [0, 1] -> the model's image [h, w, C] float32, with the
    steps taken, in words (see the module docstring). model_background: [C] the model's
    background level/colour."""
    height, width, channels = (int(s) for s in shape)
    if channels not in (1, 3):
        raise UsageError(f"{source}: the model takes {channels}-channel images, which image preprocessing does not "
                         "handle (1 or 3 channels); pass a .npy array in the model's format instead")
    model_background = np.asarray(model_background, dtype=np.float64).reshape(-1)
    steps = ["grey-scale"]
    separation = separate_ink(luminance(picture), source)
    steps.append("dark background: inverted" if separation.dark_background else "light background")
    steps.append(f"contrast: background {separation.background_level:.2f} -> 0, ink {separation.ink_level:.2f} -> 1")

    box = frame_box(separation.ink, framing, margin, aspect=width / height)
    ink = crop_with_padding(separation.ink, box, 0.0)
    steps.append(f"cropped to the ink's bounding box + {margin:g} margin ({box[3]}x{box[2]} px)" if framing == "ink"
                 else f"whole frame, padded to {box[3]}x{box[2]} px")
    steps.append(f"resized {ink.shape[1]}x{ink.shape[0]} -> {width}x{height}")
    model_background_is_dark = luminance_of(model_background) < 0.5

    if channels == 1:
        ink = resize(ink, height, width)
        if kind == "binary_image":
            ink, threshold = binarize(ink)
            steps.append(f"binarised at {threshold:.2f}")
        image = ink if model_background_is_dark else 1.0 - ink
        steps.append("ink 1 on background 0" if model_background_is_dark else "ink 0 on background 1")
        return image[..., None].astype(np.float32), steps

    rgb = invert_luminance(picture) if separation.dark_background else picture
    is_background = separation.ink < 0.5
    paper = np.median(rgb[is_background], axis=0)
    black = min(float(np.percentile(luminance(rgb), 1)), 0.9 * float(paper.min()))
    rgb = np.clip((rgb - black) / np.maximum(paper - black, 1e-6), 0.0, 1.0)  # paper -> white, darkest ink -> black
    rgb = crop_with_padding(rgb, box, 1.0)
    rgb = np.stack([resize(rgb[..., c], height, width) for c in range(3)], axis=-1)
    if model_background_is_dark:
        rgb = invert_luminance(rgb)
        steps.append("luminance inverted to the model's dark background")
    else:
        rgb = rgb * model_background
        steps.append("white-balanced to the model's background " + _colour(model_background))
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), steps


def luminance_of(colour: np.ndarray) -> float:
    colour = np.asarray(colour, dtype=np.float64).reshape(-1)
    return float(colour[0]) if colour.size == 1 else float(colour[:3] @ LUMINANCE_WEIGHTS)


def _colour(colour: np.ndarray) -> str:
    return "(" + ", ".join(f"{c:.2f}" for c in np.asarray(colour).reshape(-1)) + ")"


def model_background(reference_images: np.ndarray) -> np.ndarray:
    """The model's background level per channel: the median of its images' border pixels."""
    return np.stack([np.median(np.stack([border_pixels(image[..., c]) for image in reference_images]))
                     for c in range(reference_images.shape[-1])])


# -- signals ----------------------------------------------------------------------------------
def normalize_column_name(name: str) -> str:
    """'Gain (dB)' -> 'gain_db', ' Frequency [kHz] ' -> 'frequency_khz'."""
    name = re.sub(r"[^a-z0-9]+", "_", name.strip().lower())
    return name.strip("_")


def _split_unit(name: str) -> tuple[str, str | None]:
    stem, _, unit = name.rpartition("_")
    if stem and any(unit in units for units in UNIT_FAMILIES.values()):
        return stem, unit
    return name, None


def _unit_factor(from_unit: str, to_unit: str) -> float | None:
    for units in UNIT_FAMILIES.values():
        if from_unit in units and to_unit in units:
            return units[from_unit] / units[to_unit]
    return None


def match_column(header: Sequence[str], stems: Sequence[str], unit: str | None) -> tuple[int, float] | None:
    """Index of the column named `stem_unit`, `stem_otherunit` of the same unit family, or
    the bare stem (taken to be in `unit`), and the factor that converts its values to `unit`."""
    for index, column in enumerate(header):
        stem, column_unit = _split_unit(column)
        if stem not in stems:
            continue
        if column_unit is None:
            return index, 1.0
        factor = _unit_factor(column_unit, unit) if unit is not None else None
        if factor is not None:
            return index, factor
    return None


def read_csv_table(path: str) -> tuple[list[str], np.ndarray]:
    """Header (normalised names) and the numeric rows of a CSV file; refuses empty or
    non-numeric cells, naming the row and column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(4096)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = [row for row in csv.reader(f, dialect) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"cannot read {path} ({type(e).__name__}: {e}); pass a UTF-8 text CSV file") from None
    if not rows:
        raise UsageError(f"{path} is empty; pass a CSV with a header row and one row per sample")
    header_cells = [cell.strip() for cell in rows[0]]
    if all(_is_number(cell) for cell in header_cells):
        raise UsageError(f"{path} has no header row (its first line is numbers); add one naming the columns")
    header = [normalize_column_name(cell) for cell in header_cells]
    if len(rows) < 2:
        raise UsageError(f"{path} has a header but no data rows")
    values = np.empty((len(rows) - 1, len(header)))
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UsageError(f"{path} line {r} has {len(row)} cells but the header names {len(header)} columns")
        for c, cell in enumerate(row):
            try:
                value = float(cell.strip())
            except ValueError:
                value = None
            if value is None or not math.isfinite(value):
                raise UsageError(f"{path} line {r}, column {header_cells[c]!r}: {cell.strip() or '(empty)'!r} is not "
                                 "a finite number; fix or remove that row")
            values[r - 2, c] = value
    return header, values


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_signal_csv(path: str, model: Model) -> tuple[np.ndarray, list[str]]:
    """A measured signal from CSV on the model's grid, [N] or [N, C], and the steps taken."""
    header, table = read_csv_table(path)
    steps: list[str] = []
    axis_match = None
    if model.axis is not None:
        spec = AXIS_KINDS[model.axis.key]
        axis_match = match_column(header, spec["column_stems"], model.axis.unit)
        if axis_match is None:
            raise UsageError(f"{path} has columns {','.join(header)}, none of them the {spec['quantity']} axis; "
                             f"name it {spec['column_stems'][0]}_{model.axis.unit} "
                             f"(the model needs {model.expected_signal_input()})")
    channels = _channel_columns(path, header, model, axis_match[0] if axis_match else None)
    values = np.stack([table[:, index] * factor for index, factor in channels], axis=-1)
    converted = [f"{header[index]} x {factor:.6g} to {channel}" for (index, factor), channel
                 in zip(channels, model.channels or ()) if factor != 1.0]
    if converted:
        steps.append(", ".join(converted))

    num_points = model.shape[0]
    if model.axis is None:
        if len(values) != num_points:
            raise UsageError(f"{path} has {len(values)} data rows but the model takes {num_points} points, and its "
                             "export names no axis to resample onto; give exactly one row per model point, in order")
        steps.append(f"{num_points} points taken in order")
    else:
        axis_index, axis_factor = axis_match
        if axis_factor != 1.0:
            steps.append(f"{header[axis_index]} x {axis_factor:.6g} to {model.axis.key}")
        values, note = resample(table[:, axis_index] * axis_factor, values, model.axis, path)
        steps.append(note)
    return values.reshape(model.shape).astype(np.float32), steps


def _channel_columns(path: str, header: list[str], model: Model, axis_index: int | None) -> list[tuple[int, float]]:
    if model.channels is not None:
        matches, missing = [], []
        for channel in model.channels:
            stem, unit = _split_unit(normalize_column_name(channel))
            match = match_column(header, (stem,), unit)
            if match is None:
                missing.append(channel)
            else:
                matches.append(match)
        if missing:
            raise UsageError(f"{path} has columns {','.join(header)} but lacks {', '.join(missing)}; "
                             f"the model needs {model.expected_signal_input()}")
        return matches
    # Without an axis in the export, an axis-like column (time_s, frequency_hz) is not a value.
    axis_like = {axis_index} if axis_index is not None else {
        match[0] for spec in AXIS_KINDS.values()
        if (match := match_column(header, spec["column_stems"], spec["unit"])) is not None}
    others = [(i, 1.0) for i in range(len(header)) if i not in axis_like]
    wanted = 1 if len(model.shape) == 1 else model.shape[1]
    if len(others) != wanted:
        raise UsageError(f"{path} has {len(others)} value column(s) ({','.join(header[i] for i, _ in others)}) but the "
                         f"model's signal has {wanted} channel(s); pass {model.expected_signal_input()}")
    return others


def format_quantity(value: float, unit: str) -> str:
    """12000, 'Hz' -> '12 kHz'; 0 -> '0 Hz'."""
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in SI_PREFIXES:
        if abs(value) >= scale or scale == SI_PREFIXES[-1][0]:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def resample(axis_values: np.ndarray, values: np.ndarray, axis: SignalAxis, source: str = "data"
             ) -> tuple[np.ndarray, str]:
    """Measured (axis_values [M], values [M, C]) -> values on the model's grid [N, C], by
    linear interpolation (in log axis for frequency axes); refuses data that do not cover
    the grid, naming the missing range."""
    unit = {"hz": "Hz", "s": "s"}.get(axis.unit, axis.unit)
    order = np.argsort(axis_values, kind="stable")
    axis_values, values = axis_values[order], values[order]
    repeated = axis_values[1:][np.diff(axis_values) <= 0]
    if repeated.size:
        raise UsageError(f"{source}: the {axis.quantity} {format_quantity(repeated[0], unit)} appears twice; "
                         "keep one row per value")
    if axis.log and axis_values[0] <= 0:
        raise UsageError(f"{source}: {axis.quantity} {format_quantity(axis_values[0], unit)} is not positive; "
                         "remove rows at or below 0")
    grid = axis.values
    tolerance = 1e-6 * (grid[-1] - grid[0])
    missing = []
    if axis_values[0] > grid[0] + tolerance:
        missing.append(f"{format_quantity(grid[0], unit)} to {format_quantity(axis_values[0], unit)}")
    if axis_values[-1] < grid[-1] - tolerance:
        missing.append(f"{format_quantity(axis_values[-1], unit)} to {format_quantity(grid[-1], unit)}")
    if missing:
        raise UsageError(
            f"{source} covers {format_quantity(axis_values[0], unit)} to {format_quantity(axis_values[-1], unit)} but the "
            f"model's grid spans {format_quantity(grid[0], unit)} to {format_quantity(grid[-1], unit)}: missing "
            f"{' and '.join(missing)}; measure over the model's whole range")
    if len(axis_values) == len(grid) and np.allclose(axis_values, grid, rtol=1e-6, atol=tolerance):
        return values, f"on the model's {axis.quantity} grid ({len(grid)} points)"
    transform = np.log if axis.log else (lambda v: v)
    resampled = np.stack([np.interp(transform(grid), transform(axis_values), values[:, c])
                          for c in range(values.shape[1])], axis=-1)
    how = "log-" if axis.log else ""
    return resampled, (f"resampled from {len(axis_values)} points to the model's {len(grid)}-point {axis.quantity} grid "
                       f"({how}{axis.quantity} interpolation)")


# -- arrays -----------------------------------------------------------------------------------
def read_array(path: str, model: Model) -> np.ndarray:
    """A .npy in the model's format: one observation or a batch; [B, *shape] float32."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UsageError(f"cannot read {path} as a numeric .npy array ({e}); save it with numpy.save") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise UsageError(f"{path} holds {getattr(array, 'dtype', type(array).__name__)} data; pass a numeric array")
    if array.shape == model.shape:
        array = array[None]
    if array.shape[1:] != model.shape or len(array) == 0:
        raise UsageError(f"{path} has shape {array.shape}; the model takes {model.shape} or a batch "
                         f"(B, {', '.join(map(str, model.shape))})")
    array = array.astype(np.float32)
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        raise UsageError(f"{path}: observation {int(np.argmax(bad))} holds NaN or Inf values; remove or fill them")
    if model.is_image and (array.min() < 0 or array.max() > 1):
        raise UsageError(f"{path}: image values span [{array.min():.3g}, {array.max():.3g}]; the model's images are in "
                         "[0, 1] (divide 8-bit images by 255)")
    return array


# -- the simulator, when it can be imported --------------------------------------------------
def load_simulator(model: Model) -> tuple[base.Simulator | None, str | None]:
    """The export's simulator (metadata `class`), or None and why not. Its constructor
    options come from metadata `simulator_options` or, for an export inside its run's
    workdir, the run's config.json."""
    class_path = model.metadata.get("class")
    if not class_path:
        return None, "the export names no simulator class"
    from simvae_tf import simulators

    try:
        cls = simulators.resolve_class(class_path)
    except Exception as e:  # a user's module may fail to import in any way
        return None, f"simulator {class_path} is not importable ({str(e).splitlines()[0]})"
    options = model.metadata.get("simulator_options")
    if options is None:
        options = _run_config_simulator_options(model.directory, model.metadata.get("sim"))
    try:
        simulator = cls(**options)
    except Exception as e:
        return None, f"simulator {class_path}(**{options}) failed to build ({type(e).__name__}: {e})"
    if [dataclasses.asdict(latent) for latent in simulator.latents] != [dataclasses.asdict(l) for l in model.latents] \
            or tuple(simulator.output_spec.shape) != model.shape:
        return None, (f"simulator {class_path} no longer matches the export (its latents or output changed since "
                      "training)")
    return simulator, None


def _run_config_simulator_options(export_dir: str, sim: str | None) -> dict:
    path = os.path.join(os.path.dirname(os.path.abspath(export_dir)), "config.json")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    if sim is not None and record.get("sim") != sim:
        return {}
    options = record.get("config", {}).get("simulator", {})
    return options if isinstance(options, dict) else {}


# -- the models -------------------------------------------------------------------------------
class SavedModels:
    """The exported encoder and generator (TensorFlow SavedModels)."""

    def __init__(self, model: Model, batch_size: int = 256):
        import tensorflow as tf

        self.tf = tf
        self.batch_size = batch_size
        self.encoder = tf.saved_model.load(os.path.join(model.directory, "encoder"))
        self.generator = tf.saved_model.load(os.path.join(model.directory, "generator"))

    def encode(self, x: np.ndarray) -> dict[str, np.ndarray]:
        parts = [self.encoder.serve(self.tf.constant(x[i:i + self.batch_size], self.tf.float32))
                 for i in range(0, len(x), self.batch_size)]
        return {key: np.concatenate([p[key].numpy() for p in parts]).astype(np.float64) for key in parts[0]}

    def generate(self, z: np.ndarray) -> np.ndarray:
        return np.concatenate([self.generator.serve(self.tf.constant(z[i:i + self.batch_size], self.tf.float32)).numpy()
                               for i in range(0, len(z), self.batch_size)])


def reference_images(model: Model, simulator: base.Simulator | None, networks: SavedModels, seed: int) -> np.ndarray:
    """Typical model images, to read off its background: the simulator's, else the generator's."""
    rng = np.random.default_rng([seed, 1])
    if simulator is not None:
        try:
            z = simulator.sample_latents(rng, REFERENCE_SAMPLES)
            return np.asarray(simulator.simulate(z), dtype=np.float64).reshape((-1,) + model.shape)
        except Exception:  # a failing black box only costs us the better reference
            pass
    u = rng.uniform(-1.0, 1.0, size=(REFERENCE_SAMPLES, len(model.latents)))
    return networks.generate(base.denormalize(model.latents, u)).astype(np.float64)


# -- the run ----------------------------------------------------------------------------------
def default_output_dir(input_path: str) -> str:
    input_path = os.path.abspath(input_path.rstrip(os.sep) or input_path)
    stem = os.path.splitext(os.path.basename(input_path))[0] if os.path.isfile(input_path) \
        else os.path.basename(input_path)
    return os.path.join(os.path.dirname(input_path), f"{stem}_inverted")


def check_output_dir(path: str) -> None:
    """The output may be new, empty, or a previous invert output (which is replaced)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--output={path}: its parent folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--output={path}: cannot write in {parent}; choose a writable location")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UsageError(f"--output={path} is a file; pass a folder path")
        if os.listdir(path) and not _is_invert_output(path):
            raise UsageError(f"--output={path} exists and holds other files; choose a new or empty folder "
                             "(a previous invert output there is replaced)")


def _is_invert_output(path: str) -> bool:
    try:
        with open(os.path.join(path, "results.json")) as f:
            return json.load(f).get("format") == RESULTS_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def invert(model_dir: str, input_path: str, output_dir: str | None = None, num_samples: int = 0,
           framing: str = "ink", margin: float = DEFAULT_MARGIN, seed: int = 0) -> tuple[dict, str]:
    """Inverts every input; writes OUT_DIR/results.json and figures; returns (results, OUT_DIR)."""
    if framing not in FRAMINGS:
        raise UsageError(f"--framing={framing!r} unknown; use one of {', '.join(FRAMINGS)}")
    if not 0.0 <= margin <= 2.0:
        raise UsageError(f"--margin={margin} is invalid: it must be a fraction of the drawing's size in [0, 2]")
    if not (isinstance(num_samples, int) and 0 <= num_samples <= MAX_SAMPLES):
        raise UsageError(f"--samples={num_samples} is invalid: it must be an integer in [0, {MAX_SAMPLES}]")
    paths = input_files(input_path)
    model = load_model(model_dir)
    output_dir = os.path.abspath(output_dir or default_output_dir(input_path))
    check_output_dir(output_dir)
    observations = read_inputs(paths, model)

    simulator, why_no_simulator = load_simulator(model)
    notes = [f"{why_no_simulator}; S(E(x)) and derived quantities are skipped"] if simulator is None else []
    networks = SavedModels(model)
    if model.is_image:
        background = model_background(reference_images(model, simulator, networks, seed))
        for observation in observations:
            if observation.x is None:
                observation.x, observation.steps = preprocess_image(
                    observation.picture, model.shape, model.kind, background, framing, margin, observation.source)

    x = np.stack([observation.x for observation in observations]).astype(np.float32)
    posterior = networks.encode(x)
    reconstructions = {"G(E(x))": networks.generate(posterior["mean"])}
    if simulator is not None:
        # The simulator is only defined on its latent ranges: simulate the clipped mean.
        clipped = base.denormalize(model.latents, np.clip(posterior["mean_normalized"], -1.0, 1.0))
        try:
            reconstructions["S(E(x))"] = np.asarray(simulator.simulate(clipped), np.float32).reshape(x.shape)
        except Exception as e:  # the simulator is a black box
            notes.append(f"simulator failed on the posterior means ({type(e).__name__}: {e}); S(E(x)) skipped")
    rng = np.random.default_rng(seed)
    samples = None
    if num_samples:
        # Sample the Gaussian posterior where it is Gaussian (normalised coordinates), then map.
        eps = rng.standard_normal((len(x), num_samples, len(model.latents)))
        u = posterior["mean_normalized"][:, None] + np.exp(posterior["log_std_normalized"])[:, None] * eps
        samples = base.denormalize(model.latents, u)
    derived = derived_quantities(simulator, posterior["mean"], samples, notes)

    results = {
        "format": RESULTS_FORMAT,
        "model": os.path.abspath(model_dir),
        "simulator": {"name": model.metadata.get("name"), "class": model.metadata.get("class"),
                      "importable": simulator is not None},
        "latents": [{"name": l.name, "unit": l.unit, "low": l.low, "high": l.high, "scale": l.scale}
                    for l in model.latents],
        "num_samples": num_samples,
        "notes": notes,
        "inputs": [],
    }
    for i, observation in enumerate(observations):
        entry = {
            "name": observation.name,
            "source": os.path.abspath(observation.source),
            "preprocessing": observation.steps,
            "posterior": {latent.name: {"mean": float(posterior["mean"][i, k]), "std": float(posterior["std"][i, k]),
                                        "unit": latent.unit} for k, latent in enumerate(model.latents)},
            "mean_normalized": posterior["mean_normalized"][i].tolist(),
            "log_std_normalized": posterior["log_std_normalized"][i].tolist(),
            "outside_trained_range": [latent.name for k, latent in enumerate(model.latents)
                                      if abs(posterior["mean_normalized"][i, k]) > 1.0 + RANGE_TOLERANCE],
            "reconstruction_rmse": {name: float(np.sqrt(np.mean((rows[i] - x[i]) ** 2)))
                                    for name, rows in reconstructions.items()},
            "derived": {name: {key: float(value[i]) for key, value in quantity.items()}
                        for name, quantity in derived.items()},
            "figure": f"{observation.name}.png",
        }
        if samples is not None:
            entry["samples"] = samples[i].tolist()
        results["inputs"].append(entry)

    from simvae_tf import figures

    # PNG bytes, not Figure objects: a folder of hundreds of inputs stays small in memory.
    write_outputs(output_dir, results, {
        observation.name: figures.to_png(comparison_figure(model, observation, i, reconstructions, posterior["mean"][i]))
        for i, observation in enumerate(observations)})
    return results, output_dir


def derived_quantities(simulator: base.Simulator | None, mean: np.ndarray, samples: np.ndarray | None,
                       notes: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """The simulator's derived quantities at the posterior mean and, with samples, their
    posterior mean and std: {name: {"at_mean": [B], "posterior_mean": [B], "posterior_std": [B]}}."""
    if simulator is None:
        return {}
    try:
        at_mean = simulator.derived_quantities(mean)
        result = {name: {"at_mean": np.asarray(value, np.float64).reshape(len(mean))} for name, value in at_mean.items()}
        if samples is not None and result:
            flat = simulator.derived_quantities(samples.reshape(-1, samples.shape[-1]))
            for name, value in flat.items():
                value = np.asarray(value, np.float64).reshape(samples.shape[:2])
                result[name]["posterior_mean"] = value.mean(axis=1)
                result[name]["posterior_std"] = value.std(axis=1)
        return result
    except Exception as e:
        notes.append(f"derived_quantities failed ({type(e).__name__}: {e}); skipped")
        return {}


def thumbnail(picture: np.ndarray, longest_side: int = 256) -> np.ndarray:
    """A smaller copy of a large picture: a figure panel needs no more pixels."""
    scale = longest_side / max(picture.shape[:2])
    if scale >= 1:
        return picture
    height, width = max(1, round(picture.shape[0] * scale)), max(1, round(picture.shape[1] * scale))
    return np.stack([resize(picture[..., c], height, width) for c in range(picture.shape[-1])], axis=-1)


def comparison_figure(model: Model, observation: Observation, index: int, reconstructions: dict[str, np.ndarray],
                      posterior_mean: np.ndarray):
    """The input next to its re-renderings G(E(x)) and S(E(x)); the title gives E(x)."""
    from simvae_tf import figures

    estimate = "  ".join(f"{latent.name}={value:.3g}" for latent, value in zip(model.latents, posterior_mean))
    title = f"{observation.name}: E(x) = {estimate}"
    if model.is_image:
        panels = ([thumbnail(observation.picture)] if observation.picture is not None else []) + [observation.x] + \
                 [rows[index] for rows in reconstructions.values()]
        labels = (["as read"] if observation.picture is not None else []) + ["model input"] + list(reconstructions)
        figure = figures.image_grid([panels], [""], title, column_labels=labels)
        figure.set_size_inches(max(figure.get_size_inches()[0], 0.12 * len(title)), figure.get_size_inches()[1] + 0.3)
        return figure
    rows = [observation.x[None]] + [rows[index][None] for rows in reconstructions.values()]
    axis = model.axis
    figure = figures.signal_grid(rows, ["input"] + list(reconstructions),
                                 axis_values=axis.values if axis is not None else None,
                                 channel_names=model.channels, title=title, log_axis=bool(axis and axis.log))
    figure.set_size_inches(max(5.0, 0.09 * len(title)), figure.get_size_inches()[1] + 0.5)
    if axis is not None:
        for axes in figure.axes[-1:]:
            axes.set_xlabel(axis.key, fontsize=7)
    figure.tight_layout()
    return figure


def write_outputs(output_dir: str, results: dict, figures_by_name: dict[str, bytes]) -> None:
    """Builds the folder (results.json, one PNG per figure) under a temporary name, then
    swaps it into place."""
    def fill(staging: str) -> None:
        os.makedirs(staging)
        for figure_name, png in figures_by_name.items():
            with open(os.path.join(staging, f"{figure_name}.png"), "wb") as f:
                f.write(png)
        with open(os.path.join(staging, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")

    try:
        data.atomic_replace_dir(output_dir, fill)
    except OSError as e:
        raise UsageError(f"--output={output_dir}: cannot write ({e.strerror or e}); choose a writable location") from None


# -- the report -------------------------------------------------------------------------------
def _number(value: float) -> str:
    return f"{value:.4g}"


def format_report(results: dict, output_dir: str) -> str:
    lines = []
    for entry in results["inputs"]:
        lines.append(f"{entry['name']}  ({os.path.basename(entry['source'])}: {'; '.join(entry['preprocessing'])})")
        rows = [("latent", "mean", "std", "unit", "range")]
        for latent in results["latents"]:
            p = entry["posterior"][latent["name"]]
            rows.append((latent["name"], _number(p["mean"]), _number(p["std"]), latent["unit"] or "-",
                         f"[{_number(latent['low'])}, {_number(latent['high'])}]" +
                         (" log" if latent["scale"] == "log" else "")))
        widths = [max(len(row[c]) for row in rows) for c in range(5)]
        for row in rows:
            lines.append("  " + "  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                                           row[3].ljust(widths[3]), row[4]]).rstrip())
        for name, quantity in entry["derived"].items():
            text = f"  derived {name} = {_number(quantity['at_mean'])} at the posterior mean"
            if "posterior_mean" in quantity:
                text += (f"; {_number(quantity['posterior_mean'])} +- {_number(quantity['posterior_std'])} over "
                         f"{results['num_samples']} samples")
            lines.append(text)
        if entry["outside_trained_range"]:
            lines.append(f"  warning: {', '.join(entry['outside_trained_range'])} outside the trained range "
                         "(the input is probably unlike the training data)")
        lines.append("  reconstruction RMSE: " + ", ".join(f"{k} {_number(v)}"
                                                          for k, v in entry["reconstruction_rmse"].items()))
    for note in results["notes"]:
        lines.append(f"note: {note}")
    samples = f", {results['num_samples']} posterior samples per input" if results["num_samples"] else ""
    lines.append(f"Wrote {output_dir}: results.json{samples}, "
                 f"{len(results['inputs'])} figure(s) ({', '.join(e['figure'] for e in results['inputs'][:3])}"
                 f"{', ...' if len(results['inputs']) > 3 else ''})")
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------
def _define_flags():
    from absl import flags

    flags.DEFINE_string("model", None, "A trained run's export directory (WORKDIR/export).")
    flags.DEFINE_string("input", None, "An image, a .csv signal, a .npy array, or a folder of them (a batch).")
    flags.DEFINE_string("output", None, "Output folder (default: <input stem>_inverted next to the input).")
    flags.DEFINE_integer("samples", 0, "Posterior samples per input to write to results.json.")
    flags.DEFINE_enum("framing", "ink", FRAMINGS, "Images: crop to the ink (ink) or keep the whole frame (full).")
    flags.DEFINE_float("margin", DEFAULT_MARGIN, "Images, --framing=ink: margin around the ink, a fraction of its size.")
    flags.DEFINE_integer("seed", 0, "Seed of the posterior samples.")
    flags.DEFINE_bool("verbose", False, "Show full tracebacks for errors.")
    return flags.FLAGS


def _parse_flags(argv: list[str]) -> list[str]:
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        cli.fail(f"{str(e).splitlines()[0]}; see python -m simvae_tf.invert --help")
    return []


def run(argv: list[str]) -> None:
    from absl import flags

    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments {argv[1:]}; options are --flag=value (see --help)")
    if not FLAGS.model:
        raise UsageError("--model is required: pass a trained run's export directory (WORKDIR/export)")
    if not FLAGS.input:
        raise UsageError("--input is required: pass an image, a .csv or .npy file, or a folder of them")
    cli.import_tensorflow_quietly(FLAGS.verbose)
    results, output_dir = invert(FLAGS.model, FLAGS.input, FLAGS.output, FLAGS.samples, FLAGS.framing,
                                 FLAGS.margin, FLAGS.seed)
    print(format_report(results, output_dir), flush=True)


def main() -> None:
    from absl import app

    flag_values = _define_flags()
    app.run(lambda args: cli.exit_on_user_error(run, args, lambda: flag_values.verbose), argv=sys.argv,
            flags_parser=_parse_flags)


if __name__ == "__main__":
    main()
