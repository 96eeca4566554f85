"""How the networks see the latents, and how the encoder's output splits into a posterior.

Every latent has a normalised coordinate u in [-1, 1] (`simulators.base.normalize`). The
generator's input (the "network coding") is u itself for a continuous latent and a one-hot
vector over the values of a categorical one (`Latent(values=...)`), concatenated in the
latents' order: [B, network_width]. The encoder's output is

    [mean (Kc) | log_std (Kc) | logits of each categorical latent (V_1 | V_2 | ...)]

with Kc the continuous latents: a diagonal Gaussian over those, a categorical
distribution over each categorical one. Without categorical latents the coding is u
itself and the output [mean (K) | log_std (K)], exactly what runs before categorical
latents trained. `posterior_parts` turns the output into the per-latent arrays a
`posterior.Posterior` holds (a categorical latent's column: its most probable value and
the std of its distribution, in normalised coordinates) plus the class probabilities.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from simvae_tf.simulators import base

# The least std a categorical latent's column reports (normalised units): a sure class.
MIN_CATEGORICAL_STD = 1e-6


class LatentLayout:
    def __init__(self, latents: Sequence[base.Latent]):
        self.latents = tuple(latents)
        self.continuous = [k for k, latent in enumerate(self.latents) if not latent.is_categorical]
        self.categorical = [k for k, latent in enumerate(self.latents) if latent.is_categorical]
        # Each categorical latent's values in normalised coordinates, [V_k].
        self.values_u = {k: base.normalize([self.latents[k]], np.asarray(self.latents[k].values)[:, None])[:, 0]
                         for k in self.categorical}

    @property
    def has_categorical(self) -> bool:
        return bool(self.categorical)

    @property
    def sizes(self) -> list[int]:
        return [len(self.values_u[k]) for k in self.categorical]

    @property
    def network_width(self) -> int:
        return len(self.continuous) + sum(self.sizes)

    @property
    def encoder_width(self) -> int:
        return 2 * len(self.continuous) + sum(self.sizes)

    # -- the generator's input ------------------------------------------------------------
    def category_index(self, u, k: int):
        """The index of the value of categorical latent k nearest the normalised u [B] (TF)."""
        import tensorflow as tf

        values = tf.constant(self.values_u[k], tf.float32)
        return tf.argmin(tf.abs(tf.cast(u, tf.float32)[:, None] - values[None, :]), axis=1)

    def network_input(self, u):
        """Normalised latents [B, K] -> the generator's input [B, network_width] (TF): u
        itself without categorical latents."""
        if not self.has_categorical:
            return u
        import tensorflow as tf

        u = tf.cast(u, tf.float32)
        one_hots = [tf.one_hot(self.category_index(u[:, k], k), len(self.values_u[k])) for k in self.categorical]
        return self.assemble(tf.gather(u, self.continuous, axis=1), one_hots)

    def assemble(self, continuous, one_hots: Sequence):
        """The generator's input from the continuous latents [B, Kc] and one (possibly
        relaxed) one-hot [B, V_j] per categorical latent, in the latents' order (TF)."""
        import tensorflow as tf

        columns, next_continuous = [], 0
        one_hot_of = dict(zip(self.categorical, one_hots))
        for k in range(len(self.latents)):
            if k in one_hot_of:
                columns.append(tf.cast(one_hot_of[k], continuous.dtype))
            else:
                columns.append(continuous[:, next_continuous:next_continuous + 1])
                next_continuous += 1
        return tf.concat(columns, axis=1)

    # -- the encoder's output ---------------------------------------------------------------
    def split(self, output):
        """Encoder output [B, encoder_width] -> (mean [B, Kc], log_std [B, Kc], [logits
        [B, V_j] per categorical latent]) (TF)."""
        import tensorflow as tf

        kc = len(self.continuous)
        parts = tf.split(output, [kc, kc, *self.sizes], axis=-1)
        return parts[0], parts[1], list(parts[2:])

    def posterior_parts(self, output):
        """(mean_u [B, K], log_std_u [B, K], probabilities [per categorical latent, B x V])
        of an encoder output (TF): continuous columns are the Gaussian's; a categorical
        column holds the most probable value and the log std of the class distribution."""
        import tensorflow as tf

        mean_c, log_std_c, logits = self.split(tf.convert_to_tensor(output, tf.float32))
        if not self.has_categorical:
            return mean_c, log_std_c, []
        probabilities = [tf.nn.softmax(l, axis=-1) for l in logits]
        mean_columns, log_std_columns = {}, {}
        for j, k in enumerate(self.continuous):
            mean_columns[k], log_std_columns[k] = mean_c[:, j], log_std_c[:, j]
        for p, k in zip(probabilities, self.categorical):
            values = tf.constant(self.values_u[k], tf.float32)
            mean_columns[k] = tf.gather(values, tf.argmax(p, axis=-1))
            expected = tf.reduce_sum(p * values, axis=-1)
            variance = tf.maximum(tf.reduce_sum(p * tf.square(values), axis=-1) - tf.square(expected), 0.0)
            log_std_columns[k] = 0.5 * tf.math.log(tf.maximum(variance, MIN_CATEGORICAL_STD ** 2))
        order = range(len(self.latents))
        return (tf.stack([mean_columns[k] for k in order], axis=1), tf.stack([log_std_columns[k] for k in order], axis=1),
                probabilities)
