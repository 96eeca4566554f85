"""Using an export from your own Keras code, without simvae_tf.

A SimVAE export is two TensorFlow SavedModels plus a metadata.json; nothing here imports
simvae_tf. Two uses:

  (a) `build_autoencoder`: a Keras model x -> E -> G -> x_hat that de-renders an
      observation into the simulator's interpretable latents and re-renders it with the
      differentiable surrogate; a building block for larger models (its layers can be
      frozen parts of a network you train).
  (b) `fit_latents`: analysis by synthesis. Starting from the encoder's posterior mean,
      gradient descent through the generator finds the latents whose rendering best
      matches the observation (the encoder is a fast first guess; a few hundred gradient
      steps refine it).

    python examples/downstream_keras.py --model=runs/box/export [--input=observation.npy]

Without --input it renders an observation from random latents with the generator, so the
answer is known, and compares the encoder's estimate and the fitted one with it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def read_metadata(export_dir: str) -> dict:
    with open(os.path.join(export_dir, "metadata.json")) as f:
        return json.load(f)


def load_layers(export_dir: str) -> tuple[keras.layers.Layer, keras.layers.Layer]:
    """(encoder, generator) as Keras layers: encoder(x) -> dict of posterior tensors,
    generator(latents in physical units) -> x."""
    encoder = keras.layers.TFSMLayer(os.path.join(export_dir, "encoder"), call_endpoint="serve", name="encoder")
    generator = keras.layers.TFSMLayer(os.path.join(export_dir, "generator"), call_endpoint="serve", name="generator")
    return encoder, generator


def build_autoencoder(export_dir: str) -> keras.Model:
    """x -> {"latents": E(x) posterior mean (physical units), "latents_std", "x_hat": G(E(x))}."""
    metadata = read_metadata(export_dir)
    encoder, generator = load_layers(export_dir)
    x = keras.Input(shape=tuple(metadata["output_spec"]["shape"]), name="x")
    posterior = encoder(x)
    x_hat = generator(posterior["mean"])
    return keras.Model(x, {"latents": posterior["mean"], "latents_std": posterior["std"], "x_hat": x_hat},
                       name="derender_rerender")


class SavedModels:
    """The export's SavedModels as loaded objects, for what a Keras layer cannot call: the
    latent map (`to_physical`, `to_normalized`: physical units <-> the networks' [-1, 1],
    log value for log-scale latents) and the stage-1 `discrepancy`. They are endpoints of
    the export, so this code never copies the map or the loss."""

    def __init__(self, export_dir: str):
        self.encoder = tf.saved_model.load(os.path.join(export_dir, "encoder"))
        self.generator = tf.saved_model.load(os.path.join(export_dir, "generator"))
        self.latent_names = [latent["name"] for latent in read_metadata(export_dir)["latents"]]

    def to_physical(self, u):
        return self.generator.to_physical(tf.convert_to_tensor(u, tf.float32))

    def to_normalized(self, z):
        return self.generator.to_normalized(tf.convert_to_tensor(z, tf.float32))

    def discrepancy(self, x, z):
        """Per-example D[x, G(z)], the loss G was trained with (z in physical units)."""
        return self.generator.discrepancy(z, tf.convert_to_tensor(x, tf.float32))


def fit_latents(export_dir: str, x: np.ndarray, steps: int = 200, learning_rate: float = 0.05,
                initial_latents: np.ndarray | None = None, models: SavedModels | None = None) -> dict:
    """Analysis by synthesis for a batch x [B, ...]: Adam on the latents (in the networks'
    [-1, 1] coordinates, where a step means the same for every latent; projected back onto
    the trained range after each step) to minimise the discrepancy between x and G(z).
    Starts from the encoder's posterior mean unless `initial_latents` (physical) is given.
    Returns {"latents", "initial_latents" (physical, [B, K]), "loss": [steps + 1, B]}."""
    models = models or SavedModels(export_dir)
    x = tf.constant(x, tf.float32)
    if initial_latents is None:
        start = models.encoder.serve(x)["mean_normalized"]
    else:
        start = models.to_normalized(initial_latents)
    u = tf.Variable(tf.clip_by_value(start, -1.0, 1.0))
    optimizer = keras.optimizers.Adam(learning_rate)

    def loss_per_example():
        return models.discrepancy(x, models.to_physical(u))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_per_example()
            # A sum, not a mean: each row's gradient is its own example's, so the rows of a
            # batch are fitted independently, as if one at a time.
            total = tf.reduce_sum(loss)
        optimizer.apply_gradients([(tape.gradient(total, u), u)])
        u.assign(tf.clip_by_value(u, -1.0, 1.0))
        return loss

    initial = models.to_physical(u).numpy()
    losses = [step().numpy() for _ in range(steps)]
    losses.append(loss_per_example().numpy())
    return {"latents": models.to_physical(u).numpy(), "initial_latents": initial, "loss": np.stack(losses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained run's export directory (WORKDIR/export)")
    parser.add_argument("--input", help=".npy observation(s) in the model's format; default: rendered from random latents")
    parser.add_argument("--steps", type=int, default=200, help="gradient steps of the fit")
    parser.add_argument("--learning_rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.model, "metadata.json")):
        parser.error(f"--model={args.model} has no metadata.json; pass a run's export directory (WORKDIR/export)")
    metadata = read_metadata(args.model)
    models = SavedModels(args.model)
    truth = None
    if args.input:
        x = np.load(args.input, allow_pickle=False).astype(np.float32)
        x = x[None] if x.shape == tuple(metadata["output_spec"]["shape"]) else x
    else:
        u = np.random.default_rng(args.seed).uniform(-0.8, 0.8, (1, len(models.latent_names))).astype(np.float32)
        truth = models.to_physical(u).numpy()
        x = models.generator.serve(truth).numpy()

    autoencoder = build_autoencoder(args.model)
    outputs = autoencoder.predict(x, verbose=0)
    started = time.perf_counter()
    fitted = fit_latents(args.model, x, args.steps, args.learning_rate, models=models)
    seconds = time.perf_counter() - started

    rows = [("encoder E(x)", outputs["latents"][0])] + [("fitted", fitted["latents"][0])]
    if truth is not None:
        rows.insert(0, ("truth", truth[0]))
    print("latents of observation 0 (" + metadata.get("name", "?") + "):")
    width = max(12, *(len(name) + 2 for name in models.latent_names))
    print("  " + f"{'':>12}" + "".join(f"{name:>{width}}" for name in models.latent_names))
    for label, values in rows:
        print("  " + f"{label:>12}" + "".join(f"{v:{width}.4g}" for v in values))
    print(f"discrepancy to x: encoder {fitted['loss'][0].mean():.4g} -> fitted {fitted['loss'][-1].mean():.4g} "
          f"({args.steps} Adam steps, {seconds:.1f} s for {len(x)} observation(s))")
    print(f"autoencoder x -> E -> G -> x_hat: mean |x - x_hat| = {np.abs(outputs['x_hat'] - x).mean():.4g}")


if __name__ == "__main__":
    main()
