"""The networks: a generator G (latents in [-1, 1] -> the generator's raw prediction) and
an encoder E (x -> [mean | log_std] of a diagonal Gaussian over the normalised latents),
DCGAN for 64x64 images, MLP for signals; `build_models` picks the family."""

from __future__ import annotations

from simvae_tf.errors import ConfigError


def model_family(config, simulator) -> str:
    family = config.model.family
    if family == "auto":
        return "dcgan" if simulator.output_spec.is_image else "mlp"
    return family


def build_models(config, simulator):
    """(generator, encoder) keras.Models for the simulator's output kind; call inside the
    strategy scope."""
    family, spec, k = model_family(config, simulator), simulator.output_spec, simulator.num_latents
    if family == "dcgan":
        from simvae_tf.models import dcgan

        if not spec.is_image or spec.shape[:2] != (dcgan.IMAGE_SIZE, dcgan.IMAGE_SIZE):
            raise ConfigError(f"model.family='dcgan' needs 64x64 images, but {simulator.name!r} outputs "
                              f"{spec.kind} of shape {spec.shape}; use model.family='mlp' or 'auto'")
        channels = spec.shape[-1]
        return (dcgan.build_generator(k, channels, config.model.width, config.model.coord_conv,
                                      config.model.stem_layers),
                dcgan.build_encoder(channels, k, config.model.width, config.model.coord_conv))
    if family == "mlp":
        from simvae_tf import losses
        from simvae_tf.models import mlp

        likelihood = losses.likelihood_of(spec.kind, simulator.stochastic)
        return (mlp.build_generator(k, spec.shape, config.model.width, config.model.depth,
                                    heteroscedastic=likelihood == losses.HETEROSCEDASTIC_SIGNAL),
                mlp.build_encoder(spec.shape, k, config.model.width, config.model.depth))
    raise ConfigError(f"model.family={family!r} unknown; use 'auto', 'dcgan' or 'mlp'")


def split_posterior(posterior):
    """The encoder's output [..., 2K] -> (mean, log_std), each [..., K] (a tensor or an
    array: the one place that knows the layout)."""
    import tensorflow as tf

    mean, log_std = tf.split(posterior, 2, axis=-1)
    return mean, log_std
