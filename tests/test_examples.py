"""examples/: a user's own simulator trained end to end through the CLI and inverted on a
CSV it writes, the Keras downstream example in a fresh process that never imports
simvae_tf, and the amortized-vs-optimisation benchmark on the same export."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO, read_json, run_cli, tiny_flags

if REPO not in sys.path:  # `examples` is a top-level folder: importable from the repository root
    sys.path.insert(0, REPO)
from examples.damped_oscillator import DampedOscillator  # noqa: E402

SIM = "examples.damped_oscillator:DampedOscillator"
TRUE_LATENTS = np.array([[1.2, 3.0, 0.1]])  # amplitude mm, f0 Hz, damping ratio


@pytest.fixture(scope="module")
def oscillator_run(tmp_path_factory):
    """Trains the example through `python -m simvae_tf.main`, from the repository root."""
    workdir = tmp_path_factory.mktemp("oscillator") / "run"
    done = run_cli([f"--sim={SIM}", f"--workdir={workdir}", *tiny_flags()])
    assert done.returncode == 0, done.stderr[-2000:]
    return workdir


def test_user_simulator_is_short_and_follows_the_contract():
    source = open(os.path.join(REPO, "examples", "damped_oscillator.py")).read()
    code = source[source.index("import numpy"):]
    lines = [line for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(lines) < 40
    sim = DampedOscillator()
    z = sim.sample_latents(np.random.default_rng(0), 5)
    x = sim.simulate(z)
    assert x.shape == (5, 128) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], z[:, 0], rtol=1e-6)  # released from x = A at t = 0
    # The ring-down decays by 1/e per decay time: check it against the simulated envelope.
    derived = sim.derived_quantities(TRUE_LATENTS)
    ring = sim.simulate(TRUE_LATENTS)[0]
    period_samples = int(round(127 / 3.0))  # one period of a 3 Hz ring on the 128-point, 1 s grid
    peaks = np.array([np.abs(ring[i:i + period_samples]).max() for i in range(0, 128 - period_samples, period_samples)])
    decay_per_period = np.exp(-(1.0 / 3.0) / derived["decay_time_s"][0])
    np.testing.assert_allclose(peaks[1:] / peaks[:-1], decay_per_period, rtol=0.1)
    assert derived["Q"][0] == pytest.approx(5.0)


def test_trained_example_exports_and_inverts_a_measured_csv(oscillator_run):
    metadata = read_json(oscillator_run / "export" / "metadata.json")
    assert metadata["class"] == SIM and metadata["output_spec"] == {"shape": [128], "kind": "signal"}
    metrics = read_json(oscillator_run / "metrics.json")
    assert set(metrics["stage2"]["r2_per_latent"]) == {"amplitude", "f0", "damping_ratio"}

    sim = DampedOscillator()
    measurement = oscillator_run.parent / "ringdown.csv"
    with open(measurement, "w") as f:
        f.write("time_s,displacement_mm\n")
        for t, value in zip(sim.times_s, sim.simulate(TRUE_LATENTS)[0]):
            f.write(f"{t:.6f},{value:.6f}\n")
    done = run_cli([f"--model={oscillator_run / 'export'}", f"--input={measurement}", "--samples=25"],
                   module="simvae_tf.invert", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "derived Q = " in done.stdout and "derived decay_time_s = " in done.stdout
    results = read_json(oscillator_run.parent / "ringdown_inverted" / "results.json")
    (entry,) = results["inputs"]
    assert results["simulator"]["importable"] and set(entry["reconstruction_rmse"]) == {"G(E(x))", "S(E(x))"}
    assert np.shape(entry["samples"]) == (25, 3)
    f0 = entry["posterior"]["f0"]
    assert 1.0 <= f0["mean"] <= 8.0 * 1.5 and f0["unit"] == "Hz" and f0["std"] > 0
    assert os.path.exists(oscillator_run.parent / "ringdown_inverted" / "ringdown.png")


def test_downstream_keras_example_never_imports_simvae_tf(oscillator_run):
    export_dir = str(oscillator_run / "export")
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        sys.path.insert(0, {REPO!r})
        from examples import downstream_keras as dk

        export_dir = {export_dir!r}
        rng = np.random.default_rng(0)
        models = dk.SavedModels(export_dir)
        encoder, generator = dk.load_layers(export_dir)
        u = rng.uniform(-0.5, 0.5, (3, 3)).astype(np.float32)
        truth = models.to_physical(u).numpy()
        np.testing.assert_allclose(models.to_normalized(truth).numpy(), u, atol=1e-5)
        x = generator(truth).numpy()

        autoencoder = dk.build_autoencoder(export_dir)
        out = autoencoder.predict(x, verbose=0)
        assert out["x_hat"].shape == x.shape and out["latents"].shape == (3, 3)
        np.testing.assert_allclose(out["x_hat"], generator(encoder(x)["mean"]).numpy(), rtol=1e-5, atol=1e-5)

        fitted = dk.fit_latents(export_dir, x, steps=150, learning_rate=0.05, initial_latents=np.tile(
            models.to_physical(np.zeros((1, 3), np.float32)).numpy(), (3, 1)))
        assert fitted["loss"].shape == (151, 3)
        assert (fitted["loss"][-1] < 0.5 * fitted["loss"][0]).all(), fitted["loss"][[0, -1]]
        leaked = sorted(m for m in sys.modules if m == "simvae_tf" or m.startswith("simvae_tf."))
        assert not leaked, leaked
        print("ok")
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd="/",
                          env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]

    command = subprocess.run([sys.executable, os.path.join(REPO, "examples", "downstream_keras.py"),
                              f"--model={export_dir}", "--steps=20"], capture_output=True, text=True, timeout=180,
                             cwd="/", env=env)
    assert command.returncode == 0, command.stderr[-3000:]
    lines = command.stdout.splitlines()
    assert lines[1].split() == ["amplitude", "f0", "damping_ratio"]
    assert [line.split()[0] for line in lines[2:5]] == ["truth", "encoder", "fitted"]


def test_benchmark_records_a_table(oscillator_run, tmp_path):
    record = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "amortized_vs_optimization.py"),
         f"--model={oscillator_run / 'export'}", "--num_observations=16", "--num_fitted=2", "--steps=5",
         f"--results={record}"], capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    text = record.read_text()
    assert text.startswith("# Amortized inference vs per-observation optimisation")
    assert "--num_fitted=2" in text and "CPU cores (nproc)" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in table[1:]] == [
        "| encoder, batch", "| encoder, one by one", "| GD from prior centre (5 steps)", "| GD from encoder mean (5 steps)"]
    for row in table[1:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[1]) > 0 and -10 < float(cells[2]) <= 1 and float(cells[3]) >= 0


@pytest.mark.parametrize("module, name", [("lotka_volterra", "LotkaVolterra"), ("projectile", "Projectile"),
                                          ("sir_epidemic", "SIREpidemic")])
def test_the_other_user_simulators_are_short_deterministic_and_start_from_a_fixed_point(module, name):
    """The simulators behind the defaults of configs/custom.py (benchmarks/custom_defaults.py)."""
    import importlib

    source = open(os.path.join(REPO, "examples", f"{module}.py")).read()
    code = source[source.index("import numpy"):]
    assert len([line for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]) < 40
    sim = getattr(importlib.import_module(f"examples.{module}"), name)()
    z = sim.sample_latents(np.random.default_rng(0), 6)
    x = sim.simulate(z)
    assert x.shape == (6, *sim.output_spec.shape) and x.dtype == np.float32 and np.isfinite(x).all()
    # The batch barely changes a sample (solve_ivp's adaptive step is shared by the batch).
    np.testing.assert_allclose(sim.simulate(z[:3]), x[:3], rtol=0, atol=1e-4 * np.abs(x).max())
    assert len(sim.channels) == x.shape[-1]
    # A fixed starting point: the output scaler's case of an element that never varies.
    assert (x[:, 0].std(axis=0) == 0).any()


def test_the_user_simulators_obey_their_physics():
    from examples.lotka_volterra import LotkaVolterra
    from examples.projectile import GRAVITY, Projectile
    from examples.sir_epidemic import SIREpidemic

    # Started at its equilibrium (c/d prey, a/b predators) a Lotka-Volterra system stays there.
    at_rest = LotkaVolterra().simulate(np.array([[1.0, 0.1, 0.6, 0.02]]))  # equilibrium (30, 10)
    np.testing.assert_allclose(at_rest[0], np.tile([30.0, 10.0], (48, 1)), rtol=1e-4)
    # Without drag, a parabola; drag shortens the throw.
    ball = Projectile()
    t = ball.times_s
    slow = ball.simulate(np.array([[20.0, 45.0, 1e-9], [20.0, 45.0, 5e-3]]))
    v = 20.0 / np.sqrt(2.0)
    np.testing.assert_allclose(slow[0], np.stack([v * t, v * t - GRAVITY * t**2 / 2], axis=-1), atol=1e-4)
    assert slow[1, -1, 0] < slow[0, -1, 0]
    # Nobody is lost: S + I + R = 1, and an epidemic with R0 > 1 grows before it fades.
    sir = SIREpidemic().simulate(np.array([[2.5, 5.0, 1e-3]]))[0]
    assert (sir.sum(axis=-1) <= 1.0 + 1e-6).all() and sir[:, 0].max() > 100 * sir[0, 0] > sir[-1, 0]
