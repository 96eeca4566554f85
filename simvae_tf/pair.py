"""A trained pair in memory: the generator G and encoder E of one run, with the
simulator's latents and the output standardisation.

It offers the interface of a loaded export (`export.ExportedPair`): `latents`,
`output_spec`, `posterior(x)`, `generate(z)`, `spread(z)`, `sample(z, seed)` and
`discrepancy(z, x)`, all in the simulator's physical units, so one evaluation and one
`invert` serve both.
"""

from __future__ import annotations

import numpy as np

from simvae_tf import data, misfit, std_calibration
from simvae_tf.posterior import Posterior
from simvae_tf.simulators import base

BATCH_SIZE = 256


class TrainedPair:
    def __init__(self, generator, encoder, simulator: base.Simulator, scaler: data.OutputScaler):
        from simvae_tf.models.latent_layout import LatentLayout

        self.generator = generator
        self.encoder = encoder
        self.simulator = simulator
        self.scaler = scaler
        self.layout = LatentLayout(simulator.latents)  # the networks' view of the latents
        # Sorted reference discrepancies of `misfit` (set by the run once known): with it,
        # posteriors carry a misspecification p-value per observation.
        self.misfit_reference = None
        # Post-hoc calibration (`std_calibration`): log_std_offset, the width factor's log added
        # to the encoder's log std, and each latent's tail shape, posterior_dof and
        # posterior_power (`tail_shapes`). The raw Gaussian until the run sets them.
        std_calibration.uncalibrated(self)

    @property
    def latents(self) -> tuple[base.Latent, ...]:
        return tuple(self.simulator.latents)

    @property
    def orbit_direction(self) -> np.ndarray | None:
        """The continuous invariance's direction in normalised coordinates (or None)."""
        from simvae_tf.simulators import invariance

        return invariance.normalized_direction(self.latents, self.simulator.invariance_direction)

    @property
    def latent_names(self) -> list[str]:
        return self.simulator.latent_names

    @property
    def stochastic(self) -> bool:
        return self.simulator.stochastic

    @property
    def likelihood(self) -> str:
        """The D the generator was trained with (`losses.likelihood_of`)."""
        from simvae_tf import losses

        return losses.likelihood_of(self.output_spec.kind, self.simulator.stochastic)

    @property
    def output_spec(self) -> base.OutputSpec:
        return self.simulator.output_spec

    def to_model_space(self, x: np.ndarray) -> np.ndarray:
        return (x - self.scaler.mean) / self.scaler.std  # identity scaler for images

    def predict_raw(self, z: np.ndarray) -> np.ndarray:
        """The generator's raw prediction (logits for images) at physical latents."""
        coded = self.layout.network_input(base.normalize(self.simulator.latents, z))
        return self.generator.predict(np.asarray(coded), batch_size=BATCH_SIZE, verbose=0)

    def generate(self, z: np.ndarray) -> np.ndarray:
        """The surrogate G in physical units: latents [n, K] -> observations [n, ...]."""
        from simvae_tf import losses

        prediction = self.predict_raw(np.asarray(z))
        out = np.asarray(losses.prediction_to_output(self.likelihood, prediction))
        return out * self.scaler.std + self.scaler.mean  # identity scaler for images

    def spread(self, z: np.ndarray) -> np.ndarray:
        """The std of x given z under G's distribution, [n, ...] in x's units (0 for a
        deterministic signal simulator; `losses.prediction_spread`)."""
        from simvae_tf import losses

        return np.asarray(losses.prediction_spread(self.likelihood, self.predict_raw(np.asarray(z)))) * self.scaler.std

    def sample(self, z: np.ndarray, seed: int = 0) -> np.ndarray:
        """One draw of x ~ G(z) per latent vector, [n, ...] (seeded; `losses.sample_prediction`)."""
        import tensorflow as tf

        from simvae_tf import losses

        draw = losses.sample_prediction(self.likelihood, tf.constant(self.predict_raw(np.asarray(z))),
                                        tf.constant([seed, 0], tf.int32))
        return np.asarray(draw) * self.scaler.std + self.scaler.mean

    def discrepancy(self, z: np.ndarray, x: np.ndarray) -> np.ndarray:
        """D[x, G(z)] per example, the stage-1 loss (latents in physical units)."""
        from simvae_tf import losses

        return np.asarray(losses.per_example_discrepancy(self.likelihood, self.to_model_space(x),
                                                         self.predict_raw(np.asarray(z))))

    def posterior(self, x: np.ndarray, score_misfit: bool = True) -> Posterior:
        """q(z | x) of a batch of observations [B, *output shape]; with a misfit reference,
        also each observation's discrepancy and p-value."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.output_spec.shape:
            raise ValueError(f"x has shape {x.shape}; expected a batch [B, {', '.join(map(str, self.output_spec.shape))}]")
        raw = self.encoder.predict(self.to_model_space(x).astype(np.float32), batch_size=BATCH_SIZE, verbose=0)
        mean, log_std, probabilities = self.layout.posterior_parts(raw)
        names = [self.latents[k].name for k in self.layout.categorical]
        posterior = Posterior(self.latents, np.asarray(mean), np.asarray(log_std) + self.log_std_offset,
                              orbit_direction=self.orbit_direction,
                              probabilities={name: np.asarray(p) for name, p in zip(names, probabilities)},
                              dof=self.posterior_dof, power=self.posterior_power)
        return misfit.scored(self, x, posterior) if score_misfit else posterior
