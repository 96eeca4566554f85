"""Stochastic simulators: does the posterior widen with the noise, as much as it should?

    .venv/bin/python benchmarks/stochastic.py --task=linear_gaussian [--noise=0.01,0.1,1.0] \
        [--latent_weights=0,100] [--root=runs/stochastic] [--record]
    .venv/bin/python benchmarks/stochastic.py --task=noisy_oscillator [--record]
    .venv/bin/python benchmarks/stochastic.py --task=noisy_rlc [--record]

linear_gaussian: sbibm's `gaussian_linear` (examples/linear_gaussian.py: 10-D, prior
N(0, 0.1 I), x | theta ~ N(theta, noise I)), whose exact posterior is N(x * 0.1 / (0.1 +
noise), 0.1 noise / (0.1 + noise) I): covariance 0.05 I at the standard noise 0.1. For each
noise variance, stage 1 is trained once and every stage-2 latent weight reuses it
(--stage1_from). On n fresh simulations (a stream no training or calibration used) it prints
the coverage of the true theta by the central 68% and 95% credible intervals (averaged over
the 10 coordinates), the ratio of the posterior std to the exact one, and the error of the
posterior mean in exact posterior stds; for the raw encoder and after the post-hoc width
calibration (eval.calibrate_std, on by default).

noisy_oscillator, noisy_rlc: the examples' noisy simulators (0.1 mm sensor noise; 0.5 dB
gain and 0.05 rad phase noise), trained with the stage-2 latent term (weight 100) on top of
a wider, longer custom config (the oscillator) or configs/rlc.py on the closed-form backend
(RLC); their coverage is read from metrics.json (`calibration`: the latents, or for RLC the
derived f0 and Q).

Every run resumes (a killed benchmark continues where it stopped). --record appends the
tables to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

if os.getcwd() not in sys.path:  # as under `python -m`: `examples` imports from the repository root
    sys.path.insert(0, os.getcwd())

STREAM = "stochastic_benchmark"
LEVELS = (0.68, 0.95)
# z of the central 68% / 95% intervals of a Gaussian.
HALF_WIDTHS = {0.68: 0.9944578832097535, 0.95: 1.959963984540054}


def linear_gaussian_config(noise: float, latent_weight: float):
    import simvae_tf as sv

    config = sv.get_config("examples.linear_gaussian:LinearGaussian")
    config.simulator.noise_variance = noise
    config.model.width = 128
    config.batch_size = 256
    config.stage1.steps = config.stage2.steps = 5000
    config.stage1.steps_per_loop = config.stage2.steps_per_loop = 500
    config.stage1.lr_schedule = config.stage2.lr_schedule = "cosine"
    config.stage2.latent_weight = latent_weight
    return config


def example_config(task: str):
    import simvae_tf as sv

    if task == "noisy_oscillator":
        config = sv.get_config("examples.noisy_oscillator:NoisyDampedOscillator")
        config.model.width = 128
        config.batch_size = 128
        config.stage1.steps = config.stage2.steps = 6000
        config.stage1.steps_per_loop = config.stage2.steps_per_loop = 500
        config.stage1.lr_schedule = config.stage2.lr_schedule = "cosine"
        config.stage2.latent_weight = 100.0
        return "examples.noisy_oscillator:NoisyDampedOscillator", config
    from simvae_tf import config as config_lib

    config = config_lib.load_config_file(os.path.join("configs", "rlc.py"))
    config.simulator.backend = "closed_form"
    config.simulator.noise_db = 0.5
    config.simulator.noise_rad = 0.05
    config.stage2.latent_weight = 100.0  # what calibrates the posterior's width under noise (docs/objective.md)
    return "examples.noisy_rlc:NoisyRLC", config


def posterior_scores(run, n: int) -> dict:
    """Coverage, std ratio and mean error against the exact posterior, raw and calibrated."""
    from simvae_tf import data

    simulator = run.simulator
    theta, x = data.physical_batch(simulator, run.config.seed, STREAM, n)
    posterior = run.posterior(x)
    exact_mean, exact_std = simulator.exact_posterior(x)
    scale = run.std_scale()
    scores = {"std_scale": float(np.mean(scale)),
              "mean_error": float(np.sqrt(np.mean(((posterior.mean - exact_mean) / exact_std) ** 2)))}
    for label, std in (("raw", posterior.std / scale), ("calibrated", posterior.std)):
        z = np.abs(theta - posterior.mean) / std
        scores[label] = {"coverage": {level: float(np.mean(z <= HALF_WIDTHS[level])) for level in LEVELS},
                         "std_ratio": float(np.mean(std / exact_std)),
                         "std_ratio_range": (float(np.min(np.mean(std / exact_std, axis=0))),
                                             float(np.max(np.mean(std / exact_std, axis=0))))}
    return scores


def fit(sim: str, config, workdir: str, stage1_from: str | None = None):
    import simvae_tf as sv

    return sv.fit(sim, config=config, workdir=workdir, stage1_from=stage1_from, verbose=2)


def linear_gaussian(args) -> list[str]:
    rows = ["| noise variance | stage-2 latent weight | exact posterior std | std ratio raw (range over coordinates) | "
            "std ratio calibrated | 68% coverage raw / calibrated | 95% coverage raw / calibrated | "
            "mean error (exact stds) | std factor | train s |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for noise in args.noise:
        first = None
        for weight in args.latent_weights:
            workdir = os.path.join(args.root, f"linear_gaussian_noise{noise:g}", f"latent_weight{weight:g}")
            started = time.time()
            run = fit("examples.linear_gaussian:LinearGaussian", linear_gaussian_config(noise, weight), workdir,
                      stage1_from=first if first and not os.path.exists(os.path.join(workdir, "config.json")) else None)
            seconds = time.time() - started
            first = first or workdir
            s = posterior_scores(run, args.n)
            exact = float(run.simulator.exact_posterior(np.zeros((1, 10)))[1][0, 0])
            raw, cal = s["raw"], s["calibrated"]
            rows.append(f"| {noise:g} | {weight:g} | {exact:.4f} | {raw['std_ratio']:.3f} ({raw['std_ratio_range'][0]:.3f}-"
                        f"{raw['std_ratio_range'][1]:.3f}) | {cal['std_ratio']:.3f} | {raw['coverage'][0.68]:.3f} / "
                        f"{cal['coverage'][0.68]:.3f} | {raw['coverage'][0.95]:.3f} / {cal['coverage'][0.95]:.3f} | "
                        f"{s['mean_error']:.3f} | {s['std_scale']:.3f} | {seconds:.0f} |")
            print(rows[-1], flush=True)
    return ["### linear_gaussian (sbibm gaussian_linear): posterior against the exact one", "",
            f"{args.n} fresh simulations per row (stream {STREAM!r}); coverage of the true theta by the central "
            "credible intervals, averaged over the 10 coordinates (nominal 0.68 / 0.95); std ratio = posterior std / "
            "exact posterior std (1 is exact); mean error = RMS of (posterior mean - exact mean) / exact std; "
            "'raw' is the encoder's std, 'calibrated' after the post-hoc width factor (eval.calibrate_std). "
            "Train s: the whole sv.fit (stage 1 only in the first row of each noise level; evaluation included).",
            "", *rows]


def example(args) -> list[str]:
    sim, config = example_config(args.task)
    workdir = os.path.join(args.root, args.task)
    started = time.time()
    run = fit(sim, config, workdir)
    seconds = time.time() - started
    metrics = run.metrics
    calibration = metrics["calibration"]
    rows = ["| quantity | 50% | 68% | 90% | 95% | max coverage error | std factor | R^2 |",
            "|---|---|---|---|---|---|---|---|"]
    r2 = metrics["stage2"]["r2_per_latent"]
    derived = metrics.get("derived", {})
    for name in calibration["quantities"]:
        coverage = [calibration["coverage"][level][name] for level in ("0.5", "0.68", "0.9", "0.95")]
        factor = calibration.get("std_scale", {}).get(name)
        fit_r2 = r2.get(name) if name in r2 else derived.get(name.replace("log_", ""), {}).get("r2")
        rows.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in coverage) +
                    f" | {calibration['max_coverage_error'][name]:.3f} | {'-' if factor is None else f'{factor:.3f}'} | "
                    f"{'-' if fit_r2 is None else f'{fit_r2:.4f}'} |")
    noise = metrics["stage1"].get("noise_coverage", {})
    return [f"### {args.task}: coverage of the posterior under measurement noise", "",
            f"Run: {workdir} ({sim}, options {vars(run.simulator)}), {seconds:.0f} s (if trained in this "
            f"invocation); against {calibration['against']}. Surrogate noise model (stage 1): x within 1 / 2 of G's "
            f"spread of its mean {noise.get('within_1_spread', float('nan')):.3f} / "
            f"{noise.get('within_2_spread', float('nan')):.3f} (Gaussian 0.683 / 0.954).", "", *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, choices=("linear_gaussian", "noisy_oscillator", "noisy_rlc"))
    parser.add_argument("--root", default="runs/stochastic")
    parser.add_argument("--noise", default="0.1", help="linear_gaussian: noise variances, comma-separated")
    parser.add_argument("--latent_weights", default="0,100", help="linear_gaussian: stage2.latent_weight values")
    parser.add_argument("--n", type=int, default=2000, help="linear_gaussian: fresh simulations scored")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    args.noise = [float(v) for v in args.noise.split(",")]
    args.latent_weights = [float(v) for v in args.latent_weights.split(",")]
    lines = linear_gaussian(args) if args.task == "linear_gaussian" else example(args)
    command = "python benchmarks/stochastic.py " + " ".join(sys.argv[1:])
    import tensorflow as tf

    text = "\n".join([lines[0], "", f"Command: `{command}`  ",
                      f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, no GPU, TF {tf.__version__}  ",
                      f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "", *lines[2:], ""])
    print(text)
    if args.record:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
