"""Shared configuration defaults; each `configs/<sim>.py` starts from `base_config()`.

Every key here exists for every simulator, so `--config.KEY=VALUE` works everywhere.
"""

from __future__ import annotations

import ml_collections

# The stage-2 latent term's weight wherever it is on: box, polygon, Fourier, dSprites and
# your own simulators (configs/custom.py); docs/objective.md.
LATENT_WEIGHT = 100.0


def base_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    # "simvae" (the two stages), or "beta_vae": the unsupervised baseline of
    # simvae_tf/beta_vae.py (encoder and decoder on simulator outputs only).
    config.method = "simvae"
    config.batch_size = 64  # global batch; must divide evenly over the replicas
    # Constructor options of the simulator (e.g. renderer='matplotlib').
    config.simulator = ml_collections.ConfigDict()

    config.model = ml_collections.ConfigDict()
    config.model.family = "auto"  # auto: dcgan for image outputs, mlp for signals
    config.model.width = 32  # dcgan: channels of the widest layer; mlp: hidden units
    config.model.depth = 3  # mlp hidden layers (dcgan depth is fixed by 64x64)
    config.model.coord_conv = True  # dcgan: pixel-coordinate channels (see models/dcgan.py)
    # dcgan: hidden layers between the latents and the generator's 4x4 projection; 0 is
    # DCGAN's linear projection (and what workdirs from before this key trained).
    config.model.stem_layers = 0
    # Arithmetic of the networks: "float32", or "mixed_bfloat16" (bfloat16 compute, float32
    # weights and outputs; for GPUs and CPUs with bf16 units). Checkpoints hold float32 either way.
    config.model.precision = "float32"
    # XLA-compile the training steps (Keras `jit_compile`). Off by default: runs enable op
    # determinism, which XLA does not guarantee for every op.
    config.model.jit_compile = False
    # The encoder's posterior: 1 Gaussian, or the most probable of M (`models/mixture.py`):
    # for simulators whose equivalent answers (an invariance group) no single continuous
    # map can pick one of (polygon's vertex orders).
    config.model.posterior_components = 1
    # dcgan: hand the encoder each column's and row's ink and ink-weighted mean position
    # (`models.dcgan.InkProfiles`): sub-pixel positions that strided convolutions blur.
    config.model.ink_profiles = False

    for stage in ("stage1", "stage2"):
        config[stage] = ml_collections.ConfigDict()
        config[stage].steps = 2000
        config[stage].learning_rate = 1e-3  # Adam, other parameters at their defaults (paper 4)
        # "constant" (the paper) or "cosine": decay to 0 over the stage, which sharpens
        # the final model at no extra cost.
        config[stage].lr_schedule = "constant"
        config[stage].steps_per_loop = 100  # steps between checkpoints / progress lines
        config[stage].summaries_every = 5  # loops between image summaries in TensorBoard
    # Images: stage 1 counts the pixels where S(z) differs from its 1-pixel blur (edges,
    # markers, thin lines) 1 + detail_weight times (`losses.detail_weights`); 0: every pixel
    # alike (what workdirs from before this key trained). Measured on box at 10: no sharper
    # (detail error 0.240 against 0.215; benchmarks/RESULTS.md, "Surrogate sharpness").
    config.stage1.detail_weight = 0.0
    # Weight of KL(q(z|x) || N(0, I)) per example in stage 2; see README ("the prior term").
    config.stage2.kl_weight = 0.0
    # Weight of the simulated-latent likelihood term in stage 2 (0 = the paper: x only);
    # see README ("the latent term").
    config.stage2.latent_weight = 0.0
    # Weight of the reconstruction term D[x, G(E(x))] (eq. 4). 0 with a latent term leaves
    # eq. 5 alone: the inverse trained directly on simulated (z, S(z)) pairs (the ablation of
    # benchmarks/objective_ablation.py).
    config.stage2.reconstruction_weight = 1.0
    # Categorical latents (`Latent(values=...)`): the straight-through Gumbel-softmax
    # temperature of stage 2's reconstruction term, decaying exponentially from the first
    # to the second over the stage (unused without categorical latents).
    config.stage2.gumbel_temperature = 1.0
    config.stage2.gumbel_temperature_end = 0.5

    # method="beta_vae": the KL weight, the number of (unnamed) latents (10, as in Locatello
    # et al.'s study) and the steps (0: stage1.steps + stage2.steps, SimVAE's budget).
    config.beta_vae = ml_collections.ConfigDict()
    config.beta_vae.beta = 4.0
    config.beta_vae.latent_dim = 10
    config.beta_vae.steps = 0

    config.data = ml_collections.ConfigDict()
    config.data.num_workers = 0  # >0: simulate in that many worker processes
    config.data.cache_size = 0  # >0: simulate this many samples once and train from memory
    # A dataset folder written by `python -m simvae_tf.simulate` (made by this simulator with
    # these options): training samples from it in memory instead of simulating; "" = none.
    config.data.dataset_dir = ""

    config.eval = ml_collections.ConfigDict()
    config.eval.num_samples = 10_000  # fresh simulator samples for the metrics
    config.eval.num_bins = 20  # histogram bins of the MI estimator
    config.eval.num_figure_samples = 8
    # Held-out simulations whose discrepancy D[x, G(E(x))] is the misspecification reference
    # (stored with the export; p-values resolve to 1 / (n + 1)).
    config.eval.reference_samples = 2000
    # Posterior draws simulated with S per observation in the predictive check.
    config.eval.predictive_draws = 20
    # Post-hoc width calibration: after training, scale each latent's posterior std so that
    # its credible intervals cover held-out simulations at their nominal levels
    # (docs/diagnostics.md); the mean is untouched. Applied to evaluation and the export.
    config.eval.calibrate_std = True
    # ... and the tails: a latent whose errors are heavier-tailed than a Gaussian (too wide at
    # 50% and too narrow at 95% at once) gets a Student-t posterior (RLC's f0 and Q need it),
    # one whose errors are lighter-tailed (the reverse) a generalised normal (box's x and y);
    # `calibration.fit_scale_and_tail`, `tail_shapes`.
    config.eval.posterior_tails = True
    config.eval.std_calibration_samples = 2000

    # Adapting the trained inverse to unlabeled observations (`simvae-adapt`, `Run.adapt`):
    # stage 2 continues on batches mixing observations (reconstruction only) with fresh
    # simulations (stage 2's own objective). Changes nothing that was trained.
    config.adapt = ml_collections.ConfigDict()
    config.adapt.steps = 1000
    config.adapt.learning_rate = 1e-4  # a tenth of stage 2's: fine-tuning, not retraining
    config.adapt.lr_schedule = "constant"
    config.adapt.steps_per_loop = 100
    config.adapt.observed_fraction = 0.5  # of each batch; the rest are simulations
    return config


def image_config() -> ml_collections.ConfigDict:
    """CPU defaults of the 64x64 image simulators (DCGAN): ~5-6 min on 2 cores each (polygon
    and Fourier, with their longer stage 2, 13-15 min).
    Cosine decay adds 0.01-0.02 MIG over a constant rate at the same cost (measured, box
    and Fourier)."""
    config = base_config()
    config.model.width = 16
    config.model.stem_layers = 2
    config.stage1.steps = 3000
    config.stage2.steps = 2000
    config.stage1.lr_schedule = config.stage2.lr_schedule = "cosine"
    return config


def signal_config() -> ml_collections.ConfigDict:
    """Your own signal simulator (`configs/custom.py:signal`): chosen by measurement on four
    simulators nobody tuned for (benchmarks/RESULTS.md, "Defaults for your own simulator").
    A wider MLP, longer cosine-decayed stages and the latent term, which calibrates the
    posterior and recovers latents that act weakly on the output (the paper objective alone:
    stage2.latent_weight=0)."""
    config = base_config()
    config.model.width = 256
    config.stage1.steps = config.stage2.steps = 4_000
    config.stage1.steps_per_loop = config.stage2.steps_per_loop = 500
    config.stage1.lr_schedule = config.stage2.lr_schedule = "cosine"
    config.stage2.latent_weight = LATENT_WEIGHT
    return config


def custom_image_config() -> ml_collections.ConfigDict:
    """Your own 64x64 image simulator (`configs/custom.py:image`): the shipped image
    configs' DCGAN and schedule (`image_config`) with the latent term, as box, polygon,
    Fourier and dSprites use it (their measurements: docs/objective.md)."""
    config = image_config()
    config.stage2.latent_weight = LATENT_WEIGHT
    return config


VARIANTS = ("cpu", "gpu")


def with_variant(config: ml_collections.ConfigDict, variant: str, file: str) -> ml_collections.ConfigDict:
    """`configs/NAME.py:gpu` = the CPU config scaled to the paper's size: DCGAN width 64
    (MLP 512 units), batch 256, 10x the steps."""
    if variant not in VARIANTS:
        raise ValueError(f"{file}: unknown variant {variant!r}; use one of {', '.join(VARIANTS)} (e.g. {file}:gpu)")
    if variant == "gpu":
        config.batch_size = 256
        config.model.width = 64 if config.model.family != "mlp" else 512
        for stage in (config.stage1, config.stage2):
            stage.steps *= 10
            stage.steps_per_loop = 500
    return config
