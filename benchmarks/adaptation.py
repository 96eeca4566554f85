"""Adapting the inverse to observations from a shifted world, with known truth (issue 12.5).

    .venv/bin/python benchmarks/adaptation.py --workdir=runs/box --shift=grey_paper_blur [--n=2000] [--steps=1000]
    .venv/bin/python benchmarks/adaptation.py --workdir=runs/rlc --shift=gain_offset_phase_noise

Simulates n observations from the run's simulator with known latents and applies a shift the
models never trained on (the way real observations differ from a simulator's), then splits
them in two halves: the first is handed to `Run.adapt` without its latents, the second is
held out. Prints, before and after adaptation: the latent error on the held-out shifted half
(R^2 per latent in normalised coordinates; under a continuous invariance, R^2 of the log
derived quantities inside the validity region), and the change in held-out *simulated*
recovery from the adaptation report (target: no more than 0.01 R^2 lost). --record appends
the table to benchmarks/RESULTS.md.

Shifts:
  grey_paper_blur           images: the paper grey (white -> 0.8 of it) and a 1-px box blur
  thick_pen                 binary images: every stroke dilated by one pixel (a thicker pen)
  gain_offset_phase_noise   RLC-like signals: +1 dB on the gain, 0.05 rad noise on the phase
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

if os.getcwd() not in sys.path:  # as under `python -m`, a user's simulator module imports
    sys.path.insert(0, os.getcwd())

STREAM = "adapt_benchmark"


def box_blur(x: np.ndarray) -> np.ndarray:
    """3x3 mean filter per channel, edges replicated."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    return np.mean([padded[:, i:i + x.shape[1], j:j + x.shape[2]] for i in range(3) for j in range(3)], axis=0)


def dilate(x: np.ndarray) -> np.ndarray:
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return np.max([padded[:, i:i + x.shape[1], j:j + x.shape[2]] for i in range(3) for j in range(3)], axis=0)


def shifted(name: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if name == "grey_paper_blur":
        return box_blur(np.where(x > 0.99, 0.8, x)).astype(np.float32)
    if name == "thick_pen":
        return dilate(x).astype(np.float32)
    if name == "gain_offset_phase_noise":
        noise = np.stack([np.full(x.shape[:2], 1.0), rng.normal(0.0, 0.05, x.shape[:2])], axis=-1)
        return (x + noise).astype(np.float32)
    raise SystemExit(f"--shift={name!r} unknown; use grey_paper_blur, thick_pen or gain_offset_phase_noise")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="a finished run's workdir")
    parser.add_argument("--shift", required=True)
    parser.add_argument("--n", type=int, default=2000, help="shifted observations (half adapted on, half held out)")
    parser.add_argument("--steps", type=int, default=None, help="adaptation steps (default: the config's)")
    parser.add_argument("--output", default=None, help="adaptation folder (default: WORKDIR/adapted_<shift>)")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    import simvae_tf as sv
    from simvae_tf import adaptation, data

    run = sv.open_run(args.workdir)
    simulator = run.simulator
    v, x = data.physical_batch(simulator, run.config.seed, STREAM, args.n)
    x = shifted(args.shift, x, np.random.default_rng(1))
    half = args.n // 2
    before = adaptation.recovery_r2(simulator, run.posterior(x[half:]), v[half:])
    started = time.time()
    report = run.adapt(x[:half], output_dir=args.output or os.path.join(args.workdir, f"adapted_{args.shift}"),
                       steps=args.steps)
    seconds = time.time() - started
    after = adaptation.recovery_r2(simulator, sv.load(report["export"]).posterior(x[half:]), v[half:])
    change = report["simulated_recovery_r2_change"]
    rows = ["| quantity | shifted held-out R^2 before | after | simulated held-out R^2 change |", "|---|---|---|---|"]
    for name in before:
        rows.append(f"| {name} | {before[name]:.3f} | {after[name]:.3f} | {change.get(name, float('nan')):+.4f} |")
    observations = report["before"]["observations"], report["after"]["observations"]
    command = "python benchmarks/adaptation.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"### {simulator.name}: adaptation to `{args.shift}` ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "", f"Command: `{command}`  ",
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, no GPU  ",
        f"Run: {run.workdir.root} (config `adapt`: {report['config']}); {half} observations adapted on, {args.n - half} "
        f"held out; adaptation {seconds:.0f} s", "", *rows, "",
        f"On the adapted observations: median discrepancy D[x, G(E(x))] {observations[0]['discrepancy_median']:.4g} -> "
        f"{observations[1]['discrepancy_median']:.4g}; flagged atypical (p < 0.01) "
        f"{observations[0]['atypical_fraction_0.01']:.1%} -> {observations[1]['atypical_fraction_0.01']:.1%}.", ""])
    print(text)
    if args.record:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
