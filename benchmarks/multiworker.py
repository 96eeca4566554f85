"""Two workers against one process: the same config trained by one process
(`--strategy=default`) and by two worker processes on this machine (`--strategy=multiworker`,
TF_CONFIG on localhost ports), then how far apart the trained networks end up and the
wall time of each. Both runs resume when the script is rerun (their workdirs are kept).

    .venv/bin/python benchmarks/multiworker.py [--sim=box] [--root=runs/multiworker_bench] [--record] \\
        [--config.KEY=VALUE ...]

Two workers on one machine share its cores, so the wall times say what the coordination
costs, not what more machines gain.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from simvae_tf import data, files, multiworker, simulators  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SECTION = "## Two workers vs one process (`benchmarks/multiworker.py`, docs/multiworker.md)"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"


def command(workdir: str, strategy: str, sim: str, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "simvae_tf.main", f"--sim={sim}", f"--workdir={workdir}", f"--strategy={strategy}",
            *overrides]


def one_process(workdir: str, sim: str, overrides: list[str]) -> float:
    started = time.time()
    subprocess.run(command(workdir, "default", sim, overrides), cwd=REPO, check=True)
    return time.time() - started


def two_workers(workdir: str, sim: str, overrides: list[str]) -> float:
    started = time.time()
    processes = [subprocess.Popen(command(workdir, "multiworker", sim, overrides), cwd=REPO,
                                  env={**os.environ, "TF_CONFIG": tf_config}, stdout=None if i == 0 else subprocess.DEVNULL)
                 for i, tf_config in enumerate(multiworker.local_tf_configs(2))]
    try:
        codes = [process.wait() for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    if codes != [0, 0]:
        raise SystemExit(f"two-worker run failed: exit codes {codes}")
    return time.time() - started


def network_outputs(workdir: str, sim: str, n: int = 256) -> dict[str, np.ndarray]:
    """The exported networks on n held-out simulations (normalised units)."""
    import tensorflow as tf

    simulator = simulators.make(sim, files.read_json(os.path.join(workdir, "config.json"))["config"]["simulator"])
    z, x = data.physical_batch(simulator, 12345, "multiworker_benchmark", n)
    generator = tf.saved_model.load(os.path.join(workdir, "export", "generator"))
    encoder = tf.saved_model.load(os.path.join(workdir, "export", "encoder"))  # kept: its variables must live
    posterior = encoder.serve(tf.constant(x))
    return {"generator output": generator.serve(tf.constant(z, tf.float32)).numpy(),
            "posterior mean (normalised)": posterior["mean_normalized"].numpy(),
            "posterior log std (normalised)": posterior["log_std_normalized"].numpy()}


def report(args, overrides: list[str], seconds: dict[str, float]) -> str:
    one, two = (os.path.join(args.root, name) for name in ("one_process", "two_workers"))
    metrics = {name: files.read_json(os.path.join(root, "metrics.json")) for name, root in
               (("one", one), ("two", two))}
    outputs_one, outputs_two = network_outputs(one, args.sim), network_outputs(two, args.sim)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    invocation = " ".join([".venv/bin/python benchmarks/multiworker.py", f"--sim={args.sim}", *overrides])
    lines = [f"### {args.sim}: two workers vs one process ({stamp})", "",
             f"`{invocation}` on {machine()}; both workers on this machine.", "",
             "| | one process | two workers | max abs difference |", "|---|---|---|---|"]
    for stage, logs in metrics["one"]["training"].items():
        for name, value in logs.items():
            other = metrics["two"]["training"][stage][name]
            lines.append(f"| final {stage} {name} | {value:.6g} | {other:.6g} | {abs(value - other):.3g} |")
    for name, value in metrics["one"]["stage2"]["r2_per_latent"].items():
        other = metrics["two"]["stage2"]["r2_per_latent"][name]
        lines.append(f"| R^2 {name} | {value:.4f} | {other:.4f} | {abs(value - other):.2g} |")
    mig_one, mig_two = metrics["one"]["stage2"]["mig"], metrics["two"]["stage2"]["mig"]
    lines.append(f"| MIG | {mig_one:.4f} | {mig_two:.4f} | {abs(mig_one - mig_two):.2g} |")
    for name in outputs_one:
        difference = np.abs(outputs_one[name] - outputs_two[name]).max()
        spread = np.ptp(outputs_one[name])
        lines.append(f"| {name}, 256 held-out inputs (range {spread:.3g}) | | | {difference:.3g} |")
    if seconds:
        lines.append(f"| wall time of this invocation (s) | {seconds.get('one', 0):.0f} | {seconds.get('two', 0):.0f} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", default="box")
    parser.add_argument("--root", default=os.path.join(REPO, "runs", "multiworker_bench"))
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args, overrides = parser.parse_known_args()
    if any(not flag.startswith("--config.") for flag in overrides):
        parser.error(f"unknown arguments {overrides}; pass config overrides as --config.KEY=VALUE")
    seconds = {"one": one_process(os.path.join(args.root, "one_process"), args.sim, overrides),
               "two": two_workers(os.path.join(args.root, "two_workers"), args.sim, overrides)}
    table = report(args, overrides, seconds)
    print(table)
    if args.record:
        path = os.path.join(HERE, "RESULTS.md")
        with open(path) as f:
            heading = "" if SECTION in f.read() else f"\n{SECTION}\n"
        with open(path, "a") as f:
            f.write(f"{heading}\n{table}")


if __name__ == "__main__":
    main()
