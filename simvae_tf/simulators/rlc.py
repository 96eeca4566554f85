"""Series RLC circuit (paper section 4.1), simulated with PySpice's ngspice shared backend.

The circuit: an AC source V_in drives R, L and C in series (source -> R -> L -> C ->
ground); the output is the voltage across the capacitor, so the transfer function is the
classic second-order low-pass

    H(jw) = V_C / V_in = 1 / (1 - w^2 L C + j w R C),

with resonant frequency f0 = 1 / (2 pi sqrt(L C)) and quality factor Q = sqrt(L / C) / R
(the gain peaks near f0 at about Q, i.e. 20 log10 Q dB, when Q > 1/sqrt(2)).

Latents, in the paper's order, sampled log-uniformly (scale='log'):
  R in [20 ohm, 1 kohm], L in [1 mH, 100 mH], C in [100 nF, 10 uF].
These ranges put f0 in about 160 Hz..16 kHz and Q in about 0.005..50; about 85% of the
samples fall inside the paper's validity range (f0 < 10 kHz and Q < 4: 98% satisfy the
first, 87% the second), the rest form a margin around it so the encoder is not trained
right at the edge of the region it is judged on.

Output: a 'signal' of shape (65, 2): for each frequency of `FREQUENCIES_HZ` (10 Hz to
100 kHz, 16 log-spaced points per decade, ngspice's `.ac dec 16 10 100k` grid) the gain
in dB (channel 0, `gain_db`) and the phase in radians (channel 1, `phase_rad`), unwrapped
along frequency starting from the lowest one. For this circuit the phase runs from 0
towards -pi and never wraps, so the unwrapped phase equals the principal value.

Invariance: (R, L, C) -> (R/s, L/s, C*s) leaves f0, Q and so the whole output unchanged
(paper section 4.1). `canonicalize` fixes R to `REFERENCE_RESISTANCE_OHM` (100 ohm), and
`apply_random_invariance` draws s log-uniformly in [1/invariance_scale_max,
invariance_scale_max] (default one decade each way).

Backends: 'ngspice' (default, the paper's black box) writes many circuits into one netlist
(independent copies sharing the ideal source, which makes them independent), runs one
`.ac` analysis for all of them and reads each capacitor node; 'closed_form' evaluates H
with numpy (about 20x faster). Tests check the two agree to 1e-6 dB and 1e-6 rad.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import threading

import numpy as np

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator, SimulatorSetupError

FREQUENCY_START_HZ = 10.0
FREQUENCY_STOP_HZ = 100_000.0
POINTS_PER_DECADE = 16
_NUM_DECADES = round(np.log10(FREQUENCY_STOP_HZ / FREQUENCY_START_HZ))
FREQUENCIES_HZ = FREQUENCY_START_HZ * 10.0 ** (np.arange(_NUM_DECADES * POINTS_PER_DECADE + 1) / POINTS_PER_DECADE)
CHANNELS = ("gain_db", "phase_rad")
BACKENDS = ("ngspice", "closed_form")
REFERENCE_RESISTANCE_OHM = 100.0
# Circuits per netlist: one ngspice run costs ~0.5 ms on its own, and big netlists slow
# down superlinearly; ~100 circuits per run was about fastest (10-15k circuits/s on one core).
DEFAULT_CIRCUITS_PER_RUN = 100
# Where distributions put the ngspice shared library when ctypes cannot find it by name.
KNOWN_LIBRARY_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libngspice.so.0",
    "/usr/lib/aarch64-linux-gnu/libngspice.so.0",
    "/usr/lib64/libngspice.so.0",
    "/usr/lib/libngspice.so.0",
    "/usr/local/lib/libngspice.so",
    "/usr/lib/libngspice.so",
)
# PySpice 1.5 warns about every ngspice newer than 34 and about the missing spinit file
# (only needed for XSPICE code models); neither matters for a linear AC analysis.
_HARMLESS_NGSPICE_MESSAGES = ("Unsupported Ngspice version", "can't find the initialization file spinit",
                              "spinit was not found")
_PYSPICE_LOGGER = "PySpice.Spice.NgSpice.Shared.NgSpiceShared"


class NgspiceMissingError(SimulatorSetupError, RuntimeError):
    """The ngspice shared library is not installed (or cannot be loaded)."""


class RLCSimulator(Simulator):
    name = "rlc"
    latents = (
        Latent("R", 20.0, 1_000.0, unit="ohm", scale="log"),
        Latent("L", 1e-3, 1e-1, unit="H", scale="log"),
        Latent("C", 1e-7, 1e-5, unit="F", scale="log"),
    )
    output_spec = OutputSpec(shape=(len(FREQUENCIES_HZ), len(CHANNELS)), kind="signal")
    frequencies_hz = FREQUENCIES_HZ
    channels = CHANNELS
    has_invariance = True
    invariance_description = ("the output is unchanged under (R, L, C) -> (R/s, L/s, C s) for any s > 0: R, L and C "
                              "are free along that curve, and only f0 and Q are determined")
    invariance_direction = (-1.0, -1.0, 1.0)  # (log R, log L, log C) -> (log R - a, log L - a, log C + a)

    def __init__(self, backend: str = "ngspice", circuits_per_run: int = DEFAULT_CIRCUITS_PER_RUN,
                 invariance_scale_max: float = 10.0):
        if backend not in BACKENDS:
            raise ValueError(f"rlc simulator: backend={backend!r} unknown; use one of {BACKENDS}")
        if not (isinstance(circuits_per_run, int) and circuits_per_run >= 1):
            raise ValueError(f"rlc simulator: circuits_per_run={circuits_per_run!r}; use an integer >= 1")
        if not invariance_scale_max >= 1.0:
            raise ValueError(f"rlc simulator: invariance_scale_max={invariance_scale_max!r}; use a number >= 1")
        self.backend = backend
        self.circuits_per_run = circuits_per_run
        self.invariance_scale_max = float(invariance_scale_max)
        # ngspice is one global simulator per process: calls are serialised by a lock, but
        # the pipeline should parallelise with worker processes, not threads.
        self.thread_safe = backend == "closed_form"

    def simulate(self, z: np.ndarray) -> np.ndarray:
        return self.response(z).astype(np.float32)

    def response(self, z: np.ndarray) -> np.ndarray:
        """Like `simulate`, in float64 (float32 rounds a -100 dB gain to ~1e-5 dB)."""
        z = _checked_latents(z)
        if self.backend == "closed_form":
            return closed_form_response(z)
        return ngspice_response(z, self.circuits_per_run)

    # -- invariance ----------------------------------------------------------------------------
    def canonicalize(self, z: np.ndarray) -> np.ndarray:
        """(R, L, C) -> (R_ref, L R_ref / R, C R / R_ref): same f0 and Q, R fixed to 100 ohm."""
        z = np.asarray(z, dtype=np.float64)
        scale = z[:, 0:1] / REFERENCE_RESISTANCE_OHM
        return z * np.concatenate([1.0 / scale, 1.0 / scale, scale], axis=1)

    def apply_random_invariance(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(R/s, L/s, C s) with s log-uniform in [1/invariance_scale_max, invariance_scale_max]."""
        z = np.asarray(z, dtype=np.float64)
        log_max = np.log(self.invariance_scale_max)
        scale = np.exp(rng.uniform(-log_max, log_max, size=(z.shape[0], 1)))
        return z * np.concatenate([1.0 / scale, 1.0 / scale, scale], axis=1)

    def derived_quantities(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Resonant frequency f0 (Hz) and quality factor Q: the invariants of the output."""
        z = np.asarray(z, dtype=np.float64)
        resistance, inductance, capacitance = z[:, 0], z[:, 1], z[:, 2]
        return {"f0_hz": 1.0 / (2.0 * np.pi * np.sqrt(inductance * capacitance)),
                "Q": np.sqrt(inductance / capacitance) / resistance}

    def validity_mask(self, z: np.ndarray) -> np.ndarray:
        """The paper's range of validity for the f0/Q fits (fig. 3): f0 < 10 kHz and Q < 4."""
        derived = self.derived_quantities(z)
        return (derived["f0_hz"] < VALIDITY_F0_HZ) & (derived["Q"] < VALIDITY_Q)


VALIDITY_F0_HZ, VALIDITY_Q = 10_000.0, 4.0


# -- the closed form (test oracle and fast backend) -------------------------------------------
def closed_form_response(z: np.ndarray, frequencies_hz: np.ndarray = FREQUENCIES_HZ) -> np.ndarray:
    """Gain (dB) and unwrapped phase (rad) of V_C / V_in, [n, F, 2] float64."""
    z = np.asarray(z, dtype=np.float64)
    omega = 2.0 * np.pi * np.asarray(frequencies_hz, dtype=np.float64)[None, :]
    resistance, inductance, capacitance = z[:, 0:1], z[:, 1:2], z[:, 2:3]
    transfer = 1.0 / (1.0 - omega**2 * inductance * capacitance + 1j * omega * resistance * capacitance)
    return _bode(transfer)


def _bode(transfer: np.ndarray) -> np.ndarray:
    gain_db = 20.0 * np.log10(np.abs(transfer))
    phase_rad = np.unwrap(np.angle(transfer), axis=-1)
    return np.stack([gain_db, phase_rad], axis=-1)


def _checked_latents(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 3:
        raise ValueError(f"rlc simulator: latents of shape {z.shape}; pass an array [n, 3] of (R, L, C)")
    bad = ~np.all(np.isfinite(z) & (z > 0), axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"rlc simulator: row {row} (R, L, C) = {z[row].tolist()}; "
                         "R, L and C must be positive and finite (ohm, henry, farad)")
    return z


# -- ngspice ----------------------------------------------------------------------------------
_ngspice_lock = threading.Lock()
_ngspice = None  # this process's NgSpiceShared, created on first use


def find_ngspice_library() -> str:
    """Path (or soname) of the ngspice shared library; raises NgspiceMissingError."""
    from_environment = os.environ.get("NGSPICE_LIBRARY_PATH")  # PySpice's own override
    if from_environment:
        if not os.path.exists(from_environment):
            raise NgspiceMissingError(f"NGSPICE_LIBRARY_PATH={from_environment} does not exist; "
                                      "point it at libngspice.so or unset it")
        return from_environment
    found = ctypes.util.find_library("ngspice")
    if found:
        return found
    for path in KNOWN_LIBRARY_PATHS:
        if os.path.exists(path):
            return path
    raise NgspiceMissingError("the rlc simulator needs the ngspice shared library, which was not found; "
                              "install the ngspice shared library: apt-get install libngspice0 "
                              "(or set NGSPICE_LIBRARY_PATH, or use backend='closed_form')")


class _DropHarmlessMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _HARMLESS_NGSPICE_MESSAGES)


def _ngspice_instance():
    """This process's ngspice (built on first use: simulators travel to worker processes)."""
    global _ngspice
    if _ngspice is None:
        library = find_ngspice_library()
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared

        logging.getLogger(_PYSPICE_LOGGER).addFilter(_DropHarmlessMessages())
        # PySpice formats '{}' in the path with the instance id; escape braces of a real path.
        NgSpiceShared.LIBRARY_PATH = library.replace("{", "{{").replace("}", "}}")
        try:
            _ngspice = NgSpiceShared.new_instance()
        except OSError as e:
            raise NgspiceMissingError(f"cannot load {library} ({e}); install the ngspice shared library: "
                                      "apt-get install libngspice0") from e
    return _ngspice


def netlist(z: np.ndarray) -> str:
    """One netlist holding circuit i as V_in -> r{i} -> l{i} -> c{i} -> ground, output node
    out{i}; all share the ideal AC source, so they do not interact."""
    lines = ["* simvae_tf series RLC batch", "vin in 0 dc 0 ac 1"]
    for i, (resistance, inductance, capacitance) in enumerate(z):
        # repr of a Python float round-trips exactly; numpy scalars would print 'np.float64(..)'.
        lines += [f"r{i} in mid{i} {float(resistance)!r}",
                  f"l{i} mid{i} out{i} {float(inductance)!r}",
                  f"c{i} out{i} 0 {float(capacitance)!r}"]
    lines.append(".save " + " ".join(f"v(out{i})" for i in range(len(z))))
    lines.append(f".ac dec {POINTS_PER_DECADE} {FREQUENCY_START_HZ!r} {FREQUENCY_STOP_HZ!r}")
    lines.append(".end")
    return "\n".join(lines)


def ngspice_response(z: np.ndarray, circuits_per_run: int = DEFAULT_CIRCUITS_PER_RUN) -> np.ndarray:
    """Gain (dB) and unwrapped phase (rad) of each circuit's capacitor node, computed by
    ngspice in chunks of `circuits_per_run` circuits; [n, F, 2] float64."""
    z = _checked_latents(z)
    result = np.empty((len(z), len(FREQUENCIES_HZ), 2))
    with _ngspice_lock:
        ngspice = _ngspice_instance()
        for start in range(0, len(z), circuits_per_run):
            chunk = z[start:start + circuits_per_run]
            result[start:start + len(chunk)] = _bode(_run_ac(ngspice, chunk))
    return result


def _run_ac(ngspice, z: np.ndarray) -> np.ndarray:
    """Complex V(out_i) for each circuit of the chunk, [n, F]."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceCommandError, NgSpiceCircuitError

    try:
        ngspice.load_circuit(netlist(z))
        ngspice.run()
        plot = ngspice.plot(None, ngspice.last_plot)
        frequencies = np.asarray(plot["frequency"].to_waveform()).real
        voltages = np.stack([np.asarray(plot[f"out{i}"].to_waveform()) for i in range(len(z))])
    except (NgSpiceCommandError, NgSpiceCircuitError, KeyError) as e:
        said = ngspice.stdout.strip()[-300:]  # before clean-up: PySpice clears it
        raise RuntimeError(f"ngspice failed on an RLC batch ({type(e).__name__}: {e}); ngspice said: {said!r}") from e
    finally:
        # Without removing them ngspice keeps every circuit and plot (~4 kB per circuit).
        try:
            ngspice.remove_circuit()
            ngspice.destroy()
        except (NgSpiceCommandError, NgSpiceCircuitError):
            pass  # nothing was loaded; the original error (if any) is the one to report
    if frequencies.shape != FREQUENCIES_HZ.shape or not np.allclose(frequencies, FREQUENCIES_HZ, rtol=1e-9, atol=0):
        raise RuntimeError(f"ngspice swept {frequencies.size} frequencies {frequencies[:2]}..., expected the "
                           f"documented grid of {FREQUENCIES_HZ.size}; this ngspice version is not supported")
    return voltages
