"""Simulator registry: a built-in name, a `module:Class` path, a `Simulator` subclass or an
instance, resolved to (a simulator, the name a workdir records for it).

Built-ins are imported lazily so that asking for one never imports the others' heavy
dependencies (PySpice, TFDS).
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, Union

from simvae_tf.errors import SimulatorNotFound, SimulatorSetupError
from simvae_tf.simulators.base import Latent, OutputSpec, Simulator

BUILTIN = {
    "box": "simvae_tf.simulators.box:BoxSimulator",
    "polygon": "simvae_tf.simulators.polygon:PolygonSimulator",
    "fourier": "simvae_tf.simulators.fourier:FourierSimulator",
    "rlc": "simvae_tf.simulators.rlc:RLCSimulator",
    "dsprites": "simvae_tf.simulators.dsprites:DSpritesSimulator",
}

# What `fit`, `get_config` and `--sim` accept.
SimulatorLike = Union[str, type, Simulator]


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def name_of(sim: SimulatorLike) -> str:
    """The name a workdir records: the built-in name where there is one, else module:Class."""
    if isinstance(sim, str):
        return sim
    cls = sim if isinstance(sim, type) else type(sim)
    path = class_path(cls)
    return next((name for name, builtin in BUILTIN.items() if builtin == path), path)


def resolve_class(sim: SimulatorLike) -> type[Simulator]:
    """The Simulator subclass for a built-in name, a `module:Class` path, a class or an instance."""
    if isinstance(sim, Simulator):
        return type(sim)
    if isinstance(sim, type):
        if not issubclass(sim, Simulator):
            raise SimulatorNotFound(f"{sim.__qualname__} is not a Simulator subclass; subclass simvae_tf.Simulator")
        return sim
    if not isinstance(sim, str):
        raise SimulatorNotFound(f"sim={sim!r} is neither a name, a module:Class path, a Simulator subclass nor an "
                                "instance of one")
    path = BUILTIN.get(sim, sim)
    if ":" not in path:
        raise SimulatorNotFound(
            f"--sim={sim!r} is not a built-in simulator; use one of {', '.join(BUILTIN)} "
            "or a path module:Class to your own Simulator subclass")
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SimulatorNotFound(
            f"--sim={sim!r}: cannot import module {module_name!r} ({e}); "
            "make sure it is on PYTHONPATH (run from its folder or pip install it)") from e
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Simulator)):
        raise SimulatorNotFound(
            f"--sim={sim!r}: {module_name} has no Simulator subclass named {class_name!r}; "
            "subclass simvae_tf.simulators.base.Simulator")
    return cls


def make(sim: SimulatorLike, options: Mapping[str, Any] | None = None) -> Simulator:
    """Builds a simulator; `options` are its constructor keyword arguments (the config's
    `simulator` block). An instance is used as it is, and takes no options."""
    options = dict(options or {})
    if isinstance(sim, Simulator):
        if options:
            raise SimulatorNotFound(f"config.simulator={options} cannot apply to an already built {type(sim).__name__}; "
                                    "pass the class (or its name) to have it built with these options, or empty "
                                    "config.simulator")
        return sim
    cls = resolve_class(sim)
    try:
        return cls(**options)
    except SimulatorSetupError:
        raise  # already names the file or library and the fix
    except (TypeError, ValueError) as e:  # an unknown option, or a value the simulator refuses
        raise SimulatorNotFound(f"--sim={name_of(sim)!r}: bad simulator options {options}: {e}") from e


__all__ = ["BUILTIN", "Latent", "OutputSpec", "Simulator", "SimulatorLike", "SimulatorNotFound", "class_path", "make",
           "name_of", "resolve_class"]
