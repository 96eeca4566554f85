"""The export layout: SavedModels of the surrogate (generator) and the inverse simulator
(encoder) plus metadata.json, written here and read back here (`load`).

Both SavedModels are written with `keras.export.ExportArchive`, so they load anywhere
TensorFlow runs, without simvae_tf: `tf.saved_model.load(DIR).serve(...)` or
`keras.layers.TFSMLayer(DIR, call_endpoint="serve")`. Units are the simulator's own:

  export/generator  serve(latents: float32 [B, K], physical units) -> x: float32 [B, ...],
                        the mean of x given the latents under G's distribution
                    spread(latents [B, K]) -> [B, ...] its std (a stochastic signal
                        simulator's predicted noise; Bernoulli pixels' sqrt(p (1 - p)); 0
                        for a deterministic signal simulator)
                    sample(latents [B, K], seed: int32) -> [B, ...] one seeded draw of x
                        per row (Bernoulli pixels in {0, 1}; the mean for a deterministic
                        signal simulator)
                    discrepancy(latents [B, K], x [B, ...]) -> D[x, G(latents)] [B]
  export/encoder    serve(x: float32 [B, ...]) -> {
                        "mean": [B, K] posterior mean, physical units,
                        "std":  [B, K] posterior std, physical units (delta method for
                                log-scale latents: value * sigma_log),
                        "mean_normalized", "log_std_normalized": [B, K] the raw Gaussian
                                posterior in the networks' [-1, 1] coordinates (sample here;
                                for a latent whose metadata "posterior_dof" or
                                "posterior_power" is a number, the posterior is a Student-t
                                with those degrees of freedom or a generalised normal with
                                that power (`tail_shapes`) and this is the log of its scale)}
                    sample(x [B, ...], num_samples: int32, seed: int32) -> [B, n, K]
                        seeded posterior draws, physical units
                    (under a continuous invariance with a declared direction, RLC's
                    scaling, "mean", "std" and the draws include the uniform spread along
                    the orbit inside the ranges: `posterior.Posterior`; "mean_normalized"
                    and "log_std_normalized" stay the encoder's Gaussian)
  both              to_normalized(latents [B, K]) -> [B, K] and to_physical(u [B, K]) ->
                    [B, K]: the map between physical units and [-1, 1] (log value for
                    log-scale latents), so downstream code never copies it
  export/metadata.json  latent names/units/ranges/scales, output spec, axes, versions.

Directories are written under a temporary name and renamed into place, so a crash never
leaves a half-written export that a later run would trust.
"""

from __future__ import annotations

import os

import numpy as np

import simvae_tf
from simvae_tf import misfit, tail_shapes
from simvae_tf.errors import NotAnExportError
from simvae_tf.files import atomic_replace_dir, read_json, write_json
from simvae_tf.posterior import T_MIXING_FLOOR, Posterior
from simvae_tf.simulators.base import Latent, OutputSpec, latent_bounds

EXPORT_FORMAT = "simvae_tf.export/1"
BATCH_SIZE = 256


def _latent_maps(latents):
    """The physical <-> [-1, 1] map as TF functions (the numpy twin is simulators.base)."""
    import tensorflow as tf

    low, high, is_log = (tf.constant(a, dtype) for a, dtype in zip(latent_bounds(latents), (tf.float32, tf.float32,
                                                                                            tf.bool)))

    def to_normalized(z):
        v = tf.where(is_log, tf.math.log(tf.maximum(z, 1e-30)), z)
        return 2.0 * (v - low) / (high - low) - 1.0

    def to_physical(u):
        v = low + (u + 1.0) * 0.5 * (high - low)
        return tf.where(is_log, tf.exp(v), v)

    def physical_std(value, log_std):
        sigma_v = tf.exp(log_std) * 0.5 * (high - low)
        return tf.where(is_log, value * sigma_v, sigma_v)

    return to_normalized, to_physical, physical_std


def _orbit_maps(direction_u: np.ndarray | None):
    """The orbit spread of `posterior.Posterior` as TF functions (the numpy twin is
    `invariance.orbit_segment` and the Posterior's center/std/sample): (posterior moments,
    draws) of a Gaussian in normalised coordinates."""
    import tensorflow as tf

    def moments(mean_u, log_std_u):
        return mean_u, tf.exp(log_std_u)

    def draws(mean_u, log_std_u, eps, uniform):
        return mean_u[:, None] + tf.exp(log_std_u)[:, None] * eps

    if direction_u is None:
        return moments, draws
    moving = np.flatnonzero(direction_u)
    d = tf.constant(direction_u, tf.float32)
    d_moving = tf.constant(direction_u[moving], tf.float32)
    is_moving = tf.constant(direction_u != 0)

    def bounds(point):
        p = tf.gather(point, moving, axis=1)
        to_lower, to_upper = (-1.0 - p) / d_moving, (1.0 - p) / d_moving
        return tf.reduce_max(tf.minimum(to_lower, to_upper), axis=1), tf.reduce_min(tf.maximum(to_lower, to_upper), axis=1)

    def segment(mean_u):
        base = tf.where(is_moving, mean_u, tf.clip_by_value(mean_u, -1.0, 1.0))
        low, high = bounds(base)
        clipped = tf.clip_by_value(mean_u, -1.0, 1.0)
        clipped_low, clipped_high = bounds(clipped)
        missed = low > high  # the line misses the ranges: start from the clipped point
        return (tf.where(missed[:, None], clipped, base), tf.where(missed, clipped_low, low),
                tf.where(missed, clipped_high, high))

    def orbit_moments(mean_u, log_std_u):
        center, low, high = segment(mean_u)
        spread = (high - low)[:, None] * tf.abs(d) / np.sqrt(12.0)
        return center + 0.5 * (low + high)[:, None] * d, tf.sqrt(tf.exp(2.0 * log_std_u) + tf.square(spread))

    def orbit_draws(mean_u, log_std_u, eps, uniform):
        center, low, high = segment(mean_u)
        offsets = low[:, None] + (high - low)[:, None] * uniform
        return center[:, None] + tf.exp(log_std_u)[:, None] * eps + offsets[..., None] * d

    return orbit_moments, orbit_draws


def export_pair(pair, export_dir: str, extra_metadata: dict | None = None) -> str:
    """Writes a trained pair (`pair.TrainedPair`) as export_dir/{generator,encoder,metadata.json}."""
    import keras
    import tensorflow as tf

    from simvae_tf import losses
    from simvae_tf.models import mixture

    simulator, scaler, layout = pair.simulator, pair.scaler, pair.layout
    kind, k, x_shape = pair.likelihood, simulator.num_latents, tuple(simulator.output_spec.shape)
    to_normalized, to_physical, physical_std = _latent_maps(simulator.latents)
    mean, std = tf.constant(scaler.mean), tf.constant(scaler.std)
    is_image = simulator.output_spec.is_image
    latents_spec = tf.TensorSpec((None, k), tf.float32, name="latents")
    x_spec = tf.TensorSpec((None,) + x_shape, tf.float32, name="x")

    def to_model_space(x):
        return x if is_image else (x - mean) / std

    def archive_with_latent_maps(model):
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("to_normalized", to_normalized, input_signature=[latents_spec])
        archive.add_endpoint("to_physical", to_physical,
                             input_signature=[tf.TensorSpec((None, k), tf.float32, name="latents_normalized")])
        return archive

    def generate(latents):
        prediction = pair.generator(layout.network_input(to_normalized(latents)), training=False)
        out = losses.prediction_to_output(kind, prediction)
        return out if is_image else out * std + mean

    def spread(latents):
        out = losses.prediction_spread(kind, pair.generator(layout.network_input(to_normalized(latents)),
                                                            training=False))
        return out if is_image else out * std

    def sample_x(latents, seed):
        prediction = pair.generator(layout.network_input(to_normalized(latents)), training=False)
        out = losses.sample_prediction(kind, prediction, tf.stack([seed, 0]))
        return out if is_image else out * std + mean

    def discrepancy(latents, x):
        prediction = pair.generator(layout.network_input(to_normalized(latents)), training=False)
        return losses.per_example_discrepancy(kind, to_model_space(x), prediction)

    generator_archive = archive_with_latent_maps(pair.generator)
    generator_archive.add_endpoint("serve", generate, input_signature=[latents_spec])
    generator_archive.add_endpoint("spread", spread, input_signature=[latents_spec])
    generator_archive.add_endpoint("sample", sample_x, input_signature=[
        latents_spec, tf.TensorSpec((), tf.int32, name="seed")])
    generator_archive.add_endpoint("discrepancy", discrepancy, input_signature=[latents_spec, x_spec])

    log_std_offset = tf.constant(np.asarray(pair.log_std_offset, np.float32))
    # Tail shapes (`tail_shapes`, a tail calibration): std = scale * std_factor. Student-t draws
    # divide a Gaussian by sqrt(chi^2_dof / dof), chi^2_dof / dof being Gamma(dof/2, rate
    # dof/2); generalised normal ones are the Gaussian's sign times sqrt(2) Gamma(1/power)^(1/power).
    dof, power = tail_shapes.checked(pair.posterior_dof, pair.posterior_power, k)
    log_std_factor = tf.constant(np.log(tail_shapes.std_factor(dof, power)), tf.float32)
    is_heavy, is_light = tf.constant(np.isfinite(dof)), tf.constant(power != tail_shapes.GAUSSIAN_POWER)
    half_dof = tf.constant(np.where(np.isfinite(dof), dof, 2.0) / 2.0, tf.float32)
    inverse_power = tf.constant(1.0 / power, tf.float32)

    def posterior_u(x):
        mean_u, log_std_u, probabilities = layout.posterior_parts(pair.encoder(to_model_space(x), training=False))
        return mean_u, log_std_u + log_std_offset, probabilities

    orbit_moments, orbit_draws = _orbit_maps(pair.orbit_direction)
    categorical_names = [simulator.latents[j].name for j in layout.categorical]

    def infer(x):
        mean_u, log_std_u, probabilities = posterior_u(x)
        center_u, std_u = orbit_moments(mean_u, log_std_u + log_std_factor)
        value = to_physical(center_u)
        return {"mean": value, "std": physical_std(value, tf.math.log(std_u)), "mean_normalized": mean_u,
                "log_std_normalized": log_std_u,
                **{f"{name}_probabilities": p for name, p in zip(categorical_names, probabilities)}}

    def sample(x, num_samples, seed):
        mean_u, log_std_u, probabilities = posterior_u(x)
        shape = tf.stack([tf.shape(mean_u)[0], num_samples, k])
        eps = tf.random.stateless_normal(shape, seed=tf.stack([seed, 0]))
        if np.isfinite(dof).any():
            chi2_over_dof = tf.random.stateless_gamma(shape, seed=tf.stack([seed, -1]), alpha=half_dof) / half_dof
            eps = tf.where(is_heavy, eps * tf.math.rsqrt(tf.maximum(chi2_over_dof, T_MIXING_FLOOR)), eps)
        if (power != tail_shapes.GAUSSIAN_POWER).any():
            magnitude = tf.random.stateless_gamma(shape, seed=tf.stack([seed, -2]), alpha=inverse_power) ** inverse_power
            eps = tf.where(is_light, tf.sign(eps) * np.sqrt(2.0).astype(np.float32) * magnitude, eps)
        uniform = tf.random.stateless_uniform(shape[:2], seed=tf.stack([seed, 1]))
        draws = orbit_draws(mean_u, log_std_u, eps, uniform)
        for j, (column, p) in enumerate(zip(layout.categorical, probabilities)):  # categories, drawn
            index = tf.random.stateless_categorical(tf.math.log(tf.maximum(p, 1e-30)), num_samples,
                                                    seed=tf.stack([seed, 2 + j]))
            values = tf.gather(tf.constant(layout.values_u[column], tf.float32), index)  # [B, n]
            draws = tf.where(tf.one_hot(column, k, on_value=True, off_value=False), values[..., None], draws)
        return to_physical(draws)

    encoder_archive = archive_with_latent_maps(pair.encoder)
    encoder_archive.add_endpoint("serve", infer, input_signature=[x_spec])
    encoder_archive.add_endpoint("sample", sample, input_signature=[
        x_spec, tf.TensorSpec((), tf.int32, name="num_samples"), tf.TensorSpec((), tf.int32, name="seed")])

    os.makedirs(export_dir, exist_ok=True)
    # write_out(verbose=False) still logs "Assets written to <temporary dir>" at INFO through
    # TensorFlow's Python logger, which notebooks show: quiet it for the write only.
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("WARNING")
    try:
        for name, archive in (("generator", generator_archive), ("encoder", encoder_archive)):
            atomic_replace_dir(os.path.join(export_dir, name), lambda path, a=archive: a.write_out(path, verbose=False))
    finally:
        logger.setLevel(level)
    metadata = {
        "format": EXPORT_FORMAT,
        "simvae_tf_version": simvae_tf.__version__,
        "tensorflow_version": tf.__version__,
        **simulator.describe(),
        "output_scaler": scaler.to_json() if not is_image else None,
        # The D the generator was trained with: its distribution of x given the latents
        # (`losses.likelihood_of`; "heteroscedastic_signal" for a stochastic signal simulator).
        "likelihood": kind,
        # The factor on the encoder's std from post-hoc calibration (1: none), already applied.
        "posterior_std_scale": np.exp(np.asarray(pair.log_std_offset, np.float64)).round(4).tolist(),
        # Each latent's posterior tail shape from the same calibration (`tail_shapes`): Student-t
        # degrees of freedom and generalised normal power, null where the latent has neither
        # (exports that predate a key: none).
        "posterior_dof": tail_shapes.to_json(dof, tail_shapes.GAUSSIAN_DOF),
        "posterior_power": tail_shapes.to_json(power, tail_shapes.GAUSSIAN_POWER),
        # How many Gaussians the encoder's head holds (`models.mixture`): serve and sample
        # describe the most probable one (1: a single Gaussian; older exports: absent).
        "posterior_components": mixture.num_components(pair.encoder),
        # A continuous invariance's direction in normalised coordinates (null: none): the
        # posterior spreads along it (`posterior.Posterior`).
        "orbit_direction": None if pair.orbit_direction is None else pair.orbit_direction.tolist(),
        "signatures": {
            "generator": {"serve": {"inputs": {"latents": [None, k]}, "outputs": [None, *x_shape]},
                          "spread": {"inputs": {"latents": [None, k]}, "outputs": [None, *x_shape]},
                          "sample": {"inputs": {"latents": [None, k], "seed": []}, "outputs": [None, *x_shape]},
                          "discrepancy": {"inputs": {"latents": [None, k], "x": [None, *x_shape]}, "outputs": [None]}},
            "encoder": {"serve": {"inputs": {"x": [None, *x_shape]},
                                  "outputs": ["mean", "std", "mean_normalized", "log_std_normalized",
                                              *(f"{name}_probabilities" for name in categorical_names)]},
                        "sample": {"inputs": {"x": [None, *x_shape], "num_samples": [], "seed": []},
                                   "outputs": [None, "num_samples", k]}},
            "both": {"to_normalized": {"inputs": {"latents": [None, k]}, "outputs": [None, k]},
                     "to_physical": {"inputs": {"latents_normalized": [None, k]}, "outputs": [None, k]}},
        },
        **{name: np.asarray(value).tolist() for name, value in simulator.signal_axes().items()},
        **(extra_metadata or {}),
    }
    write_json(os.path.join(export_dir, "metadata.json"), metadata, sort_keys=False)
    return export_dir


def read_metadata(export_dir: str) -> dict:
    """Checks that export_dir is a simvae_tf export and returns its metadata."""
    if not os.path.isdir(export_dir):
        raise NotAnExportError(f"--model={export_dir} does not exist; pass a run's export directory (WORKDIR/export)")
    try:
        metadata = read_json(os.path.join(export_dir, "metadata.json"))
    except (OSError, ValueError):
        raise NotAnExportError(f"--model={export_dir} is not a simvae_tf export (no readable metadata.json); "
                               "pass a run's export directory (WORKDIR/export)") from None
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise NotAnExportError(f"--model={export_dir}: metadata format {found!r} is not "
                               f"{EXPORT_FORMAT!r}; re-export with this simvae_tf version (--mode=export)")
    for part in ("generator", "encoder"):
        if not os.path.exists(os.path.join(export_dir, part, "saved_model.pb")):
            raise NotAnExportError(f"--model={export_dir}: {part}/saved_model.pb is missing; re-export (--mode=export)")
    return metadata


def latents_and_output(export_dir: str, metadata: dict) -> tuple[tuple[Latent, ...], OutputSpec]:
    """The latents and output spec an export's metadata declares."""
    try:
        latents = tuple(Latent(**entry) for entry in metadata["latents"])
        spec = metadata["output_spec"]
        return latents, OutputSpec(shape=tuple(spec["shape"]), kind=spec["kind"])
    except (KeyError, TypeError, ValueError) as e:
        raise NotAnExportError(f"--model={export_dir}: metadata.json lacks a valid latents/output_spec entry ({e}); "
                               "re-export the run (python -m simvae_tf.main --mode=export)") from None


class ExportedPair:
    """A loaded export: the same interface as a trained run's pair (`latents`,
    `output_spec`, `posterior(x)`, `generate(z)`, `discrepancy(z, x)`), from the
    SavedModels and metadata.json alone; neither the simulator's module nor the training
    code is imported."""

    def __init__(self, export_dir: str):
        import tensorflow as tf

        self.directory = os.path.abspath(export_dir)
        self.metadata = read_metadata(export_dir)
        self.latents, self.output_spec = latents_and_output(export_dir, self.metadata)
        self.misfit_reference = misfit.from_metadata(self.metadata)  # None for exports that predate it
        self._tf = tf
        self.encoder = tf.saved_model.load(os.path.join(export_dir, "encoder"))
        self.generator = tf.saved_model.load(os.path.join(export_dir, "generator"))

    def __repr__(self) -> str:
        return (f"ExportedPair({self.directory}: {self.metadata.get('name')}, latents {', '.join(self.latent_names)}, "
                f"output {self.output_spec.kind} {self.output_spec.shape})")

    @property
    def latent_names(self) -> list[str]:
        return [latent.name for latent in self.latents]

    def _batched(self, fn, *arrays) -> list:
        n = len(arrays[0])
        return [fn(*(self._tf.constant(a[i:i + BATCH_SIZE], self._tf.float32) for a in arrays))
                for i in range(0, max(n, 1), BATCH_SIZE)]

    def posterior(self, x: np.ndarray, score_misfit: bool = True) -> Posterior:
        """q(z | x); with the export's misfit reference, also each observation's
        discrepancy and p-value (`simvae_tf.misfit`)."""
        x = _checked_batch(x, self.output_spec.shape, "x")
        parts = self._batched(self.encoder.serve, x)
        def joined(key):
            return np.concatenate([p[key].numpy() for p in parts])

        posterior = Posterior(self.latents, joined("mean_normalized"), joined("log_std_normalized"),
                              orbit_direction=self.metadata.get("orbit_direction"),
                              dof=self.metadata.get("posterior_dof"), power=self.metadata.get("posterior_power"),
                              probabilities={latent.name: joined(f"{latent.name}_probabilities")
                                             for latent in self.latents if latent.is_categorical})
        return misfit.scored(self, x, posterior) if score_misfit and self.generator_has_discrepancy else posterior

    @property
    def generator_has_discrepancy(self) -> bool:
        return hasattr(self.generator, "discrepancy")

    @property
    def stochastic(self) -> bool:
        return bool(self.metadata.get("stochastic", False))

    @property
    def likelihood(self) -> str:
        """The D the generator was trained with (exports that predate the key: the output kind)."""
        return self.metadata.get("likelihood", self.output_spec.kind)

    def generate(self, z: np.ndarray) -> np.ndarray:
        z = _checked_batch(z, (len(self.latents),), "z")
        return np.concatenate([p.numpy() for p in self._batched(self.generator.serve, z)])

    def _generator_endpoint(self, name: str):
        if not hasattr(self.generator, name):
            raise NotAnExportError(f"{self.directory} predates the generator's {name} endpoint; re-export it "
                                   "(--mode=export)")
        return getattr(self.generator, name)

    def spread(self, z: np.ndarray) -> np.ndarray:
        """The std of x given z under G's distribution, [n, ...] (the `spread` endpoint)."""
        z = _checked_batch(z, (len(self.latents),), "z")
        return np.concatenate([p.numpy() for p in self._batched(self._generator_endpoint("spread"), z)])

    def sample(self, z: np.ndarray, seed: int = 0) -> np.ndarray:
        """One seeded draw of x ~ G(z) per latent vector, [n, ...] (the `sample` endpoint,
        in one call: the same draws as the trained pair's `sample`)."""
        z = _checked_batch(z, (len(self.latents),), "z")
        return self._generator_endpoint("sample")(self._tf.constant(z), self._tf.constant(seed, self._tf.int32)).numpy()

    def discrepancy(self, z: np.ndarray, x: np.ndarray) -> np.ndarray:
        """D[x, G(z)] per example, the stage-1 loss (latents in physical units)."""
        if not self.generator_has_discrepancy:
            raise NotAnExportError(f"{self.directory} predates the discrepancy endpoint; re-export it (--mode=export)")
        z = _checked_batch(z, (len(self.latents),), "z")
        x = _checked_batch(x, self.output_spec.shape, "x")
        return np.concatenate([p.numpy() for p in self._batched(self.generator.discrepancy, z, x)])


def _checked_batch(array, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.shape[1:] != tuple(shape):
        raise ValueError(f"{name} has shape {array.shape}; expected a batch [B, {', '.join(map(str, shape))}]")
    return array


def load(export_dir: str) -> ExportedPair:
    """Loads WORKDIR/export (or any export directory) as an `ExportedPair`."""
    return ExportedPair(export_dir)
