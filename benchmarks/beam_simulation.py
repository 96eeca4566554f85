"""Samples/s of a dataset simulated on Apache Beam (`python -m simvae_tf.simulate`) against
in-process generation (`data.materialize`), for the slow backends: the box plotter drawn by
matplotlib and RLC simulated by ngspice. Every Beam dataset is checked equal to the
in-process one before its time counts.

    .venv/bin/python benchmarks/beam_simulation.py [--box_samples=20000] [--rlc_samples=100000] [--record]

Rows: in-process (one process), the in-process cache's worker pool (`data.num_workers=2`),
Beam's DirectRunner with 2 worker processes, and the same runner on one batch (its fixed
cost: start-up, worker start, shard writing). Times are wall-clock, start-up included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import machine  # noqa: E402

import simvae_tf as sv  # noqa: E402
from simvae_tf import beam_simulation, data, simulated_dataset, simulators  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TWO_WORKERS = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing",
               "--default_sdk_harness_log_level=WARNING"]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def on_beam(name: str, options: dict, n: int, output: str, beam_args: list[str]) -> float:
    from apache_beam.options.pipeline_options import PipelineOptions

    config = sv.get_config(name)
    config.simulator.update(options)
    return timed(lambda: beam_simulation.generate(name, config, n, output, seed=0,
                                                  pipeline_options=PipelineOptions(beam_args), verbose=0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--box_samples", type=int, default=20_000)
    parser.add_argument("--rlc_samples", type=int, default=100_000)
    parser.add_argument("--record", action="store_true", help="append the result to benchmarks/RESULTS.md")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    rows = []
    for name, options, n in (("box", {"renderer": "matplotlib"}, args.box_samples), ("rlc", {}, args.rlc_samples)):
        label = name + "".join(f", {k}={v}" for k, v in options.items())
        simulator = simulators.make(name, options)
        with tempfile.TemporaryDirectory() as root:
            t_one = timed(lambda: data.materialize(simulator, n, 0, os.path.join(root, "one"), progress=False))
            t_pool = timed(lambda: data.materialize(simulator, n, 0, os.path.join(root, "pool"), num_workers=2,
                                                    progress=False))
            t_beam = on_beam(name, options, n, os.path.join(root, "beam"), TWO_WORKERS)
            t_fixed = on_beam(name, options, data.CACHE_BATCH_SIZE, os.path.join(root, "fixed"), TWO_WORKERS)
            cache = data.materialize(simulator, n, 0, os.path.join(root, "one"), progress=False)
            stored = simulated_dataset.load(os.path.join(root, "beam"), name, simulator)
            assert all(np.array_equal(a, b) for a, b in zip(cache, stored)), f"{label}: Beam dataset differs"
        for how, seconds, count in (("in-process, 1 process (`data.materialize`)", t_one, n),
                                    ("in-process, 2 worker processes (`data.num_workers=2`)", t_pool, n),
                                    ("Beam DirectRunner, 2 worker processes", t_beam, n),
                                    ("Beam DirectRunner, 2 worker processes, one batch (fixed cost)", t_fixed,
                                     data.CACHE_BATCH_SIZE)):
            rows.append(f"| {label} | {how} | {count:,} | {seconds:.1f} | {count / seconds:,.0f} |")
            print(rows[-1], flush=True)

    command = "python benchmarks/beam_simulation.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "### Simulating on Beam (DirectRunner, 2 workers) vs in-process", "",
        f"Command: `{command}`  ", f"Machine: {machine()}; 1-min load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (shared machine)  ", f"Date: {time.strftime('%Y-%m-%d')}", "",
        "| simulator | how | samples | wall s | samples/s |", "|---|---|---|---|---|", *rows, ""])
    print(text)
    if args.record:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
