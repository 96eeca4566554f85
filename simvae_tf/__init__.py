"""simvae_tf: SimVAE (arXiv 1911.08051) in TensorFlow/Keras.

A simulator S(z) -> x is distilled into a differentiable surrogate generator G(z) ~ S(z)
(stage 1, supervised) and an amortized probabilistic inverse E(x) -> q(z | x) (stage 2,
unsupervised through the frozen G).

    import simvae_tf as sv
    run = sv.fit("box", config=sv.get_config("box"), workdir="runs/box")
    run.posterior(x).sample(100, seed=0)
    sv.load(run.export_dir).posterior(x)

Importing this package touches neither the network nor TensorFlow: heavy modules are
imported when a function needs them.
"""

__version__ = "0.2.0"

from simvae_tf.api import Run, fit, get_config, load, open_run  # noqa: E402
from simvae_tf.errors import RunFailure, UserError  # noqa: E402
from simvae_tf.posterior import Posterior  # noqa: E402
from simvae_tf.simulators.base import Latent, OutputSpec, Simulator  # noqa: E402

__all__ = ["Latent", "OutputSpec", "Posterior", "Run", "RunFailure", "Simulator", "UserError", "__version__", "fit",
           "get_config", "load", "open_run"]
