"""The output folder: where it goes, which existing folders may be replaced, and writing it
so that an error leaves nothing behind."""

from __future__ import annotations

import os

from simvae_tf.errors import UserError
from simvae_tf.files import atomic_replace_dir, read_json, write_json

RESULTS_FORMAT = "simvae_tf.invert/1"


def default_output_dir(input_path: str) -> str:
    """`<input stem>_inverted/` next to the input."""
    input_path = os.path.abspath(input_path.rstrip(os.sep) or input_path)
    stem = os.path.splitext(os.path.basename(input_path))[0] if os.path.isfile(input_path) \
        else os.path.basename(input_path)
    return os.path.join(os.path.dirname(input_path), f"{stem}_inverted")


def check_output_dir(path: str) -> None:
    """The output may be new, empty, or a previous invert output (which is replaced)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"--output={path}: its parent folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK):
        raise UserError(f"--output={path}: cannot write in {parent}; choose a writable location")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise UserError(f"--output={path} is a file; pass a folder path")
        if os.listdir(path) and not _is_invert_output(path):
            raise UserError(f"--output={path} exists and holds other files; choose a new or empty folder "
                            "(a previous invert output there is replaced)")


def _is_invert_output(path: str) -> bool:
    try:
        return read_json(os.path.join(path, "results.json")).get("format") == RESULTS_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write_outputs(output_dir: str, results: dict, figures_by_name: dict[str, bytes]) -> None:
    """Builds the folder (results.json, one PNG per figure) under a temporary name, then
    swaps it into place."""
    def fill(staging: str) -> None:
        os.makedirs(staging)
        for figure_name, png in figures_by_name.items():
            with open(os.path.join(staging, f"{figure_name}.png"), "wb") as f:
                f.write(png)
        write_json(os.path.join(staging, "results.json"), results, sort_keys=False)

    try:
        atomic_replace_dir(output_dir, fill)
    except OSError as e:
        raise UserError(f"--output={output_dir}: cannot write ({e.strerror or e}); choose a writable location") from None
