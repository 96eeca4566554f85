"""`python -m simvae_tf.invert`: preprocessing of real images and measured signals, the
posterior report, outputs, and the error policy.

Exports here hold *untrained* networks (exported in seconds): these tests check that
invert feeds the networks exactly what the model expects and reports exactly what they
say, not how good a model is; tests/test_examples.py trains one end to end.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from conftest import run_cli
from simvae_tf import data, defaults, export, invert, misfit, models
from simvae_tf.errors import UserError
from simvae_tf.invert import images, inputs, signals
from simvae_tf.invert.spec import ExportSpec
from simvae_tf.pair import TrainedPair
from simvae_tf.simulators import base
from simvae_tf.simulators.box import BoxSimulator

FREQUENCIES_HZ = np.geomspace(100.0, 1e5, 32)


class SeriesResonator(base.Simulator):
    """Mimics the RLC simulator's metadata: log-scale R, L, C; (n_freq, 2) gain/phase on a
    frequency grid; f0 and Q as derived quantities. Analytic, so it needs no ngspice."""

    name = "series_resonator"
    latents = (base.Latent("R", 10.0, 1000.0, unit="ohm", scale="log"),
               base.Latent("L", 1e-3, 1e-1, unit="H", scale="log"),
               base.Latent("C", 1e-8, 1e-6, unit="F", scale="log"))
    output_spec = base.OutputSpec(shape=(len(FREQUENCIES_HZ), 2), kind="signal")
    frequencies_hz = FREQUENCIES_HZ
    channels = ("gain_db", "phase_rad")

    def simulate(self, z):
        return resonator_response(z, self.frequencies_hz)

    def derived_quantities(self, z):
        r, l, c = np.asarray(z, np.float64).T
        return {"f0_hz": 1.0 / (2 * np.pi * np.sqrt(l * c)), "Q": np.sqrt(l / c) / r}


def resonator_response(z, frequencies_hz):
    """Voltage across R of a series RLC driven by a source: gain (dB) and phase (rad)."""
    r, l, c = (np.asarray(z, np.float64)[:, i:i + 1] for i in range(3))
    w = 2 * np.pi * np.asarray(frequencies_hz)[None]
    h = r / (r + 1j * (w * l - 1.0 / (w * c)))
    return np.stack([20 * np.log10(np.abs(h)), np.angle(h)], axis=-1).astype(np.float32)


TRUE_RLC = np.array([[100.0, 1e-2, 1e-7]])


def export_untrained(simulator, directory):
    config = defaults.base_config()
    config.model.width = 4
    generator, encoder = models.build_models(config, simulator)
    scaler = (data.OutputScaler.identity(simulator.output_spec.shape) if simulator.output_spec.is_image
              else data.OutputScaler.fit(simulator.simulate(simulator.sample_latents(np.random.default_rng(0), 256))))
    pair = TrainedPair(generator, encoder, simulator, scaler)
    reference = misfit.reference_discrepancies(simulator, pair, 0, 64)
    return export.export_pair(pair, str(directory), {"misspecification": misfit.to_metadata(reference, 0)})


@pytest.fixture(scope="module")
def box_export(tmp_path_factory):
    tf.keras.utils.set_random_seed(0)
    return export_untrained(BoxSimulator(), tmp_path_factory.mktemp("box") / "export")


@pytest.fixture(scope="module")
def resonator_export(tmp_path_factory):
    tf.keras.utils.set_random_seed(0)
    return export_untrained(SeriesResonator(), tmp_path_factory.mktemp("resonator") / "export")


def encoder_posterior(export_dir, x):
    encoder = tf.saved_model.load(os.path.join(export_dir, "encoder"))
    return {k: v.numpy() for k, v in encoder.serve(tf.constant(x, tf.float32)).items()}


def save_image(array, path, **kwargs):
    Image.fromarray(np.clip(np.round(np.asarray(array) * 255), 0, 255).astype(np.uint8)).save(path, **kwargs)


def box_photo(background=(235, 228, 205), box=(30, 30, 40), cross=(40, 60, 220), size=480, seed=0):
    """A box plot as a phone might see it: tinted paper, grey 'black', noise; latents
    w=0.3, h=0.2, x=0.4, y=0.1 of the frame."""
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    x0, x1, y0, y1 = 0.4 * size, 0.7 * size, 0.7 * size, 0.9 * size
    draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=box)
    cx, cy, arm = (x0 + x1) / 2, (y0 + y1) / 2, size / 25
    draw.line([cx - arm, cy - arm, cx + arm, cy + arm], fill=cross, width=size // 80)
    draw.line([cx - arm, cy + arm, cx + arm, cy - arm], fill=cross, width=size // 80)
    noise = np.random.default_rng(seed).normal(0, 5, (size, size, 3))
    return np.clip(np.asarray(image, np.float64) + noise, 0, 255) / 255


# -- images -----------------------------------------------------------------------------------
def test_simulator_render_passes_through_unchanged(tmp_path):
    """An image the simulator drew, read back from PNG with the whole frame kept, is the
    model input it would have been in training (up to 8-bit rounding)."""
    render = BoxSimulator().simulate(np.array([[0.3, 0.2, 0.4, 0.1]]))[0]
    save_image(render, tmp_path / "render.png")
    x, steps = invert.preprocess_image(invert.read_image(str(tmp_path / "render.png")), (64, 64, 3), "image",
                                       np.ones(3), framing="full")
    assert x.shape == (64, 64, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x, render, atol=1 / 255 + 1e-6)
    assert "light background" in steps


def test_photo_and_chalkboard_map_to_the_model_convention(tmp_path):
    """Tinted paper becomes the model's white, the grey box black, the cross stays blue;
    the same drawing in chalk (light box, light-blue cross on a dark board) gives nearly the
    same model input."""
    save_image(box_photo(), tmp_path / "photo.jpg", quality=90)
    save_image(box_photo(background=(30, 38, 32), box=(225, 225, 215), cross=(120, 160, 255)), tmp_path / "chalk.png")
    from_photo, _ = invert.preprocess_image(invert.read_image(str(tmp_path / "photo.jpg")), (64, 64, 3), "image",
                                            np.ones(3), framing="full")
    from_chalk, steps = invert.preprocess_image(invert.read_image(str(tmp_path / "chalk.png")), (64, 64, 3), "image",
                                                np.ones(3), framing="full")
    assert "dark background: inverted" in steps
    truth = BoxSimulator().simulate(np.array([[0.3, 0.2, 0.4, 0.1]]))[0]
    for x in (from_photo, from_chalk):
        background = truth.min(-1) > 0.99
        assert np.median(x[background]) > 0.97  # paper -> white
        in_box = (truth.max(-1) < 0.01)
        assert np.median(x[in_box]) < 0.1  # grey 'black' -> black
        blue = (truth[..., 2] > 0.9) & (truth[..., 0] < 0.1)
        assert np.mean(x[blue][:, 2] > x[blue][:, 0] + 0.3) > 0.5  # the cross keeps its hue
    assert np.mean(np.abs(from_photo - from_chalk)) < 0.03


def disc_picture(size=(300, 400), centre=(150, 250), radius=60, ink=0.15, paper=0.85, seed=0):
    rows, cols = np.mgrid[:size[0], :size[1]]
    disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2
    grey = np.where(disc, ink, paper) + np.random.default_rng(seed).normal(0, 0.03, size)
    return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=-1), disc


def test_binary_model_input_is_framed_ink_one_on_zero_for_any_background(tmp_path):
    dark_on_light, _ = disc_picture()
    light_on_dark = 1.0 - dark_on_light
    save_image(dark_on_light, tmp_path / "drawing.jpg", quality=85)
    transparent = np.zeros((300, 400, 4))
    transparent[..., 3] = (dark_on_light[..., 0] < 0.5)  # ink only, the rest see-through
    Image.fromarray((transparent * 255).astype(np.uint8), mode="RGBA").save(tmp_path / "transparent.png")
    pictures = [invert.read_image(str(tmp_path / "drawing.jpg")), light_on_dark,
                invert.read_image(str(tmp_path / "transparent.png"))]
    outputs = [invert.preprocess_image(p, (64, 64, 1), "binary_image", np.zeros(1), framing="ink", margin=0.1)[0]
               for p in pictures]
    for x in outputs:
        assert x.shape == (64, 64, 1) and set(np.unique(x)) == {0.0, 1.0}
        rows, cols = np.nonzero(x[..., 0])
        # The disc's bounding box fills 1 / (1 + 2 * margin) of the frame, centred.
        assert 50 <= rows.max() - rows.min() + 1 <= 56 and 50 <= cols.max() - cols.min() + 1 <= 56
        assert abs(rows.mean() - 31.5) < 1.5 and abs(cols.mean() - 31.5) < 1.5
        assert x[0, 0, 0] == 0 and x[32, 32, 0] == 1  # ink is 1 on 0
    for x in outputs[1:]:
        assert np.mean(x != outputs[0]) < 0.02
    # A model whose background is light gets the opposite polarity.
    light_model, steps = invert.preprocess_image(pictures[0], (64, 64, 1), "binary_image", np.ones(1))
    np.testing.assert_array_equal(light_model, 1.0 - outputs[0])
    assert "ink 0 on background 1" in steps


def test_thin_strokes_survive_downscaling():
    """A 2-px pen line on a 1200-px page is a few percent of a model pixel wide: it must
    come out as a connected curve, not vanish below the binarisation threshold."""
    size = 1200
    picture = np.ones((size, size, 3))
    cols = np.arange(100, 1100)
    rows = (600 + 300 * np.sin(np.linspace(0, 2 * np.pi, cols.size))).astype(int)
    for dr in (0, 1):
        picture[rows + dr, cols] = 0.0
    x, _ = invert.preprocess_image(picture, (64, 64, 1), "binary_image", np.zeros(1), framing="full")
    ink_columns = np.nonzero(x[..., 0].any(axis=0))[0]
    assert ink_columns.size > 0
    assert np.array_equal(ink_columns, np.arange(ink_columns.min(), ink_columns.max() + 1))  # no gaps
    assert 1 <= x.sum() / ink_columns.size < 4  # a line one to a few pixels thick, not a smear


def test_blank_image_is_refused(tmp_path):
    save_image(np.full((50, 80, 3), 0.7), tmp_path / "blank.png")
    with pytest.raises(UserError, match="no drawing|no contrast"):
        invert.preprocess_image(invert.read_image(str(tmp_path / "blank.png")), (64, 64, 1), "binary_image", np.zeros(1))
    faint = np.full((50, 80, 3), 0.7)
    faint[20:30, 20:60] = 0.66
    with pytest.raises(UserError, match="almost no contrast"):
        invert.preprocess_image(faint, (64, 64, 1), "binary_image", np.zeros(1))


# -- signals ----------------------------------------------------------------------------------
def resonator_model(**metadata_overrides):
    metadata = {"latents": [dict(name=l.name, low=l.low, high=l.high, unit=l.unit, scale=l.scale, discrete=False)
                            for l in SeriesResonator.latents],
                "output_spec": {"shape": [len(FREQUENCIES_HZ), 2], "kind": "signal"},
                "frequencies_hz": FREQUENCIES_HZ.tolist(), "channels": ["gain_db", "phase_rad"], **metadata_overrides}
    return ExportSpec.from_metadata("MODEL", metadata)


def write_csv(path, header, columns):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row in zip(*columns):
            f.write(",".join(str(v) for v in row) + "\n")
    return str(path)


def test_measured_curve_is_resampled_onto_the_model_grid_with_unit_conversion(tmp_path):
    """kHz and degrees, an unsorted grid wider and denser than the model's, header with
    units in brackets: the result is the response on the model's grid."""
    frequencies = np.geomspace(50.0, 2e5, 400)[::-1]
    response = resonator_response(TRUE_RLC, frequencies)[0].astype(np.float64)
    path = write_csv(tmp_path / "m.csv", ["Phase (deg)", "Frequency [kHz]", "Gain (dB)", "temperature_c"],
                     [np.degrees(response[:, 1]), frequencies / 1e3, response[:, 0], np.full(400, 21.5)])
    x, steps = invert.read_signal_csv(path, resonator_model())
    expected = resonator_response(TRUE_RLC, FREQUENCIES_HZ)[0]
    np.testing.assert_allclose(x[:, 0], expected[:, 0], atol=0.05)  # dB
    np.testing.assert_allclose(x[:, 1], expected[:, 1], atol=0.02)  # rad
    assert any("log-frequency interpolation" in s for s in steps)


def test_log_frequency_interpolation_is_exact_on_power_law_slopes(tmp_path):
    """From a coarse sweep, gain in dB is a straight line in log frequency away from
    resonance: log-axis interpolation gets it right where a linear axis would not."""
    frequencies = np.geomspace(50.0, 2e5, 30)
    response = resonator_response(TRUE_RLC, frequencies)[0]
    path = write_csv(tmp_path / "coarse.csv", ["frequency_hz", "gain_db", "phase_rad"],
                     [frequencies, response[:, 0], response[:, 1]])
    x, _ = invert.read_signal_csv(path, resonator_model())
    expected = resonator_response(TRUE_RLC, FREQUENCIES_HZ)[0]
    slopes = (FREQUENCIES_HZ < 1e3) | (FREQUENCIES_HZ > 3e4)
    linear_axis = np.interp(FREQUENCIES_HZ, frequencies, response[:, 0])
    assert np.abs(x[slopes, 0] - expected[slopes, 0]).max() < 0.02
    assert np.abs(linear_axis[slopes] - expected[slopes, 0]).max() > 0.05


@pytest.mark.parametrize("header, rows, message", [
    (["frequency_hz", "gain_db"], None, "lacks phase_rad"),
    (["gain_db", "phase_rad"], None, "none of them the frequency axis"),
    (["frequency_hz", "gain_db", "phase_rad"], "narrow", r"missing 100 Hz to 200 Hz and 50 kHz to 100 kHz"),
    (["frequency_hz", "gain_db", "phase_rad"], "nan", r"line 4, column 'gain_db': 'nan' is not a finite number"),
    (["frequency_hz", "gain_db", "phase_rad"], "empty", r"line 3, column 'phase_rad': '\(empty\)'"),
    (["frequency_hz", "gain_db", "phase_rad"], "duplicate", "appears twice"),
    (["1", "2", "3"], None, "no header row"),
])
def test_bad_csv_errors_name_the_problem(tmp_path, header, rows, message):
    frequencies = np.geomspace(200.0, 5e4, 50) if rows == "narrow" else np.geomspace(100.0, 1e5, 50)
    response = resonator_response(TRUE_RLC, frequencies)[0]
    columns = {"frequency_hz": list(frequencies), "gain_db": list(response[:, 0]), "phase_rad": list(response[:, 1]),
               "1": [1.0] * 50, "2": [2.0] * 50, "3": [3.0] * 50}
    if rows == "nan":
        columns["gain_db"][2] = "nan"
    if rows == "empty":
        columns["phase_rad"][1] = ""
    if rows == "duplicate":
        columns["frequency_hz"][5] = columns["frequency_hz"][4]
    path = write_csv(tmp_path / "bad.csv", header, [columns[h] for h in header])
    with pytest.raises(UserError, match=message):
        invert.read_signal_csv(path, resonator_model())


def test_time_axis_and_axisless_signals(tmp_path):
    times = np.linspace(0.0, 1.0, 20)
    metadata = {"latents": [dict(name="a", low=0.0, high=1.0)], "output_spec": {"shape": [20], "kind": "signal"}}
    timed = ExportSpec.from_metadata("MODEL", {**metadata, "times_s": times.tolist()})
    measured_ms = np.linspace(-100.0, 1100.0, 61)  # ms, wider than the model's 0..1 s
    path = write_csv(tmp_path / "ring.csv", ["time_ms", "displacement"], [measured_ms, np.cos(measured_ms / 100.0)])
    x, steps = invert.read_signal_csv(path, timed)
    np.testing.assert_allclose(x, np.cos(times * 10.0), atol=0.02)  # linear interpolation in time
    assert any("(time interpolation)" in s for s in steps)

    axisless = ExportSpec.from_metadata("MODEL", metadata)
    path = write_csv(tmp_path / "on_grid.csv", ["time_s", "value"], [times, np.arange(20.0)])
    x, _ = invert.read_signal_csv(path, axisless)  # the time column is recognised and skipped
    np.testing.assert_array_equal(x, np.arange(20.0))
    path = write_csv(tmp_path / "short.csv", ["value"], [np.arange(15.0)])
    with pytest.raises(UserError, match="15 data rows but the model takes 20 points"):
        invert.read_signal_csv(path, axisless)


def test_arrays_are_checked(tmp_path):
    model = resonator_model()
    np.save(tmp_path / "batch.npy", np.zeros((3, 32, 2)))
    assert inputs.read_array(str(tmp_path / "batch.npy"), model).shape == (3, 32, 2)
    np.save(tmp_path / "wrong.npy", np.zeros((32, 3)))
    with pytest.raises(UserError, match=r"shape \(32, 3\); the model takes \(32, 2\)"):
        inputs.read_array(str(tmp_path / "wrong.npy"), model)
    bad = np.zeros((2, 32, 2))
    bad[1, 4, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(UserError, match="observation 1 holds NaN"):
        inputs.read_array(str(tmp_path / "nan.npy"), model)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(UserError, match="numeric"):  # never unpickled
        inputs.read_array(str(tmp_path / "objects.npy"), model)


# -- whole runs -------------------------------------------------------------------------------
def test_image_folder_is_a_batch_reported_with_the_encoders_numbers(tmp_path, box_export):
    inputs = tmp_path / "pictures"
    inputs.mkdir()
    render = BoxSimulator().simulate(np.array([[0.3, 0.2, 0.4, 0.1]]))[0]
    save_image(render, inputs / "render.png")
    np.save(inputs / "render_array.npy", render)
    save_image(box_photo(), inputs / "photo.jpg", quality=90)
    (inputs / "notes.txt").write_text("not an input")
    results, out = invert.invert(box_export, str(inputs), num_samples=50, framing="full")
    assert out == str(tmp_path / "pictures_inverted")
    assert sorted(os.listdir(out)) == ["photo.png", "render.png", "render_array.png", "results.json"]
    assert json.loads((tmp_path / "pictures_inverted" / "results.json").read_text()) == results
    by_name = {entry["name"]: entry for entry in results["inputs"]}
    assert set(by_name) == {"photo", "render", "render_array"}

    # The reported posterior is the exported encoder's, on the input as preprocessed.
    posterior = encoder_posterior(box_export, render[None])
    for name in ("render", "render_array"):
        means = [by_name[name]["posterior"][n]["mean"] for n in ("w", "h", "x", "y")]
        stds = [by_name[name]["posterior"][n]["std"] for n in ("w", "h", "x", "y")]
        np.testing.assert_allclose(means, posterior["mean"][0], rtol=2e-3, atol=2e-3)
        np.testing.assert_allclose(stds, posterior["std"][0], rtol=2e-3, atol=1e-5)
    entry = by_name["photo"]
    assert np.shape(entry["samples"]) == (50, 4)
    assert set(entry["reconstruction_rmse"]) == {"G(E(x))", "S(E(x))"}  # box is importable: S(E(x)) too
    assert results["simulator"]["importable"] and results["notes"] == []
    with Image.open(os.path.join(out, entry["figure"])) as figure:
        assert figure.format == "PNG" and figure.width > 300
    report = invert.format_report(results, out)
    assert "render_array" in report and "mean" in report and "reconstruction RMSE" in report
    # Each input scored against the export's reference distribution (64 values: p >= 1/65).
    for entry in results["inputs"]:
        score = entry["misspecification"]
        assert 1 / 65 - 1e-9 <= score["p_value"] <= 1 and score["atypical"] == (score["p_value"] < 0.01)
        assert score["verdict"] in report


def test_signal_run_reports_derived_quantities_and_posterior_samples(tmp_path, resonator_export):
    response = resonator_response(TRUE_RLC, FREQUENCIES_HZ)[0]
    path = write_csv(tmp_path / "sweep.csv", ["frequency_hz", "gain_db", "phase_rad"],
                     [FREQUENCIES_HZ, response[:, 0], response[:, 1]])
    results, out = invert.invert(resonator_export, path, num_samples=4000, seed=3)
    assert out == str(tmp_path / "sweep_inverted")
    (entry,) = results["inputs"]
    posterior = encoder_posterior(resonator_export, response[None])
    mean = np.array([entry["posterior"][n]["mean"] for n in ("R", "L", "C")])
    np.testing.assert_allclose(mean, posterior["mean"][0], rtol=1e-4)
    # Derived quantities come from the simulator class named in the metadata.
    expected = SeriesResonator().derived_quantities(mean[None])
    for name in ("f0_hz", "Q"):
        assert entry["derived"][name]["at_mean"] == pytest.approx(float(expected[name][0]), rel=1e-6)
        assert entry["derived"][name]["posterior_std"] > 0
    # Samples follow the Gaussian posterior in normalised coordinates, mapped to physical units.
    u = base.normalize(SeriesResonator.latents, np.array(entry["samples"]))
    np.testing.assert_allclose(u.mean(0), posterior["mean_normalized"][0], atol=0.1 * np.exp(
        posterior["log_std_normalized"][0]).max() + 1e-3)
    np.testing.assert_allclose(u.std(0), np.exp(posterior["log_std_normalized"][0]), rtol=0.08)
    assert (np.array(entry["samples"]) > 0).all()  # log-scale latents stay positive
    assert "on the model's frequency grid" in " ".join(entry["preprocessing"])
    # The predictive check simulated S at 20 posterior draws: its RMSEs are ordered, and the
    # error split reproduces the reconstruction errors reported beside it.
    check = entry["predictive_check"]
    assert check["draws"] == 20 and 0 <= check["rmse_q05"] <= check["rmse_q50"] <= check["rmse_q95"]
    assert check["inversion_rmse"] == pytest.approx(entry["reconstruction_rmse"]["G(E(x))"], rel=1e-5)
    sim_at_mean = SeriesResonator().simulate(np.array([[entry["posterior"][n]["mean"] for n in ("R", "L", "C")]]))
    assert check["surrogate_rmse"] > 0 and np.isfinite(sim_at_mean).all()


def test_unimportable_simulator_still_inverts(tmp_path, resonator_export):
    export_dir = tmp_path / "export"
    shutil.copytree(resonator_export, export_dir)
    metadata = json.loads((export_dir / "metadata.json").read_text())
    metadata["class"] = "no_such_module:Thing"
    (export_dir / "metadata.json").write_text(json.dumps(metadata))
    np.save(tmp_path / "x.npy", resonator_response(TRUE_RLC, FREQUENCIES_HZ)[0])
    results, _ = invert.invert(str(export_dir), str(tmp_path / "x.npy"), num_samples=5)
    (entry,) = results["inputs"]
    assert not results["simulator"]["importable"]
    assert "not importable" in results["notes"][0]
    assert set(entry["reconstruction_rmse"]) == {"G(E(x))"} and entry["derived"] == {}
    assert "predictive_check" not in entry  # it needs the simulator
    assert np.shape(entry["samples"]) == (5, 3)


def _leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def test_bad_inputs_are_refused_and_nothing_is_written(tmp_path, box_export, resonator_export):
    picture = tmp_path / "picture.png"
    save_image(box_photo(size=120), picture)
    sweep = write_csv(tmp_path / "sweep.csv", ["frequency_hz", "gain_db", "phase_rad"],
                      [FREQUENCIES_HZ, np.zeros(32), np.zeros(32)])
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    unsupported = tmp_path / "scan.pdf"
    unsupported.write_bytes(b"%PDF-1.4")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(picture, mixed / "a.png")
    shutil.copy(sweep, mixed / "b.csv")
    cases = [
        (resonator_export, str(picture), "is an image, but the model .* is a signal model"),
        (box_export, sweep, "is a CSV signal, but the model .* is an image model"),
        (box_export, str(mixed), "b.csv is a CSV signal"),
        (box_export, str(corrupt), "cannot read image"),
        (box_export, str(tmp_path / "missing.png"), "does not exist"),
        (str(tmp_path), str(picture), "not a simvae_tf export"),
        (box_export, str(unsupported), "unsupported file type '.pdf'"),
    ]
    before = sorted(os.listdir(tmp_path))
    for model_dir, input_path, message in cases:
        with pytest.raises((UserError, export.NotAnExportError), match=message):
            invert.invert(model_dir, input_path)
    assert sorted(os.listdir(tmp_path)) == before
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "thesis.tex").write_text("keep me")
    with pytest.raises(UserError, match="holds other files"):
        invert.invert(box_export, str(picture), output_dir=str(tmp_path / "taken"))
    assert os.listdir(tmp_path / "taken") == ["thesis.tex"]


def test_rerun_replaces_its_previous_output(tmp_path, box_export):
    picture = tmp_path / "picture.png"
    save_image(box_photo(size=120), picture)
    out = tmp_path / "out"
    invert.invert(box_export, str(picture), output_dir=str(out), num_samples=3)
    (out / "stale.png").write_bytes(b"old")
    results, _ = invert.invert(box_export, str(picture), output_dir=str(out))
    assert sorted(os.listdir(out)) == ["picture.png", "results.json"]
    assert "samples" not in results["inputs"][0] and _leftovers(tmp_path) == []


def test_command_line_prints_the_table_and_follows_the_error_policy(tmp_path, box_export):
    picture = tmp_path / "drawing.png"
    save_image(box_photo(size=200), picture)
    done = run_cli([f"--model={box_export}", f"--input={picture}", "--framing=full", "--samples=7"],
                   module="simvae_tf.invert", timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("drawing  (drawing.png: grey-scale; light background")
    assert lines[1].split() == ["latent", "mean", "std", "unit", "range"]
    assert [line.split()[0] for line in lines[2:6]] == ["w", "h", "x", "y"]
    assert lines[-1].startswith(f"Wrote {tmp_path / 'drawing_inverted'}: results.json, 7 posterior samples")
    assert len(json.loads((tmp_path / "drawing_inverted" / "results.json").read_text())["inputs"][0]["samples"]) == 7

    sweep = write_csv(tmp_path / "sweep.csv", ["frequency_hz", "gain_db"], [FREQUENCIES_HZ, np.zeros(32)])
    failed = run_cli([f"--model={box_export}", f"--input={sweep}"], module="simvae_tf.invert", timeout=120)
    assert failed.returncode == 2
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is a CSV signal, but the model" in errors[0] and "pass an image" in errors[0]
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "sweep_inverted").exists() and _leftovers(tmp_path) == []
    missing = run_cli(["--input=x.png"], module="simvae_tf.invert", timeout=60)
    assert missing.returncode == 2 and "error: --model is required" in missing.stderr


@pytest.mark.parametrize("value, unit, expected", [
    (12000.0, "Hz", "12 kHz"), (0.0, "Hz", "0 Hz"), (4.7e-7, "F", "470 nF"), (-0.002, "V", "-2 mV")])
def test_format_quantity_uses_si_prefixes(value, unit, expected):
    assert signals.format_quantity(value, unit) == expected


@pytest.mark.parametrize("mode", ["RGB", "P", "I;16"])
def test_large_pictures_are_reduced_on_reading_and_keep_thin_strokes(tmp_path, mode):
    picture = Image.new("L", (6000, 1200), 255)
    ImageDraw.Draw(picture).line([(0, 600), (5999, 600)], fill=0, width=3)
    picture = picture.convert("RGB").convert(mode) if mode != "I;16" else Image.fromarray(
        (np.asarray(picture, dtype=np.uint16) * 257))
    path = str(tmp_path / f"big_{mode.replace(';', '')}.png")
    picture.save(path)
    rgb = invert.read_image(path)
    assert max(rgb.shape[:2]) <= images.MAX_READ_SIDE and rgb.shape[2] == 3
    assert rgb.shape[1] / rgb.shape[0] == pytest.approx(5.0, rel=0.01)
    assert rgb[:, rgb.shape[1] // 2].min() < 0.5 and rgb[0].min() > 0.9  # the line is there, the rest white


def test_report_of_a_continuous_invariance_puts_the_determined_quantities_first():
    latent = {"name": "R", "unit": "ohm", "low": 10.0, "high": 1000.0, "scale": "log"}
    entry = {"name": "sweep", "source": "sweep.csv", "preprocessing": ["as given"], "figure": "sweep.png",
             "posterior": {"R": {"mean": 346.5, "std": 0.63}}, "outside_trained_range": [],
             "reconstruction_rmse": {"G(E(x))": 0.1}, "derived": {"f0_hz": {"at_mean": 5000.0}},
             "canonical": {"R": 100.0}}
    results = {"latents": [latent], "inputs": [entry], "notes": [], "num_samples": 0,
               "invariance": {"continuous": True, "description": "R is free along a curve", "determined": ["f0_hz"]}}
    lines = invert.format_report(results, "OUT").splitlines()
    assert lines[0].startswith("note: R is free along a curve. Read f0_hz and the canonical form below;")
    table = next(i for i, line in enumerate(lines) if line.lstrip().startswith("latent"))
    assert lines.index("  derived f0_hz = 5000 at the posterior mean") < table
    assert lines.index("  canonical form: R = 100 ohm") < table
    results["invariance"] = None
    lines = invert.format_report(results, "OUT").splitlines()
    assert not lines[0].startswith("note:") and lines.index("  derived f0_hz = 5000 at the posterior mean") > 1
