"""The two SimVAE stages as Keras models, trained with `fit` under a tf.distribute strategy.

Stage 1 (eq. 3): the generator itself, compiled with the discrepancy D and fitted on
(z, S(z)) pairs: a supervised surrogate of the simulator.
Stage 2 (eq. 4): `InverseModel`, whose custom `train_step` encodes x, draws
z = mu + eps * sigma, decodes with the frozen generator and minimises D[x, G(z)]
(+ an optional KL term). The true z never enters stage 2.

Checkpoint layout (owned here): ROOT/checkpoints/stage1 holds the generator (as `model`)
and its optimizer; ROOT/checkpoints/stage2 the InverseModel (the encoder as
`model.encoder`) and its optimizer.

Resume order (each stage): build models and optimizer inside the strategy scope ->
build optimizer slots -> restore the latest checkpoint -> read the step from the
optimizer -> build the data stream from that step -> fit the remaining loops.
"""

from __future__ import annotations

import math
import os

import keras
import tensorflow as tf

from simvae_tf import losses, multiworker
from simvae_tf.models import mixture
from simvae_tf.errors import ConfigError, NonFiniteLossError


class InverseModel(keras.Model):
    """Stage 2: trains the encoder through the frozen generator (eq. 4).

    With `latent_weight` > 0 each batch is (x, targets) and the loss adds, per example,
    `latent_weight` x the Gaussian negative log-likelihood of the simulated latents under
    q(z|x), scored against the nearest equivalent latent vector (`data.latent_targets_of`).
    This is amortized posterior estimation on the simulator's own (z, x) pairs, beyond the
    paper: it sharpens the inverse where the surrogate G is blurry and calibrates the
    posterior std, which the reconstruction term alone drives towards zero (README).
    A batch (x, targets, target_weights) weighs the term per example: adaptation mixes
    observations without latents (weight 0) with simulated pairs (weight 1).
    `reconstruction_weight` weighs eq. 4's term; 0 (with a latent term) leaves eq. 5 alone,
    the inverse fitted on simulated pairs only.

    Categorical latents (`layout`, `models.latent_layout`): the encoder also answers
    logits; the reconstruction passes a straight-through Gumbel-softmax sample through the
    frozen generator, at a temperature decaying exponentially from `temperatures[0]` to
    `temperatures[1]` over `total_steps`; the latent term adds the class's -log p.

    A mixture encoder (`models.mixture`): the reconstruction decodes a draw of the
    component the encoder answers (its most probable); the latent term is the whole
    mixture's -log q, each component scored against its own nearest equivalent target."""

    def __init__(self, encoder: keras.Model, generator: keras.Model, output_kind: str,
                 kl_weight: float = 0.0, seed: int = 0, latent_weight: float = 0.0, orbit_direction=None,
                 layout=None, temperatures: tuple[float, float] = (1.0, 1.0), total_steps: int = 1,
                 reconstruction_weight: float = 1.0, **kwargs):
        super().__init__(name="inverse_simulator", **kwargs)
        self.encoder = encoder
        self.generator = generator
        self.generator.trainable = False
        self.output_kind = output_kind
        self.kl_weight = float(kl_weight)
        self.latent_weight = float(latent_weight)
        self.reconstruction_weight = float(reconstruction_weight)
        # A continuous invariance (RLC): targets slide along it (`losses.slide_along_orbit`).
        self.orbit_direction = None if orbit_direction is None else [float(d) for d in orbit_direction]
        self.layout = layout if layout is not None and layout.has_categorical else None
        self.temperatures = tuple(float(t) for t in temperatures)
        self.total_steps = max(int(total_steps), 1)
        self.seed = int(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.latent_nll_tracker = keras.metrics.Mean(name="latent_nll")
        # A plain function, not an attribute Keras tracks: the two-output view shares the
        # encoder's variables, and checkpoints keep naming them through `encoder` alone.
        view = mixture.encoder_with_components(encoder)
        self._encode_with_components = None if view is None else (lambda x, training: view(x, training=training))

    def call(self, x, training=False):
        return self.encoder(x, training=training)

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]
        return trackers + [self.latent_nll_tracker] if self.latent_weight > 0 else trackers

    def _global_draw(self, draw, shape, stream: int = 0) -> tf.Tensor:
        """`draw(shape, seed)` for this replica's rows of the global batch: rows r*B..(r+1)*B-1
        of one draw for the whole global batch, a pure function of (seed, stream, step).
        Resumed runs see the same noise as uninterrupted ones, and each example the same
        noise whatever the number of replicas and workers (replica r holds rows r*B.. of
        each batch)."""
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        rows = shape[0]
        global_shape = tf.concat([[rows * num_replicas], shape[1:]], axis=0)
        step = tf.cast(self.optimizer.iterations, tf.int64)
        noise = draw(global_shape, tf.stack([tf.constant(self.seed + 1_000_003 * stream, tf.int64), step]))
        return noise[replica * rows:(replica + 1) * rows]

    def sample_noise(self, shape) -> tf.Tensor:
        """eps ~ N(0, I) of the reparameterised Gaussian."""
        return self._global_draw(lambda s, seed: tf.random.stateless_normal(s, seed=seed), shape)

    def temperature(self) -> tf.Tensor:
        start, end = self.temperatures
        progress = tf.minimum(tf.cast(self.optimizer.iterations, tf.float32) / self.total_steps, 1.0)
        return start * (end / start) ** progress

    def _posterior(self, x, training: bool):
        """(mean, log_std of the continuous latents, logits of the categorical ones, the
        mixture's components [B, M, 2K + 1] or None)."""
        components = None
        if self._encode_with_components is None:
            output = self.encoder(x, training=training)
        else:
            output, components = self._encode_with_components(x, training)
            components = tf.cast(components, output.dtype)  # float32 under mixed precision too
        if self.layout is None:
            mean, log_std = tf.split(output, 2, axis=-1)
            return mean, log_std, [], components
        return (*self.layout.split(output), components)

    def _sample(self, mean, log_std, logits):
        """The generator's input at one posterior draw (straight-through for categories)."""
        z = mean + self.sample_noise(tf.shape(mean)) * tf.exp(log_std)
        if self.layout is None:
            return z
        one_hots = [losses.straight_through_gumbel_softmax(l, self._global_draw(
            lambda s, seed: tf.random.stateless_uniform(s, seed=seed, minval=1e-7, maxval=1 - 1e-7), tf.shape(l), 1 + j),
            self.temperature()) for j, l in enumerate(logits)]
        return self.layout.assemble(z, one_hots)

    def _latent_nll(self, targets, mean, log_std, logits, components=None) -> tf.Tensor:
        """-log q(target | x) of the most likely equivalent target, [B]; of a mixture, each
        component takes its own most likely target."""
        if components is None:
            return tf.reduce_min(self._nll_per_target(targets, mean, log_std, logits), axis=1)
        means, log_stds, log_weights = mixture.split_components(components)
        per_component = tf.stack([tf.reduce_min(self._nll_per_target(targets, means[:, m], log_stds[:, m], logits), axis=1)
                                  for m in range(components.shape[1])], axis=1)
        return mixture.mixture_nll(per_component, log_weights)

    def _nll_per_target(self, targets, mean, log_std, logits) -> tf.Tensor:
        """-log q(target | x) of each equivalent target, [B, G]."""
        if self.layout is None:
            if self.orbit_direction is not None:
                return losses.orbit_line_gaussian_nll_per_target(targets, mean, log_std, self.orbit_direction)
            return losses.gaussian_nll_per_target(targets, mean, log_std)
        targets = tf.cast(targets, mean.dtype)
        nll = losses.gaussian_nll_per_target(tf.gather(targets, self.layout.continuous, axis=2), mean, log_std)
        for j, k in enumerate(self.layout.categorical):
            values = tf.constant(self.layout.values_u[k], mean.dtype)
            index = tf.argmin(tf.abs(targets[:, :, k:k + 1] - values), axis=-1)
            nll += losses.categorical_nll_per_target(index, logits[j])
        return nll

    def _unpack(self, batch):
        """(x, targets or None, per-example weights of the latent term or None)."""
        if self.latent_weight <= 0:
            return batch, None, None
        return batch if len(batch) == 3 else (*batch, None)

    def per_example_losses(self, batch, training: bool = False) -> dict[str, tf.Tensor]:
        x, targets, target_weights = self._unpack(batch)
        mean, log_std, logits, components = self._posterior(x, training)
        prediction = self.generator(self._sample(mean, log_std, logits), training=False)
        kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(2.0 * log_std) - 1.0 - 2.0 * log_std, axis=-1)
        for l in logits:  # KL(q || uniform) of each category
            kl += tf.reduce_sum(tf.nn.softmax(l) * tf.nn.log_softmax(l), axis=-1) + tf.math.log(
                tf.cast(tf.shape(l)[-1], kl.dtype))
        terms = {"reconstruction": losses.per_example_discrepancy(self.output_kind, x, prediction), "kl": kl}
        terms["loss"] = self.reconstruction_weight * terms["reconstruction"] + self.kl_weight * terms["kl"]
        if targets is not None:
            terms["latent_nll"] = self._latent_nll(targets, mean, log_std, logits, components)
            weights = 1.0 if target_weights is None else tf.cast(target_weights, mean.dtype)
            terms["loss"] += self.latent_weight * weights * terms["latent_nll"]
            if target_weights is not None:
                terms["latent_nll_weights"] = weights
        return terms

    def _update_trackers(self, terms: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        for tracker in self.metrics:
            # latent_nll is averaged over the examples that have latents.
            weights = terms.get("latent_nll_weights") if tracker.name == "latent_nll" else None
            tracker.update_state(terms[tracker.name], sample_weight=weights)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            terms = self.per_example_losses(batch, training=True)
            # Sum over this replica's examples / global batch: summing gradients over
            # replicas (Keras does) then gives the global-batch mean.
            loss = tf.nn.compute_average_loss(terms["loss"])
        variables = self.encoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._update_trackers(terms)

    def test_step(self, batch):
        return self._update_trackers(self.per_example_losses(batch))


# -- callbacks --------------------------------------------------------------------------------
def optimizer_step(model: keras.Model) -> int:
    """The optimizer's step count (`int()` of a Keras variable fails under a distribution
    strategy, where its value is a MirroredVariable)."""
    return int(model.optimizer.iterations.numpy())


class FiniteLossGuard(keras.callbacks.Callback):
    """Stops a stage with a clear error as soon as the loss is NaN/Inf (before any
    checkpoint of the bad state is written)."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = optimizer_step(self.model)
            raise NonFiniteLossError(
                f"{self.stage}: loss became {float(loss)} at step {step}; the last good checkpoint is kept. "
                f"Lower {self.stage}.learning_rate or check the simulator's outputs, then rerun to resume")


class CheckpointEveryLoop(keras.callbacks.Callback):
    """Saves a tf.train.Checkpoint at the end of each loop ("epoch"). TF writes the data
    files first and then atomically renames the index, so a kill mid-write leaves the
    previous checkpoint as the latest one."""

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=optimizer_step(self.model))


class ScalarSummaries(keras.callbacks.Callback):
    """Loss scalars against the global step (survives resume, unlike epoch indices)."""

    def __init__(self, writer):
        super().__init__()
        self.writer = writer

    def on_epoch_end(self, epoch, logs=None):
        step = optimizer_step(self.model)
        with self.writer.as_default(step=step):
            for name, value in (logs or {}).items():
                tf.summary.scalar(name, float(value))
        self.writer.flush()


class PeriodicCallback(keras.callbacks.Callback):
    """Calls `fn(step)` every `every` loops and at the last one (image summaries)."""

    def __init__(self, fn, every: int):
        super().__init__()
        self.fn, self.every = fn, max(1, int(every))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.params.get("epochs"):
            self.fn(optimizer_step(self.model))


# -- running a stage --------------------------------------------------------------------------
def loops(stage_config) -> tuple[int, int]:
    """(steps per loop, number of loops); steps must be a multiple of the loop length."""
    steps = int(stage_config.steps)
    per_loop = min(int(stage_config.steps_per_loop), steps)
    if steps % per_loop:
        raise ConfigError(f"steps={steps} is not a multiple of steps_per_loop={per_loop}; "
                          "change one of them so it divides evenly")
    return per_loop, steps // per_loop


def restore(manager: tf.train.CheckpointManager, checkpoint: tf.train.Checkpoint) -> None:
    """Every object of `checkpoint` must get its value; values the checkpoint holds beyond
    them (the frozen generator's stage-1 optimizer, saved when both stages ran in one
    process) are left unread without a warning."""
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched().expect_partial()


def run_stage(stage: str, model: keras.Model, stage_config, checkpoint_dir: str, make_data, writer,
              summary_fn=None, verbose: int = 1) -> dict:
    """Fits `model` for the stage's remaining steps; returns the last loop's logs.

    `model` must be compiled (with its optimizer built) inside the strategy scope;
    `make_data(start_batch)` builds the stream from the resumed step."""
    per_loop, num_loops = loops(stage_config)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
    restore(manager, checkpoint)
    # The other workers of a multi-worker run save to scratch folders: they take the chief's state.
    multiworker.broadcast_from_chief(model.distribute_strategy, model.weights + model.optimizer.variables)
    done = optimizer_step(model)
    total = per_loop * num_loops
    if done >= total:
        print(f"{stage}: already complete ({done}/{total} steps), skipping", flush=True)
        return {}
    if done:
        print(f"{stage}: resuming from step {done}/{total} ({manager.latest_checkpoint or 'the chief worker'})",
              flush=True)
    callbacks = [FiniteLossGuard(stage), CheckpointEveryLoop(manager), ScalarSummaries(writer)]
    if summary_fn is not None:
        callbacks.append(PeriodicCallback(summary_fn, stage_config.summaries_every))
    history = model.fit(make_data(done), epochs=num_loops, initial_epoch=done // per_loop,
                        steps_per_epoch=per_loop, callbacks=callbacks, verbose=verbose, shuffle=False)
    return {k: float(v[-1]) for k, v in history.history.items()}


def committed_step(checkpoint_dir: str) -> int | None:
    """The step of the checkpoint a resume restores: the one TF's state file names (files of
    a newer checkpoint may exist before the state file points at them); None without one."""
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    return int(latest.rsplit("-", 1)[-1]) if latest else None


def stage_is_complete(stage_config, checkpoint_dir: str) -> bool:
    per_loop, num_loops = loops(stage_config)
    step = committed_step(checkpoint_dir)
    return step is not None and step >= per_loop * num_loops


def restore_weights(model: keras.Model, checkpoint_dir: str, what: str, path: tuple[str, ...] = ("model",)) -> None:
    """Loads a stage's final weights of `model` (no optimizer) for evaluation/export/stage 2.

    `path` names where the model sits in the stage's checkpoint (stage 2 saves the encoder
    as model.encoder). The optimizer's slots are left unread on purpose, but every variable
    of `model` must be found: a mismatch fails here rather than evaluating random weights."""
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is None:
        raise FileNotFoundError(f"no {what} checkpoint in {checkpoint_dir}; run --mode=train first")
    root = model
    for name in reversed(path):
        root = tf.train.Checkpoint(**{name: root})
    status = root.restore(latest).expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ConfigError(f"{what} checkpoint {latest} does not fit the model ({str(e).splitlines()[0]}); "
                         "was the workdir trained with another config?") from None


# -- the two stages of a run --------------------------------------------------------------------
STAGES = ("stage1", "stage2")
# Where each stage's trained network sits in its checkpoint.
TRAINED_NETWORK_PATH = {"stage1": ("model",), "stage2": ("model", "encoder")}


def checkpoint_dir(root: str, stage: str) -> str:
    return os.path.join(root, "checkpoints", stage)


def make_optimizer(stage_config) -> keras.optimizers.Optimizer:
    learning_rate = stage_config.learning_rate
    if stage_config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=stage_config.steps)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def train_generator(pair, config, root: str, strategy, make_data, writer, summary_fn=None, verbose: int = 1) -> dict:
    """Stage 1: fits G(z) ~ S(z) on `make_data(start_batch)` ((z, x) batches)."""
    generator = pair.generator
    with strategy.scope():
        generator.compile(optimizer=make_optimizer(config.stage1),
                          loss=losses.Discrepancy(pair.likelihood, config.stage1.detail_weight),
                          jit_compile=config.model.jit_compile)
        generator.optimizer.build(generator.trainable_variables)
    if verbose:
        print(f"stage 1: fitting the generator G(z) ~ S(z) ({config.stage1.steps} steps)", flush=True)
    layout = pair.layout
    if layout.has_categorical:  # the generator reads categorical latents one-hot
        latent_data = make_data

        def make_data(start):
            return latent_data(start).map(lambda z, x: (layout.network_input(z), x))
    return run_stage("stage1", generator, config.stage1, checkpoint_dir(root, "stage1"), make_data, writer,
                     summary_fn=summary_fn, verbose=verbose)


def inverse_model(pair, config, strategy, reconstruction_weight: float | None = None) -> InverseModel:
    """Stage 2's model from the config (`reconstruction_weight` overrides the config's)."""
    if reconstruction_weight is None:
        reconstruction_weight = config.stage2.reconstruction_weight
    with strategy.scope():
        return InverseModel(pair.encoder, pair.generator, pair.likelihood, config.stage2.kl_weight,
                            seed=config.seed, latent_weight=config.stage2.latent_weight,
                            orbit_direction=pair.orbit_direction, layout=pair.layout,
                            temperatures=(config.stage2.gumbel_temperature, config.stage2.gumbel_temperature_end),
                            total_steps=config.stage2.steps,
                            reconstruction_weight=reconstruction_weight)


def train_encoder(pair, config, root: str, strategy, make_data, writer, summary_fn=None, verbose: int = 1) -> dict:
    """Stage 2: fits E through the frozen stage-1 generator on `make_data(start_batch)`."""
    if multiworker.role(strategy).is_chief:  # the others take it from the chief
        restore_network(pair.generator, root, "stage1")
    multiworker.broadcast_from_chief(strategy, pair.generator.weights)
    model = inverse_model(pair, config, strategy)
    with strategy.scope():
        model.compile(optimizer=make_optimizer(config.stage2), jit_compile=config.model.jit_compile)
        model.optimizer.build(pair.encoder.trainable_variables)
    if verbose:
        weight = config.stage2.reconstruction_weight
        terms = ([f"through the frozen generator (weight {weight:g})" if weight != 1 else "through the frozen generator"]
                 if weight > 0 else [])
        if config.stage2.latent_weight > 0:
            terms.append(f"on the simulated latents (weight {config.stage2.latent_weight:g})")
        print(f"stage 2: fitting the encoder {' + '.join(terms)} ({config.stage2.steps} steps)", flush=True)
    return run_stage("stage2", model, config.stage2, checkpoint_dir(root, "stage2"), make_data, writer,
                     summary_fn=summary_fn, verbose=verbose)


def restore_network(network: keras.Model, root: str, stage: str) -> None:
    what = {"stage1": "stage-1 generator", "stage2": "stage-2 encoder"}[stage]
    restore_weights(network, checkpoint_dir(root, stage), what, path=TRAINED_NETWORK_PATH[stage])


def restore_pair(pair, root: str) -> None:
    """Loads both stages' final weights into the pair (for evaluation and export)."""
    restore_network(pair.generator, root, "stage1")
    restore_network(pair.encoder, root, "stage2")


def is_trained(config, root: str) -> bool:
    return all(stage_is_complete(config[stage], checkpoint_dir(root, stage)) for stage in STAGES)
