"""The inputs of a run: which files, of which type, read into `Observation`s in the
model's format (images stay as read until the model's convention is known)."""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Sequence

import numpy as np

from simvae_tf.errors import UserError
from simvae_tf.invert.images import read_image
from simvae_tf.invert.signals import read_signal_csv
from simvae_tf.invert.spec import ExportSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SIGNAL_SUFFIXES = (".csv",)
ARRAY_SUFFIXES = (".npy",)


@dataclasses.dataclass
class Observation:
    """One input, brought to the model's format."""

    name: str  # unique within the run; names the figure
    source: str  # the file it came from
    x: np.ndarray | None = None  # model-shaped, float32 (images: set once the model's convention is known)
    steps: list[str] = dataclasses.field(default_factory=list)  # what preprocessing did, in words
    picture: np.ndarray | None = None  # the image as read (RGB in [0, 1]), for the figure


def input_files(path: str, flag: str = "--input") -> list[str]:
    """The files to read: `path` itself, or every supported file in the folder `path`."""
    if not os.path.exists(path):
        raise UserError(f"{flag}={path} does not exist; pass an image, a .csv or .npy file, or a folder of them")
    if not os.path.isdir(path):
        return [path]
    supported = IMAGE_SUFFIXES + SIGNAL_SUFFIXES + ARRAY_SUFFIXES
    files = sorted(os.path.join(path, name) for name in os.listdir(path)
                   if not name.startswith(".") and os.path.splitext(name)[1].lower() in supported
                   and os.path.isfile(os.path.join(path, name)))
    if not files:
        raise UserError(f"{flag}={path} is a folder with no {', '.join(supported)} files; "
                         "put the images or signals in it")
    return files


def _file_type(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in SIGNAL_SUFFIXES:
        return "csv"
    if suffix in ARRAY_SUFFIXES:
        return "array"
    raise UserError(f"--input={path}: unsupported file type {suffix or '(no suffix)'!r}; pass an image "
                     f"({', '.join(IMAGE_SUFFIXES)}), a signal (.csv) or an array (.npy)")


def check_input_kind(path: str, spec: ExportSpec) -> str:
    """Refuses an image for a signal model and a signal for an image model."""
    file_type = _file_type(path)
    if file_type == "image" and not spec.is_image:
        raise UserError(f"{path} is an image, but the model {spec.directory} is a signal model "
                         f"(output {spec.describe_output()}); pass {spec.expected_signal_input()}")
    if file_type == "csv" and spec.is_image:
        raise UserError(f"{path} is a CSV signal, but the model {spec.directory} is an image model "
                         f"(output {spec.describe_output()}); pass an image or a folder of images")
    return file_type


def read_inputs(paths: Sequence[str], spec: ExportSpec) -> list[Observation]:
    """Reads and checks every input; images stay as read until the model's convention is known."""
    types = [check_input_kind(path, spec) for path in paths]  # all kinds checked before any reading
    observations: list[Observation] = []
    for path, file_type in zip(paths, types):
        stem = os.path.splitext(os.path.basename(path))[0]
        if file_type == "image":
            observations.append(Observation(stem, path, picture=read_image(path)))
        elif file_type == "csv":
            x, steps = read_signal_csv(path, spec)
            observations.append(Observation(stem, path, x, steps))
        else:
            batch = read_array(path, spec)
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


def read_array(path: str, spec: ExportSpec) -> np.ndarray:
    """A .npy in the model's format: one observation or a batch; [B, *shape] float32."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"cannot read {path} as a numeric .npy array ({e}); save it with numpy.save") from None
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise UserError(f"{path} holds {getattr(array, 'dtype', type(array).__name__)} data; pass a numeric array")
    if array.shape == spec.shape:
        array = array[None]
    if array.shape[1:] != spec.shape or len(array) == 0:
        raise UserError(f"{path} has shape {array.shape}; the model takes {spec.shape} or a batch "
                         f"(B, {', '.join(map(str, spec.shape))})")
    array = array.astype(np.float32)
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        raise UserError(f"{path}: observation {int(np.argmax(bad))} holds NaN or Inf values; remove or fill them")
    if spec.is_image and (array.min() < 0 or array.max() > 1):
        raise UserError(f"{path}: image values span [{array.min():.3g}, {array.max():.3g}]; the model's images are in "
                         "[0, 1] (divide 8-bit images by 255)")
    return array


