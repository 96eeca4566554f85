"""`cli.exit_on_user_error`: exit codes and messages, and the way a failed run's process
ends: its objects freed (and so flushed) first, then `os._exit`, never Python's shutdown
(where a tf.data iterator with a call in flight can hang it)."""

import gc
import os
import weakref

import pytest

from simvae_tf import cli
from simvae_tf.errors import EXIT_RUN_FAILURE, EXIT_USER_ERROR, ConfigError, RunFailure


class _Held:
    """Stands in for a failed run's model and data iterators: in a reference cycle, as a
    Keras model is, so only the cycle collector frees it."""

    def __init__(self):
        self.cycle = self


def _exit_with(monkeypatch, error, verbose=False):
    """Runs a command that raises `error` with a `_Held` in its frame; returns (exit code,
    whether the `_Held` was still alive when the process was told to exit)."""
    held = []

    def command(args):
        obj = _Held()
        held.append(weakref.ref(obj))
        raise type(error)(*error.args)  # a fresh one: the parameter's would keep this frame alive

    alive_at_exit = []

    def fake_exit(code):
        alive_at_exit.append(held[0]() is not None)
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    gc.disable()  # only the policy's own collection may free it
    try:
        with pytest.raises(SystemExit) as exited:
            cli.exit_on_user_error(command, [], lambda: verbose)
    finally:
        gc.enable()
    return exited.value.code, alive_at_exit[0]


@pytest.mark.parametrize("error, code", [(ConfigError("batch_size=3 is invalid; use a multiple of 2"), EXIT_USER_ERROR),
                                         (RunFailure("stage1: loss became nan at step 2"), EXIT_RUN_FAILURE),
                                         (KeyboardInterrupt(), 130),
                                         (ZeroDivisionError("a bug"), 1)])
def test_every_failure_exits_with_its_code_after_freeing_the_run(monkeypatch, capsys, error, code):
    exit_code, alive = _exit_with(monkeypatch, error)
    assert exit_code == code
    assert not alive
    stderr = capsys.readouterr().err
    if isinstance(error, ZeroDivisionError):
        assert "Traceback" in stderr and "ZeroDivisionError: a bug" in stderr
    else:
        assert stderr.count("\n") == 1 and stderr.startswith("error: ")


def test_verbose_prints_the_traceback_and_keeps_the_exit_code(monkeypatch, capsys):
    exit_code, alive = _exit_with(monkeypatch, RunFailure("stage1: loss became nan at step 2"), verbose=True)
    assert exit_code == EXIT_RUN_FAILURE and not alive
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr and "RunFailure: stage1: loss became nan" in stderr


def test_a_clean_run_returns_its_value():
    assert cli.exit_on_user_error(lambda args: args + 1, 1, lambda: False) == 2
