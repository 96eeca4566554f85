"""The export's simulator, re-imported when its class still can be: it gives S(E(x)), the
derived quantities and typical images. An export stays usable without it."""

from __future__ import annotations

import dataclasses

from simvae_tf.invert.spec import ExportSpec
from simvae_tf.simulators import base


def load_simulator(spec: ExportSpec) -> tuple[base.Simulator | None, str | None]:
    """The export's simulator (metadata `class`), or None and why not. Its constructor
    options are the export's metadata `simulator_options` ({} when absent)."""
    class_path = spec.metadata.get("class")
    if not class_path:
        return None, "the export names no simulator class"
    from simvae_tf import simulators

    try:
        cls = simulators.resolve_class(class_path)
    except Exception as e:  # a user's module may fail to import in any way
        return None, f"simulator {class_path} is not importable ({str(e).splitlines()[0]})"
    options = spec.metadata.get("simulator_options") or {}
    try:
        simulator = cls(**options)
    except Exception as e:
        return None, f"simulator {class_path}(**{options}) failed to build ({type(e).__name__}: {e})"
    if [dataclasses.asdict(latent) for latent in simulator.latents] != [dataclasses.asdict(l) for l in spec.latents] \
            or tuple(simulator.output_spec.shape) != spec.shape:
        return None, (f"simulator {class_path} no longer matches the export (its latents or output changed since "
                      "training)")
    return simulator, None
