"""Measured signals: CSV tables, matching their columns (and units) to the model's axis
and channels, and resampling onto the model's grid."""

from __future__ import annotations

import csv
import math
import re
from typing import Sequence

import numpy as np

from simvae_tf.errors import UserError
from simvae_tf.invert.spec import AXIS_KINDS, ExportSpec, SignalAxis

# Units a column may carry instead of the model's, with their factor to the family's base unit.
UNIT_FAMILIES = {
    "frequency": {"hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "angle": {"rad": 1.0, "deg": math.pi / 180.0},
}
SI_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"))


def normalize_column_name(name: str) -> str:
    """'Gain (dB)' -> 'gain_db', ' Frequency [kHz] ' -> 'frequency_khz'."""
    name = re.sub(r"[^a-z0-9]+", "_", name.strip().lower())
    return name.strip("_")


def _split_unit(name: str) -> tuple[str, str | None]:
    stem, _, unit = name.rpartition("_")
    if stem and any(unit in units for units in UNIT_FAMILIES.values()):
        return stem, unit
    return name, None


def _unit_factor(from_unit: str, to_unit: str) -> float | None:
    for units in UNIT_FAMILIES.values():
        if from_unit in units and to_unit in units:
            return units[from_unit] / units[to_unit]
    return None


def match_column(header: Sequence[str], stems: Sequence[str], unit: str | None) -> tuple[int, float] | None:
    """Index of the column named `stem_unit`, `stem_otherunit` of the same unit family, or
    the bare stem (taken to be in `unit`), and the factor that converts its values to `unit`."""
    for index, column in enumerate(header):
        stem, column_unit = _split_unit(column)
        if stem not in stems:
            continue
        if column_unit is None:
            return index, 1.0
        factor = _unit_factor(column_unit, unit) if unit is not None else None
        if factor is not None:
            return index, factor
    return None


def read_csv_table(path: str) -> tuple[list[str], np.ndarray]:
    """Header (normalised names) and the numeric rows of a CSV file; refuses empty or
    non-numeric cells, naming the row and column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(4096)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = [row for row in csv.reader(f, dialect) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"cannot read {path} ({type(e).__name__}: {e}); pass a UTF-8 text CSV file") from None
    if not rows:
        raise UserError(f"{path} is empty; pass a CSV with a header row and one row per sample")
    header_cells = [cell.strip() for cell in rows[0]]
    if all(_is_number(cell) for cell in header_cells):
        raise UserError(f"{path} has no header row (its first line is numbers); add one naming the columns")
    header = [normalize_column_name(cell) for cell in header_cells]
    if len(rows) < 2:
        raise UserError(f"{path} has a header but no data rows")
    values = np.empty((len(rows) - 1, len(header)))
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise UserError(f"{path} line {r} has {len(row)} cells but the header names {len(header)} columns")
        for c, cell in enumerate(row):
            try:
                value = float(cell.strip())
            except ValueError:
                value = None
            if value is None or not math.isfinite(value):
                raise UserError(f"{path} line {r}, column {header_cells[c]!r}: {cell.strip() or '(empty)'!r} is not "
                                 "a finite number; fix or remove that row")
            values[r - 2, c] = value
    return header, values


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_signal_csv(path: str, spec: ExportSpec) -> tuple[np.ndarray, list[str]]:
    """A measured signal from CSV on the model's grid, [N] or [N, C], and the steps taken."""
    header, table = read_csv_table(path)
    steps: list[str] = []
    axis_match = None
    if spec.axis is not None:
        axis_kind = AXIS_KINDS[spec.axis.key]
        axis_match = match_column(header, axis_kind["column_stems"], spec.axis.unit)
        if axis_match is None:
            raise UserError(f"{path} has columns {','.join(header)}, none of them the {axis_kind['quantity']} axis; "
                             f"name it {axis_kind['column_stems'][0]}_{spec.axis.unit} "
                             f"(the model needs {spec.expected_signal_input()})")
    channels = _channel_columns(path, header, spec, axis_match[0] if axis_match else None)
    values = np.stack([table[:, index] * factor for index, factor in channels], axis=-1)
    converted = [f"{header[index]} x {factor:.6g} to {channel}" for (index, factor), channel
                 in zip(channels, spec.channels or ()) if factor != 1.0]
    if converted:
        steps.append(", ".join(converted))

    num_points = spec.shape[0]
    if spec.axis is None:
        if len(values) != num_points:
            raise UserError(f"{path} has {len(values)} data rows but the model takes {num_points} points, and its "
                             "export names no axis to resample onto; give exactly one row per model point, in order")
        steps.append(f"{num_points} points taken in order")
    else:
        axis_index, axis_factor = axis_match
        if axis_factor != 1.0:
            steps.append(f"{header[axis_index]} x {axis_factor:.6g} to {spec.axis.key}")
        values, note = resample(table[:, axis_index] * axis_factor, values, spec.axis, path)
        steps.append(note)
    return values.reshape(spec.shape).astype(np.float32), steps


def _channel_columns(path: str, header: list[str], spec: ExportSpec, axis_index: int | None) -> list[tuple[int, float]]:
    if spec.channels is not None:
        matches, missing = [], []
        for channel in spec.channels:
            stem, unit = _split_unit(normalize_column_name(channel))
            match = match_column(header, (stem,), unit)
            if match is None:
                missing.append(channel)
            else:
                matches.append(match)
        if missing:
            raise UserError(f"{path} has columns {','.join(header)} but lacks {', '.join(missing)}; "
                             f"the model needs {spec.expected_signal_input()}")
        return matches
    # Without an axis in the export, an axis-like column (time_s, frequency_hz) is not a value.
    axis_like = {axis_index} if axis_index is not None else {
        match[0] for axis_kind in AXIS_KINDS.values()
        if (match := match_column(header, axis_kind["column_stems"], axis_kind["unit"])) is not None}
    others = [(i, 1.0) for i in range(len(header)) if i not in axis_like]
    wanted = 1 if len(spec.shape) == 1 else spec.shape[1]
    if len(others) != wanted:
        raise UserError(f"{path} has {len(others)} value column(s) ({','.join(header[i] for i, _ in others)}) but the "
                         f"model's signal has {wanted} channel(s); pass {spec.expected_signal_input()}")
    return others


def format_quantity(value: float, unit: str) -> str:
    """12000, 'Hz' -> '12 kHz'; 0 -> '0 Hz'."""
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in SI_PREFIXES:
        if abs(value) >= scale or scale == SI_PREFIXES[-1][0]:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def resample(axis_values: np.ndarray, values: np.ndarray, axis: SignalAxis, source: str = "data"
             ) -> tuple[np.ndarray, str]:
    """Measured (axis_values [M], values [M, C]) -> values on the model's grid [N, C], by
    linear interpolation (in log axis for frequency axes); refuses data that do not cover
    the grid, naming the missing range."""
    unit = {"hz": "Hz", "s": "s"}.get(axis.unit, axis.unit)
    order = np.argsort(axis_values, kind="stable")
    axis_values, values = axis_values[order], values[order]
    repeated = axis_values[1:][np.diff(axis_values) <= 0]
    if repeated.size:
        raise UserError(f"{source}: the {axis.quantity} {format_quantity(repeated[0], unit)} appears twice; "
                         "keep one row per value")
    if axis.log and axis_values[0] <= 0:
        raise UserError(f"{source}: {axis.quantity} {format_quantity(axis_values[0], unit)} is not positive; "
                         "remove rows at or below 0")
    grid = axis.values
    tolerance = 1e-6 * (grid[-1] - grid[0])
    missing = []
    if axis_values[0] > grid[0] + tolerance:
        missing.append(f"{format_quantity(grid[0], unit)} to {format_quantity(axis_values[0], unit)}")
    if axis_values[-1] < grid[-1] - tolerance:
        missing.append(f"{format_quantity(axis_values[-1], unit)} to {format_quantity(grid[-1], unit)}")
    if missing:
        raise UserError(
            f"{source} covers {format_quantity(axis_values[0], unit)} to {format_quantity(axis_values[-1], unit)} but the "
            f"model's grid spans {format_quantity(grid[0], unit)} to {format_quantity(grid[-1], unit)}: missing "
            f"{' and '.join(missing)}; measure over the model's whole range")
    if len(axis_values) == len(grid) and np.allclose(axis_values, grid, rtol=1e-6, atol=tolerance):
        return values, f"on the model's {axis.quantity} grid ({len(grid)} points)"
    transform = np.log if axis.log else (lambda v: v)
    resampled = np.stack([np.interp(transform(grid), transform(axis_values), values[:, c])
                          for c in range(values.shape[1])], axis=-1)
    how = "log-" if axis.log else ""
    return resampled, (f"resampled from {len(axis_values)} points to the model's {len(grid)}-point {axis.quantity} grid "
                       f"({how}{axis.quantity} interpolation)")

