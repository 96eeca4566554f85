"""dSprites simulator: the grid, the procedural renderer, the official-file reader, the TFDS
builder, and that nothing touches the network."""

from __future__ import annotations

import math
import os
import pathlib
import pickle
import tempfile

import h5py
import numpy as np
import pytest

from simvae_tf import simulators
from simvae_tf.simulators import dsprites
from simvae_tf.simulators.dsprites import DSpritesDataError, DSpritesSimulator

# The official file's `latents_bases` (DeepMind's README): row = classes . bases, colour first.
OFFICIAL_LATENTS_BASES = np.array([737280, 245760, 40960, 1024, 32, 1])
# A Cartesian sub-grid small enough to write in milliseconds.
SUBGRID = ((0, 1, 2), (0, 5), (0, 13), (0, 31), (0, 7, 31))


@pytest.fixture(autouse=True)
def isolated_search_paths(tmp_path_factory, monkeypatch):
    """No test sees the user's dSprites files: empty TFDS dir, no $SIMVAE_DSPRITES_PATH."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path_factory.mktemp("tfds_home")))
    monkeypatch.delenv(dsprites.DATA_PATH_ENV, raising=False)


def subgrid_classes(subgrid=SUBGRID) -> np.ndarray:
    grids = np.meshgrid(*[np.asarray(s) for s in subgrid], indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


def official_arrays(classes: np.ndarray, seed: int = 0):
    """(imgs, latents classes, latents values) in the official layout, with random pixels
    so that every grid point's image is distinguishable."""
    images = np.random.default_rng(seed).integers(0, 2, size=(len(classes), 64, 64), dtype=np.uint8)
    full_classes = np.concatenate([np.zeros((len(classes), 1), np.int64), classes], axis=1)
    values = np.concatenate([np.ones((len(classes), 1)), dsprites.grid_values(classes)], axis=1)
    return images, full_classes, values


def write_hdf5(path, images, classes, values) -> pathlib.Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("imgs", data=images, compression="gzip")
        f.create_dataset("latents/classes", data=classes)
        f.create_dataset("latents/values", data=values)
    return pathlib.Path(path)


def write_npz(path, images, classes, values, **extra) -> pathlib.Path:
    return write_npz_arrays(path, imgs=images, latents_classes=classes, latents_values=values, **extra)


def write_npz_arrays(path, **arrays) -> pathlib.Path:
    with open(path, "wb") as f:  # a file object: numpy would append .npz to a name
        np.savez_compressed(f, **arrays)
    return pathlib.Path(path)


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    """(row, column) of the on pixels of a [H, W] or [H, W, 1] image."""
    rows, cols = np.nonzero(np.squeeze(image))
    return np.array([rows.mean(), cols.mean()])


# -- the grid -----------------------------------------------------------------------------------
def test_grid_has_the_official_size_values_and_row_order():
    assert dsprites.GRID_SIZES == (3, 6, 40, 32, 32)
    assert dsprites.NUM_GRID_IMAGES == 737_280
    # Official latents_possible_values (metadata of DeepMind's file), spot-checked.
    np.testing.assert_allclose(dsprites.GRID_VALUES[2][[1, 39]], [0.16110732, 6.28318531], atol=1e-8)
    np.testing.assert_allclose(dsprites.GRID_VALUES[3][1], 0.03225806, atol=1e-8)
    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, size, 500) for size in dsprites.GRID_SIZES], axis=1)
    np.testing.assert_array_equal(dsprites.grid_index(classes), classes @ OFFICIAL_LATENTS_BASES[1:])


def test_snap_to_grid_picks_the_nearest_value_and_wraps_orientation():
    step = 2 * math.pi / 39
    z = np.array([
        [1.0, 0.5, 0.0, 0.0, 0.0],
        [2.4, 0.74, 3 * step + 0.1 * step, 0.49, 1.0],
        [3.6, 1.7, -0.2 * step, -0.3, 1.4],  # beyond every range: the nearest end
        [1.0, 0.5, 38.4 * step, 0.0, 0.0],
        [1.0, 0.5, 2 * math.pi + 0.6 * step, 0.0, 0.0],
        [1.0, 0.5, 2 * math.pi, 0.0, 0.0],
    ])
    expected = np.array([
        [0, 0, 0, 0, 0],
        [1, 2, 3, 15, 31],
        [2, 5, 0, 0, 31],  # -0.2 step: as near 0 as 2 pi when turning; 0 without wrapping
        [0, 0, 38, 0, 0],
        [0, 0, 1, 0, 0],  # one full turn plus 0.6 step -> class 1
        [0, 0, 39, 0, 0],  # every grid value snaps to itself
    ])
    np.testing.assert_array_equal(dsprites.snap_to_grid(z), expected)
    classes = np.stack(np.unravel_index(np.arange(0, dsprites.NUM_GRID_IMAGES, 997), dsprites.GRID_SIZES), 1)
    np.testing.assert_array_equal(dsprites.snap_to_grid(dsprites.grid_values(classes)), classes)


@pytest.mark.parametrize("z, message", [
    (np.zeros((4, 3)), r"shape \(4, 3\)"),
    (np.array([[1.0, 0.5, np.nan, 0.0, 0.0]]), "NaN"),
])
def test_snap_to_grid_rejects_bad_latents(z, message):
    with pytest.raises(ValueError, match=message):
        dsprites.snap_to_grid(z)


def test_sample_latents_draws_grid_points_uniformly_and_reproducibly():
    simulator = DSpritesSimulator(source="procedural")
    z = simulator.sample_latents(np.random.default_rng(1), 48_000)
    np.testing.assert_array_equal(z, simulator.sample_latents(np.random.default_rng(1), 48_000))
    classes = dsprites.snap_to_grid(z)
    np.testing.assert_array_equal(dsprites.grid_values(classes), z)  # exactly on the grid
    for k, size in enumerate(dsprites.GRID_SIZES):
        counts = np.bincount(classes[:, k], minlength=size)
        expected = len(z) / size
        # every class drawn, none more than 6 binomial standard deviations off
        assert np.all(np.abs(counts - expected) < 6 * math.sqrt(expected)), (dsprites.FACTOR_NAMES[k], counts)


# -- the procedural simulator -----------------------------------------------------------------
def test_simulate_is_deterministic_binary_and_survives_pickling():
    simulator = simulators.make("dsprites", {"source": "procedural"})
    assert simulator.source == "procedural"
    assert simulator.describe()["data_source"] == "procedural"
    z = simulator.sample_latents(np.random.default_rng(2), 64)
    x = simulator.simulate(z)
    assert x.shape == (64, 64, 64, 1) and x.dtype == np.float32
    assert set(np.unique(x)) == {0.0, 1.0}
    np.testing.assert_array_equal(x, simulator.simulate(z))
    clone = pickle.loads(pickle.dumps(simulator))
    np.testing.assert_array_equal(clone.simulate(z), x)
    assert len(pickle.dumps(simulator)) < 10_000  # no images travel to worker processes
    # Off-grid latents give the image of the nearest grid point.
    np.testing.assert_array_equal(simulator.simulate(z + 0.004), x)


def test_bad_options_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"source='bogus' unknown; use one of"):
        DSpritesSimulator(source="bogus")
    with pytest.raises(ValueError, match="unused with source='procedural'"):
        DSpritesSimulator(source="procedural", data_path="/somewhere.hdf5")


def test_procedural_sprites_stay_whole_inside_the_frame():
    table = dsprites.sprite_patch_table()
    border = np.concatenate([table[..., 0, :], table[..., -1, :], table[..., :, 0], table[..., :, -1]], -1)
    assert not border.any(), "a sprite touches its patch edge: it would be clipped at extreme positions"
    assert table.reshape(720, -1).sum(axis=1).min() >= 20  # even the smallest sprite is visible


def test_sprites_are_centred_on_their_position():
    size = dsprites.SPRITE_PATCH_SIZE
    centre = size // 2
    for sprite in dsprites.sprite_patch_table()[:, :, 0].reshape(-1, size, size):
        rows, cols = np.nonzero(sprite)
        # the bounding box's middle is the centre pixel (half a pixel for even sizes)
        assert abs((rows.min() + rows.max()) / 2 - centre) <= 0.5
        assert abs((cols.min() + cols.max()) / 2 - centre) <= 0.5


def test_x_and_y_position_move_the_sprite_one_pixel_per_step():
    for shape in range(3):
        classes = np.array([[shape, 3, 7, x, y] for x, y in ((0, 0), (1, 0), (31, 0), (0, 1), (0, 31))])
        images = dsprites.render_grid_images(classes)
        com = np.array([centre_of_mass(image) for image in images])
        np.testing.assert_allclose(com[1] - com[0], [0, 1], atol=1e-9)  # x: one column right
        np.testing.assert_allclose(com[2] - com[0], [0, 31], atol=1e-9)
        np.testing.assert_allclose(com[3] - com[0], [1, 0], atol=1e-9)  # y: one row down
        np.testing.assert_allclose(com[4] - com[0], [31, 0], atol=1e-9)
        assert len({int(image.sum()) for image in images}) == 1  # translation only
    # The position range is centred on the frame: a square's centre is the frame centre
    # halfway along it (x, y between class 15 and 16).
    square = dsprites.render_grid_images(np.array([[0, 5, 0, 15, 15], [0, 5, 0, 16, 16]]))
    np.testing.assert_allclose(centre_of_mass(square[0]) + centre_of_mass(square[1]), [63, 63])


def test_scale_grows_the_area_of_every_shape():
    areas = dsprites.sprite_patch_table().sum(axis=(3, 4)).astype(float)  # [shape, scale, orientation]
    assert np.all(np.diff(areas, axis=1) > 0)
    # Linear size: area ~ scale^2 (within pixelation), 0.5 -> 1 gives ~4x.
    ratio = areas[:, 5].mean(axis=1) / areas[:, 0].mean(axis=1)
    assert np.all((ratio > 3.3) & (ratio < 4.7)), ratio


def test_shapes_differ_and_the_heart_is_an_upright_heart():
    sprites = dsprites.render_sprites([0, 1, 2], [1.0] * 3, [0.0] * 3)
    square, ellipse, heart = sprites
    assert square.sum() > heart.sum() > ellipse.sum()
    # Ellipse: twice as wide as tall at orientation 0.
    rows, cols = np.nonzero(ellipse)
    assert 1.8 < (np.ptp(cols) + 1) / (np.ptp(rows) + 1) < 2.2
    # Heart: mirror symmetric, lobes up (more mass above its centre), notch at the top
    # middle, a point at the bottom.
    np.testing.assert_array_equal(heart, heart[:, ::-1])
    rows, cols = np.nonzero(heart)
    centre = dsprites.SPRITE_PATCH_SIZE // 2
    assert centre_of_mass(heart)[0] < centre - 0.5
    top_row_cols = cols[rows == rows.min()]
    assert (top_row_cols < centre).any() and (top_row_cols > centre).any()  # two lobes...
    assert centre not in top_row_cols  # ...with the notch between them
    assert heart[rows.max()].sum() <= 3  # the point


def test_orientation_turns_sprites_counter_clockwise_and_respects_symmetry():
    quarter, eighth = math.pi / 2, math.pi / 4
    square_0, square_quarter, square_eighth = dsprites.render_sprites([0] * 3, [1.0] * 3, [0.0, quarter, eighth])
    assert np.mean(square_0 != square_quarter) < 0.01  # a square turned a quarter: nearly unchanged
    assert np.mean(square_0 != square_eighth) > 0.05  # but not an eighth turn
    ellipse_0, ellipse_quarter = dsprites.render_sprites([1, 1], [1.0, 1.0], [0.0, quarter])
    assert np.mean(ellipse_0.T != ellipse_quarter) < 0.01  # long axis becomes vertical
    heart_0, heart_quarter, heart_half = dsprites.render_sprites([2] * 3, [1.0] * 3, [0.0, quarter, math.pi])
    centre = dsprites.SPRITE_PATCH_SIZE // 2
    assert centre_of_mass(heart_quarter)[1] < centre - 0.5  # counter-clockwise: lobes point left
    assert np.mean(heart_0[::-1] != heart_half) < 0.01  # half a turn: upside down
    # Grid orientations 0 and 39 are both 0 mod 2 pi, as in the official grid.
    table = dsprites.sprite_patch_table()
    np.testing.assert_array_equal(table[:, :, 0], table[:, :, 39])
    # Every grid orientation of the (asymmetric) heart is a different image.
    hearts = table[2, 5, :39].reshape(39, -1)
    assert len({h.tobytes() for h in hearts}) == 39


def test_orbit_turns_squares_by_quarters_ellipses_by_halves_and_leaves_hearts():
    sim = DSpritesSimulator(source="procedural")
    z = sim.sample_latents(np.random.default_rng(3), 600)
    orbit = sim.orbit(z)
    assert orbit.shape == (600, 4, 5)
    np.testing.assert_array_equal(orbit[:, 0], z)  # identity first
    np.testing.assert_array_equal(orbit[:, :, [0, 1, 3, 4]], np.repeat(z[:, None, [0, 1, 3, 4]], 4, axis=1))
    turned = np.remainder(orbit[:, :, 2] - z[:, None, 2], 2 * math.pi)
    expected = {1: [0, 0.5, 1, 1.5], 2: [0, 1, 0, 1], 3: [0, 0, 0, 0]}  # in units of pi
    for shape, turns in expected.items():
        rows = z[:, 0] == shape
        np.testing.assert_allclose(np.minimum(turned[rows], 2 * math.pi - turned[rows]) % (2 * math.pi),
                                   np.minimum(np.array(turns) * math.pi, 2 * math.pi - np.array(turns) * math.pi)
                                   [None].repeat(rows.sum(), 0), atol=1e-9)
    assert np.all((orbit[:, :, 2] >= 0) & (orbit[:, :, 2] <= 2 * math.pi))
    # Equivalent up to the grid's half step: an equivalent turn keeps the image, an eighth turn does not.
    x = sim.simulate(z)
    for k in range(1, 4):
        assert np.mean(sim.simulate(orbit[:, k]) != x) < 0.08 * np.mean(x)  # measured: 3% of the ink
    eighth = z.copy()
    eighth[:, 2] = np.remainder(z[:, 2] + math.pi / 4, 2 * math.pi)
    assert np.mean(sim.simulate(eighth) != x) > 0.25 * np.mean(x)  # measured: 40%


def test_canonical_orientation_is_one_value_per_orbit():
    sim = DSpritesSimulator(source="procedural")
    z = sim.sample_latents(np.random.default_rng(4), 300)
    canonical = sim.canonicalize(z)
    order = np.array([4, 2, 1])[z[:, 0].astype(int) - 1]
    assert np.all(canonical[:, 2] < 2 * math.pi / order + 1e-12)
    for k in range(4):
        np.testing.assert_allclose(sim.canonicalize(sim.orbit(z)[:, k]), canonical, atol=1e-9)
    v_bar = sim.apply_random_invariance(z, np.random.default_rng(0))
    np.testing.assert_allclose(sim.canonicalize(v_bar), canonical, atol=1e-9)


# -- the official file --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["hdf5", "npz"])
def test_official_file_images_are_served_by_grid_point(tmp_path, kind, network_calls):
    classes = subgrid_classes()
    images, full_classes, values = official_arrays(classes)
    # Rows shuffled: the reader must map grid points through latents/classes, not row order.
    order = np.random.default_rng(3).permutation(len(classes))
    path = tmp_path / f"official.{kind}"
    writer = write_hdf5 if kind == "hdf5" else write_npz
    # The real npz carries a pickled 'metadata' entry that must be left alone.
    extra = {"metadata": np.array([{"title": "dSprites"}], dtype=object)} if kind == "npz" else {}
    writer(path, images[order], full_classes[order], values[order], **extra)

    simulator = DSpritesSimulator(source="official", data_path=str(path))
    assert simulator.source == f"official:{path}"
    assert simulator.describe()["data_source"] == "official"
    x = simulator.simulate(dsprites.grid_values(classes))
    np.testing.assert_array_equal(x[..., 0], images.astype(np.float32))
    # Values the file lacks snap to the nearest value it holds (scale 0.8 -> 1.0).
    z = dsprites.grid_values(classes[:1]).copy()
    z[0, 1] = 0.8
    row_with_scale_5 = np.flatnonzero((classes == [classes[0, 0], 5, *classes[0, 2:]]).all(axis=1))[0]
    np.testing.assert_array_equal(simulator.simulate(z)[0, ..., 0], images[row_with_scale_5])
    sampled = dsprites.snap_to_grid(simulator.sample_latents(np.random.default_rng(4), 500))
    for k, allowed in enumerate(SUBGRID):
        assert set(np.unique(sampled[:, k])) == set(allowed)
    clone = pickle.loads(pickle.dumps(simulator))
    assert len(pickle.dumps(simulator)) < 10_000
    np.testing.assert_array_equal(clone.simulate(dsprites.grid_values(classes)), x)
    assert network_calls == []


def test_official_images_are_read_once_per_process_and_work_in_spawned_workers(tmp_path, monkeypatch):
    import concurrent.futures
    import multiprocessing

    classes = subgrid_classes()
    path = write_hdf5(tmp_path / "official.hdf5", *official_arrays(classes))
    reads = []
    real_load = dsprites.load_packed_images
    monkeypatch.setattr(dsprites, "load_packed_images", lambda grid: reads.append(grid.path) or real_load(grid))
    simulator = DSpritesSimulator(data_path=str(path))
    assert simulator.thread_safe
    z = dsprites.grid_values(classes)
    with concurrent.futures.ThreadPoolExecutor(4) as threads:  # tf.data's parallel map threads
        outputs = list(threads.map(simulator.simulate, [z] * 8))
    x = outputs[0]
    for output in outputs:
        np.testing.assert_array_equal(output, x)
    for _ in range(3):  # what data.py does: a freshly unpickled simulator per task
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(simulator)).simulate(z), x)
    assert reads == [path]
    os.utime(path, ns=(1, 1))  # a changed file is read again
    simulator.simulate(z)
    assert reads == [path, path]
    # data.py's worker processes start with "spawn" (nothing inherited from this process).
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        np.testing.assert_array_equal(pool.submit(simulator.simulate, z).result(timeout=60), x)


def test_official_file_is_found_in_the_documented_order(tmp_path, monkeypatch, network_calls):
    images, full_classes, values = official_arrays(subgrid_classes())
    name = dsprites.OFFICIAL_FILENAMES[0]
    explicit = write_hdf5(tmp_path / "explicit.hdf5", images, full_classes, values)
    from_env = tmp_path / "env"
    from_env.mkdir()
    write_hdf5(from_env / name, images, full_classes, values)
    tfds_home = pathlib.Path(os.environ["TFDS_DATA_DIR"])

    assert DSpritesSimulator().source == "procedural"  # auto, nothing anywhere
    with pytest.raises(DSpritesDataError, match="no dSprites file was found"):
        DSpritesSimulator(source="official")

    # 4. the TFDS download cache (where tfds.load('dsprites') leaves the file)
    from tensorflow_datasets.core.download import resource

    url, _, checksum = dsprites._tfds_dsprites_download_info()
    cached = tfds_home / "downloads" / resource.get_dl_fname(url, checksum)
    cached.parent.mkdir(parents=True)
    write_hdf5(cached, images, full_classes, values)
    assert DSpritesSimulator().source == f"official:{cached}"
    # 3. the TFDS manual dir
    manual = tfds_home / "downloads" / "manual"
    manual.mkdir()
    npz = write_npz(manual / dsprites.OFFICIAL_FILENAMES[1], images, full_classes, values)
    assert DSpritesSimulator().source == f"official:{npz}"
    write_hdf5(manual / name, images, full_classes, values)
    assert DSpritesSimulator().source == f"official:{manual / name}"  # .hdf5 before .npz
    # 2. $SIMVAE_DSPRITES_PATH (a folder here)
    monkeypatch.setenv(dsprites.DATA_PATH_ENV, str(from_env))
    assert DSpritesSimulator().source == f"official:{from_env / name}"
    # 1. data_path
    assert DSpritesSimulator(data_path=str(explicit)).source == f"official:{explicit}"
    # procedural on request, whatever exists
    assert DSpritesSimulator(source="procedural").source == "procedural"
    # An explicit path that holds nothing is an error, not a silent fallback.
    monkeypatch.setenv(dsprites.DATA_PATH_ENV, str(tmp_path / "typo"))
    with pytest.raises(DSpritesDataError, match=r"\$SIMVAE_DSPRITES_PATH=.*typo.*no such file"):
        DSpritesSimulator()
    assert network_calls == []


def _truncate(path: pathlib.Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_FILES = {
    # name: (how to make it from the good arrays, expected message)
    "not hdf5 or npz": (lambda p, i, c, v: p.write_text("imgs,latents\n1,2\n"), "neither HDF5 nor NPZ"),
    "truncated hdf5": (lambda p, i, c, v: (write_hdf5(p, i, c, v), _truncate(p)), "truncated or corrupt"),
    "truncated npz": (lambda p, i, c, v: (write_npz(p, i, c, v), _truncate(p)), "truncated or corrupt"),
    "images not 64x64": (lambda p, i, c, v: write_hdf5(p, i[:, :32, :32], c, v), r"shape \(72, 32, 32\)"),
    "no latents": (lambda p, i, c, v: write_npz_arrays(p, imgs=i), "has no array 'latents_classes'"),
    "fewer labels than images": (lambda p, i, c, v: write_hdf5(p, i, c[:-1], v[:-1]), r"expected \[72, 6\]"),
    "values off the grid": (lambda p, i, c, v: write_npz(p, i, c, v + np.array([0, 0, 0, 0.01, 0, 0])),
                            "orientation value .* is not the grid value"),
    "a grid point twice": (lambda p, i, c, v: write_hdf5(p, i, np.concatenate([c[:-1], c[:1]]),
                                                         np.concatenate([v[:-1], v[:1]])), "twice"),
    "not a complete sub-grid": (lambda p, i, c, v: write_hdf5(p, i[:-1], c[:-1], v[:-1]), "not a complete grid"),
    "float images": (lambda p, i, c, v: write_npz(p, i.astype(np.float32), c, v), "dtype float32"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_official_files_get_a_one_line_error_naming_file_and_fix(tmp_path, case):
    images, full_classes, values = official_arrays(subgrid_classes())
    path = tmp_path / f"bad-{case.replace(' ', '_')}.dat"
    make, message = BAD_FILES[case]
    make(path, images, full_classes, values)
    with pytest.raises(DSpritesDataError, match=message) as error:
        DSpritesSimulator(data_path=str(path))
    text = str(error.value)
    assert "\n" not in text and str(path) in text
    assert "source='procedural'" in text or "download it again" in text


def test_missing_file_and_non_binary_pixels_are_reported(tmp_path):
    with pytest.raises(DSpritesDataError, match="does not exist"):
        dsprites.inspect_official_file(tmp_path / "missing.hdf5")
    with pytest.raises(DSpritesDataError, match="data_path=.*missing.hdf5.*no such file"):
        DSpritesSimulator(data_path=str(tmp_path / "missing.hdf5"))
    classes = subgrid_classes()
    images, full_classes, values = official_arrays(classes)
    images[5, 3, 3] = 255  # pixels are checked when loaded, on first use
    path = write_hdf5(tmp_path / "grey.hdf5", images, full_classes, values)
    simulator = DSpritesSimulator(data_path=str(path))
    with pytest.raises(DSpritesDataError, match="pixel values up to 255"):
        simulator.simulate(dsprites.grid_values(classes[:1]))


def test_pickled_objects_in_an_npz_are_refused_not_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # runs only if someone unpickles it

    images, full_classes, values = official_arrays(subgrid_classes())
    trapped = np.empty(full_classes.shape, dtype=object)
    trapped[...] = Trap()
    path = write_npz(tmp_path / "trap.npz", images, trapped, values)
    with pytest.raises(DSpritesDataError, match="trap.npz"):
        DSpritesSimulator(data_path=str(path))
    images_trapped = np.empty((len(images), 64, 64), dtype=object)
    images_trapped[...] = Trap()
    path = write_npz(tmp_path / "trap_images.npz", images_trapped, full_classes, values)
    with pytest.raises(DSpritesDataError, match="dtype object"):
        DSpritesSimulator(data_path=str(path))
    assert not marker.exists()


def test_download_fails_fast_offline(network_calls):
    import time

    start = time.monotonic()
    with pytest.raises(DSpritesDataError, match="unreachable.*downloads/manual.*source='procedural'"):
        DSpritesSimulator(source="official", download=True)
    assert time.monotonic() - start < 10
    assert network_calls  # it did try, once, and gave up at once


# -- the TFDS builder ---------------------------------------------------------------------------
def test_tfds_builder_matches_tfds_dsprites_schema_and_the_renderer(tmp_path, network_calls, monkeypatch):
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.utils import gcs_utils

    from simvae_tf_datasets import dsprites_procedural

    monkeypatch.setattr(gcs_utils, "_is_gcs_disabled", False)  # prepare() must switch it off
    system_temp = tmp_path / "system_temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    builder = dsprites_procedural.prepare(tmp_path / "tfds", config="tiny")
    assert gcs_utils._is_gcs_disabled
    assert list(system_temp.iterdir()) == []  # TFDS's GCS metadata look-up leaves /tmp/tmp*tfds
    assert builder.info.splits["train"].num_examples == 384

    official = tfds.builder_cls("dsprites")(data_dir=str(tmp_path / "unused")).info.features
    ours = builder.info.features
    assert set(ours.keys()) == set(official.keys())
    for key in official.keys():
        assert (ours[key].shape, ours[key].dtype) == (official[key].shape, official[key].dtype), key
        if isinstance(official[key], tfds.features.ClassLabel):
            assert ours[key].num_classes == official[key].num_classes, key

    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert len(examples) == 384
    classes = np.array([[e[f"label_{name}"] for name in dsprites.FACTOR_NAMES] for e in examples])
    assert len({tuple(c) for c in classes}) == 384
    for k, name in enumerate(dsprites.FACTOR_NAMES):
        np.testing.assert_allclose([e[f"value_{name}"] for e in examples],
                                   dsprites.grid_values(classes)[:, k], rtol=1e-6)
    np.testing.assert_array_equal(np.stack([e["image"][..., 0] for e in examples]),
                                  dsprites.render_grid_images(classes))
    # Built once: a second prepare() reuses it.
    dsprites_procedural.prepare(tmp_path / "tfds", config="tiny")
    assert network_calls == []


def test_tfds_builder_config_rejects_bad_indices():
    from simvae_tf_datasets import dsprites_procedural

    with pytest.raises(ValueError, match=r"x_position indices \(0, 32\) must be distinct values in 0..31"):
        dsprites_procedural.DspritesProceduralConfig(
            name="bad", class_indices=((0,), (0,), (0,), (0, 32), (0,)))
