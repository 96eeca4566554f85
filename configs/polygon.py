"""Polygon plotter (paper 4.1): four points, one-to-many inverse (point order)."""

from simvae_tf import defaults


def get_config(variant: str = "cpu"):
    config = defaults.image_config()
    config.simulator.renderer = "numpy"  # or "matplotlib": the reference, bit-identical, slower
    # The DCGAN surrogate stays blurry on folded polygons (IoU ~0.6), so reconstruction
    # alone recovers the points poorly (aligned R^2 0.54); the latent term, scored against
    # the nearest of the 8 equivalent point orders, fixes that (benchmarks/RESULTS.md).
    config.stage2.latent_weight = 100.0
    config.stage2.steps = 12_000
    return defaults.with_variant(config, variant, "configs/polygon.py")
