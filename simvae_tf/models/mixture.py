"""A posterior head with several hypotheses: a mixture of M diagonal Gaussians over the
continuous latents, of which the encoder answers the most probable one.

Why: where equivalent latent vectors draw the same x (polygon's 8 vertex orders), any one
of them is a right answer, but a single Gaussian's mean is a continuous function of x, and
no continuous function picks one ordered answer for every unordered point set. Near the
boundaries of whatever convention a single head learns, it averages two orders and
misplaces vertices (benchmarks/RESULTS.md, "polygon: reference (exact) posterior"). M
heads may keep M conventions whose boundaries differ, and the gate switches between them
as sharply as it likes, so the answer can jump where it must.

Layout: the layer named `COMPONENTS_LAYER` outputs [B, M, 2K + 1], per component
(mean [K] | log_std [K] | gate logit); `SelectComponent` reduces it to the usual
(mean | log_std) [B, 2K] of the component with the largest gate logit, so every reader of
the encoder's output (posterior, calibration, export) sees the one-Gaussian layout.
Stage 2 scores the whole mixture (`mixture_nll`) through `encoder_with_components`.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

COMPONENTS_LAYER = "components"


@keras.saving.register_keras_serializable(package="simvae_tf")
class SelectComponent(layers.Layer):
    """components [B, M, 2K + 1] -> (mean | log_std) [B, 2K] of the most probable component."""

    def call(self, components):
        best = keras.ops.argmax(components[..., -1], axis=-1)
        chosen = keras.ops.take_along_axis(components, keras.ops.expand_dims(keras.ops.expand_dims(best, -1), -1), axis=1)
        return chosen[:, 0, :-1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2] - 1)


def components_head(h, num_latents: int, num_components: int, soft_clip, mean_bound: float, log_std_range):
    """The [B, M, 2K + 1] mixture from the last hidden layer (means and log stds bounded as
    the one-Gaussian head bounds them)."""
    def per_component(width, name):
        return layers.Reshape((num_components, width))(layers.Dense(num_components * width, name=name)(h))

    mean = soft_clip(-mean_bound, mean_bound, name="mean")(per_component(num_latents, "mean_raw"))
    log_std = soft_clip(*log_std_range, name="log_std")(per_component(num_latents, "log_std_raw"))
    gate = per_component(1, "gate")
    return layers.Concatenate(name=COMPONENTS_LAYER)([mean, log_std, gate])


def num_components(encoder: keras.Model) -> int:
    """M of a mixture encoder; 1 for the one-Gaussian head."""
    try:
        return int(encoder.get_layer(COMPONENTS_LAYER).output.shape[1])
    except ValueError:
        return 1


def encoder_with_components(encoder: keras.Model):
    """x -> (the encoder's output, its components [B, M, 2K + 1]) in one pass (shares the
    encoder's weights), or None for a one-Gaussian encoder."""
    if num_components(encoder) == 1:
        return None
    return keras.Model(encoder.input, [encoder.output, encoder.get_layer(COMPONENTS_LAYER).output])


def split_components(components: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """[B, M, 2K + 1] -> (mean [B, M, K], log_std [B, M, K], log weights [B, M])."""
    k = (components.shape[-1] - 1) // 2
    mean, log_std, gate = tf.split(components, [k, k, 1], axis=-1)
    return mean, log_std, tf.nn.log_softmax(gate[..., 0], axis=-1)


def mixture_nll(component_nll: tf.Tensor, log_weights: tf.Tensor) -> tf.Tensor:
    """-log sum_m w_m q_m(target): each component's -log q_m [B, M] and log weights [B, M] -> [B]."""
    return -tf.reduce_logsumexp(log_weights - component_nll, axis=1)
