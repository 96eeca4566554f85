"""Simulator registry: `--sim=NAME` for the built-ins, `--sim=my_module:MyClass` for yours.

Built-ins are imported lazily so that asking for one never imports the others' heavy
dependencies (PySpice, TFDS).
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator, SimulatorSetupError

BUILTIN = {
    "box": "simvae_tf.simulators.box:BoxSimulator",
    "polygon": "simvae_tf.simulators.polygon:PolygonSimulator",
    "fourier": "simvae_tf.simulators.fourier:FourierSimulator",
    "rlc": "simvae_tf.simulators.rlc:RLCSimulator",
    "dsprites": "simvae_tf.simulators.dsprites:DSpritesSimulator",
}


class SimulatorNotFound(ValueError):
    """--sim names nothing we can load, or its options are wrong; the message says what to
    pass instead."""


def resolve_class(name: str) -> type[Simulator]:
    """Returns the Simulator subclass for a built-in name or a `module:Class` path."""
    path = BUILTIN.get(name, name)
    if ":" not in path:
        raise SimulatorNotFound(
            f"--sim={name!r} is not a built-in simulator; use one of {', '.join(BUILTIN)} "
            "or a path module:Class to your own Simulator subclass")
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SimulatorNotFound(
            f"--sim={name!r}: cannot import module {module_name!r} ({e}); "
            "make sure it is on PYTHONPATH (run from its folder or pip install it)") from e
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Simulator)):
        raise SimulatorNotFound(
            f"--sim={name!r}: {module_name} has no Simulator subclass named {class_name!r}; "
            "subclass simvae_tf.simulators.base.Simulator")
    return cls


def make(name: str, options: Mapping[str, Any] | None = None) -> Simulator:
    """Builds a simulator; `options` are its constructor keyword arguments (the config's
    `simulator` block)."""
    cls = resolve_class(name)
    try:
        return cls(**dict(options or {}))
    except SimulatorSetupError:
        raise  # already names the file or library and the fix
    except (TypeError, ValueError) as e:  # an unknown option, or a value the simulator refuses
        raise SimulatorNotFound(f"--sim={name!r}: bad simulator options {dict(options or {})}: {e}") from e


__all__ = ["BUILTIN", "Latent", "OutputSpec", "Simulator", "SimulatorNotFound", "make", "resolve_class"]
