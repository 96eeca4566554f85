"""Where a polygon encoder loses: its vertex errors in pixels, and for a mixture head
(`model.posterior_components` > 1) whether the component it answers is the best it has.

    python benchmarks/polygon_vertex_errors.py --workdir=runs/polygon [--num=4000]

Why: aligned R^2 is dominated by a few large misses. This splits them out: the per-vertex
error (aligned to the nearest of the 8 equivalent vertex orders, per polygon), the share of
polygons with some vertex more than 1, 2, 4, 8 px off, and what the bad ones look like
(closest vertex pair, thinnest triangle: where one Gaussian averages two vertex orders).
For a mixture: the share > 8 px off for the gate's pick against the best component in
hindsight (an oracle), and the gate's confidence where it picks wrong. Held-out images of
the evaluation stream (seed 0). Prints only.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PIXELS_PER_UNIT = 0.9 * 64 / 2  # normalised range 2 spans 0.9 of the 64-px field


def vertex_px(mean_u: np.ndarray, targets_u: np.ndarray) -> np.ndarray:
    """[N, 4] each vertex's error in pixels, against the polygon's nearest equivalent order."""
    from simvae_tf.simulators import invariance

    error = mean_u - invariance.nearest_equivalent(targets_u, mean_u)
    return np.sqrt(error[:, 0::2] ** 2 + error[:, 1::2] ** 2) * PIXELS_PER_UNIT


def shape_difficulty(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(closest vertex pair in px, thinnest triangle of three vertices in px^2) per polygon."""
    points = v.reshape(-1, 4, 2) * 64
    distance = np.linalg.norm(points[:, :, None] - points[:, None], axis=-1)
    distance[:, range(4), range(4)] = np.inf
    a, b, c = (np.stack([points[:, t[i]] for t in itertools.combinations(range(4), 3)], 1) for i in range(3))
    area = 0.5 * np.abs((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))
    return distance.min(axis=(1, 2)), area.min(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="a trained polygon run")
    parser.add_argument("--num", type=int, default=4000, help="held-out images")
    args = parser.parse_args()

    from simvae_tf import api, data
    from simvae_tf.models import mixture
    from simvae_tf.simulators import base, invariance

    run = api.open_run(args.workdir, verbose=0)
    simulator, pair = run.simulator, run.trained_pair()
    if simulator.name != "polygon":
        raise SystemExit(f"--workdir={args.workdir} holds a {simulator.name!r} run; pass a polygon run")
    v, x = data.physical_batch(simulator, 0, "evaluation", args.num)
    targets = invariance.latent_targets_of(simulator, base.normalize(simulator.latents, v))
    answered = pair.posterior(x, score_misfit=False).mean_normalized
    errors = vertex_px(answered, targets)
    worst = errors.max(axis=1)
    print(f"{args.workdir}: {args.num} held-out images")
    print("median vertex error %.2f px; worst vertex per polygon: median %.2f, 90%% %.2f, 99%% %.2f px"
          % (np.median(errors), *np.quantile(worst, [0.5, 0.9, 0.99])))
    for threshold in (1, 2, 4, 8):
        print(f"polygons with some vertex > {threshold} px off: {np.mean(worst > threshold):.1%}")
    closest, thinnest = shape_difficulty(v)
    bad = worst > 8
    print("closest vertex pair: median %.1f px where > 8 px off, %.1f elsewhere; thinnest triangle %.0f vs %.0f px^2"
          % (np.median(closest[bad]), np.median(closest[~bad]), np.median(thinnest[bad]), np.median(thinnest[~bad])))

    view = mixture.encoder_with_components(pair.encoder)
    if view is None:
        return
    _, components = view.predict(pair.to_model_space(x), batch_size=256, verbose=0)
    k = simulator.num_latents
    per_component = np.stack([vertex_px(components[:, m, :k], targets).max(axis=1) for m in range(components.shape[1])], 1)
    weights = np.exp(components[:, :, -1] - components[:, :, -1].max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    picked = weights.max(axis=1)
    print(f"mixture of {components.shape[1]}: > 8 px off for the gate's pick {np.mean(bad):.1%}, "
          f"for the best component in hindsight {np.mean(per_component.min(axis=1) > 8):.1%}")
    print("gate weight of its pick: median %.2f where > 8 px off, %.2f elsewhere; components picked: %s"
          % (np.median(picked[bad]), np.median(picked[~bad]),
             " ".join(f"{s:.0%}" for s in np.bincount(weights.argmax(1), minlength=components.shape[1]) / len(x))))


if __name__ == "__main__":
    main()
