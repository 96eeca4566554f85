"""The paper's claim (section 3.1), measured: inverting the generator (eq. 4) against training
the inverse directly on simulated pairs (eq. 5), both together (the shipped configs), and the
unsupervised beta-VAE baseline, on the same data.

    .venv/bin/python benchmarks/objective_ablation.py --table1_root=runs/table1 [--root=runs/ablation]
        [--sims=rlc,box,fourier,polygon,dsprites] [--beta_vae_sims=box,dsprites] [--record]

--table1_root holds finished runs of benchmarks/reproduce_table1.py (the shipped configs:
"both"). Each variant reuses that run's stage 1 (`--stage1_from`), so the variants differ in
the stage-2 objective only, at the same steps and seed:
  eq4   the paper: reconstruction through the frozen generator only (stage2.latent_weight=0)
  eq5   the latent term only: the inverse fitted on (z, S(z)) (stage2.reconstruction_weight=0)
  both  the shipped config (the Table 1 run itself)
beta-VAE (`--config.method=beta_vae`) trains its encoder and decoder jointly on simulator
outputs only, with the same networks and the budget of both stages. Runs resume; finished
ones are reused. Stage-2 time is read from the run's TensorBoard events (first event of the
stage's writer to its last loss summary, less the pauses of a killed and resumed run), so it
excludes stage 1 and evaluation.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import reproduce_table1 as table1  # noqa: E402

VARIANTS = {
    "eq4": ("eq. 4 alone (the paper)", ["--config.stage2.latent_weight=0"]),
    "eq5": ("eq. 5 alone (latent term only)", ["--config.stage2.reconstruction_weight=0"]),
}
VARIANT_KEYS = {"stage2.latent_weight", "stage2.reconstruction_weight"}


# Longer gaps between a stage's summaries are the run standing stopped (killed, then resumed
# later): they do not count as its time. Summaries come every 100 steps, well under this.
PAUSE_SECONDS = 600


def stage_minutes(workdir: str, stage: str) -> float | None:
    """Minutes the stage ran: from its writer's first event to its last loss summary, less
    the pauses of a killed and resumed run (gaps over PAUSE_SECONDS; each restart's event
    file starts a new stretch)."""
    import tensorflow as tf

    times = []
    for path in glob.glob(os.path.join(workdir, "tensorboard", stage, "events.out.tfevents.*")):
        for i, event in enumerate(tf.compat.v1.train.summary_iterator(path)):  # a file per (re)start
            if i == 0 or (event.summary.value and any(v.tag == "loss" for v in event.summary.value)):
                times.append(event.wall_time)
    if len(times) < 2:
        return None
    gaps = np.diff(np.sort(times))
    return float(gaps[gaps <= PAUSE_SECONDS].sum() / 60)


def run_cli(sim: str, workdir: str, flags: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "simvae_tf.main", f"--sim={sim}", f"--workdir={workdir}", *flags],
                            cwd=REPO)
    if result.returncode:
        sys.exit(f"{sim} {workdir} failed (exit {result.returncode}); rerun this command to resume")


def check_same_setup(source: str, workdir: str, variant_keys: set[str]) -> None:
    """The variant's config.json must equal the Table 1 run's but for its own keys (and keys
    added since, at their defaults): else the rows would not compare like with like."""
    from simvae_tf import defaults
    from simvae_tf.workdir import config_differences

    reference = defaults.base_config().to_dict()
    old, new = (json.load(open(os.path.join(d, "config.json")))["config"] for d in (source, workdir))
    # The workdir's own comparison, plus the eval block it lets differ (the scores depend on it).
    differences = (config_differences(old, new, reference) +
                   config_differences(old.get("eval", {}), new.get("eval", {}), reference["eval"], "eval."))
    differ = [d.split(":", 1)[0] for d in differences if d.split(":", 1)[0] not in variant_keys]
    if differ:
        sys.exit(f"{workdir} differs from {source} in {', '.join(differ)}: pass the Table 1 run's --config flags "
                 "(and only those) to this script")


def coverage_at(metrics: dict, level: str) -> str:
    """The empirical coverage at a nominal level, as the range over the scored quantities."""
    values = [v for v in metrics.get("calibration", {}).get("coverage", {}).get(level, {}).values() if v is not None]
    if not values:
        return "n/a"
    return f"{min(values):.2f}" if len(values) == 1 or max(values) - min(values) < 0.005 else \
        f"{min(values):.2f}-{max(values):.2f}"


def simvae_row(sim: str, variant: str, metrics: dict, minutes: float | None) -> str:
    r2 = [v for v in table1._recovery(metrics)["r2_per_latent"].values() if v is not None]
    consistency = metrics["observable_consistency"]
    observable = (f"IoU {consistency['foreground_iou']:.3f}" if "foreground_iou" in consistency else
                  ", ".join(f"{k} {v:.3f}" for k, v in consistency["mean_abs_error"].items()))
    for name, block in metrics.get("categorical", {}).items():
        observable += f"; {name} accuracy {block['accuracy']:.3f}"
    categorical = metrics.get("categorical", {})  # their factor is 1 by definition
    scale = [v for name, v in metrics.get("calibration", {}).get("std_scale", {}).items()
             if v is not None and name not in categorical]
    scale_text = f"{min(scale):.2f}-{max(scale):.2f}" if scale else "n/a"
    derived = metrics.get("derived", {})
    if sim == "rlc":
        r2_text = "; ".join(f"{q} R^2 {d['r2']:.5f}" for q, d in derived.items() if isinstance(d, dict) and "r2" in d)
    else:
        r2_text = f"{min(r2):.3f} / {sum(r2) / len(r2):.3f}" if r2 else "n/a"
    return (f"| {sim} | {variant} | {table1.fmt(metrics['stage2']['mig'])} | {r2_text} | {observable} | "
            f"{coverage_at(metrics, '0.68')} | {coverage_at(metrics, '0.95')} | {scale_text} | "
            f"{table1.fmt(minutes, 1)} |")


def beta_vae_row(sim: str, metrics: dict, minutes: float | None) -> str:
    block = metrics["beta_vae"]
    fidelity = block["reconstruction"]
    observable = (f"reconstruction IoU {fidelity['foreground_iou']:.3f}" if "foreground_iou" in fidelity else
                  f"reconstruction MAE {fidelity['mean_abs_error']:.3f}")
    return (f"| {sim} | beta-VAE (beta {metrics['beta']:g}, {metrics['latent_dim']} latents, "
            f"{block['active_latents']} active, {metrics['steps']} steps) | {block['mig']:.3f} | - (unnamed latents) | "
            f"{observable} | - | - | - | {table1.fmt(minutes, 1)} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table1_root", required=True)
    parser.add_argument("--root", default=os.path.join(REPO, "runs", "ablation"))
    parser.add_argument("--sims", default="rlc,box,fourier,polygon,dsprites")
    parser.add_argument("--beta_vae_sims", default="box,dsprites")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args, args.extra = parser.parse_known_args()  # --config.KEY=VALUE flags go to every run (as Table 1's had)
    table1.check_extra(parser, args.extra)

    rows = []
    for sim in args.sims.split(","):
        source = os.path.join(args.table1_root, sim)
        if not os.path.exists(os.path.join(source, "metrics.json")):
            sys.exit(f"--table1_root={args.table1_root} has no finished {sim} run; run benchmarks/reproduce_table1.py "
                     f"--root={args.table1_root} --sims={sim} first")
        if json.load(open(os.path.join(source, "config.json")))["config"]["stage2"].get("latent_weight", 0) <= 0:
            sys.exit(f"{source}: its config has no latent term, so eq. 4 is the shipped run and eq. 5 has no loss; "
                     "this ablation compares configs that use both")
        for key, (label, flags) in VARIANTS.items():
            workdir = os.path.join(args.root, sim, key)
            print(f"=== {sim} {label} -> {workdir}", flush=True)
            run_cli(sim, workdir, [f"--stage1_from={source}", *flags, *args.extra])
            check_same_setup(source, workdir, VARIANT_KEYS)
            rows.append(simvae_row(sim, label, json.load(open(os.path.join(workdir, "metrics.json"))),
                                   stage_minutes(workdir, "stage2")))
        rows.append(simvae_row(sim, "both (shipped config, Table 1 run)",
                               json.load(open(os.path.join(source, "metrics.json"))), stage_minutes(source, "stage2")))
    for sim in [s for s in args.beta_vae_sims.split(",") if s]:
        workdir = os.path.join(args.root, sim, "beta_vae")
        print(f"=== {sim} beta-VAE -> {workdir}", flush=True)
        run_cli(sim, workdir, ["--config.method=beta_vae", *args.extra])
        rows.append(beta_vae_row(sim, json.load(open(os.path.join(workdir, "metrics.json"))),
                                 stage_minutes(workdir, "beta_vae")))

    table = "\n".join([
        *table1.heading("## The stage-2 objective: eq. 4 vs eq. 5 vs both, and beta-VAE", "objective_ablation.py"),
        "Same stage 1 (the Table 1 run's), steps and seed per simulator. R^2: invariance-aware, min / mean "
        "(RLC: f0 and Q from the posterior mean). Coverage: empirical coverage of the 68% / 95% credible "
        "intervals after the post-hoc width calibration (on by default), range over latents (RLC: f0, Q); "
        "std scale: the factor that calibration applied (1 = the encoder's own std was right). "
        "Time: stage 2 (beta-VAE: its whole training) from TensorBoard event times.", "",
        "| simulator | stage-2 objective | MIG | R^2 | consistency S(z) vs S(E(S(z))) | coverage 68% | coverage 95% "
        "| std scale | time (min) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows, ""])
    print(table)
    if args.record:
        table1.record(table)


if __name__ == "__main__":
    main()
