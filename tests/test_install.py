"""A real (non-editable) install: the wheel built from this tree, installed into a
temporary target, runs from a folder outside the repository, configs included, through
both the module and the console script."""

import os
import shutil
import subprocess
import sys

from conftest import REPO, read_json, tiny_flags


def test_wheel_installs_and_runs_outside_the_repository(tmp_path):
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "target", tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Built from a copy: an in-tree build leaves build/ behind, whose stale files a later
    # wheel would pick up.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info",
                                                                "__pycache__", ".pytest_cache"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("simvae_tf-*.whl")
    installed = subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]

    # The target comes first on the path, ahead of the editable install this suite runs from.
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    where = subprocess.run([sys.executable, "-c", "import simvae_tf, simvae_tf_configs, simvae_tf.config as c; "
                            "print(simvae_tf.__file__); print(c.default_config_file('box'))"],
                           capture_output=True, text=True, timeout=60, cwd=elsewhere, env=env)
    assert where.returncode == 0, where.stderr[-2000:]
    module_file, config_file = where.stdout.split()
    assert module_file.startswith(str(target)) and config_file.startswith(str(target)), where.stdout

    workdir = elsewhere / "run"
    done = subprocess.run([sys.executable, "-m", "simvae_tf.main", "--sim=box", f"--workdir={workdir}", *tiny_flags()],
                          capture_output=True, text=True, timeout=300, cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.exists(workdir / "export" / "metadata.json")
    assert read_json(workdir / "metrics.json")["stage2"]["mig"] is not None

    # The console scripts are installed and wired to the same flags and error policy.
    for script, bad_flag, message in (("simvae", "--config.stage1.steps=0", "--config.stage1.steps=0 is invalid"),
                                      ("simvae-invert", "--model=nowhere", "--input is required"),
                                      ("simvae-simulate", "--num_samples=10", "--output is required")):
        refused = subprocess.run([sys.executable, str(target / "bin" / script), "--sim=box", bad_flag]
                                 if script != "simvae-invert" else [sys.executable, str(target / "bin" / script), bad_flag],
                                 capture_output=True, text=True, timeout=120, cwd=elsewhere, env=env)
        assert refused.returncode == 2 and message in refused.stderr, (script, refused.stderr[-2000:])
