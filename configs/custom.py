"""Config for your own simulator (`--sim=my_module:MySimulator`, `sv.fit(MySimulator)`).

Two variants, picked by the simulator's output kind (name one by hand as
`--config=configs/custom.py:image`, or pass a tuned copy of this file as --config=PATH):

  signal  MLP of width 256 (3 hidden layers), 4,000 + 4,000 cosine-decayed steps and the
          stage-2 latent term (weight 100): chosen on four simulators nobody tuned for
          (benchmarks/RESULTS.md, "Defaults for your own simulator"); 1-3 min on 2 cores.
  image   the shipped image configs' DCGAN (width 16, stem_layers 2, 3,000 + 2,000 cosine
          steps) with the latent term: ~6 min on 2 cores for a 64x64 simulator like the box.

The paper's objective (stage 2 through the frozen generator only) is one value away:
`--config.stage2.latent_weight=0` (docs/objective.md). Declare your simulator's symmetries
(`orbit`) when several latents give the same output: the latent term needs them.
"""

from simvae_tf import defaults

KINDS = ("signal", "image")


def get_config(kind: str = "signal"):
    if kind == "signal":
        return defaults.signal_config()
    if kind == "image":
        return defaults.custom_image_config()
    raise ValueError(f"configs/custom.py: unknown variant {kind!r}; use one of {', '.join(KINDS)} "
                     "(the simulator's output kind, e.g. configs/custom.py:image)")
