"""The GPU path, in one prepared run (issue 14 part 3): the `:gpu` configs' networks under the
strategy `--strategy=auto` picks (MirroredStrategy over the visible GPUs), steps/s and
examples/s of both stages with the data in memory (what the device can do) and from the
config's own pipeline (what the run gets: the live simulator, or its cache where the config
has one), GPU utilisation and memory while each runs, for
float32, `model.precision=mixed_bfloat16` and `model.jit_compile=True`.

    .venv/bin/python benchmarks/gpu_check.py [--sims=box,rlc] [--steps=200] [--out=DIR] [--record]

Run it on the GPU machine and on this CPU with the same flags: the ratio of the two is the
speed-up. "Pipeline keeps up" compares live against in-memory steps/s (1.0: the simulator feeds
the device; lower: it starves it; then `data.num_workers`, `data.cache_size` or a Beam dataset
via `data.dataset_dir` are the fixes). Writes OUT/gpu_check.json and OUT/gpu_check.md (OUT
defaults to $OUT, else runs/gpu_check). Nothing here is needed by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simvae_tf import config as config_lib  # noqa: E402
from simvae_tf import data, losses, models, simulators, strategies, training  # noqa: E402
from simvae_tf.simulators import invariance  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"float32": {}, "mixed_bfloat16": {"precision": "mixed_bfloat16"}, "jit_compile": {"jit_compile": True}}
IN_MEMORY_BATCHES = 32


class GpuSampler:
    """nvidia-smi polled every 200 ms while a measurement runs: mean utilisation (%) and peak
    memory (MiB); None without nvidia-smi."""

    def __enter__(self):
        try:
            self.process = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms",
                 "200"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except FileNotFoundError:
            self.process = None
        return self

    def __exit__(self, *exc):
        self.utilisation = self.memory = None
        if self.process is None:
            return False
        self.process.terminate()
        lines = self.process.communicate()[0].strip().splitlines()
        values = np.array([[float(v) for v in line.split(",")[:2]] for line in lines if line.count(",") >= 1])
        if len(values):
            self.utilisation, self.memory = float(values[:, 0].mean()), float(values[:, 1].max())
        return False


def steps_per_second(model, dataset, steps: int) -> tuple[float, GpuSampler]:
    model.fit(dataset, epochs=1, steps_per_epoch=min(20, steps), verbose=0)  # trace, warm caches
    with GpuSampler() as sampler:
        started = time.perf_counter()
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
        elapsed = time.perf_counter() - started
    return steps / elapsed, sampler


def in_memory(live, batches: int):
    """The first `batches` batches of the live stream, repeated from memory."""
    taken = list(live.take(batches).as_numpy_iterator())
    stacked = tuple(np.stack(parts) for parts in zip(*taken)) if isinstance(taken[0], tuple) else np.stack(taken)
    return tf.data.Dataset.from_tensor_slices(stacked).repeat().prefetch(tf.data.AUTOTUNE)


def measure(sim_name: str, variant: str, steps: int, strategy, cache_dir: str) -> list[dict]:
    config = config_lib.get_config(sim_name, "gpu")
    for key, value in VARIANTS[variant].items():
        setattr(config.model, key, value)
    simulator = simulators.make(sim_name, config.simulator.to_dict())
    scaler = data.fit_output_scaler(simulator, config.seed) if not simulator.output_spec.is_image else None
    kind = losses.likelihood_of(simulator.output_spec.kind, simulator.stochastic)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator, encoder = models.build_models(config, simulator)
        generator.compile(optimizer=training.make_optimizer(config.stage1), loss=losses.Discrepancy(kind),
                          jit_compile=config.model.jit_compile)
        inverse = training.InverseModel(encoder, generator, kind, latent_weight=config.stage2.latent_weight,
                                        orbit_direction=invariance.normalized_direction(simulator.latents, simulator.invariance_direction), total_steps=config.stage2.steps)
        inverse.compile(optimizer=training.make_optimizer(config.stage2), jit_compile=config.model.jit_compile)
    stage2_element = "x_and_targets" if config.stage2.latent_weight > 0 else "x"
    # As the run feeds it: configs that cache (RLC: ngspice once into memory) train from the cache.
    cache = (data.materialize(simulator, config.data.cache_size, config.seed, cache_dir, progress=False)
             if config.data.cache_size else None)
    rows = []
    for stage, model, element in (("stage1", generator, "z_and_x"), ("stage2", inverse, stage2_element)):
        live = data.make_dataset(simulator, seed=config.seed, stream=stage, batch_size=config.batch_size,
                                 num_workers=config.data.num_workers, cache=cache, scaler=scaler, element=element)
        memory_rate, memory_gpu = steps_per_second(model, in_memory(live, IN_MEMORY_BATCHES), steps)
        live_rate, live_gpu = steps_per_second(model, live, steps)
        rows.append({"sim": sim_name, "variant": variant, "stage": stage, "batch_size": config.batch_size,
                     "data": "cache" if cache is not None else "simulator",
                     "width": config.model.width, "replicas": strategy.num_replicas_in_sync,
                     "steps_per_s_in_memory": memory_rate, "steps_per_s_live": live_rate,
                     "examples_per_s_in_memory": memory_rate * config.batch_size,
                     "examples_per_s_live": live_rate * config.batch_size,
                     "pipeline_keeps_up": live_rate / memory_rate,
                     "gpu_utilisation_in_memory": memory_gpu.utilisation, "gpu_utilisation_live": live_gpu.utilisation,
                     "gpu_memory_mib_peak": max(filter(None, (memory_gpu.memory, live_gpu.memory)), default=None)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sims", default="box,rlc")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=200, help="timed steps per measurement")
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(os.path.dirname(HERE), "runs", "gpu_check"))
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: {unknown} unknown; use some of {', '.join(VARIANTS)}")

    gpus = tf.config.list_physical_devices("GPU")
    strategy = strategies.make_strategy("auto")
    device = (f"{len(gpus)} GPU(s): " + subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                                       capture_output=True, text=True).stdout.strip().replace("\n", ", ")
              if gpus else f"no GPU; {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}")
    print(f"gpu_check: {device}; strategy {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)",
          flush=True)
    rows = [row for sim in args.sims.split(",") for variant in args.variants.split(",")
            for row in measure(sim, variant, args.steps, strategy, os.path.join(args.out, "cache"))]

    command = "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:])
    lines = ["### The `:gpu` configs' training steps" + (" on a GPU" if gpus else " on this CPU"), "",
             f"Command: `{command}`  ", f"Machine: {device}; TF {tf.__version__}  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| simulator | variant | stage | batch | data | steps/s in memory | steps/s live | examples/s live "
             "| pipeline keeps up | GPU util in memory / live (%) | GPU memory peak (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['sim']} | {r['variant']} | {r['stage']} | {r['batch_size']} | {r['data']} | "
              f"{r['steps_per_s_in_memory']:.1f} | "
              f"{r['steps_per_s_live']:.1f} | {r['examples_per_s_live']:.0f} | {r['pipeline_keeps_up']:.2f} | "
              f"{fmt(r['gpu_utilisation_in_memory'], '.0f')} / {fmt(r['gpu_utilisation_live'], '.0f')} | "
              f"{fmt(r['gpu_memory_mib_peak'], '.0f')} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump({"device": device, "command": command, "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, "gpu_check.md"), "w") as f:
        f.write(text)
    if args.record:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
