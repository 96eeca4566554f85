"""Bad input: one line naming the value and the fix, exit code 2, no traceback, nothing written."""

import os

import pytest

from conftest import run_cli, tiny_flags

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = {"PYTHONPATH": HERE}


def _write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


CASES = [
    (["--sim=nosuch"], "--sim='nosuch' is not a built-in simulator; use one of box, polygon"),
    (["--sim=no_such_module:Thing"], "cannot import module 'no_such_module'"),
    (["--sim=faulty_sims:Nothing"], "no Simulator subclass named 'Nothing'"),
    (["--sim=box", "--config.nosuch=1"], "nosuch"),
    (["--sim=box", "--config.stage1.steps=abc"], "stage1.steps"),
    (["--sim=box", "--config.stage1.steps=0"], "--config.stage1.steps=0 is invalid: it must be a positive integer"),
    (["--sim=box", "--config.stage2.steps=-5"], "--config.stage2.steps=-5 is invalid"),
    (["--sim=box", "--config.batch_size=0"], "--config.batch_size=0 is invalid"),
    (["--sim=box", "--config.model.width=0"], "--config.model.width=0 is invalid"),
    (["--sim=box", "--config.stage1.learning_rate=0.0"], "--config.stage1.learning_rate=0.0 is invalid: it must be a positive"),
    (["--sim=box", "--config.model.family=transformer"], "model.family='transformer'"),
    (["--sim=box", "--config.stage2.lr_schedule=linear"], "--config.stage2.lr_schedule='linear' is invalid"),
    (["--sim=box", "--mode=fly"], "flag --mode=fly: value should be one of <all|train|evaluate|export>"),
    (["--sim=box", "--strategy=tpu"], "flag --strategy=tpu: value should be one of <auto|mirrored|multiworker|default>"),
    (["--sim=box", "--strategy=multiworker"], "needs the TF_CONFIG environment variable"),
    (["--sim=box", "--config=/nonexistent/config.py"], "/nonexistent/config.py"),
    (["--sim=box", "--config=configs/box.py:tpu"], "unknown variant 'tpu'"),
    (["--sim=rlc"], "NGSPICE_LIBRARY_PATH=/nonexistent/libngspice.so does not exist"),
    (["--sim=dsprites", "--config.simulator.source=official", "--config.simulator.data_path=/nonexistent/dsprites.hdf5"],
     "/nonexistent/dsprites.hdf5"),
    (["--sim=box", "--config.simulator.renderer=opengl"], "bad simulator options {'renderer': 'opengl'}: box simulator: renderer='opengl' unknown; use one of"),
    (["--sim=dsprites", "--config.simulator.source=web"], "source='web' unknown; use one of"),
    (["--sim=box", "--mode=evaluate"], "--mode=evaluate needs a trained run, but --workdir="),
    (["--sim=box", "--mode=export"], "--mode=export needs a trained run, but --workdir="),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path):
    workdir = tmp_path / "run"
    env = {**ENV, "NGSPICE_LIBRARY_PATH": "/nonexistent/libngspice.so"} if "--sim=rlc" in args else ENV
    env = {**env, "TF_CONFIG": ""}
    defaults = [] if any(a.startswith("--config=") for a in args) else tiny_flags()
    result = run_cli([f"--workdir={workdir}", *defaults, *args], env=env)  # the case's value wins
    assert result.returncode == 2, (result.stdout[-1000:], result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert message in lines[0]
    assert not workdir.exists()


def test_config_file_with_a_syntax_error_is_one_line_naming_file_and_line(tmp_path):
    config_file = tmp_path / "my_config.py"
    config_file.write_text("from simvae_tf import defaults\n\ndef get_config(:\n    return defaults.base_config()\n")
    workdir = tmp_path / "run"
    result = run_cli(["--sim=box", f"--config={config_file}", f"--workdir={workdir}"], env=ENV)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert f"{config_file}" in lines[0] and "line 3" in lines[0]
    assert not workdir.exists()


def test_a_folder_that_holds_other_files_is_refused_and_left_untouched(tmp_path):
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = run_cli(["--sim=box", f"--workdir={folder}", *tiny_flags()], env=ENV)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is a non-empty folder that holds no simvae_tf run" in lines[0], result.stderr
    assert sorted(os.listdir(folder)) == ["notes.txt"]


def test_truncated_dsprites_file_is_refused(tmp_path):
    bad = _write(tmp_path / "dsprites.hdf5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    result = run_cli(["--sim=dsprites", f"--workdir={tmp_path / 'run'}", "--config.simulator.source=official",
                      f"--config.simulator.data_path={bad}", *tiny_flags()])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert bad in result.stderr and not (tmp_path / "run").exists()


def test_workdir_that_is_a_file_or_under_a_file(tmp_path):
    a_file = _write(tmp_path / "file", b"x")
    for workdir, message in ((a_file, "is a file; pass a directory"), (a_file + "/sub", "is not writable")):
        result = run_cli(["--sim=box", f"--workdir={workdir}", *tiny_flags()])
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_evaluate_or_export_of_an_unfinished_training_is_refused(tmp_path):
    """A run killed before stage 2 finished: --mode=evaluate/export say so in one line."""
    import shutil

    workdir = tmp_path / "run"
    flags = [f"--workdir={workdir}", *tiny_flags()]
    assert run_cli(["--sim=box", "--mode=train", *flags]).returncode == 0
    shutil.rmtree(workdir / "checkpoints" / "stage2")
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    for mode in ("evaluate", "export"):
        result = run_cli(["--sim=box", f"--mode={mode}", *flags])
        assert result.returncode == 2, result.stderr[-2000:]
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "training in" in lines[0] and "is not complete" in lines[0], lines
    assert sorted(p.relative_to(workdir) for p in workdir.rglob("*")) == before


def test_verbose_shows_the_traceback(tmp_path):
    result = run_cli(["--sim=box", "--config.simulator.renderer=opengl", "--verbose", f"--workdir={tmp_path / 'run'}"], env=ENV)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_batch_size_must_divide_over_replicas():
    from ml_collections import ConfigDict

    from simvae_tf import errors, strategies

    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(errors.ConfigError, match="batch_size=7 does not divide over 2 replicas; use a multiple of 2"):
        strategies.check_batch_divides(ConfigDict({"batch_size": 7}), TwoReplicas())


def test_not_an_export_directory(tmp_path):
    from simvae_tf import export

    with pytest.raises(export.NotAnExportError, match="does not exist"):
        export.read_metadata(str(tmp_path / "missing"))
    (tmp_path / "other").mkdir()
    with pytest.raises(export.NotAnExportError, match="not a simvae_tf export"):
        export.read_metadata(str(tmp_path / "other"))
