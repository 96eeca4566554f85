"""The simulator contract.

A simulator is a small object, not a framework: it names its latents (the paper's
interpretable parameters, in physical units), samples them from its *sampling space*, and
maps a batch of them to observations with `simulate`. Everything else (normalising latents
for the networks, batching, caching, parallelism, checking outputs) lives outside it, so a
new simulator is a few lines:

    class Pulse(Simulator):
        name = "pulse"
        latents = (Latent("centre", -1.0, 1.0), Latent("width", 0.05, 0.5, scale="log"))
        output_spec = OutputSpec(shape=(128,), kind="signal")

        def simulate(self, z):
            t = np.linspace(-1.5, 1.5, 128)
            return np.exp(-0.5 * ((t - z[:, :1]) / z[:, 1:]) ** 2).astype(np.float32)

`sample_latents` defaults to independent uniform sampling of each latent on its range
(log-uniform for `scale="log"`); override it for correlated sampling spaces (box plotter).

A noisy simulator (measurement noise, Monte Carlo, random initial conditions) sets the class
attribute `stochastic = True`; its `simulate(self, z, rng)` then receives a seeded
`np.random.Generator` and draws all of its randomness from it, so sample i stays a pure
function of (seed, stream, i) and a resumed run sees the same noise:

    class NoisyPulse(Pulse):
        stochastic = True

        def simulate(self, z, rng):
            x = super().simulate(z)
            return x + rng.normal(0.0, 0.05, x.shape).astype(np.float32)
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import ClassVar, Sequence

import numpy as np

from simvae_tf.errors import SimulatorSetupError  # noqa: F401  (raised by simulators; part of the contract)

OUTPUT_KINDS = ("binary_image", "image", "signal")


LATENT_SCALES = ("linear", "log")


@dataclasses.dataclass(frozen=True)
class Latent:
    """One simulator input: its name, the range it is sampled from, unit and scale.

    `scale="log"` means the networks see log(value) (the parameter spans decades, e.g. a
    resistance). `discrete=True` marks a discrete factor, which the metrics do not bin.
    With `values` (e.g. dSprites shape: values=(1, 2, 3), labels=("square", "ellipse",
    "heart")) the latent is categorical: it takes only those values, the generator sees it
    one-hot and the encoder answers class probabilities (`models.latent_layout`); it
    implies discrete=True. Without `values` a discrete latent is a grid factor the
    networks see as a real number.
    """

    name: str
    low: float
    high: float
    unit: str = ""
    scale: str = "linear"
    discrete: bool = False
    values: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None

    @property
    def is_categorical(self) -> bool:
        return self.values is not None

    def __post_init__(self):
        if self.values is not None:
            values = tuple(float(v) for v in self.values)
            if len(values) < 2 or list(values) != sorted(set(values)):
                raise ValueError(f"latent {self.name!r}: values={self.values!r}; use two or more distinct values "
                                 "in increasing order")
            if values[0] < self.low or values[-1] > self.high:
                raise ValueError(f"latent {self.name!r}: values {values} lie outside [{self.low}, {self.high}]")
            object.__setattr__(self, "values", values)
            object.__setattr__(self, "discrete", True)
        if self.labels is not None:
            labels = tuple(str(label) for label in self.labels)
            if self.values is None or len(labels) != len(self.values):
                raise ValueError(f"latent {self.name!r}: labels={self.labels!r} need one label per value "
                                 f"(values={self.values!r})")
            object.__setattr__(self, "labels", labels)
        if self.scale not in LATENT_SCALES:
            raise ValueError(f"latent {self.name!r}: scale={self.scale!r}; use one of {LATENT_SCALES}")
        if not self.high > self.low:
            raise ValueError(f"latent {self.name!r}: need high > low, got [{self.low}, {self.high}]")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"latent {self.name!r}: log scale needs low > 0, got {self.low}")


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What `simulate` returns per sample: shape (without batch) and kind.

    The kind chooses the discrepancy D and the model family:
      binary_image: (H, W, 1) values in {0, 1}      -> Bernoulli cross-entropy, DCGAN
      image:        (H, W, C) values in [0, 1]      -> per-channel cross-entropy, DCGAN
      signal:       (N,) or (N, C) real values      -> MSE on standardised values, MLP
    """

    shape: tuple[int, ...]
    kind: str

    def __post_init__(self):
        if self.kind not in OUTPUT_KINDS:
            raise ValueError(f"output kind {self.kind!r} unknown; use one of {OUTPUT_KINDS}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def is_image(self) -> bool:
        return self.kind in ("binary_image", "image")


class Simulator(abc.ABC):
    """Base class of every simulator. Subclasses set the three class attributes and
    implement `simulate`; they may override `sample_latents` and the invariance hooks.

    Simulators must be picklable (they are sent to worker processes): keep state to plain
    Python/numpy values and build heavy resources (figures, ngspice) lazily.
    """

    name: ClassVar[str] = ""  # in logs, workdir records and exports; default: the class name
    latents: ClassVar[Sequence[Latent]]
    output_spec: ClassVar[OutputSpec]
    # False when `simulate` must not run in two threads at once (matplotlib, ngspice): the
    # in-process pipeline then serialises calls; use data.num_workers > 0 for parallelism.
    thread_safe: bool = True
    # True when `simulate(z, rng)` draws noise from the seeded generator it is given (the
    # same z may give different x): stage 1 then learns the distribution of x given z, not
    # only its mean (docs/objective.md).
    stochastic: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.name:
            cls.name = cls.__name__

    # -- the black box -------------------------------------------------------------------
    @abc.abstractmethod
    def simulate(self, z: np.ndarray) -> np.ndarray:
        """Maps latents [n, K] (physical units) to observations [n, *output_spec.shape]
        (float32). Deterministic: the same z gives the same x. A stochastic simulator
        (`stochastic = True`) implements `simulate(self, z, rng)` instead and draws its
        noise from `rng` only (never from global random state)."""

    def sample_latents(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draws n latent vectors [n, K] from the sampling space (physical units); each
        categorical latent takes each of its values with equal probability."""
        u = rng.uniform(0.0, 1.0, size=(n, len(self.latents)))
        return from_unit_interval(self.latents, u)

    # -- invariances (one-to-many inverses) ---------------------------------------------
    has_invariance: ClassVar[bool] = False
    # In words, for reports: what the output leaves free when a continuous invariance makes
    # some latents undetermined (RLC: the scaling of R, L, C); None otherwise.
    invariance_description: ClassVar[str | None] = None
    # A continuous invariance that moves the latents along a straight line in their affine
    # coordinates (the value; the log value for log-scale latents): the line's direction,
    # one number per latent (RLC: (R/s, L/s, C s) is (-1, -1, +1) in log units). Posterior
    # draws then spread uniformly along the part of that line inside the sampling ranges (the
    # exact posterior along the orbit under the uniform prior), and the posterior's std says
    # how little the data fix those latents. None: no such invariance (or not declared).
    invariance_direction: ClassVar[Sequence[float] | None] = None

    def canonicalize(self, z: np.ndarray) -> np.ndarray:
        """Maps each latent vector to the canonical representative of its invariance
        class (all z that simulate to the same x). Identity when there is no invariance."""
        return np.asarray(z, dtype=np.float64)

    def apply_random_invariance(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Applies a random element of the invariance group to each row (the paper's
        V-bar, section 4.2): a uniformly drawn element of the `orbit` when one is declared
        (override it for a continuous group, as RLC does); identity when there is none."""
        orbit = self.orbit(z)
        if orbit is None:
            return np.asarray(z, dtype=np.float64)
        return orbit[np.arange(len(orbit)), rng.integers(0, orbit.shape[1], size=len(orbit))]

    def orbit(self, z: np.ndarray) -> np.ndarray | None:
        """For a finite invariance group: every equivalent latent vector of each row,
        [n, G, K]. None (the default) when the group is trivial or continuous."""
        del z
        return None

    def derived_quantities(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Invariant physical quantities worth reporting (e.g. RLC's f0 and Q)."""
        del z
        return {}

    # -- optional descriptions (read by evaluation, figures, export and invert) ---------
    # Indices of the latents that MIG averages over; None: all (dSprites leaves shape out).
    mig_factors: ClassVar[Sequence[int] | None] = None
    # Where the observations come from, as named in logs and metrics.json (dSprites:
    # "official:<path>" or "procedural").
    source: str = "simulator"
    # Signals: the sampling axis of the first output dimension, in Hz or in s (at most one;
    # recorded in the export so that `invert` can resample measured data onto it), and the
    # names of the channels of an (N, C) output.
    frequencies_hz: ClassVar[np.ndarray | None] = None
    times_s: ClassVar[np.ndarray | None] = None
    channels: ClassVar[Sequence[str] | None] = None

    def validity_mask(self, z: np.ndarray) -> np.ndarray:
        """Which latent vectors [n, K] lie where `derived_quantities` are meaningful (RLC:
        the paper's f0 < 10 kHz, Q < 4 region); [n] bool. All of them by default."""
        return np.ones(len(z), dtype=bool)

    def signal_axes(self) -> dict[str, object]:
        """The declared signal descriptions (`frequencies_hz`, `times_s`, `channels`) that
        are set, by name: what the export records beside the models."""
        return {name: getattr(self, name) for name in ("frequencies_hz", "times_s", "channels")
                if getattr(self, name) is not None}

    # -- conveniences ---------------------------------------------------------------------
    @property
    def latent_names(self) -> list[str]:
        return [latent.name for latent in self.latents]

    @property
    def num_latents(self) -> int:
        return len(self.latents)

    def describe(self) -> dict:
        """A JSON-able description, stored in the workdir to refuse mismatched reruns."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "latents": [latent_record(latent) for latent in self.latents],
            "output_spec": {"shape": list(self.output_spec.shape), "kind": self.output_spec.kind},
            # Only when set, so that the records of deterministic simulators stay as they were.
            **({"stochastic": True} if self.stochastic else {}),
        }


def latent_record(latent: Latent) -> dict:
    """A latent as JSON-able fields (`Latent(**record)` rebuilds it); the categorical
    fields only where set."""
    record = dataclasses.asdict(latent)
    return {key: value for key, value in record.items() if not (key in ("values", "labels") and value is None)}


# -- normalisation: physical units <-> the networks' [-1, 1] ---------------------------------
def latent_bounds(latents: Sequence[Latent]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, is_log) per latent in the coordinates the map is affine in (log value
    for log-scale latents)."""
    is_log = np.array([latent.scale == "log" for latent in latents])
    low = np.array([math.log(l.low) if l.scale == "log" else l.low for l in latents])
    high = np.array([math.log(l.high) if l.scale == "log" else l.high for l in latents])
    return low, high, is_log


def from_unit_interval(latents: Sequence[Latent], u: np.ndarray) -> np.ndarray:
    """Maps u in [0, 1]^K to physical units (uniform, or log-uniform for log latents; a
    categorical latent's value number floor(u * V))."""
    u = np.asarray(u, dtype=np.float64)
    low, high, is_log = latent_bounds(latents)
    v = low + u * (high - low)
    z = np.where(is_log, np.exp(v), v)
    for k, latent in enumerate(latents):
        if latent.is_categorical:
            z[:, k] = np.asarray(latent.values)[np.minimum((u[:, k] * len(latent.values)).astype(int),
                                                           len(latent.values) - 1)]
    return z


def normalize(latents: Sequence[Latent], z: np.ndarray) -> np.ndarray:
    """Physical units -> [-1, 1] (linear in value, or in log value for log latents)."""
    low, high, is_log = latent_bounds(latents)
    z = np.asarray(z, dtype=np.float64)
    v = np.where(is_log, np.log(np.where(is_log, np.maximum(z, 1e-300), 1.0)), z)
    return (2.0 * (v - low) / (high - low) - 1.0).astype(np.float32)


def denormalize(latents: Sequence[Latent], u: np.ndarray) -> np.ndarray:
    """[-1, 1] -> physical units; the inverse of `normalize`."""
    low, high, is_log = latent_bounds(latents)
    v = low + (np.asarray(u, dtype=np.float64) + 1.0) * 0.5 * (high - low)
    return np.where(is_log, np.exp(v), v)


def normalization_constants(latents: Sequence[Latent]) -> dict[str, np.ndarray]:
    """The same affine/log map as arrays, for the exported TF graphs."""
    low, high, is_log = latent_bounds(latents)
    return {"low": low.astype(np.float32), "high": high.astype(np.float32), "is_log": is_log}
