"""DCGAN-style generator and encoder for 64x64 images (Radford et al. 2016, paper section 4).

`width` is the channel count of the widest-resolution layer; the others double towards
the 4x4 bottleneck (width 64 is the DCGAN paper's size, 16 trains on a laptop CPU).
The generator optionally concatenates pixel-coordinate channels before each
up-convolution (CoordConv, Liu et al. 2018): drawing an object *at* a latent position is
hard for plain transposed convolutions, easy with coordinates to compare against.
"""

from __future__ import annotations

import keras
from keras import layers

IMAGE_SIZE = 64
LOG_STD_RANGE = (-7.0, 2.0)
MEAN_BOUND = 1.05


@keras.saving.register_keras_serializable(package="simvae_tf")
class AddCoordinates(layers.Layer):
    """Appends two channels holding each pixel's (row, column) position in [-1, 1]."""

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        rows = keras.ops.linspace(-1.0, 1.0, height)
        cols = keras.ops.linspace(-1.0, 1.0, width)
        grid_r = keras.ops.broadcast_to(rows[:, None, None], (height, width, 1))
        grid_c = keras.ops.broadcast_to(cols[None, :, None], (height, width, 1))
        grid = keras.ops.concatenate([grid_r, grid_c], axis=-1)
        grid = keras.ops.broadcast_to(grid[None], (batch, height, width, 2))
        return keras.ops.concatenate([inputs, keras.ops.cast(grid, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[:-1] + (input_shape[-1] + 2,)


@keras.saving.register_keras_serializable(package="simvae_tf")
class SoftClip(layers.Layer):
    """Smoothly squashes values into [low, high] (keeps log-std finite without dead gradients)."""

    def __init__(self, low: float, high: float, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = float(low), float(high)

    def call(self, inputs):
        mid, half = (self.high + self.low) / 2, (self.high - self.low) / 2
        return mid + half * keras.ops.tanh((inputs - mid) / half)

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


@keras.saving.register_keras_serializable(package="simvae_tf")
class InkProfiles(layers.Layer):
    """Sub-pixel position features of images in [0, 1]: per column, its ink (the sum of its
    pixels) and the ink-weighted mean row; per row, the same across columns; rows and columns
    in [-1, 1]. [B, H, W, C] -> [B, 2 * (H + W) * C].

    Why: strided convolutions and a dense layer lose where within a pixel an edge sits, which
    is where the fine latents live (Fourier's 5th harmonics move the curve by ~2 px). A
    least-squares fit of the per-column ink centroids alone beat the encoder there (MIG 0.855
    against 0.841, benchmarks/RESULTS.md); these profiles hand it the same numbers."""

    def call(self, images):
        shape = keras.ops.shape(images)
        height, width = shape[1], shape[2]
        rows = keras.ops.reshape(keras.ops.linspace(-1.0, 1.0, height), (1, -1, 1, 1))
        cols = keras.ops.reshape(keras.ops.linspace(-1.0, 1.0, width), (1, 1, -1, 1))
        column_ink, row_ink = keras.ops.sum(images, axis=1), keras.ops.sum(images, axis=2)  # [B, W, C], [B, H, C]
        column_centroid = keras.ops.sum(images * keras.ops.cast(rows, images.dtype), axis=1) / (column_ink + 1e-3)
        row_centroid = keras.ops.sum(images * keras.ops.cast(cols, images.dtype), axis=2) / (row_ink + 1e-3)
        features = [column_ink / keras.ops.cast(height, images.dtype), column_centroid,
                    row_ink / keras.ops.cast(width, images.dtype), row_centroid]
        return keras.ops.concatenate([keras.ops.reshape(f, (shape[0], -1)) for f in features], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * (input_shape[1] + input_shape[2]) * input_shape[3])


def build_generator(num_latents: int, channels: int, width: int = 32, coord_conv: bool = True,
                    stem_layers: int = 0) -> keras.Model:
    """Normalised latents [B, K] -> logits [B, 64, 64, channels].

    `stem_layers` hidden ReLU layers (16 * width units) come before the projection to the
    4x4 feature map. DCGAN projects its noise linearly, which suits a 100-d noise vector
    but not a handful of interpretable factors: with the stem the surrogate's error drops
    2-4x at the same steps (box, polygon, Fourier, dSprites; benchmarks/RESULTS.md)."""
    latents = keras.Input((num_latents,), name="latents")
    h = latents
    for _ in range(stem_layers):
        h = layers.Dense(16 * width, activation="relu")(h)
    h = layers.Dense(4 * 4 * 8 * width, use_bias=False)(h)
    h = layers.BatchNormalization(synchronized=True)(h)
    h = layers.ReLU()(h)
    h = layers.Reshape((4, 4, 8 * width))(h)
    for multiplier in (4, 2, 1):
        if coord_conv:
            h = AddCoordinates()(h)
        h = layers.Conv2DTranspose(multiplier * width, 4, strides=2, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization(synchronized=True)(h)
        h = layers.ReLU()(h)
    if coord_conv:
        h = AddCoordinates()(h)
    logits = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="logits")(h)
    return keras.Model(latents, logits, name="generator")


def posterior_heads(h, num_latents: int, num_logits: int = 0, raw_names: tuple = (None, None),
                    num_components: int = 1):
    """concat(mean [K], log_std [K], logits [num_logits]) from the last hidden layer: the
    layout `models.latent_layout` reads. mean is soft-clipped to [-MEAN_BOUND, MEAN_BOUND]
    (the generator only knows [-1, 1]) and log_std to LOG_STD_RANGE (finite KL terms, no
    dead gradients); with num_logits 0 the layers are those of runs before categorical
    latents. With num_components M > 1 (mean | log_std) is the most probable of M
    Gaussians (`models.mixture`)."""
    heads = []
    if num_latents and num_components > 1:
        from simvae_tf.models import mixture

        components = mixture.components_head(h, num_latents, num_components, SoftClip, MEAN_BOUND, LOG_STD_RANGE)
        heads.append(mixture.SelectComponent(name="most_probable_component")(components))
    elif num_latents:
        heads.append(SoftClip(-MEAN_BOUND, MEAN_BOUND, name="mean")(layers.Dense(num_latents, name=raw_names[0])(h)))
        heads.append(SoftClip(*LOG_STD_RANGE, name="log_std")(layers.Dense(num_latents, name=raw_names[1])(h)))
    if num_logits:
        heads.append(layers.Dense(num_logits, name="logits")(h))
    return layers.Concatenate(name="posterior")(heads) if len(heads) > 1 else heads[0]


def build_encoder(channels: int, num_latents: int, width: int = 32, coord_conv: bool = True,
                  num_logits: int = 0, num_components: int = 1, ink_profiles: bool = False) -> keras.Model:
    """Images [B, 64, 64, channels] in [0, 1] -> concat(mean, log_std, logits) [B, 2K + num_logits].
    `ink_profiles` adds `InkProfiles` of the image beside the convolutional features."""
    images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, channels), name="x")
    h = layers.Rescaling(2.0, offset=-1.0)(images)
    if coord_conv:
        h = AddCoordinates()(h)
    for multiplier in (1, 2, 4, 8):
        h = layers.Conv2D(multiplier * width, 4, strides=2, padding="same")(h)
        h = layers.LeakyReLU(0.2)(h)
    h = layers.Flatten()(h)
    if ink_profiles:
        h = layers.Concatenate()([h, InkProfiles()(images)])
    h = layers.Dense(16 * width)(h)
    h = layers.LeakyReLU(0.2)(h)
    # Latents live in [-1, 1] (normalised sampling ranges); a bounded mean keeps the frozen
    # generator inside the region it was trained on.
    return keras.Model(images, posterior_heads(h, num_latents, num_logits, num_components=num_components),
                       name="encoder")
