"""Pictures: reading any image file, and bringing it to a model's image format (grey-scale,
background vs ink, contrast, framing, resizing, the model's polarity or colours; the
package docstring describes the steps)."""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from simvae_tf.errors import UserError

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


def read_image(path: str) -> np.ndarray:
    """An image file as RGB floats in [0, 1], upright, transparency composited on white."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path} ({type(e).__name__}: {e}); pass a PNG or JPEG file") from None
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
        raise UserError(f"{source} is a uniform image with no drawing in it; pass a picture with visible ink")
    background_level = float(np.median(grey[background]))
    ink_level = float(np.percentile(grey[~background], 5))
    if background_level - ink_level < MIN_CONTRAST:
        raise UserError(f"{source} has almost no contrast (background {background_level:.2f}, ink "
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
    steps taken, in words (see the package docstring). model_background: [C] the model's
    background level/colour."""
    height, width, channels = (int(s) for s in shape)
    if channels not in (1, 3):
        raise UserError(f"{source}: the model takes {channels}-channel images, which image preprocessing does not "
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


def thumbnail(picture: np.ndarray, longest_side: int = 256) -> np.ndarray:
    """A smaller copy of a large picture: a figure panel needs no more pixels."""
    scale = longest_side / max(picture.shape[:2])
    if scale >= 1:
        return picture
    height, width = max(1, round(picture.shape[0] * scale)), max(1, round(picture.shape[1] * scale))
    return np.stack([resize(picture[..., c], height, width) for c in range(picture.shape[-1])], axis=-1)

