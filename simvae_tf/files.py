"""Files written so that a crash never leaves a half-written one that a later run trusts:
each is built under a temporary name beside its final path and renamed into place."""

from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np


def atomic_write(path: str, write) -> None:
    """Writes through `write(file)` to a temporary file, then renames it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_replace_dir(final_path: str, fill) -> None:
    """Builds a directory with `fill(staging_path)` under a temporary name beside
    `final_path`, then swaps it into place: readers see the old or the new folder, never
    a half-written one. Staging folders left by killed processes are removed."""
    parent, name = os.path.split(os.path.abspath(final_path))
    staging, old = (os.path.join(parent, f".{name}.{kind}-{os.getpid()}") for kind in ("tmp", "old"))
    for leftover in glob.glob(os.path.join(parent, f".{glob.escape(name)}.tmp-*")) + \
            glob.glob(os.path.join(parent, f".{glob.escape(name)}.old-*")):
        pid = leftover.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _pid_alive(int(pid))):  # another live run's folder stays
            shutil.rmtree(leftover, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        fill(staging)
        if os.path.exists(final_path):
            os.replace(final_path, old)
        os.replace(staging, final_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: str, payload: dict, sort_keys: bool = True) -> None:
    """Pretty JSON, written atomically; numpy scalars and arrays become plain values."""
    text = json.dumps(payload, indent=2, sort_keys=sort_keys, default=_json_default) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)
