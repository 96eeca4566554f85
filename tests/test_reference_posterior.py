"""The exact-match posterior sampler of benchmarks/reference_posterior.py, on a simulator
whose posterior is known in closed form."""

import os
import sys

import numpy as np
import pytest

from simvae_tf.simulators import base

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import reference_posterior  # noqa: E402

EDGES = np.linspace(-1.0, 1.0, 9)  # each latent is seen only through the 8 cells it falls in


class Thermometer:
    """Two latents in [-1, 1], each shown as 7 threshold pixels: p(z | x) is uniform on the
    product of the two cells (width 0.25) that hold the true values."""

    latents = (base.Latent("a", -1.0, 1.0), base.Latent("b", -1.0, 1.0))

    def simulate(self, z):
        return (np.asarray(z)[:, :, None] > EDGES[None, None, 1:-1]).reshape(len(z), -1).astype(np.float32)


def test_chains_sample_the_uniform_posterior_on_the_true_cell():
    rng = np.random.default_rng(0)
    u_true = rng.uniform(-1.0, 1.0, size=(6, 2))
    samples = reference_posterior.sample_posteriors(Thermometer(), u_true, steps=3000, rng=rng,
                                                    progress=lambda message: None)
    cell = np.clip(np.searchsorted(EDGES, u_true) - 1, 0, 7)
    low, high = EDGES[cell], EDGES[cell + 1]
    assert np.all((samples >= low[:, None]) & (samples <= high[:, None]))  # never leaves the set
    np.testing.assert_allclose(samples.mean(axis=1), (low + high) / 2, atol=0.02)
    np.testing.assert_allclose(samples.std(axis=1), 0.25 / np.sqrt(12.0), rtol=0.15)


def test_continuous_outputs_and_custom_priors_are_refused():
    from simvae_tf import simulators
    from simvae_tf.errors import UserError

    with pytest.raises(UserError, match="needs binary images"):
        reference_posterior.check_supported(simulators.make("rlc", {"backend": "closed_form"}))
    with pytest.raises(UserError, match="draws its latents with its own sample_latents"):
        reference_posterior.check_supported(simulators.make("dsprites", {"source": "procedural"}))
    reference_posterior.check_supported(simulators.make("fourier", {}))


def test_script_records_a_table_for_a_trained_export(tmp_path):
    import subprocess

    from conftest import REPO, run_cli, tiny_flags

    workdir = tmp_path / "fourier"
    assert run_cli(["--sim=fourier", f"--workdir={workdir}", *tiny_flags()]).returncode == 0
    record = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "reference_posterior.py"), f"--model={workdir / 'export'}",
         "--num_observations=4", "--steps=60", f"--results={record}"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    text = record.read_text()
    assert text.startswith("### fourier: reference (exact) posterior vs the encoder") and "--steps=60" in text
    rows = [line for line in text.splitlines() if line.startswith("| a") or line.startswith("| b")]
    assert len(rows) == 11
    assert "MIG of the posterior mean" in text


def test_estimates_are_scored_as_their_equivalent_nearest_the_truth():
    from simvae_tf.simulators.polygon import ORDERINGS, PolygonSimulator

    simulator = PolygonSimulator()
    u_true = np.random.default_rng(0).uniform(-1.0, 1.0, (5, 8))
    points = u_true.reshape(5, 4, 2)
    reversed_order = points[:, ORDERINGS[5]].reshape(5, 8)  # the same outline, drawn backwards
    aligned = reference_posterior.aligned_estimate(simulator, u_true, reversed_order + 0.01)
    np.testing.assert_allclose(aligned, u_true + 0.01, atol=1e-9)
    # Without an invariance the estimate is scored as it is.
    from simvae_tf.simulators.fourier import FourierSimulator

    u_fourier = np.random.default_rng(1).uniform(-1.0, 1.0, (5, 11))
    assert reference_posterior.aligned_estimate(FourierSimulator(), -u_fourier, u_fourier) is u_fourier
