"""What an export's metadata says about the inputs it takes: output kind and shape, the
latents, and for signals the sampling axis and channel names."""

from __future__ import annotations

import dataclasses

import numpy as np

from simvae_tf import export
from simvae_tf.simulators import base


@dataclasses.dataclass(frozen=True)
class SignalAxis:
    """A signal's sampling axis as named in the export metadata (e.g. `frequencies_hz`)."""

    key: str  # metadata key
    quantity: str  # unit family for conversions: "frequency" or "time"
    unit: str  # the metadata values' unit
    column_stems: tuple[str, ...]  # CSV column names accepted for it, before the unit
    log: bool  # interpolate in log(axis)
    values: np.ndarray


# Axes the export may name (export.py copies these simulator attributes into metadata).
AXIS_KINDS = {
    "frequencies_hz": dict(quantity="frequency", unit="hz", column_stems=("frequency", "freq", "f"), log=True),
    "times_s": dict(quantity="time", unit="s", column_stems=("time", "t"), log=False),
}


@dataclasses.dataclass
class ExportSpec:
    """The parts of an export's metadata that invert relies on (not the networks)."""

    directory: str  # as the user named it, for messages
    metadata: dict
    latents: tuple[base.Latent, ...]
    kind: str
    shape: tuple[int, ...]
    axis: SignalAxis | None
    channels: tuple[str, ...] | None

    @classmethod
    def from_metadata(cls, directory: str, metadata: dict) -> ExportSpec:
        latents, output_spec = export.latents_and_output(directory, metadata)
        kind, shape = output_spec.kind, tuple(output_spec.shape)
        axis = None
        for key, kind_of_axis in AXIS_KINDS.items():
            if metadata.get(key) is not None:
                values = np.asarray(metadata[key], dtype=np.float64)
                if kind == "signal" and values.shape == shape[:1]:
                    axis = SignalAxis(key=key, values=values, **kind_of_axis)
                    break
        channels = metadata.get("channels")
        channels = tuple(str(c) for c in channels) if channels else None
        if channels is not None and (kind != "signal" or len(shape) != 2 or shape[1] != len(channels)):
            channels = None  # names that do not fit the output cannot be matched to columns
        return cls(directory, metadata, latents, kind, shape, axis, channels)

    @classmethod
    def read(cls, directory: str) -> ExportSpec:
        """From metadata.json alone: cheap, so bad inputs are refused before TensorFlow loads."""
        return cls.from_metadata(directory, export.read_metadata(directory))

    @classmethod
    def of(cls, pair: export.ExportedPair) -> ExportSpec:
        return cls.from_metadata(pair.directory, pair.metadata)

    @property
    def is_image(self) -> bool:
        return self.kind in ("binary_image", "image")

    @property
    def latent_names(self) -> list[str]:
        return [latent.name for latent in self.latents]

    def describe_output(self) -> str:
        return f"{self.kind} {tuple(self.shape)}"

    def expected_signal_input(self) -> str:
        axis_column = [f"{AXIS_KINDS[self.axis.key]['column_stems'][0]}_{self.axis.unit}"] if self.axis else []
        columns = axis_column + list(self.channels or (["value"] if len(self.shape) == 1 else
                                                        [f"channel_{c}" for c in range(self.shape[1])]))
        return f"a .csv with the header {','.join(columns)} (or a .npy array of shape {tuple(self.shape)})"
