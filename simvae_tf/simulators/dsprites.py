"""dSprites (Higgins et al., 2017) as a black-box simulator (paper section 4.1).

dSprites is complete: it holds one 64x64 binary image for every point of its factor grid,
so the dataset itself is a simulator. `simulate(z)` snaps each latent to the nearest grid
value and returns that grid point's image.

Latents, in the paper's order, in the dataset's own units (its `latents_values`):
  shape        1 square, 2 ellipse, 3 heart (the official values; TFDS's `label_shape`
               is value - 1); discrete;
  scale        6 values, linspace(0.5, 1, 6), relative to the largest sprite;
  orientation  40 values, linspace(0, 2 pi, 40) rad: both ends are kept, as in the official
               grid, so indices 0 and 39 are the same angle; snapping is periodic;
  x_position   32 values, linspace(0, 1, 32), left to right;
  y_position   32 values, linspace(0, 1, 32), top to bottom (image rows).

Two sources of images, chosen by `source=` ('auto' takes the first that exists):
  official     DeepMind's file, dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5 (the one
               TFDS's `dsprites` builder downloads) or .npz, searched for in this order:
                 1. the `data_path` option (a file, or a folder holding one);
                 2. the environment variable SIMVAE_DSPRITES_PATH (file or folder);
                 3. the TFDS manual dir, $TFDS_DATA_DIR/downloads/manual (default
                    ~/tensorflow_datasets/downloads/manual);
                 4. the TFDS download cache, where `tfds.load('dsprites')` leaves the file.
               `download=True` (off by default) fetches it through TFDS when none is found.
               Images are kept bit-packed in memory (377 MB for the full grid).
  procedural   the same grid rendered by `render_sprites` (vectorised numpy, no stored
               images: the 720 sprite masks are drawn once, about 1 s, and pasted at their
               positions). It approximates, not reproduces, the official pixels.

The simulator's `source` attribute ('official:<path>' or 'procedural') names what it uses.

Procedural geometry (pixel units, 64x64 frame, pixel (r, c) covers [c, c+1) x [r, r+1)):
  * a sprite's centre sits on a pixel centre, from pixel 16 (position 0) to pixel 47
    (position 1): one pixel per grid step, symmetric about the frame centre, so every
    sprite stays whole in the frame;
  * at scale 1 a square is 16 px wide, an ellipse 17 x 8.5 px (long axis horizontal at
    orientation 0), a heart 17 px wide (the curve (x^2+y^2-1)^3 = x^2 y^3, lobes up,
    centred on its bounding box); sizes scale linearly;
  * orientation turns the sprite counter-clockwise on screen about its centre;
  * a pixel is on when at least half of its 4x4 sub-pixel samples fall inside the shape.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
import socket
import threading
import zipfile
from typing import Sequence

import numpy as np

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator, SimulatorSetupError

log = logging.getLogger(__name__)

IMAGE_SIZE = 64
SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "x_position", "y_position")
# The official grid (the file's metadata 'latents_possible_values', without the constant
# colour factor), in the order the file enumerates it.
GRID_VALUES: tuple[np.ndarray, ...] = (
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2.0 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
GRID_SIZES = tuple(len(values) for values in GRID_VALUES)
NUM_GRID_IMAGES = math.prod(GRID_SIZES)  # 737,280
# Row r of the official file holds the grid point whose class indices c satisfy
# r = c . GRID_STRIDES (y_position varies fastest).
GRID_STRIDES = np.array([math.prod(GRID_SIZES[k + 1:]) for k in range(len(GRID_SIZES))], dtype=np.int64)
ORIENTATION_FACTOR = FACTOR_NAMES.index("orientation")

OFFICIAL_FILENAMES = (
    "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5",
    "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
)
DATA_PATH_ENV = "SIMVAE_DSPRITES_PATH"
SOURCES = ("auto", "official", "procedural")
_OFFICIAL_FIX = (f"point data_path= or ${DATA_PATH_ENV} at DeepMind's {OFFICIAL_FILENAMES[0]} "
                 "(or .npz) from https://github.com/deepmind/dsprites-dataset, or use source='procedural'")

# -- procedural geometry (see the module docstring) -------------------------------------------
FIRST_POSITION_PIXEL = 16  # the centre pixel at position 0; position 1 is 16 + 31 = 47
SPRITE_PATCH_SIZE = 33  # odd, centred on the sprite; pasted at offset = position index
SQUARE_SIDE_PX = 16.0
ELLIPSE_AXES_PX = (17.0, 8.5)  # full lengths: long (horizontal at orientation 0), short
HEART_WIDTH_PX = 17.0
SUBSAMPLES = 4  # per pixel and axis
# The implicit heart (x^2+y^2-1)^3 <= x^2 y^3 spans x in [-1.139, 1.139], y in [-1, 1.236].
_HEART_HALF_WIDTH = 1.139
_HEART_BOX_CENTRE_Y = 0.118


class DSpritesDataError(SimulatorSetupError, ValueError):
    """The official dSprites file is missing or unusable; the message names the file and the fix."""


# -- the grid ---------------------------------------------------------------------------------
def snap_to_grid(z: np.ndarray, available: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Latents [n, 5] (physical units) -> class indices [n, 5] of the nearest grid point.

    `available` restricts factor k to the class indices available[k] (a file holding part
    of the grid). Orientation snaps periodically (-0.1 rad is next to 2 pi - 0.1)."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != len(FACTOR_NAMES):
        raise ValueError(f"dsprites: latents have shape {z.shape}; expected [n, {len(FACTOR_NAMES)}] "
                         f"({', '.join(FACTOR_NAMES)})")
    if not np.isfinite(z).all():
        bad = z[~np.isfinite(z).all(axis=1)][0]
        raise ValueError(f"dsprites: latents contain NaN/Inf, e.g. {bad.tolist()}; pass finite values")
    classes = np.empty(z.shape, dtype=np.int64)
    for k, grid in enumerate(GRID_VALUES):
        candidates = np.arange(len(grid)) if available is None else np.asarray(available[k])
        distance = np.abs(z[:, k, None] - grid[candidates][None, :])
        if k == ORIENTATION_FACTOR:
            turned = np.abs(np.remainder(z[:, k, None] - grid[candidates][None, :] + np.pi, 2.0 * np.pi) - np.pi)
            # 0 and 2 pi are the same angle: the tie goes to the value nearer without
            # wrapping, so that every grid value snaps to itself.
            distance = turned + 1e-9 * distance
        classes[:, k] = candidates[np.argmin(distance, axis=1)]
    return classes


def grid_values(classes: np.ndarray) -> np.ndarray:
    """Class indices [n, 5] -> latents [n, 5] in physical units."""
    classes = np.asarray(classes, dtype=np.int64)
    return np.stack([GRID_VALUES[k][classes[:, k]] for k in range(len(GRID_VALUES))], axis=1)


def grid_index(classes: np.ndarray) -> np.ndarray:
    """Class indices [n, 5] -> row of that grid point in the official file."""
    return np.asarray(classes, dtype=np.int64) @ GRID_STRIDES


# -- procedural renderer ----------------------------------------------------------------------
def _inside_shape(shape_id: np.ndarray, scale: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u right, v up; pixels, sprite frame) lie inside each sprite.
    shape_id, scale: [n, 1, 1]; u, v: [n, H, W]."""
    half_side = 0.5 * SQUARE_SIDE_PX * scale
    square = (np.abs(u) <= half_side) & (np.abs(v) <= half_side)
    a = 0.5 * ELLIPSE_AXES_PX[0] * scale
    b = 0.5 * ELLIPSE_AXES_PX[1] * scale
    ellipse = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    unit = 0.5 * HEART_WIDTH_PX * scale / _HEART_HALF_WIDTH  # pixels per curve unit
    x = u / unit
    y = v / unit + _HEART_BOX_CENTRE_Y
    heart = (x * x + y * y - 1.0) ** 3 <= x * x * y ** 3
    return np.where(shape_id == 0, square, np.where(shape_id == 1, ellipse, heart))


def render_sprites(shape_ids: np.ndarray, scales: np.ndarray, orientations: np.ndarray,
                   patch_size: int = SPRITE_PATCH_SIZE) -> np.ndarray:
    """Draws sprites centred on the middle pixel of a patch: uint8 [n, P, P] in {0, 1}.

    shape_ids are 0 square, 1 ellipse, 2 heart; scales and orientations (rad) may be any
    values, not only grid values."""
    shape_ids = np.asarray(shape_ids, dtype=np.int64).reshape(-1, 1, 1)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 1, 1)
    orientations = np.asarray(orientations, dtype=np.float64).reshape(-1, 1, 1)
    # Sub-pixel sample offsets from the patch's centre pixel centre, along one axis.
    pixel = np.arange(patch_size) - patch_size // 2
    sub = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES - 0.5
    offsets = (pixel[:, None] + sub[None, :]).reshape(-1)
    right = offsets[None, None, :]
    up = -offsets[None, :, None]  # rows grow downwards
    cos, sin = np.cos(orientations), np.sin(orientations)
    # Rotating the sprite by +theta == sampling it at points rotated by -theta.
    u = cos * right + sin * up
    v = -sin * right + cos * up
    inside = _inside_shape(shape_ids, scales, u, v)
    coverage = inside.reshape(-1, patch_size, SUBSAMPLES, patch_size, SUBSAMPLES).mean(axis=(2, 4))
    return (coverage >= 0.5).astype(np.uint8)


_patch_table: np.ndarray | None = None
_patch_table_lock = threading.Lock()


def sprite_patch_table() -> np.ndarray:
    """All grid sprites, uint8 [3, 6, 40, P, P]; drawn once per process (about 1 s)."""
    global _patch_table
    with _patch_table_lock:
        if _patch_table is None:
            shape, scale, orientation = np.meshgrid(
                np.arange(GRID_SIZES[0]), GRID_VALUES[1], GRID_VALUES[2], indexing="ij")
            flat = [a.reshape(-1) for a in (shape, scale, orientation)]
            chunks = [render_sprites(*(a[i:i + 60] for a in flat)) for i in range(0, flat[0].size, 60)]
            table = np.concatenate(chunks).reshape(GRID_SIZES[:3] + (SPRITE_PATCH_SIZE,) * 2)
            table.setflags(write=False)
            _patch_table = table
        return _patch_table


def render_grid_images(classes: np.ndarray) -> np.ndarray:
    """Procedural images of grid points: class indices [n, 5] -> uint8 [n, 64, 64] in {0, 1}."""
    classes = np.asarray(classes, dtype=np.int64)
    patches = sprite_patch_table()[classes[:, 0], classes[:, 1], classes[:, 2]]
    n = len(classes)
    # Patch row/column 0 lands on pixel (position index) because the patch centre
    # (index 16) lands on pixel 16 + position index.
    top = classes[:, 4] + FIRST_POSITION_PIXEL - SPRITE_PATCH_SIZE // 2
    left = classes[:, 3] + FIRST_POSITION_PIXEL - SPRITE_PATCH_SIZE // 2
    span = np.arange(SPRITE_PATCH_SIZE)
    images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    images[np.arange(n)[:, None, None], (top[:, None] + span)[:, :, None],
           (left[:, None] + span)[:, None, :]] = patches
    return images


# -- the official file --------------------------------------------------------------------------
def tfds_data_dir() -> pathlib.Path:
    """TFDS's default data dir ($TFDS_DATA_DIR or ~/tensorflow_datasets), without importing TFDS."""
    return pathlib.Path(os.environ.get("TFDS_DATA_DIR") or pathlib.Path.home() / "tensorflow_datasets")


def _official_in(path: pathlib.Path) -> pathlib.Path | None:
    """The official file at `path` (a file) or inside it (a folder), else None."""
    if path.is_dir():
        for name in OFFICIAL_FILENAMES:
            if (path / name).is_file():
                return path / name
        return None
    return path if path.is_file() else None


def _tfds_download_cache_file() -> pathlib.Path | None:
    """Where TFDS's own `dsprites` builder caches the downloaded file, if it did."""
    url, _, checksum = _tfds_dsprites_download_info()
    from tensorflow_datasets.core.download import resource  # does not load TensorFlow

    path = tfds_data_dir() / "downloads" / resource.get_dl_fname(url, checksum)
    return path if path.is_file() else None


def _tfds_dsprites_download_info() -> tuple[str, int, str]:
    """The URL, size and sha256 that TFDS's `dsprites` builder registers (its checksums.tsv)."""
    import importlib.util

    spec = importlib.util.find_spec("tensorflow_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise DSpritesDataError("tensorflow_datasets is not installed; pip install tensorflow-datasets")
    tsv = pathlib.Path(list(spec.submodule_search_locations)[0]) / "datasets" / "dsprites" / "checksums.tsv"
    for line in tsv.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and OFFICIAL_FILENAMES[0] in fields[0]:
            return fields[0], int(fields[1]), fields[2]
    raise DSpritesDataError(f"{tsv} lists no dSprites URL; reinstall tensorflow-datasets")


def find_official_file(data_path: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The official file, searched for in the order of the module docstring; None if absent.

    A path given explicitly (data_path or $SIMVAE_DSPRITES_PATH) must hold the file:
    silently ignoring a mistyped path would train on other data."""
    for given, origin in ((data_path, "data_path"), (os.environ.get(DATA_PATH_ENV), f"${DATA_PATH_ENV}")):
        if given:
            path = pathlib.Path(given).expanduser()
            found = _official_in(path)
            if found is None:
                raise DSpritesDataError(
                    f"{origin}={str(path)!r}: no such file, and not a folder holding "
                    f"{' or '.join(OFFICIAL_FILENAMES)}; fix the path, or unset it to use the procedural renderer")
            return found
    found = _official_in(tfds_data_dir() / "downloads" / "manual")
    if found is not None:
        return found
    try:
        return _tfds_download_cache_file()
    except (DSpritesDataError, ImportError, OSError):
        return None


def download_official_file(timeout_s: float = 5.0) -> pathlib.Path:
    """Fetches the official HDF5 through TFDS's download manager (checksum-verified) into the
    TFDS download cache. Fails fast, with the manual fix, when the host is unreachable."""
    url, size, checksum = _tfds_dsprites_download_info()
    host = url.split("/")[2]
    try:  # TFDS retries unreachable hosts for minutes; find out in seconds first
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError as e:
        raise DSpritesDataError(
            f"cannot download dSprites: {host} is unreachable ({e}); copy {OFFICIAL_FILENAMES[0]} to "
            f"{tfds_data_dir() / 'downloads' / 'manual'} by hand, or use source='procedural'") from e
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import checksums

    manager = tfds.download.DownloadManager(
        download_dir=tfds_data_dir() / "downloads",
        url_infos={url: checksums.UrlInfo(size=size, checksum=checksum, filename=OFFICIAL_FILENAMES[0])})
    return pathlib.Path(manager.download(url))


@dataclasses.dataclass(frozen=True)
class OfficialGrid:
    """The validated layout of an official file: which grid point each row holds."""

    path: pathlib.Path
    row_of_grid_point: np.ndarray  # int32 [NUM_GRID_IMAGES], -1 where the file lacks the point
    available: tuple[np.ndarray, ...]  # per factor, the class indices the file holds
    num_images: int


def _error(path: pathlib.Path, problem: str, fix: str = "") -> DSpritesDataError:
    return DSpritesDataError(f"dSprites file {path}: {problem}; {fix or _OFFICIAL_FIX}")


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURE = b"PK\x03\x04"


def _file_format(path: pathlib.Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise _error(path, f"cannot be read ({e.strerror})") from e
    if head.startswith(_HDF5_SIGNATURE):
        return "hdf5"
    if head.startswith(_ZIP_SIGNATURE):
        return "npz"
    raise _error(path, f"is neither HDF5 nor NPZ (it starts with {head!r})")


def _read_npy_header(member, path: pathlib.Path, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy stream inside an npz, leaving the stream at the data."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise _error(path, f"array {name!r} uses .npy format {version}; re-save it with numpy.savez")
    if fortran_order:
        raise _error(path, f"array {name!r} is Fortran-ordered; re-save it C-ordered (numpy.savez)")
    return tuple(shape), dtype


def _read_latent_arrays(path: pathlib.Path, kind: str) -> tuple[tuple[int, ...], np.dtype, np.ndarray, np.ndarray]:
    """(image shape, image dtype, latents classes [N, 6], latents values [N, 6]) of a file."""
    try:
        if kind == "hdf5":
            import h5py

            with h5py.File(path, "r") as f:
                for key in ("imgs", "latents/classes", "latents/values"):
                    if key not in f or not isinstance(f[key], h5py.Dataset):
                        raise _error(path, f"has no dataset {key!r} (official layout: imgs, latents/classes, "
                                           "latents/values)")
                images = f["imgs"]
                return images.shape, images.dtype, f["latents/classes"][()], f["latents/values"][()]
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            for key in ("imgs", "latents_classes", "latents_values"):
                if key + ".npy" not in names:
                    raise _error(path, f"has no array {key!r} (official layout: imgs, latents_classes, "
                                       "latents_values)")
            with archive.open("imgs.npy") as member:
                shape, dtype = _read_npy_header(member, path, "imgs")
        with np.load(path, allow_pickle=False) as npz:
            return shape, dtype, npz["latents_classes"], npz["latents_values"]
    except DSpritesDataError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise _error(path, f"cannot be read, truncated or corrupt? ({type(e).__name__}: {e})",
                     "download it again") from e


def inspect_official_file(path: str | os.PathLike) -> OfficialGrid:
    """Validates an official file's layout (not yet its pixels) and maps grid points to rows.

    The file may hold any Cartesian sub-grid of the official grid, in any row order; the
    official file holds all of it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise _error(path, "does not exist")
    kind = _file_format(path)
    shape, dtype, classes, values = _read_latent_arrays(path, kind)
    if len(shape) != 3 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise _error(path, f"imgs has shape {shape}; expected [N, {IMAGE_SIZE}, {IMAGE_SIZE}]")
    if dtype not in (np.dtype(np.uint8), np.dtype(bool)):
        raise _error(path, f"imgs has dtype {dtype}; expected uint8 (0/1 pixels)")
    n = shape[0]
    columns = 1 + len(FACTOR_NAMES)  # colour, then the five factors
    for name, array in (("latents classes", classes), ("latents values", values)):
        if array.shape != (n, columns):
            raise _error(path, f"{name} have shape {array.shape}; expected [{n}, {columns}] to match {n} images")
    if n == 0:
        raise _error(path, "holds no images")
    if not np.issubdtype(classes.dtype, np.integer):
        raise _error(path, f"latents classes have dtype {classes.dtype}; expected integers")
    if not np.issubdtype(values.dtype, np.floating):
        raise _error(path, f"latents values have dtype {values.dtype}; expected floats")
    classes = classes.astype(np.int64)
    if np.any(classes[:, 0] != 0) or not np.allclose(values[:, 0], 1.0):
        raise _error(path, "colour is not constant white (class 0, value 1): not the dSprites layout")
    classes, values = classes[:, 1:], values[:, 1:]
    for k, name in enumerate(FACTOR_NAMES):
        low, high = classes[:, k].min(), classes[:, k].max()
        if low < 0 or high >= GRID_SIZES[k]:
            raise _error(path, f"{name} classes span [{low}, {high}]; the dSprites grid has 0..{GRID_SIZES[k] - 1}")
        expected = GRID_VALUES[k][classes[:, k]]
        wrong = ~np.isclose(values[:, k], expected, rtol=0.0, atol=1e-6)
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise _error(path, f"{name} value {values[row, k]:.6g} in row {row} is not the grid value "
                               f"{expected[row]:.6g} of its class {classes[row, k]}: not the dSprites grid")
    flat = grid_index(classes)
    if np.bincount(flat, minlength=NUM_GRID_IMAGES).max() > 1:
        raise _error(path, "holds some grid points twice")
    available = tuple(np.unique(classes[:, k]) for k in range(len(FACTOR_NAMES)))
    if math.prod(len(a) for a in available) != n:
        raise _error(path, f"its {n} images are not a complete grid over the factor values they use")
    row_of_grid_point = np.full(NUM_GRID_IMAGES, -1, dtype=np.int32)
    row_of_grid_point[flat] = np.arange(n, dtype=np.int32)
    return OfficialGrid(path, row_of_grid_point, available, n)


def load_packed_images(grid: OfficialGrid, rows_per_read: int = 16384) -> np.ndarray:
    """All images of an official file, bit-packed: uint8 [N, 512] (1/8 of the bytes).

    Reads in blocks, so memory peaks at the packed array plus one block, never the 2.8 GB
    of the unpacked images."""
    path = grid.path
    packed = np.empty((grid.num_images, IMAGE_SIZE * IMAGE_SIZE // 8), dtype=np.uint8)

    def pack(start: int, block: np.ndarray) -> None:
        if block.size and block.max() > 1:
            raise _error(path, f"imgs has pixel values up to {block.max()} near row {start}; expected 0/1")
        packed[start:start + len(block)] = np.packbits(block.reshape(len(block), -1), axis=1)

    try:
        if _file_format(path) == "hdf5":
            import h5py

            with h5py.File(path, "r") as f:
                images = f["imgs"]
                for start in range(0, grid.num_images, rows_per_read):
                    pack(start, images[start:start + rows_per_read].astype(np.uint8, copy=False))
        else:
            with zipfile.ZipFile(path) as archive, archive.open("imgs.npy") as member:
                _read_npy_header(member, path, "imgs")
                row_bytes = IMAGE_SIZE * IMAGE_SIZE
                for start in range(0, grid.num_images, rows_per_read):
                    count = min(rows_per_read, grid.num_images - start)
                    data = member.read(count * row_bytes)
                    if len(data) != count * row_bytes:
                        raise EOFError(f"imgs ends after {start + len(data) // row_bytes} of {grid.num_images} images")
                    pack(start, np.frombuffer(data, dtype=np.uint8).reshape(count, IMAGE_SIZE, IMAGE_SIZE))
    except DSpritesDataError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise _error(path, f"imgs cannot be read, truncated or corrupt? ({type(e).__name__}: {e})",
                     "download it again") from e
    packed.setflags(write=False)
    return packed


# Validated layouts and loaded images, shared by every simulator in the process: data.py
# sends worker processes a freshly pickled simulator with every task, which must not
# re-read the file each time. Keyed by (path, size, mtime), so an edited file is re-read.
_official_grids: dict[tuple, OfficialGrid] = {}
_official_images: dict[tuple, np.ndarray] = {}
_official_lock = threading.Lock()


def _file_identity(path: pathlib.Path) -> tuple:
    try:
        stat = path.stat()
    except OSError as e:
        raise _error(path, f"cannot be read ({e.strerror})") from e
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def official_grid(path: pathlib.Path) -> OfficialGrid:
    """`inspect_official_file`, once per process and file version."""
    key = _file_identity(path)
    with _official_lock:
        if key not in _official_grids:
            _official_grids[key] = inspect_official_file(path)
        return _official_grids[key]


def official_packed_images(path: pathlib.Path) -> np.ndarray:
    """`load_packed_images`, once per process and file version."""
    grid = official_grid(path)
    key = _file_identity(path)
    with _official_lock:
        if key not in _official_images:
            _official_images[key] = load_packed_images(grid)
        return _official_images[key]


# -- the simulator ------------------------------------------------------------------------------
class DSpritesSimulator(Simulator):
    """dSprites: (shape, scale, orientation, x, y) -> the 64x64 binary image of the nearest
    grid point, from the official file or the procedural renderer (module docstring).

    Instances hold only small values (the file's path, the factor values it holds); images
    and lookup tables live in per-process caches, so pickling stays cheap."""

    name = "dsprites"
    # MIG over scale, orientation, x, y: shape is treated as noise (Chen et al. 2018, paper 4.3).
    mig_factors = (1, 2, 3, 4)
    latents = (
        Latent("shape", 1.0, 3.0, unit="1 square, 2 ellipse, 3 heart", values=(1.0, 2.0, 3.0),
               labels=("square", "ellipse", "heart")),
        Latent("scale", 0.5, 1.0, unit="of the largest sprite"),
        Latent("orientation", 0.0, 2.0 * math.pi, unit="rad"),
        Latent("x_position", 0.0, 1.0, unit="of the position range"),
        Latent("y_position", 0.0, 1.0, unit="of the position range"),
    )
    output_spec = OutputSpec(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), kind="binary_image")

    def __init__(self, source: str = "auto", data_path: str | None = None, download: bool = False):
        if source not in SOURCES:
            raise ValueError(f"dsprites: source={source!r} unknown; use one of {SOURCES}")
        if source == "procedural" and data_path:
            raise ValueError(f"dsprites: data_path={data_path!r} is unused with source='procedural'; "
                             "drop it or use source='official'")
        self.requested_source = source
        self.data_path = data_path
        self.download = bool(download)
        self.official_path: pathlib.Path | None = None
        self.available_classes: tuple[np.ndarray, ...] = tuple(np.arange(size) for size in GRID_SIZES)
        if source != "procedural":
            path = find_official_file(data_path)
            if path is None and self.download:
                path = download_official_file()
            if path is not None:
                grid = official_grid(path)
                self.official_path = grid.path
                self.available_classes = grid.available
                if grid.num_images != NUM_GRID_IMAGES:
                    log.warning("dsprites: %s holds %d of the %d grid images; latents snap to the values "
                                "it holds", path, grid.num_images, NUM_GRID_IMAGES)
            elif source == "official":
                raise DSpritesDataError(
                    f"source='official' but no dSprites file was found (searched data_path, ${DATA_PATH_ENV}, "
                    f"{tfds_data_dir() / 'downloads' / 'manual'} and the TFDS download cache); {_OFFICIAL_FIX}")
        self.source = "procedural" if self.official_path is None else f"official:{self.official_path}"
        log.info("dsprites: images from %s", self.source)

    def sample_latents(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Grid points drawn uniformly (each factor's class independently)."""
        classes = np.stack([rng.choice(available, size=n) for available in self.available_classes], axis=1)
        return grid_values(classes)

    def simulate(self, z: np.ndarray) -> np.ndarray:
        if self.official_path is None:
            images = render_grid_images(snap_to_grid(z))
        else:
            classes = snap_to_grid(z, self.available_classes)
            rows = official_grid(self.official_path).row_of_grid_point[grid_index(classes)]
            images = np.unpackbits(official_packed_images(self.official_path)[rows], axis=1)
        return images.reshape((len(images),) + self.output_spec.shape).astype(np.float32)

    # -- invariance: the sprites' rotational symmetries -------------------------------------
    # A square looks the same every quarter turn and an ellipse every half turn, so their
    # orientation is only determined modulo 2 pi / order (the heart has none). Declaring it
    # makes the ground truth MIM(V, V-bar) and the invariance-aware scores honest, and lets
    # the stage-2 latent term ask for the nearest equivalent orientation.
    has_invariance = True

    def orbit(self, z: np.ndarray) -> np.ndarray:
        """[n, 5] latents -> [n, 4, 5]: orientation turned by k * 2 pi / order (k = 0..3,
        wrapped into [0, 2 pi)), identity first; repeats fill the orbits of order 2 and 1.
        Equivalent up to the grid: with 39 orientation steps per turn, a quarter turn is 9.75
        steps and a half turn 19.5, so the re-snapped image is the sprite turned a quarter or
        half step (2.3 or 4.6 degrees) further: about 3% of its pixels change."""
        z = np.asarray(z, dtype=np.float64)
        order = self.symmetry_order(z)
        turns = np.arange(4)[None, :] * (2.0 * np.pi / order[:, None])
        orbit = np.repeat(z[:, None, :], 4, axis=1)
        orbit[:, 1:, ORIENTATION_FACTOR] = np.remainder(z[:, None, ORIENTATION_FACTOR] + turns[:, 1:], 2.0 * np.pi)
        return orbit

    def canonicalize(self, z: np.ndarray) -> np.ndarray:
        """Orientation reduced to [0, 2 pi / order): the one value per class of equal images."""
        z = np.array(z, dtype=np.float64)
        z[:, ORIENTATION_FACTOR] = np.remainder(z[:, ORIENTATION_FACTOR], 2.0 * np.pi / self.symmetry_order(z))
        return z

    @staticmethod
    def symmetry_order(z: np.ndarray) -> np.ndarray:
        """Rotational symmetry order of each row's shape (nearest shape value): square 4, ellipse 2, heart 1."""
        shape = np.clip(np.rint(np.asarray(z, dtype=np.float64)[:, 0]), 1, 3).astype(np.int64)
        return np.array([4, 2, 1])[shape - 1]

    def describe(self) -> dict:
        description = super().describe()
        description["data_source"] = "procedural" if self.official_path is None else "official"
        return description
