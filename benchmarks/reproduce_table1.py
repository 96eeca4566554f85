"""Reproduce the paper's Table 1: train and evaluate every simulator with its CPU config,
then write one table (ours next to the paper's) into benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/reproduce_table1.py [--sims=box,polygon,fourier,rlc,dsprites]
        [--root=runs/table1] [--config.KEY=VALUE ...]

Each simulator runs through the CLI in its own workdir under --root, so an interrupted
reproduction resumes where it stopped (finished simulators are not retrained); progress
is the CLI's own. Surrogate fidelity (`stage1` of metrics.json): PSNR of G(z) against S(z),
and for images the mean error on the pixels a 1-pixel blur changes (where the detail lives)
beside the error elsewhere. Wall time counts this invocation's training + evaluation per simulator
(0 when a finished run is reused, then the previous figure is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Paper Table 1: (MIG, ground-truth MIG, ground-truth correlations).
PAPER = {
    "fourier": (0.76, 1.0, "independent"),
    "dsprites": (0.32, 1.0, "independent"),
    "box": (0.56, 0.82, "correlated in sampling space"),
    "rlc": (0.13, 0.07, "invariant under scaling"),
    "polygon": (0.0, 0.0, "invariant under permutation"),
}
# The issues' CPU targets, checked in the table (Fourier and polygon: issue 15; dSprites:
# issue 13's categorical shape; the others as in the first round).
TARGETS = {"fourier": "MIG >= 0.87", "dsprites": "shape accuracy >= 0.95, MIG >= 0.60, S(E(x)) IoU >= 0.85",
           "box": "MIG >= 0.70", "rlc": "f0, Q slopes within 0.01 of 1, R^2 >= 0.999",
           "polygon": "invariance-aware R^2 >= 0.95"}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def target_met(sim: str, metrics: dict) -> str:
    mig = metrics["stage2"]["mig"]
    if sim == "rlc":
        d = metrics.get("derived", {})
        ok = all(abs(d[q]["slope"] - 1) <= 0.01 and d[q]["r2"] >= 0.999 for q in ("f0_hz", "Q") if q in d)
        return "yes" if ok and d else "no"
    if sim == "polygon":
        r2 = [v for v in _recovery(metrics)["r2_per_latent"].values() if v is not None]
        return "yes" if r2 and min(r2) >= 0.95 else "no"
    if sim == "dsprites":
        accuracy = metrics.get("categorical", {}).get("shape", {}).get("accuracy", 0.0)
        iou = metrics["observable_consistency"]["foreground_iou"]
        return "yes" if accuracy >= 0.95 and mig >= 0.60 and iou >= 0.85 else "no"
    threshold = {"fourier": 0.87, "box": 0.70}[sim]
    return "yes" if mig >= threshold else "no"


def _recovery(metrics: dict) -> dict:
    """Invariance-aware recovery: nearest equivalent answer for finite groups, else canonical form."""
    return metrics["canonical"].get("aligned", metrics["canonical"])


def heading(title: str, script: str) -> list[str]:
    """A recorded table's first lines: its title, the exact command, the machine, the date."""
    command = f"python benchmarks/{script} " + " ".join(sys.argv[1:])
    return [title, "", f"Command: `{command}`  ", f"Machine: {machine()}  ", f"Date: {time.strftime('%Y-%m-%d')}", ""]


def record(table: str) -> None:
    with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
        f.write("\n" + table)


def check_extra(parser: argparse.ArgumentParser, extra: list[str]) -> None:
    wrong = [flag for flag in extra if not flag.startswith("--config.")]
    if wrong:
        parser.error(f"unrecognized arguments: {' '.join(wrong)} (only --config.KEY=VALUE flags pass to the runs)")


def fmt(value, digits=3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def row(sim: str, metrics: dict, seconds: float) -> str:
    paper_mig, paper_gt, correlations = PAPER[sim]
    canonical_r2 = [v for v in _recovery(metrics)["r2_per_latent"].values() if v is not None]
    consistency = metrics["observable_consistency"]
    if "foreground_iou" in consistency:
        observable = f"IoU {consistency['foreground_iou']:.3f}"
    else:
        observable = ", ".join(f"{k} {v:.3f}" for k, v in consistency["mean_abs_error"].items())
    if "categorical" in metrics:
        observable += "; " + ", ".join(f"{name} accuracy {block['accuracy']:.3f}"
                                       for name, block in metrics["categorical"].items())
    coverage_error = metrics.get("calibration", {}).get("max_coverage_error", {})
    worst = max((v for v in coverage_error.values() if v is not None), default=None)
    stage1 = metrics.get("stage1", {})
    fidelity = f"PSNR {fmt(stage1.get('psnr_db'), 1)} dB"
    if "detail_mean_abs_error" in stage1:
        fidelity += f"; detail MAE {fmt(stage1['detail_mean_abs_error'])} (flat {fmt(stage1.get('flat_mean_abs_error'))})"
    derived = metrics.get("derived", {})
    slopes = "; ".join(f"{q}: slope {d['slope']:.4f}, R^2 {d['r2']:.5f}" for q, d in derived.items()
                       if isinstance(d, dict) and "slope" in d) if sim == "rlc" else ""
    return (f"| {sim} | {fmt(metrics['stage2']['mig'])} | {fmt(metrics['ground_truth']['mig'])} | {paper_mig} | "
            f"{paper_gt} | {correlations} | {fmt(min(canonical_r2) if canonical_r2 else None)} / "
            f"{fmt(sum(canonical_r2) / len(canonical_r2) if canonical_r2 else None)} | "
            f"{fmt(_recovery(metrics)['mig'])} | {observable} | {slopes or '-'} | {fidelity} | {fmt(worst)} | {seconds / 60:.1f} | "
            f"{TARGETS[sim]}: {target_met(sim, metrics)} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", default="box,polygon,fourier,rlc,dsprites")
    parser.add_argument("--root", default=os.path.join(REPO, "runs", "table1"))
    parser.add_argument("--no-record", action="store_true")
    args, args.extra = parser.parse_known_args()  # --config.KEY=VALUE flags go to every run
    check_extra(parser, args.extra)

    times_path = os.path.join(args.root, "wall_times.json")
    os.makedirs(args.root, exist_ok=True)
    times = json.load(open(times_path)) if os.path.exists(times_path) else {}
    rows = []
    for sim in args.sims.split(","):
        workdir = os.path.join(args.root, sim)
        print(f"=== {sim} -> {workdir}", flush=True)
        finished_before = os.path.exists(os.path.join(workdir, "export", "metadata.json"))
        started = time.time()
        result = subprocess.run([sys.executable, "-m", "simvae_tf.main", f"--sim={sim}", f"--workdir={workdir}",
                                 *args.extra], cwd=REPO)
        if result.returncode:
            sys.exit(f"{sim} failed (exit {result.returncode}); rerun this command to resume")
        elapsed = time.time() - started
        with open(os.path.join(workdir, "metrics.json")) as f:
            scored_before_fidelity = "psnr_db" not in json.load(f).get("stage1", {})
        if scored_before_fidelity:  # a run finished before the fidelity scores existed: score it again
            subprocess.run([sys.executable, "-m", "simvae_tf.main", f"--sim={sim}", f"--workdir={workdir}",
                            "--mode=evaluate", *args.extra], cwd=REPO, check=True)
        if not finished_before or sim not in times:  # a finished run, re-scored, keeps its training time
            times[sim] = elapsed
            with open(times_path, "w") as f:
                json.dump(times, f)
        with open(os.path.join(workdir, "metrics.json")) as f:
            rows.append(row(sim, json.load(f), times[sim]))

    table = "\n".join([
        *heading("## Table 1 reproduction (CPU configs)", "reproduce_table1.py"),
        "| simulator | MIG | ground-truth MIG | paper MIG | paper GT MIG | GT correlations | invariance-aware R^2 min / mean "
        "| invariance-aware MIG | observable consistency S(z) vs S(E(S(z))) | RLC f0 / Q from Z vs V "
        "| surrogate fidelity G(z) vs S(z) | largest coverage error (50/68/90/95%) | wall time (min) | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows, ""])
    print(table)
    if not args.no_record:
        record(table)


if __name__ == "__main__":
    main()
