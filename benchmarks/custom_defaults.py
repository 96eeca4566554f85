"""Defaults for your own simulator: candidate configs on simulators nobody tuned for (the
damped oscillator and the Lotka-Volterra, projectile and SIR examples), then one table per
invocation into benchmarks/RESULTS.md: per-latent R^2, 68% / 95% coverage
(`calibration.coverage`), the worst coverage error at 50/68/90/95%, wall time.

    .venv/bin/python benchmarks/custom_defaults.py [--root=runs/custom_defaults]
        [--sims=oscillator,lotka_volterra,projectile,sir] [--candidates=old,old_latent,mid,new,new_paper,long]

Each (simulator, candidate) trains through the CLI in ROOT/SIM/CANDIDATE; rerunning resumes
and reuses finished runs. A candidate with a `stage1_from` reuses that candidate's finished
stage 1 (`--stage1_from`), so it differs in stage 2 only; its wall time is its own
(stage 2 + evaluation) plus the source's stage 1. Every candidate sets all the keys it
depends on, so the table stays valid whatever configs/custom.py holds.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

SIMS = {
    "oscillator": "examples.damped_oscillator:DampedOscillator",
    "lotka_volterra": "examples.lotka_volterra:LotkaVolterra",
    "projectile": "examples.projectile:Projectile",
    "sir": "examples.sir_epidemic:SIREpidemic",
}


def _schedule(width: int, steps: int, schedule: str, latent_weight: float, steps_per_loop: int) -> dict:
    return {"model.width": width, "model.depth": 3, "batch_size": 64,
            "stage1.steps": steps, "stage2.steps": steps,
            "stage1.steps_per_loop": steps_per_loop, "stage2.steps_per_loop": steps_per_loop,
            "stage1.lr_schedule": schedule, "stage2.lr_schedule": schedule, "stage2.latent_weight": latent_weight}


# name -> (description, config overrides, candidate whose stage 1 it reuses)
CANDIDATES = {
    "old": ("the old default: width 32, 2,000 + 2,000 constant-rate steps, paper objective",
            _schedule(32, 2000, "constant", 0.0, 100), None),
    "old_latent": ("the old default with the latent term (weight 100)",
                   _schedule(32, 2000, "constant", 100.0, 100), "old"),
    "mid": ("width 256, 4,000 + 4,000 cosine steps, latent term",
            _schedule(256, 4000, "cosine", 100.0, 500), None),
    "new": ("width 256, 10,000 + 10,000 cosine steps, latent term",
            _schedule(256, 10_000, "cosine", 100.0, 500), None),
    "new_paper": ("the same, paper objective (stage2.latent_weight=0)",
                  _schedule(256, 10_000, "cosine", 0.0, 500), "new"),
    "long": ("width 256, 20,000 + 20,000 cosine steps, latent term (the issue's pilot)",
             _schedule(256, 20_000, "cosine", 100.0, 1000), None),
}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def last_write(directory: str) -> float:
    return max(os.path.getmtime(p) for p in glob.glob(os.path.join(directory, "*")))


def run(sim: str, candidate: str, root: str, times: dict) -> dict:
    """Trains and evaluates one cell (resuming); returns its metrics."""
    _, overrides, source = CANDIDATES[candidate]
    workdir = os.path.join(root, sim, candidate)
    flags = [f"--config.{key}={value}" for key, value in overrides.items()]
    if source:
        flags.append(f"--stage1_from={os.path.join(root, sim, source)}")
    print(f"=== {sim} / {candidate} -> {workdir}", flush=True)
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "simvae_tf.main", f"--sim={SIMS[sim]}", f"--workdir={workdir}",
                           *flags], cwd=REPO)
    if done.returncode:
        sys.exit(f"{sim} / {candidate} failed (exit {done.returncode}); rerun this command to resume")
    elapsed = time.time() - started
    key = f"{sim}/{candidate}"
    if elapsed > 30 or key not in times:  # a reused finished run keeps its recorded times
        stage1 = None if source else last_write(os.path.join(workdir, "checkpoints", "stage1")) - started
        times[key] = {"seconds": elapsed, "stage1_seconds": stage1}
    with open(os.path.join(workdir, "metrics.json")) as f:
        return json.load(f)


def wall_minutes(sim: str, candidate: str, times: dict) -> float:
    own = times[f"{sim}/{candidate}"]["seconds"]
    source = CANDIDATES[candidate][2]
    return (own + (times[f"{sim}/{source}"]["stage1_seconds"] or 0.0) if source else own) / 60


def fmt(values: dict, names: list[str], digits: int = 3) -> str:
    """Values in the simulator's latent order (metrics.json stores its keys sorted)."""
    return ", ".join("n/a" if values.get(n) is None else f"{values[n]:.{digits}f}" for n in names)


def row(sim: str, candidate: str, metrics: dict, minutes: float) -> str:
    names = metrics["latent_names"]
    canonical = metrics.get("canonical", {})
    r2 = canonical.get("aligned", canonical).get("r2_per_latent") or metrics["stage2"]["r2_per_latent"]
    calibration = metrics["calibration"]
    coverage = calibration["coverage"]
    errors68_95 = [abs(coverage[level][name] - float(level)) for level in ("0.68", "0.95") for name in coverage[level]]
    r2_ok = all(v is None or v >= 0.9 for v in r2.values())
    cover_ok = max(errors68_95) <= 0.05
    met = ", ".join(f"{label} {'yes' if ok else 'no'}" for label, ok in
                    (("R^2", r2_ok), ("coverage", cover_ok), ("time", minutes <= 10)))
    return (f"| {sim} | {candidate} | {fmt(r2, names)} | {fmt(coverage['0.68'], names, 2)} | "
            f"{fmt(coverage['0.95'], names, 2)} | "
            f"{max(calibration['max_coverage_error'].values()):.3f} | {minutes:.1f} | {met} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=os.path.join(REPO, "runs", "custom_defaults"))
    parser.add_argument("--sims", default=",".join(SIMS))
    parser.add_argument("--candidates", default="old,old_latent,mid,new,new_paper,long")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sims, candidates = args.sims.split(","), args.candidates.split(",")
    for name in candidates:
        source = CANDIDATES[name][2]
        if source and source not in candidates:
            sys.exit(f"--candidates: {name} reuses the stage 1 of {source}; list {source} too")

    times_path = os.path.join(args.root, "wall_times.json")
    os.makedirs(args.root, exist_ok=True)
    times = json.load(open(times_path)) if os.path.exists(times_path) else {}
    rows = []
    for sim in sims:
        for candidate in candidates:
            metrics = run(sim, candidate, args.root, times)
            with open(times_path, "w") as f:
                json.dump(times, f, indent=1)
            rows.append(row(sim, candidate, metrics, wall_minutes(sim, candidate, times)))
            print(rows[-1], flush=True)

    command = "python benchmarks/custom_defaults.py " + " ".join(sys.argv[1:])
    table = "\n".join([
        "### Candidate defaults for your own simulator", "",
        f"Command: `{command}`  ", f"Machine: {machine()}  ", f"Date: {time.strftime('%Y-%m-%d')}", "",
        "Candidates: " + "; ".join(f"`{name}` = {CANDIDATES[name][0]}" for name in candidates) + ".", "",
        "| simulator | candidate | R^2 per latent (in the simulator's order) | 68% interval covers | 95% interval covers | max coverage error "
        "(50-95%) | wall time (min) | targets (R^2 >= 0.9, 68/95% within 0.05, <= 10 min) |",
        "|---|---|---|---|---|---|---|---|",
        *rows, ""])
    print(table)
    if not args.no_record:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write("\n" + table)


if __name__ == "__main__":
    main()
