"""The networks: a generator G (the latents' network coding -> the generator's raw
prediction) and an encoder E (x -> [mean | log_std | logits]: a diagonal Gaussian over the
normalised continuous latents, class logits of the categorical ones), DCGAN for 64x64
images, MLP for signals; `build_models` picks the family, `latent_layout` knows the
layouts."""

from __future__ import annotations

from simvae_tf.errors import ConfigError


def model_family(config, simulator) -> str:
    family = config.model.family
    if family == "auto":
        return "dcgan" if simulator.output_spec.is_image else "mlp"
    return family


def build_models(config, simulator):
    """(generator, encoder) keras.Models for the simulator's output kind; call inside the
    strategy scope. The generator reads the latents' network coding and the encoder
    answers in the layout of `latent_layout.LatentLayout` (one-hot inputs and class logits
    for categorical latents)."""
    from simvae_tf.models.latent_layout import LatentLayout

    layout = LatentLayout(simulator.latents)
    family, spec = model_family(config, simulator), simulator.output_spec
    k, num_logits = layout.network_width, sum(layout.sizes)
    num_gaussian = len(layout.continuous)
    if family == "dcgan":
        from simvae_tf.models import dcgan

        if not spec.is_image or spec.shape[:2] != (dcgan.IMAGE_SIZE, dcgan.IMAGE_SIZE):
            raise ConfigError(f"model.family='dcgan' needs 64x64 images, but {simulator.name!r} outputs "
                              f"{spec.kind} of shape {spec.shape}; use model.family='mlp' or 'auto'")
        channels = spec.shape[-1]
        return (dcgan.build_generator(k, channels, config.model.width, config.model.coord_conv,
                                      config.model.stem_layers),
                dcgan.build_encoder(channels, num_gaussian, config.model.width, config.model.coord_conv, num_logits))
    if family == "mlp":
        from simvae_tf import losses
        from simvae_tf.models import mlp

        likelihood = losses.likelihood_of(spec.kind, simulator.stochastic)
        return (mlp.build_generator(k, spec.shape, config.model.width, config.model.depth,
                                    heteroscedastic=likelihood == losses.HETEROSCEDASTIC_SIGNAL),
                mlp.build_encoder(spec.shape, num_gaussian, config.model.width, config.model.depth, num_logits))
    raise ConfigError(f"model.family={family!r} unknown; use 'auto', 'dcgan' or 'mlp'")

