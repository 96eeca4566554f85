"""Fully connected generator and encoder for 1-D signal simulators (the paper's "simple
feed-forward architecture" for the RLC circuit, section 4).

Both work on *standardised* signals: the data pipeline maps x to (x - mean) / std per
element before the networks see it, and maps the generator's output back, so the
generator predicts standardised values and the encoder reads them. `width` is the number
of hidden units per layer and `depth` the number of hidden layers; swish activations
(smooth, so the frozen generator gives the encoder smooth gradients in stage 2) and no
BatchNorm (stage 2 differentiates through the generator at its trained weights).
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import keras
from keras import layers

# One convention for both model families: the same bounded mean and log-std.
from simvae_tf.models.dcgan import SoftClip, posterior_heads

ACTIVATION = "swish"
# The log scale of a heteroscedastic generator (standardised units), soft-clipped: finite
# losses, and no spread below e^-7 of the data's own.
LOG_SCALE_RANGE = (-7.0, 3.0)


def build_generator(num_latents: int, output_shape: Sequence[int], width: int = 128, depth: int = 3,
                    heteroscedastic: bool = False) -> keras.Model:
    """Normalised latents [B, K] in [-1, 1] -> standardised signals [B, *output_shape], or
    with `heteroscedastic` (a stochastic simulator) [B, *output_shape, 2]: the mean and the
    log scale of a Gaussian per output element (`losses.HETEROSCEDASTIC_SIGNAL`)."""
    output_shape = _checked(num_latents, output_shape, width, depth)
    latents = keras.Input((num_latents,), name="latents")
    h = latents
    for i in range(depth):
        h = layers.Dense(width, activation=ACTIVATION, name=f"hidden_{i}")(h)
    flat = layers.Dense(math.prod(output_shape), name="flat_output")(h)
    output = layers.Reshape(output_shape, name="output")(flat)
    if heteroscedastic:
        log_scale = SoftClip(*LOG_SCALE_RANGE, name="log_scale")(
            layers.Dense(math.prod(output_shape), name="flat_log_scale")(h))
        log_scale = layers.Reshape(output_shape, name="log_scale_output")(log_scale)
        output = keras.ops.stack([output, log_scale], axis=-1)
    return keras.Model(latents, output, name="generator")


def build_encoder(output_shape: Sequence[int], num_latents: int, width: int = 128, depth: int = 3,
                  num_logits: int = 0, num_components: int = 1) -> keras.Model:
    """Standardised signals [B, *output_shape] -> concat(mean, log_std, logits)
    [B, 2K + num_logits] (`dcgan.posterior_heads`)."""
    # Without Gaussian latents there must be class logits (all latents categorical).
    output_shape = _checked(num_latents if not num_logits else max(num_latents, 1), output_shape, width, depth)
    signals = keras.Input(output_shape, name="x")
    h = layers.Flatten()(signals)
    for i in range(depth):
        h = layers.Dense(width, activation=ACTIVATION, name=f"hidden_{i}")(h)
    return keras.Model(signals, posterior_heads(h, num_latents, num_logits, ("mean_raw", "log_std_raw"),
                                                       num_components),
                       name="encoder")


def _checked(num_latents: int, output_shape: Sequence[int], width: int, depth: int) -> tuple[int, ...]:
    for label, value, least in (("num_latents", num_latents, 1), ("model.width", width, 1), ("model.depth", depth, 0)):
        if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least):
            raise ValueError(f"mlp: {label}={value!r}; use an integer >= {least}")
    shape = tuple(output_shape)
    if not shape or not all(isinstance(s, numbers.Integral) and s >= 1 for s in shape):
        raise ValueError(f"mlp: output_shape={output_shape!r}; use a tuple of positive integers such as (65, 2)")
    return tuple(int(s) for s in shape)
