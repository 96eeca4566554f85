"""The exact posterior of a deterministic image simulator, against the amortized encoder.

    python benchmarks/reference_posterior.py --model=runs/table1_final/fourier/export \
        [--num_observations=200] [--steps=9000] [--seed=0]

Why: Table 1's MIG is computed from the encoder's posterior mean. No estimator of the
latents from the image can do better than the exact posterior mean E[z | x] in squared
error, so the MIG of E[z | x] is (up to the binning) the best any SimVAE encoder could
score on that simulator: the information limit of the images. This script measures it, and
how far the trained encoder is from it, in the manner of sbibm's reference posteriors.

How: for a simulator with binary images and the default prior (independent uniform latents,
i.e. uniform on [-1, 1]^K in the networks' normalised coordinates), p(z | x) is uniform on
{z : S(z) == x} (pixel for pixel). It is sampled by random-walk Metropolis that accepts a
move iff the simulator renders the identical image, one chain per held-out observation,
started at the true z (the one point known to be in the set). The first third of the steps
is burn-in, during which each chain adapts its step size (towards 25% acceptance) and the
shape of its proposal (from its own samples); after it the kernel is fixed, so the kept
samples are a valid MCMC.

Reported per latent, in normalised coordinates (range 2): the reference posterior std,
R^2 of the reference posterior mean and of the encoder mean against the truth, the
encoder's RMSE over the reference's, and a mixing check (the difference of the two
half-chains' means over the posterior std; values well below 1 mean the chains mixed).
MIG: 10,000 fresh latents v, each given the residual (estimate - truth) of a random
held-out observation (the same observations for both estimators), scored with the
project's estimator (20 bins). This resamples residuals independently of v, which
ignores that residuals shrink near the range ends; it is the same approximation for both
rows, so their difference is meaningful.

Starting at the truth and finite chains both bias the reference towards the truth (a
too-narrow posterior, a too-good mean), so the reference MIG is if anything an upper bound.
The table is printed and appended to --results (default benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

if os.getcwd() not in sys.path:  # as under `python -m`, a user's simulator module imports
    sys.path.insert(1, os.getcwd())

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from amortized_vs_optimization import machine  # noqa: E402

from simvae_tf import cli, metrics  # noqa: E402
from simvae_tf.errors import UserError  # noqa: E402
from simvae_tf.invert.simulator import load_simulator  # noqa: E402
from simvae_tf.invert.spec import ExportSpec  # noqa: E402
from simvae_tf.simulators import base, invariance  # noqa: E402

DEFAULT_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
HELD_OUT_STREAM = 0x0BE7C5  # a seed sequence no training stream uses
TARGET_ACCEPTANCE = 0.25
NUM_MIG_SAMPLES = 10_000


def check_supported(simulator: base.Simulator) -> None:
    if simulator.stochastic:
        raise UserError(f"simulator {simulator.name!r} is stochastic; the exact-match posterior needs a deterministic "
                        "one (a noisy output is never matched exactly)")
    if simulator.output_spec.kind != "binary_image":
        raise UserError(
            f"simulator {simulator.name!r} has {simulator.output_spec.kind!r} outputs; the exact-match posterior "
            "needs binary images (a continuous output is never matched exactly)")
    if type(simulator).sample_latents is not base.Simulator.sample_latents:
        raise UserError(
            f"simulator {simulator.name!r} draws its latents with its own sample_latents; the reference posterior "
            "assumes the default independent uniform prior")


def sample_posteriors(simulator: base.Simulator, u_true: np.ndarray, steps: int, rng: np.random.Generator,
                      progress=print) -> np.ndarray:
    """Exact-match Metropolis chains, one per row of u_true [n, K] (normalised coordinates):
    the post-burn-in samples [n, T, K]."""
    latents = simulator.latents
    n, k = u_true.shape
    target = simulator.simulate(base.denormalize(latents, u_true)).reshape(n, -1)
    u = u_true.copy()
    step_size = np.full(n, 0.003)
    shape = np.broadcast_to(np.eye(k), (n, k, k)).copy()  # Cholesky factor of the proposal shape
    burn_in = steps // 3
    kept, history, accepted_recently = [], [], []
    started = time.perf_counter()
    for step in range(steps):
        proposal = u + step_size[:, None] * np.einsum("nij,nj->ni", shape, rng.standard_normal((n, k)))
        accept = np.zeros(n, bool)
        inside = np.flatnonzero(np.all(np.abs(proposal) <= 1.0, axis=1))  # zero prior density outside
        if inside.size:
            images = simulator.simulate(base.denormalize(latents, proposal[inside])).reshape(inside.size, -1)
            accept[inside] = np.all(images == target[inside], axis=1)
        u[accept] = proposal[accept]
        accepted_recently.append(accept.mean())
        if step < burn_in:
            step_size *= np.exp(0.02 * (accept - TARGET_ACCEPTANCE))  # Robbins-Monro
            history.append(u.copy())
            if step >= burn_in // 2 and step % 250 == 0:
                recent = np.stack(history[-1000:], axis=1)
                centred = recent - recent.mean(axis=1, keepdims=True)
                covariance = np.einsum("ntk,ntl->nkl", centred, centred) / recent.shape[1]
                covariance /= np.trace(covariance, axis1=1, axis2=2)[:, None, None] / k
                shape = np.linalg.cholesky(covariance + 1e-3 * np.eye(k))
        else:
            kept.append(u.copy())
        if (step + 1) % 1000 == 0 or step + 1 == steps:
            progress(f"  step {step + 1}/{steps}: acceptance {np.mean(accepted_recently):.2f}, "
                     f"{time.perf_counter() - started:.0f} s")
            accepted_recently = []
    return np.stack(kept, axis=1)


def encode(export_dir: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The export's posterior means, clipped into the ranges as the evaluation does, and
    stds; normalised coordinates."""
    tf = cli.import_tensorflow_quietly()
    encoder = tf.saved_model.load(os.path.join(export_dir, "encoder"))
    out = encoder.serve(tf.constant(x, tf.float32))
    return np.clip(out["mean_normalized"].numpy(), -1.0, 1.0), np.exp(out["log_std_normalized"].numpy())


def mig_of_residuals(residuals: np.ndarray, rng: np.random.Generator, num_bins: int = 20) -> tuple[float, np.ndarray]:
    v = rng.uniform(-1.0, 1.0, size=(NUM_MIG_SAMPLES, residuals.shape[1]))
    estimate = v + residuals[rng.integers(0, len(residuals), NUM_MIG_SAMPLES)]
    return metrics.mig(metrics.mutual_information_matrix(estimate, v, num_bins=num_bins))


def aligned_estimate(simulator: base.Simulator, u_true: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Each estimate [n, K] as it is scored: under a finite invariance (polygon's vertex
    orders) the equivalent of it nearest the truth, as the evaluation's aligned R^2 does (a
    chain started at the truth stays in its copy of the orbit, so its mean stays itself);
    else the estimate."""
    orbit = invariance.normalized_orbit(simulator, base.denormalize(simulator.latents, estimate))  # [n, G, K]
    return estimate if orbit is None else invariance.nearest_equivalent(orbit, u_true)


def run_benchmark(export_dir: str, num_observations: int, steps: int, seed: int) -> dict:
    model = ExportSpec.read(export_dir)
    simulator, why_not = load_simulator(model)
    if simulator is None:
        raise UserError(f"{why_not}; the benchmark needs the simulator (run it from the folder you trained from)")
    check_supported(simulator)
    rng = np.random.default_rng([seed, HELD_OUT_STREAM])
    u_true = rng.uniform(-1.0, 1.0, size=(num_observations, simulator.num_latents))
    x = np.asarray(simulator.simulate(base.denormalize(simulator.latents, u_true)), np.float32)
    print(f"sampling {num_observations} exact posteriors of {simulator.name}, {steps} Metropolis steps each")
    started = time.perf_counter()
    samples = sample_posteriors(simulator, u_true, steps, rng)
    seconds = time.perf_counter() - started
    encoder_mean, encoder_std = encode(export_dir, x)

    estimates = {name: aligned_estimate(simulator, u_true, estimate)
                 for name, estimate in (("reference", samples.mean(axis=1)), ("encoder", encoder_mean))}
    reference_std = samples.std(axis=1)
    half = samples.shape[1] // 2
    half_difference = samples[:, :half].mean(axis=1) - samples[:, half:].mean(axis=1)
    rmse = {name: np.sqrt(np.mean((estimate - u_true) ** 2, axis=0)) for name, estimate in estimates.items()}
    # The same fresh latents and residual draws for both estimators.
    migs = {name: mig_of_residuals(estimate - u_true, np.random.default_rng([seed, HELD_OUT_STREAM, 1]))
            for name, estimate in estimates.items()}
    return {
        "simulator": simulator.name, "latents": simulator.latent_names, "model": os.path.abspath(export_dir),
        "num_observations": num_observations, "steps": steps, "kept_samples": samples.shape[1], "seed": seed,
        "seconds": seconds,
        "reference_std": reference_std.mean(axis=0),
        "r2": {name: metrics.r2_per_latent(u_true, estimate) for name, estimate in estimates.items()},
        "rmse_ratio": rmse["encoder"] / rmse["reference"],
        "encoder_std": encoder_std.mean(axis=0),
        "mixing": np.sqrt(np.mean(half_difference ** 2, axis=0)) / reference_std.mean(axis=0),
        "mig": {name: value[0] for name, value in migs.items()},
        "mig_per_factor": {name: value[1] for name, value in migs.items()},
    }


def format_record(results: dict, command: str) -> str:
    lines = [
        f"### {results['simulator']}: reference (exact) posterior vs the encoder "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Command: `{command}`",
        f"Machine: {machine()}",
        f"Model: {results['model']}",
        f"{results['num_observations']} held-out observations, {results['steps']} Metropolis steps per chain "
        f"({results['kept_samples']} kept after burn-in), seed {results['seed']}, {results['seconds'] / 60:.1f} min.",
        "",
        "| latent | reference std | encoder std | R^2, reference mean | R^2, encoder mean | encoder RMSE / reference RMSE "
        "| MIG gap, reference | MIG gap, encoder | mixing |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, name in enumerate(results["latents"]):
        lines.append(
            f"| {name} | {results['reference_std'][i]:.4f} | {results['encoder_std'][i]:.4f} | "
            f"{results['r2']['reference'][i]:.5f} | {results['r2']['encoder'][i]:.5f} | "
            f"{results['rmse_ratio'][i]:.2f} | {results['mig_per_factor']['reference'][i]:.3f} | "
            f"{results['mig_per_factor']['encoder'][i]:.3f} | {results['mixing'][i]:.2f} |")
    lines += ["", f"MIG of the posterior mean (resampled residuals, {NUM_MIG_SAMPLES:,} latents, 20 bins): "
              f"reference {results['mig']['reference']:.3f}, encoder {results['mig']['encoder']:.3f}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained run's export directory (WORKDIR/export)")
    parser.add_argument("--num_observations", type=int, default=200, help="held-out observations (one chain each)")
    parser.add_argument("--steps", type=int, default=9000, help="Metropolis steps per chain, a third of them burn-in")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=DEFAULT_RESULTS, help="markdown file the record is appended to")
    parser.add_argument("--no_record", action="store_true", help="print only")
    args = parser.parse_args()
    if args.num_observations < 2:
        parser.error(f"--num_observations={args.num_observations} must be at least 2")
    if args.steps < 30:
        parser.error(f"--steps={args.steps} must be at least 30 (a third is burn-in)")
    cli.import_tensorflow_quietly()  # before anything imports it, so its start-up chatter stays hidden
    from simvae_tf.errors import NotAnExportError

    try:
        results = run_benchmark(args.model, args.num_observations, args.steps, args.seed)
    except (UserError, NotAnExportError) as e:
        parser.error(str(e))
    record = format_record(results, " ".join(["python", *sys.argv]))
    print(record)
    if not args.no_record:
        with open(args.results, "a") as f:
            f.write(record + "\n")
        print(f"Appended to {args.results}")


if __name__ == "__main__":
    main()
