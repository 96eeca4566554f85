"""The networks: a generator G (the latents' network coding -> the generator's raw
prediction) and an encoder E (x -> [mean | log_std | logits]: a diagonal Gaussian over the
normalised continuous latents, class logits of the categorical ones; with
model.posterior_components > 1 the Gaussian is the most probable of a mixture's, see
`mixture`), DCGAN for 64x64
images, MLP for signals; `build_models` picks the family, `latent_layout` knows the
layouts."""

from __future__ import annotations

from simvae_tf.errors import ConfigError


def model_family(config, simulator) -> str:
    family = config.model.family
    if family == "auto":
        return "dcgan" if simulator.output_spec.is_image else "mlp"
    return family


def check_family(config, simulator) -> str:
    """The model family, or a ConfigError when it cannot read the simulator's outputs."""
    family, spec = model_family(config, simulator), simulator.output_spec
    if family == "dcgan":
        from simvae_tf.models import dcgan

        if not spec.is_image or spec.shape[:2] != (dcgan.IMAGE_SIZE, dcgan.IMAGE_SIZE):
            raise ConfigError(f"model.family='dcgan' needs 64x64 images, but {simulator.name!r} outputs "
                              f"{spec.kind} of shape {spec.shape}; use model.family='mlp' or 'auto'")
    elif family != "mlp":
        raise ConfigError(f"model.family={family!r} unknown; use 'auto', 'dcgan' or 'mlp'")
    return family


def build_models(config, simulator):
    """(generator, encoder) keras.Models for the simulator's output kind; call inside the
    strategy scope. The generator reads the latents' network coding and the encoder
    answers in the layout of `latent_layout.LatentLayout` (one-hot inputs and class logits
    for categorical latents). With model.precision "mixed_bfloat16" both compute in
    bfloat16 and return float32."""
    if config.model.precision == "float32":
        return _build_models(config, simulator)
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.model.precision)
    try:
        generator, encoder = _build_models(config, simulator)
    finally:
        keras.config.set_dtype_policy(previous)
    return _float32_outputs(generator), _float32_outputs(encoder)


def _float32_outputs(model):
    import keras

    output = keras.layers.Activation("linear", dtype="float32", name="float32_output")(model.output)
    return keras.Model(model.input, output, name=model.name)


def _build_models(config, simulator):
    from simvae_tf.models.latent_layout import LatentLayout

    layout = LatentLayout(simulator.latents)
    family, spec = check_family(config, simulator), simulator.output_spec
    k, num_logits = layout.network_width, sum(layout.sizes)
    num_gaussian = len(layout.continuous)
    if family == "dcgan":
        from simvae_tf.models import dcgan

        channels = spec.shape[-1]
        return (dcgan.build_generator(k, channels, config.model.width, config.model.coord_conv,
                                      config.model.stem_layers),
                dcgan.build_encoder(channels, num_gaussian, config.model.width, config.model.coord_conv, num_logits,
                                    config.model.posterior_components, config.model.ink_profiles))
    from simvae_tf import losses
    from simvae_tf.models import mlp

    likelihood = losses.likelihood_of(spec.kind, simulator.stochastic)
    return (mlp.build_generator(k, spec.shape, config.model.width, config.model.depth,
                                heteroscedastic=likelihood == losses.HETEROSCEDASTIC_SIGNAL),
            mlp.build_encoder(spec.shape, num_gaussian, config.model.width, config.model.depth, num_logits,
                              config.model.posterior_components))

