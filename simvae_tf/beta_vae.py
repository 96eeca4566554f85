"""The beta-VAE baseline (Higgins et al. 2017): `--config.method=beta_vae`.

Unsupervised, unlike SimVAE: an encoder and a decoder trained jointly on the simulator's
outputs only (the latents never enter), loss D[x, dec(z)] + beta KL(q(z|x) || N(0, I)),
z = mu + eps sigma. Same networks as SimVAE (the DCGAN encoder and generator, or the MLPs
for signals), same batch, optimizer and output discrepancy, and the same budget: by default
stage1.steps + stage2.steps. Its latents have no names, so it is scored by what compares:
MIM and MIG of the encoder means against the simulator's factors (the same estimator and
bins as SimVAE's), and the reconstruction's fidelity. benchmarks/objective_ablation.py puts
it beside SimVAE.

Workdir: checkpoints/beta_vae (resumable), tensorboard/beta_vae, metrics.json.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from simvae_tf import config as config_lib
from simvae_tf import data, losses, metrics, models, simulators, training
from simvae_tf.errors import ConfigError
from simvae_tf.training_data import TrainingData
from simvae_tf.workdir import Workdir

STAGE = "beta_vae"


class BetaVAE(keras.Model):
    """Encoder and decoder trained jointly (eq.: reconstruction + beta x KL per example)."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, output_kind: str, beta: float, seed: int = 0,
                 **kwargs):
        super().__init__(name="beta_vae", **kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.output_kind, self.beta, self.seed = output_kind, float(beta), int(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "reconstruction", "kl")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        return self.encoder(x, training=training)

    def per_example_losses(self, x, training: bool = False) -> dict[str, tf.Tensor]:
        mean, log_std = tf.split(self.encoder(x, training=training), 2, axis=-1)
        # Noise: a pure function of (seed, step), so a resumed run sees what an uninterrupted one saw.
        step = tf.cast(self.optimizer.iterations, tf.int64)
        eps = tf.random.stateless_normal(tf.shape(mean), seed=tf.stack([tf.constant(self.seed, tf.int64), step]))
        prediction = self.decoder(mean + eps * tf.exp(log_std), training=training)
        kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(2.0 * log_std) - 1.0 - 2.0 * log_std, axis=-1)
        reconstruction = losses.per_example_discrepancy(self.output_kind, x, prediction)
        return {"loss": reconstruction + self.beta * kl, "reconstruction": reconstruction, "kl": kl}

    def train_step(self, x):
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.per_example_losses(x, training=True)
            loss = tf.nn.compute_average_loss(terms["loss"])
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._update(terms)

    def test_step(self, x):
        return self._update(self.per_example_losses(x))

    def _update(self, terms):
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def build_networks(config, simulator) -> tuple[keras.Model, keras.Model]:
    """(encoder x -> [mean | log_std] of beta_vae.latent_dim, decoder) of SimVAE's families."""
    dim, spec = int(config.beta_vae.latent_dim), simulator.output_spec
    if models.check_family(config, simulator) == "dcgan":
        from simvae_tf.models import dcgan

        channels = spec.shape[-1]
        return (dcgan.build_encoder(channels, dim, config.model.width, config.model.coord_conv),
                dcgan.build_generator(dim, channels, config.model.width, config.model.coord_conv,
                                      config.model.stem_layers))
    from simvae_tf.models import mlp

    return (mlp.build_encoder(spec.shape, dim, config.model.width, config.model.depth),
            mlp.build_generator(dim, spec.shape, config.model.width, config.model.depth))


def stage_config(config):
    """The training block: stage 2's schedule and loop length, over the whole budget."""
    block = config.stage2.copy_and_resolve_references()
    block.steps = int(config.beta_vae.steps) or int(config.stage1.steps + config.stage2.steps)
    block.steps_per_loop = min(block.steps_per_loop, block.steps)
    return block


def output_kind(simulator) -> str:
    if simulator.stochastic and not simulator.output_spec.is_image:
        raise ConfigError("method='beta_vae' takes deterministic signal simulators or images; this simulator "
                          "is stochastic: use method='simvae'")
    return simulator.output_spec.kind if simulator.output_spec.is_image else "signal"


def score(simulator, encoder: keras.Model, decoder: keras.Model, scaler, eval_config, seed: int, kind: str) -> dict:
    """MIM / MIG of the encoder means against the factors (normalised coordinates, the
    estimator of `metrics`), the number of active latents (mean posterior variance < 0.5),
    and the reconstruction's fidelity, on fresh simulations (stream "evaluation")."""
    from simvae_tf.simulators import base

    v, x = data.physical_batch(simulator, seed, "evaluation", eval_config.num_samples)
    x_model = (x - scaler.mean) / scaler.std
    mean, log_std = np.split(encoder.predict(x_model, batch_size=256, verbose=0), 2, axis=-1)
    v_u = base.normalize(simulator.latents, v)
    discrete = [latent.discrete for latent in simulator.latents]
    mim = metrics.mutual_information_matrix(mean, v_u, eval_config.num_bins, discrete_v=discrete)
    mig, per_factor = metrics.mig(mim, simulator.mig_factors)
    factors = simulator.mig_factors or range(len(simulator.latents))
    reconstruction = np.asarray(losses.prediction_to_output(kind, decoder.predict(mean, batch_size=256, verbose=0)))
    reconstruction = reconstruction * scaler.std + scaler.mean
    fidelity = {"mean_abs_error": float(np.abs(reconstruction - x).mean())}
    if simulator.output_spec.is_image:
        fidelity.update(psnr_db=metrics.psnr(x, reconstruction),
                        foreground_iou=metrics.observable_consistency_images(x, reconstruction),
                        **metrics.detail_error(x, reconstruction))
    return {
        "mim": [[None if not np.isfinite(m) else round(float(m), 4) for m in row] for row in mim],
        "mig": float(mig),
        "mig_per_factor": {simulator.latent_names[k]: (None if not np.isfinite(g) else float(g))
                           for k, g in zip(factors, per_factor)},
        "active_latents": int(np.sum(np.exp(2 * log_std).mean(axis=0) < 0.5)),
        "reconstruction": fidelity,
    }


def check(config, simulator) -> None:
    """What the baseline refuses, before anything is written."""
    config_lib.validate(config)
    if config.method != STAGE:
        raise ConfigError(f"config.method={config.method!r}: simvae_tf.beta_vae.fit trains method='beta_vae'")
    if config.model.precision != "float32" or config.model.jit_compile:
        raise ConfigError("method='beta_vae' trains in float32 without XLA: drop --config.model.precision and "
                          "--config.model.jit_compile")
    training.loops(stage_config(config))  # steps divisible into loops
    output_kind(simulator)
    models.check_family(config, simulator)


def fit(sim, config, workdir: str, verbose: int = 1) -> dict:
    """Trains (resuming from the workdir's checkpoint), scores and writes metrics.json;
    returns the metrics. One process, the default strategy, op determinism on."""
    started = time.time()
    simulator = simulators.make(sim, config.simulator.to_dict())
    check(config, simulator)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    kind = output_kind(simulator)
    directory = Workdir(workdir)
    training_data = TrainingData(simulator, config, directory.root, verbose)
    data.simulate_batch(simulator, config.seed, "probe", 0, 2)  # a broken simulator fails before any file
    training_data.check_dataset()
    directory.record(simulators.name_of(sim), simulator, config)
    training_data.record_dataset()
    keras.utils.set_random_seed(config.seed)  # the networks' initialisation, whatever ran before
    encoder, decoder = build_networks(config, simulator)
    model = BetaVAE(encoder, decoder, kind, config.beta_vae.beta, seed=config.seed)
    block = stage_config(config)
    model.compile(optimizer=training.make_optimizer(block))
    model.optimizer.build(encoder.trainable_variables + decoder.trainable_variables)
    if verbose:
        print(f"beta-VAE: encoder and decoder on simulator outputs only, beta {config.beta_vae.beta:g}, "
              f"{config.beta_vae.latent_dim} latents ({block.steps} steps)", flush=True)
    logs = training.run_stage(STAGE, model, block, directory.path("checkpoints", STAGE),
                              lambda start: training_data.dataset("stage2", start, element="x"),
                              directory.writer(STAGE), verbose=verbose)
    directory.record_training({STAGE: logs})
    trained_now = bool(logs)
    results = {"method": STAGE, "simulator": simulator.name, "seed": config.seed,
               "eval_samples": config.eval.num_samples, "num_bins": config.eval.num_bins,
               "latent_names": simulator.latent_names, "beta": float(config.beta_vae.beta),
               "latent_dim": int(config.beta_vae.latent_dim), "steps": int(block.steps),
               STAGE: score(simulator, encoder, decoder, training_data.scaler(), config.eval, config.seed, kind)}
    # A rerun of a finished run only scores: it keeps the training run's time.
    previous = directory.read_metrics().get("seconds")
    results["seconds"] = round(time.time() - started, 1) if trained_now or previous is None else previous
    directory.update_metrics(results)
    if verbose:
        block_ = results[STAGE]
        print(f"beta-VAE evaluation ({config.eval.num_samples} samples): MIG {block_['mig']:.3f}, "
              f"{block_['active_latents']} active latents of {config.beta_vae.latent_dim}. "
              f"Results in {directory.root}: metrics.json, TensorBoard: tensorboard --logdir "
              f"{directory.path('tensorboard')}", flush=True)
    return results

