"""The discrepancy D[x, x_hat] of eqs. 3 and 4, one per output kind.

Every loss returns one value per example (summed over the example's elements), so the
caller decides the reduction: Keras `compile` averages over the global batch for stage 1,
and stage 2's `train_step` uses `tf.nn.compute_average_loss`, which is what makes the
gradients correct under multi-replica strategies.

  binary_image, image: the generator emits logits; D is the Bernoulli cross-entropy of
      each pixel/channel in [0, 1] (a sharp, well-scaled loss for near-binary renderings).
      It is the negative log-likelihood of independent Bernoulli pixels with probabilities
      sigmoid(logits), so for a stochastic image simulator G already learns the
      distribution of x given z (each pixel's probability of ink), not only a rendering.
  signal: the generator emits standardised values; D = 0.5 * squared error, the Gaussian
      negative log-likelihood with unit variance on standardised outputs.
  heteroscedastic_signal (the likelihood of a stochastic signal simulator): the generator
      emits [..., 2] = (mean, log scale) per standardised output element; D is the full
      Gaussian negative log-likelihood 0.5 ((x - mean) / scale)^2 + log scale + 0.5 log 2 pi,
      so G learns the noise's spread at every z as well as the mean.

The likelihood of a simulator is `likelihood_of(output kind, stochastic)`: its output kind,
except that a stochastic signal simulator gets `HETEROSCEDASTIC_SIGNAL`.

Stage 1 may weight an image's detail pixels (`detail_weights`, stage1.detail_weight): the
pixels where S(z) differs from its 1-pixel blur (edges, markers, thin lines; the
`metrics.detail_mask` that the fidelity score reads) count 1 + detail_weight times. With a
deterministic target every pixel's optimum is still the target, so the weighting moves
where the generator's capacity goes, not what it converges to.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from simvae_tf import metrics

HETEROSCEDASTIC_SIGNAL = "heteroscedastic_signal"
IMAGE_KINDS = ("binary_image", "image")


def likelihood_of(output_kind: str, stochastic: bool) -> str:
    """Which D a simulator's surrogate is trained with: its output kind, or for a stochastic
    signal simulator `HETEROSCEDASTIC_SIGNAL` (images: the Bernoulli likelihood either way)."""
    return HETEROSCEDASTIC_SIGNAL if stochastic and output_kind == "signal" else output_kind


def split_mean_and_log_scale(prediction: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A heteroscedastic generator's prediction [..., 2] -> (mean, log scale), each [...]."""
    return prediction[..., 0], prediction[..., 1]


def detail_weights(x: tf.Tensor, detail_weight: float, sigma: float = metrics.DETAIL_BLUR_SIGMA,
                   threshold: float = metrics.DETAIL_THRESHOLD) -> tf.Tensor:
    """[N, H, W, 1]: 1 + detail_weight where any channel of the images x [N, H, W, C] differs
    from its Gaussian blur (`sigma` pixels, edges repeated) by more than `threshold`, else 1.
    The TensorFlow twin of `metrics.detail_mask`."""
    radius = max(int(math.ceil(3 * sigma)), 1)
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    kernel = tf.constant([t / sum(taps) for t in taps], x.dtype)
    channels = x.shape[-1]
    padded = x
    for axis in (1, 2):  # repeat the edge pixels, as the metric does (tf.pad has no such mode)
        first = tf.gather(padded, [0] * radius, axis=axis)
        last = tf.gather(padded, [padded.shape[axis] - 1] * radius, axis=axis)
        padded = tf.concat([first, padded, last], axis=axis)
    rows = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    blurred = tf.nn.depthwise_conv2d(blurred, tf.reshape(rows, [1, -1, channels, 1]), [1, 1, 1, 1], "VALID")
    detail = tf.reduce_any(tf.abs(x - blurred) > threshold, axis=-1, keepdims=True)
    return 1.0 + detail_weight * tf.cast(detail, x.dtype)


def per_example_discrepancy(kind: str, x: tf.Tensor, prediction: tf.Tensor, detail_weight: float = 0.0) -> tf.Tensor:
    x = tf.cast(x, prediction.dtype)
    if kind in IMAGE_KINDS:
        elementwise = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=prediction)
        if detail_weight:
            elementwise = elementwise * detail_weights(x, detail_weight)
    elif kind == "signal":
        elementwise = 0.5 * tf.square(x - prediction)
    elif kind == HETEROSCEDASTIC_SIGNAL:
        mean, log_scale = split_mean_and_log_scale(prediction)
        elementwise = 0.5 * tf.square((x - mean) * tf.exp(-log_scale)) + log_scale + 0.5 * math.log(2.0 * math.pi)
    else:
        raise ValueError(f"no discrepancy for output kind {kind!r}")
    return tf.reduce_sum(tf.reshape(elementwise, [tf.shape(elementwise)[0], -1]), axis=1)


def gaussian_nll_per_target(targets: tf.Tensor, mean: tf.Tensor, log_std: tf.Tensor) -> tf.Tensor:
    """-log N(t; mean, diag(exp(log_std))^2) of each of G targets t: targets [B, G, K], mean
    and log_std [B, K] -> [B, G]."""
    targets = tf.cast(targets, mean.dtype)
    standardised = (targets - mean[:, None, :]) * tf.exp(-log_std)[:, None, :]
    return tf.reduce_sum(0.5 * tf.square(standardised) + log_std[:, None, :] + 0.5 * math.log(2.0 * math.pi), axis=-1)


def categorical_nll_per_target(target_indices: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """-log p(class) of each of G target classes: target_indices [B, G] (int), logits
    [B, V] -> [B, G]."""
    log_p = tf.nn.log_softmax(logits, axis=-1)
    return -tf.gather(log_p, tf.cast(target_indices, tf.int32), batch_dims=1)


def straight_through_gumbel_softmax(logits: tf.Tensor, uniform: tf.Tensor, temperature) -> tf.Tensor:
    """A one-hot sample of the categorical distribution softmax(logits) [B, V] whose
    gradient is that of its Gumbel-softmax relaxation at `temperature` (Jang et al. 2017,
    straight-through): the frozen generator sees the one-hots it was trained on, the
    encoder's logits get gradients. `uniform` [B, V] in (0, 1) carries the noise."""
    soft = tf.nn.softmax((logits - tf.math.log(-tf.math.log(uniform))) / temperature, axis=-1)
    hard = tf.one_hot(tf.argmax(soft, axis=-1), tf.shape(logits)[-1], dtype=soft.dtype)
    return hard + soft - tf.stop_gradient(soft)


def slide_along_orbit(targets: tf.Tensor, mean: tf.Tensor, log_std: tf.Tensor, direction) -> tf.Tensor:
    """Each target [B, G, K] moved along the continuous invariance's `direction` [K]
    (normalised coordinates) to the point of its orbit line that is most likely under
    N(mean, diag(exp(log_std))^2): t = d' S^-1 (mean - t0) / d' S^-1 d."""
    d = tf.constant(direction, mean.dtype)
    inverse_variance = tf.exp(-2.0 * log_std)[:, None, :]
    targets = tf.cast(targets, mean.dtype)
    shift = tf.reduce_sum(d * inverse_variance * (mean[:, None, :] - targets), axis=-1) / tf.reduce_sum(
        d * d * inverse_variance, axis=-1)
    return targets + shift[..., None] * d


def orbit_line_gaussian_nll_per_target(targets: tf.Tensor, mean: tf.Tensor, log_std: tf.Tensor, direction
                                       ) -> tf.Tensor:
    """-log of the Gaussian's mass on each target's orbit line, per unit length along
    `direction` [K] (normalised coordinates, unit length): the integral over t of
    N(t0 + t d; mean, S), i.e. the NLL at the line's most likely point
    (`slide_along_orbit`) plus 1/2 log(d' S^-1 d / 2 pi). Every point of the line
    simulates to the same x, so this scores the encoder on what x determines, wherever
    along the line it answers, and calibrates its spread across the line (the profile
    alone, without the second part, would reward shrinking the spread along it). [B, G]."""
    d = tf.constant(direction, mean.dtype)
    slid = slide_along_orbit(targets, mean, log_std, direction)
    along = tf.reduce_sum(d * d * tf.exp(-2.0 * log_std), axis=-1)  # d' S^-1 d, [B]
    return gaussian_nll_per_target(slid, mean, log_std) + 0.5 * tf.math.log(along / (2.0 * math.pi))[:, None]


def prediction_to_output(kind: str, prediction: tf.Tensor) -> tf.Tensor:
    """Maps the generator's raw prediction to the observation space (before de-standardising):
    the mean of x given z under the likelihood `kind`."""
    if kind in IMAGE_KINDS:
        return tf.sigmoid(prediction)
    return split_mean_and_log_scale(prediction)[0] if kind == HETEROSCEDASTIC_SIGNAL else prediction


def prediction_spread(kind: str, prediction: tf.Tensor) -> tf.Tensor:
    """The standard deviation of x given z under the likelihood `kind` (before
    de-standardising): the predicted scale of a heteroscedastic signal, sqrt(p (1 - p)) of
    Bernoulli pixels, and 0 for a deterministic signal (its surrogate is a point prediction)."""
    if kind in IMAGE_KINDS:
        p = tf.sigmoid(prediction)
        return tf.sqrt(p * (1.0 - p))
    if kind == HETEROSCEDASTIC_SIGNAL:
        return tf.exp(split_mean_and_log_scale(prediction)[1])
    return tf.zeros_like(prediction)


def sample_prediction(kind: str, prediction: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One draw of x given z per row under the likelihood `kind` (before de-standardising),
    a pure function of `seed` (a shape-[2] integer tensor, `tf.random.stateless_*`): Bernoulli
    pixels in {0, 1}, Gaussian heteroscedastic signals, the mean of a deterministic signal."""
    mean = prediction_to_output(kind, prediction)
    if kind in IMAGE_KINDS:
        return tf.cast(tf.random.stateless_uniform(tf.shape(mean), seed=seed, dtype=mean.dtype) < mean, mean.dtype)
    if kind == HETEROSCEDASTIC_SIGNAL:
        noise = tf.random.stateless_normal(tf.shape(mean), seed=seed, dtype=mean.dtype)
        return mean + prediction_spread(kind, prediction) * noise
    return mean


@keras.saving.register_keras_serializable(package="simvae_tf")
class Discrepancy(keras.losses.Loss):
    """D as a Keras loss for `compile` (stage 1): per-example values, Keras reduces."""

    def __init__(self, kind: str, detail_weight: float = 0.0, name: str = "discrepancy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.kind = kind
        self.detail_weight = float(detail_weight)

    def call(self, y_true, y_pred):
        return per_example_discrepancy(self.kind, y_true, y_pred, self.detail_weight)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "detail_weight": self.detail_weight}
