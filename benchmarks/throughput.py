"""Training throughput (examples/s) of both stages: live simulator pipeline vs the same
data already in memory, measured in one process so the ratio is robust to a noisy machine.

    .venv/bin/python benchmarks/throughput.py [--sim=box] [--steps=100] [--repeats=3] [--record]

The pipeline overhead is 1 - live/in-memory; the target is under 10%.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simvae_tf import data, losses, models, simulators, training  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, TF {tf.__version__}"


def timed_fit(model, dataset, steps: int, warmup: int = 20) -> float:
    model.fit(dataset, epochs=1, steps_per_epoch=warmup, verbose=0)  # trace + warm caches
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sim", default="box")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the result to benchmarks/RESULTS.md")
    args = parser.parse_args()

    config = __import__("simvae_tf.defaults", fromlist=["x"]).base_config()
    config.model.width = args.width
    sim = simulators.make(args.sim)
    generator, encoder = models.build_models(config, sim)
    kind = sim.output_spec.kind
    generator.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.Discrepancy(kind))
    inverse = training.InverseModel(encoder, generator, kind)
    inverse.compile(optimizer=keras.optimizers.Adam(1e-3))

    n = args.batch_size * 64
    z, x = data.simulate_batch(sim, 0, "benchmark", 0, n)
    # Whole pre-made batches, so the in-memory side does no per-example work either.
    batches = (z.reshape(-1, args.batch_size, *z.shape[1:]), x.reshape(-1, args.batch_size, *x.shape[1:]))
    in_memory = tf.data.Dataset.from_tensor_slices(batches).repeat().prefetch(tf.data.AUTOTUNE)
    live = data.make_dataset(sim, seed=0, stream="benchmark", batch_size=args.batch_size)

    rows = []
    for stage, model, to_input in (("stage 1", generator, lambda d: d), ("stage 2", inverse, lambda d: d.map(lambda z, x: x))):
        # Interleaved repeats, best of each: a neighbour's load burst hits one repeat, not
        # one side of the comparison.
        t_memory, t_live = float("inf"), float("inf")
        for _ in range(args.repeats):
            t_memory = min(t_memory, timed_fit(model, to_input(in_memory), args.steps))
            t_live = min(t_live, timed_fit(model, to_input(live), args.steps))
        examples = args.steps * args.batch_size
        rows.append((stage, examples / t_live, examples / t_memory, 1 - t_memory / t_live))

    sim_rate = n / _time(lambda: sim.simulate(sim.sample_latents(np.random.default_rng(0), n)))
    command = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
    lines = [f"### Training throughput, {args.sim} (batch {args.batch_size}, width {args.width}, {args.steps} steps)",
             "", f"Command: `{command}`  ", f"Machine: {machine()}  ", f"Date: {time.strftime('%Y-%m-%d')}", "",
             "| stage | live pipeline (ex/s) | in memory (ex/s) | pipeline overhead |", "|---|---|---|---|"]
    lines += [f"| {s} | {live_rate:.0f} | {mem_rate:.0f} | {overhead:+.1%} |" for s, live_rate, mem_rate, overhead in rows]
    lines += ["", f"Simulator alone: {sim_rate:.0f} samples/s (one process).", ""]
    text = "\n".join(lines)
    print(text)
    if args.record:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write("\n" + text)


def _time(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
