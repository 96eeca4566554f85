"""How well the misspecification score tells inputs from elsewhere (docs/diagnostics.md).

    .venv/bin/python benchmarks/misspecification.py --models=runs/cal/box/export,runs/cal/rlc/export [--n=500]

For each export: the fraction of inputs flagged (p < 0.01 and p < 0.05) among fresh
simulations of its own simulator (the false-alarm rate; target <= 2% at 0.01) and among
inputs it was not trained on: the other built-in image simulators' outputs brought to the
model's channels (grey <-> RGB, nothing else), and for signal models its own simulator's
outputs shifted the way real measurements go wrong (a gain offset, phase noise). Prints a
markdown table; no training, inference and simulation only.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

if os.getcwd() not in sys.path:  # as under `python -m`, a user's simulator module imports
    sys.path.insert(0, os.getcwd())

IMAGE_SOURCES = {"box": {}, "polygon": {}, "fourier": {}, "dsprites": {"source": "procedural"}}
HELD_OUT_STREAM = 0x515F17


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    if x.shape[-1] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=-1)
    return (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def inputs_for(metadata: dict, own, n: int, seed: int) -> dict[str, np.ndarray]:
    from simvae_tf import data, simulators

    rng = np.random.default_rng([seed, HELD_OUT_STREAM])
    own_x = data.simulate_checked(own, own.sample_latents(rng, n), data.noise_rng(seed, "misspecification_benchmark"))
    inputs = {f"{metadata['name']} (own, fresh)": own_x}
    shape = tuple(metadata["output_spec"]["shape"])
    if metadata["output_spec"]["kind"] in ("image", "binary_image"):
        for name, options in IMAGE_SOURCES.items():
            if name == metadata["name"]:
                continue
            other = simulators.make(name, options)
            x = np.asarray(other.simulate(other.sample_latents(rng, n)), np.float32)
            if x.shape[1:3] == shape[:2]:
                inputs[name] = to_channels(x, shape[-1])
    elif own_x.ndim == 3 and own_x.shape[-1] == 2:  # gain (dB), phase (rad): RLC-like
        inputs["gain +3 dB"] = own_x + np.array([3.0, 0.0], np.float32)
        inputs["phase noise 0.1 rad"] = own_x + np.stack(
            [np.zeros(own_x.shape[:2]), rng.normal(0.0, 0.1, own_x.shape[:2])], axis=-1).astype(np.float32)
    else:
        inputs["+10% of the range, offset"] = own_x + 0.1 * (own_x.max() - own_x.min())
        inputs["white noise, 5% of the range"] = own_x + rng.normal(0.0, 0.05 * (own_x.max() - own_x.min()),
                                                                    own_x.shape).astype(np.float32)
    return inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, help="comma-separated export directories")
    parser.add_argument("--n", type=int, default=500, help="inputs per source")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import simvae_tf as sv
    from simvae_tf import simulators

    print("| model | inputs | flagged at p < 0.01 | at p < 0.05 |\n|---|---|---|---|")
    for export_dir in args.models.split(","):
        model = sv.load(export_dir)
        own = simulators.make(model.metadata["class"], model.metadata.get("simulator_options") or {})
        for name, x in inputs_for(model.metadata, own, args.n, args.seed).items():
            p = model.posterior(x).p_value
            print(f"| {model.metadata['name']} | {name} | {np.mean(p < 0.01):.3f} | {np.mean(p < 0.05):.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
