"""The simulator -> tf.data pipeline: determinism, resume offsets, workers, caching, and
checks at the pipeline boundary."""

import numpy as np
import pytest

from simvae_tf import data
from simvae_tf.simulators import base, invariance
from simvae_tf.simulators.box import BoxSimulator
from test_contract import Pulse


class Broken(Pulse):
    """Returns a configurable bad output, or raises."""

    def __init__(self, fault: str = "nan"):
        self.fault = fault

    def simulate(self, z):
        x = super().simulate(z)
        if self.fault == "nan":
            x[1, 3] = np.nan
        elif self.fault == "shape":
            x = x[:, :16]
        elif self.fault == "raise":
            raise ZeroDivisionError("boom")
        elif self.fault == "type":
            return x.tolist()
        return x


def take(dataset, n):
    return [tuple(np.asarray(t) for t in batch) for batch in dataset.take(n)]


def test_batches_are_a_pure_function_of_seed_stream_and_index():
    sim = BoxSimulator()
    z1, x1 = data.simulate_batch(sim, 0, "stage1", 5, 4)
    z2, x2 = data.simulate_batch(sim, 0, "stage1", 5, 4)
    np.testing.assert_array_equal(z1, z2)
    np.testing.assert_array_equal(x1, x2)
    assert not np.allclose(data.simulate_batch(sim, 0, "stage2", 5, 4)[0], z1)
    assert not np.allclose(data.simulate_batch(sim, 1, "stage1", 5, 4)[0], z1)
    assert z1.dtype == x1.dtype == np.float32 and z1.min() >= -1 and z1.max() <= 1


def test_resumed_stream_continues_where_the_uninterrupted_one_was():
    sim = BoxSimulator()
    full = take(data.make_dataset(sim, seed=3, stream="stage1", batch_size=4), 5)
    resumed = take(data.make_dataset(sim, seed=3, stream="stage1", batch_size=4, start_batch=3), 2)
    for a, b in zip(full[3:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_worker_processes_produce_the_same_stream_as_in_process():
    sim = BoxSimulator("matplotlib")
    in_process = take(data.make_dataset(sim, seed=0, stream="s", batch_size=3), 3)
    workers = take(data.make_dataset(sim, seed=0, stream="s", batch_size=3, num_workers=2), 3)
    for a, b in zip(in_process, workers):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_x_only_stream_has_no_latents():
    batch = next(iter(data.make_dataset(BoxSimulator(), seed=0, stream="stage2", batch_size=2, element="x")))
    assert tuple(batch.shape) == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="element='z' unknown; use one of"):
        data.make_dataset(BoxSimulator(), seed=0, stream="stage2", batch_size=2, element="z")


def test_latent_target_stream_pairs_x_with_every_equivalent_latent_vector():
    from simvae_tf.simulators.polygon import PolygonSimulator

    sim = PolygonSimulator()
    plain = next(iter(data.make_dataset(sim, seed=0, stream="stage2", batch_size=3)))
    x, targets = next(iter(data.make_dataset(sim, seed=0, stream="stage2", batch_size=3, element="x_and_targets")))
    np.testing.assert_array_equal(x, plain[1])
    assert tuple(targets.shape) == (3, 8, 8)
    np.testing.assert_allclose(targets[:, 0], plain[0], atol=1e-6)  # the orbit starts with z itself
    for row in range(3):  # every target draws the same image
        z = base.denormalize(sim.latents, np.asarray(targets[row]))
        np.testing.assert_array_equal(sim.simulate(z), np.repeat(np.asarray(x[row:row + 1]), 8, axis=0))
    box_z, _ = data.simulate_batch(BoxSimulator(), 0, "stage2", 0, 3)
    box_targets = invariance.latent_targets_of(BoxSimulator(), box_z)
    assert box_targets.shape == (3, 1, 4)
    np.testing.assert_allclose(box_targets[:, 0], box_z, atol=1e-6)  # no invariance: z itself


def test_materialised_cache_is_written_once_and_reloaded(tmp_path):
    sim = Pulse()
    z, x = data.materialize(sim, 50, seed=0, directory=str(tmp_path), batch_size=16, progress=False)
    assert z.shape == (50, 2) and x.shape == (50, 32)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    z2, x2 = data.materialize(sim, 50, seed=0, directory=str(tmp_path), progress=False)
    np.testing.assert_array_equal(z, z2)
    np.testing.assert_array_equal(x, x2)
    batches = take(data.make_dataset(sim, seed=0, stream="s", batch_size=8, cache=(z, x)), 2)
    for zb, xb in batches:  # every cached batch row is one of the cached samples
        for row_z, row_x in zip(zb, xb):
            i = np.flatnonzero((z == row_z).all(axis=1))[0]
            np.testing.assert_array_equal(x[i], row_x)


def test_images_are_cached_as_uint8_losslessly(tmp_path):
    sim = BoxSimulator()
    z, x = data.materialize(sim, 20, seed=0, directory=str(tmp_path), progress=False)
    stored = np.load(next(tmp_path.iterdir()), allow_pickle=False)["x"]
    assert stored.dtype == np.uint8
    np.testing.assert_allclose(x, data.simulate_batch(sim, 0, "cache", 0, 256)[1][:20], atol=0.5 / 255)


def test_corrupt_cache_is_refused_with_the_fix(tmp_path):
    sim = Pulse()
    path = data.cache_path(str(tmp_path), sim, 0, 10)
    with open(path, "wb") as f:
        f.write(b"not an npz")
    with pytest.raises(data.SimulatorError, match="delete it"):
        data.materialize(sim, 10, seed=0, directory=str(tmp_path), progress=False)


@pytest.mark.parametrize("fault, message", [
    ("nan", r"returned NaN/Inf for latents \[\["),
    ("shape", r"returned shape \(4, 16\), expected \(4, 32\)"),
    ("raise", r"failed on latents .*ZeroDivisionError: boom"),
    ("type", "returned list, not a numpy array"),
])
def test_bad_simulator_output_is_caught_at_the_boundary(fault, message):
    with pytest.raises(data.SimulatorError, match=message) as info:
        data.simulate_batch(Broken(fault), 0, "s", 0, 4)
    assert "'pulse'" in str(info.value)


def test_worker_failure_surfaces_with_latents_and_does_not_hang():
    dataset = data.make_dataset(Broken("raise"), seed=0, stream="s", batch_size=4, num_workers=2)
    with pytest.raises(Exception, match="ZeroDivisionError: boom"):
        take(dataset, 1)


def test_output_scaler_standardises_signals_only():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 8)).astype(np.float32)
    scaler = data.OutputScaler.fit(x)
    standardised = (x - scaler.mean) / scaler.std
    np.testing.assert_allclose(standardised.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(standardised.std(0), 1, atol=1e-4)
    assert data.fit_output_scaler(BoxSimulator(), 0).std.max() == 1.0


def test_an_element_that_never_varies_is_scaled_like_a_typical_one_of_its_channel():
    """A time series' fixed start (std 0) must not amplify measurement noise: it gets its
    channel's median std; an element that varies, however little, keeps its own std."""
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(0.0, [1.0, 2.0, 3.0, 0.02], size=(1000, 4)),
                  rng.normal(0.0, [10.0, 20.0, 30.0, 40.0], size=(1000, 4))], axis=-1).astype(np.float32)
    x[:, 0, :] = [30.0, 10.0]  # a fixed starting point in both channels
    scaler = data.OutputScaler.fit(x)
    std = x.std(axis=0)
    assert scaler.std[0, 0] == pytest.approx(np.median(std[:, 0]))
    assert scaler.std[0, 1] == pytest.approx(np.median(std[:, 1]))
    np.testing.assert_array_equal(scaler.std[1:], std[1:])  # 1% of the median is signal: kept
    np.testing.assert_array_equal(scaler.mean[0], [30.0, 10.0])
    noisy = x[:1] + 0.01  # measurement noise of 0.01 at every element
    assert np.abs((noisy - scaler.mean) / scaler.std)[0, 0].max() < 0.02  # (the old 1e-6 floor: 250)
    assert data.OutputScaler.fit(np.zeros((5, 3), np.float32)).std.tolist() == [1.0, 1.0, 1.0]
