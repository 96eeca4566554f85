"""The discrepancy D[x, x_hat] of eqs. 3 and 4, one per output kind.

Every loss returns one value per example (summed over the example's elements), so the
caller decides the reduction: Keras `compile` averages over the global batch for stage 1,
and stage 2's `train_step` uses `tf.nn.compute_average_loss`, which is what makes the
gradients correct under multi-replica strategies.

  binary_image, image: the generator emits logits; D is the Bernoulli cross-entropy of
      each pixel/channel in [0, 1] (a sharp, well-scaled loss for near-binary renderings).
  signal: the generator emits standardised values; D = 0.5 * squared error, the Gaussian
      negative log-likelihood with unit variance on standardised outputs.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def per_example_discrepancy(kind: str, x: tf.Tensor, prediction: tf.Tensor) -> tf.Tensor:
    x = tf.cast(x, prediction.dtype)
    if kind in ("binary_image", "image"):
        elementwise = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=prediction)
    elif kind == "signal":
        elementwise = 0.5 * tf.square(x - prediction)
    else:
        raise ValueError(f"no discrepancy for output kind {kind!r}")
    return tf.reduce_sum(tf.reshape(elementwise, [tf.shape(elementwise)[0], -1]), axis=1)


def nearest_target_gaussian_nll(targets: tf.Tensor, mean: tf.Tensor, log_std: tf.Tensor) -> tf.Tensor:
    """-log N(t; mean, diag(exp(log_std))^2) for the most likely of each example's G
    equivalent targets t: targets [B, G, K], mean and log_std [B, K] -> [B]. The minimum
    lets the encoder settle on any one of equivalent answers instead of their average."""
    targets = tf.cast(targets, mean.dtype)
    standardised = (targets - mean[:, None, :]) * tf.exp(-log_std)[:, None, :]
    nll = tf.reduce_sum(0.5 * tf.square(standardised) + log_std[:, None, :] + 0.5 * math.log(2.0 * math.pi), axis=-1)
    return tf.reduce_min(nll, axis=1)


def slide_along_orbit(targets: tf.Tensor, mean: tf.Tensor, log_std: tf.Tensor, direction) -> tf.Tensor:
    """Each target [B, G, K] moved along the continuous invariance's `direction` [K]
    (normalised coordinates) to the point of its orbit line that is most likely under
    N(mean, diag(exp(log_std))^2): t = d' S^-1 (mean - t0) / d' S^-1 d. Every point of the
    line simulates to the same x, so the encoder is scored on what x determines, wherever
    along the line it answers (the continuous twin of the nearest equivalent target)."""
    d = tf.constant(direction, mean.dtype)
    inverse_variance = tf.exp(-2.0 * log_std)[:, None, :]
    targets = tf.cast(targets, mean.dtype)
    shift = tf.reduce_sum(d * inverse_variance * (mean[:, None, :] - targets), axis=-1) / tf.reduce_sum(
        d * d * inverse_variance, axis=-1)
    return targets + shift[..., None] * d


def prediction_to_output(kind: str, prediction: tf.Tensor) -> tf.Tensor:
    """Maps the generator's raw prediction to the observation space (before de-standardising)."""
    return tf.sigmoid(prediction) if kind in ("binary_image", "image") else prediction


@keras.saving.register_keras_serializable(package="simvae_tf")
class Discrepancy(keras.losses.Loss):
    """D as a Keras loss for `compile` (stage 1): per-example values, Keras reduces."""

    def __init__(self, kind: str, name: str = "discrepancy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kind = kind

    def call(self, y_true, y_pred):
        return per_example_discrepancy(self.kind, y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}
