"""The Python API (`import simvae_tf as sv`) end to end on tiny configs: a simulator given
as a built-in name, a "module:Class" path, a class and an instance; `sv.load` against the
run it came from; and the workdir refusals that protect a user's files."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import simvae_tf as sv
from conftest import REPO, tiny_config

if REPO not in sys.path:  # `examples` is a top-level folder: importable from the repository root
    sys.path.insert(0, REPO)
from examples.damped_oscillator import DampedOscillator  # noqa: E402


class Ramp(sv.Simulator):
    """x_i = slope * t_i + offset: a two-latent signal simulator defined in a test module,
    as a notebook cell would define one."""

    name = "ramp"
    latents = (sv.Latent("slope", -1.0, 1.0), sv.Latent("offset", 0.5, 2.0, unit="V", scale="log"))
    output_spec = sv.OutputSpec(shape=(16,), kind="signal")
    times_s = np.linspace(0.0, 1.0, 16)

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def simulate(self, z):
        z = np.asarray(z, np.float64)
        return (self.gain * (z[:, :1] * self.times_s + z[:, 1:])).astype(np.float32)


def check_run(run, simulator, workdir):
    """What every fitted run must offer: metrics, a posterior and the surrogate, an export."""
    assert run.workdir.root == os.path.abspath(workdir)
    assert set(run.metrics) >= {"stage1", "stage2", "ground_truth"}
    rng = np.random.default_rng(0)
    z = simulator.sample_latents(rng, 5)
    x = np.asarray(simulator.simulate(z), np.float32)
    post = run.posterior(x)
    k = simulator.num_latents
    assert post.mean.shape == post.std.shape == (5, k) and np.all(post.std > 0)
    samples = post.sample(100, seed=0)
    assert samples.shape == (5, 100, k)
    np.testing.assert_array_equal(samples, post.sample(100, seed=0))  # seeded
    assert not np.array_equal(samples, post.sample(100, seed=1))
    low = np.array([latent.low for latent in simulator.latents])
    high = np.array([latent.high for latent in simulator.latents])
    assert np.all(post.clipped_mean() >= low * (1 - 1e-6)) and np.all(post.clipped_mean() <= high * (1 + 1e-6))
    assert run.generate(z).shape == (5, *simulator.output_spec.shape)

    model = sv.load(run.export_dir)
    # The post-hoc std calibration is fitted once, kept in the workdir and baked into the export.
    scale = run.std_scale()
    assert scale.shape == (k,) and np.all(scale > 0)
    np.testing.assert_allclose(model.metadata["posterior_std_scale"], scale, rtol=1e-3)
    # ... and so are the tail shapes: Student-t dof and generalised normal power, null where none.
    _, dof, power = run.posterior_calibration()
    assert [np.inf if d is None else d for d in model.metadata["posterior_dof"]] == dof.tolist()
    assert [2.0 if p is None else p for p in model.metadata["posterior_power"]] == power.tolist()
    np.testing.assert_array_equal(post.dof, dof)
    np.testing.assert_array_equal(post.power, power)
    assert os.path.exists(os.path.join(run.workdir.root, "posterior_std_scale.json"))
    assert [latent.name for latent in model.latents] == [latent.name for latent in simulator.latents]
    loaded = model.posterior(x)
    np.testing.assert_allclose(loaded.mean_normalized, post.mean_normalized, atol=1e-5)
    np.testing.assert_allclose(loaded.mean, post.mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.log_std_normalized, post.log_std_normalized, atol=1e-5)
    np.testing.assert_allclose(model.generate(z), run.generate(z), atol=1e-5)
    # Both carry the misspecification score, against the same reference (tiny: 128 values).
    assert post.p_value.shape == loaded.p_value.shape == (5,) and np.all(post.p_value >= 1 / 129)
    np.testing.assert_allclose(loaded.discrepancy, post.discrepancy, rtol=1e-4)
    np.testing.assert_allclose(loaded.p_value, post.p_value, atol=2 / 129)
    return x, post


def test_fit_by_name_then_load_in_a_process_without_simulator_or_training_code(tmp_path):
    workdir = tmp_path / "box"
    run = sv.fit("box", config=tiny_config("box"), workdir=str(workdir), verbose=0)
    x, post = check_run(run, run.simulator, workdir)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "mean.npy", post.mean)
    # A fresh process: the export alone gives the same posterior, importing neither the
    # simulator's module nor the training code.
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import simvae_tf as sv
        model = sv.load({str(run.export_dir)!r})
        mean = model.posterior(np.load({str(tmp_path / 'x.npy')!r})).mean
        np.testing.assert_allclose(mean, np.load({str(tmp_path / 'mean.npy')!r}), rtol=1e-5, atol=1e-5)
        loaded = sorted(m for m in sys.modules if m.startswith("simvae_tf"))
        for module in ("simvae_tf.simulators.box", "simvae_tf.training", "simvae_tf.training_data", "simvae_tf.models", "simvae_tf.evaluation"):
            assert module not in sys.modules, loaded
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]

    # A second fit on the complete workdir trains nothing and loads the same networks.
    again = sv.fit("box", config=tiny_config("box"), workdir=str(workdir), verbose=0)
    np.testing.assert_allclose(again.posterior(x).mean, post.mean, rtol=1e-6)


def test_fit_by_module_path_class_and_instance(tmp_path):
    path = "examples.damped_oscillator:DampedOscillator"
    run = sv.fit(path, config=tiny_config(path), workdir=str(tmp_path / "path"), verbose=0)
    assert run.sim_name == path
    check_run(run, DampedOscillator(), tmp_path / "path")

    by_class = sv.fit(Ramp, config=tiny_config(Ramp), workdir=str(tmp_path / "class"), verbose=0)
    assert by_class.sim_name == f"{__name__}:Ramp"
    check_run(by_class, Ramp(), tmp_path / "class")

    instance = Ramp(gain=2.0)
    by_instance = sv.fit(instance, config=tiny_config(instance), workdir=str(tmp_path / "instance"), verbose=0)
    assert by_instance.simulator is instance
    check_run(by_instance, instance, tmp_path / "instance")


def test_a_notebook_class_with_worker_processes_is_refused_in_one_line(tmp_path):
    notebook_class = type("CellSimulator", (Ramp,), {"__module__": "__main__"})
    config = tiny_config(Ramp)
    config.data.num_workers = 2
    with pytest.raises(sv.UserError, match=r"data.num_workers=2 needs a simulator importable by worker processes, "
                                           r"but CellSimulator is defined in __main__"):
        sv.fit(notebook_class, config=config, workdir=str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()


def test_fit_refuses_a_folder_that_holds_other_files_and_writes_nothing(tmp_path):
    folder = tmp_path / "my_documents"
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    with pytest.raises(sv.UserError, match="is a non-empty folder that holds no simvae_tf run"):
        sv.fit("box", config=tiny_config("box"), workdir=str(folder), verbose=0)
    assert sorted(os.listdir(folder)) == ["thesis.tex"]


def test_bad_config_value_is_a_user_error_before_anything_runs(tmp_path):
    config = tiny_config("box")
    config.stage1.steps = 0
    with pytest.raises(sv.UserError, match="stage1.steps=0 is invalid"):
        sv.fit("box", config=config, workdir=str(tmp_path / "run"), verbose=0)
    with pytest.raises(sv.UserError, match="mode='fly' unknown"):
        sv.fit("box", config=tiny_config("box"), workdir=str(tmp_path / "run"), mode="fly")
    assert not (tmp_path / "run").exists()


def test_importing_simvae_tf_loads_no_tensorflow():
    done = subprocess.run([sys.executable, "-c", "import sys, simvae_tf as sv; sv.get_config('box'); "
                           "print('tensorflow' in sys.modules, 'apache_beam' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False False", done.stderr[-2000:]
