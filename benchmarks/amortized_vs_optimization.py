"""Amortized inference (the SimVAE encoder) against per-observation optimisation.

    python benchmarks/amortized_vs_optimization.py --model=runs/box/export \
        [--num_observations=200] [--num_fitted=40] [--steps=200] [--learning_rate=0.05]

Held-out observations are drawn from the export's own simulator (its class, from the
metadata, must be importable) with a seed no training stream uses. Every method estimates
their latents:

  encoder, batch       E(x) posterior mean for all observations in one call;
  encoder, one by one  the same, one observation per call (the latency of a single query);
  GD from prior centre per observation, Adam on the latents through the frozen generator
                       (analysis by synthesis), starting from the middle of the ranges;
  GD from encoder mean the same, started from E(x) (amortized guess + refinement).

GD optimises in the networks' [-1, 1] coordinates, projected onto the trained range, with
the discrepancy G was trained with (Bernoulli cross-entropy for images, squared error in
the training standardisation for signals); the whole loop of `--steps` Adam steps is one
compiled TensorFlow call, so it is timed at its best. Accuracy, on the `--num_fitted`
observations all methods see:
  latent R^2     mean over latents, in the networks' coordinates (log value for log-scale
                 latents), after the simulator's canonicalisation when it has invariances;
  latent RMSE    the same coordinates (the range of each latent is 2);
  obs MAE        mean |S(z_hat) - x|, the simulator re-rendering the estimate (in output
                 units; z_hat clipped to the simulator's ranges), and mean |G(z_hat) - x|,
                 the surrogate's: GD minimises the latter, so where G is imperfect it can
                 fit G better than the encoder while matching S no better.
The table is printed and appended to --results (default benchmarks/RESULTS.md)
with the command, the machine and the model's training config.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

# As under `python -m simvae_tf.main`, the current directory is importable, so a simulator
# trained from here with --sim=module:Class imports here too (a script's path is its folder).
if os.getcwd() not in sys.path:
    sys.path.insert(1, os.getcwd())

from simvae_tf import cli, data, metrics  # noqa: E402
from simvae_tf.errors import UserError  # noqa: E402
from simvae_tf.invert.simulator import load_simulator  # noqa: E402
from simvae_tf.invert.spec import ExportSpec  # noqa: E402
from simvae_tf.simulators import base  # noqa: E402

DEFAULT_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
# Held-out observations: a seed sequence no training stream (seed, crc32(stream), batch) uses.
HELD_OUT_STREAM = 0x0BE7C4


class Networks:
    """The exported encoder and generator, and a compiled per-observation fitter."""

    def __init__(self, model: ExportSpec, steps: int, learning_rate: float):
        import tensorflow as tf

        self.tf = tf
        self.model = model
        self.encoder = tf.saved_model.load(os.path.join(model.directory, "encoder"))
        self.generator = tf.saved_model.load(os.path.join(model.directory, "generator"))
        constants = base.normalization_constants(model.latents)
        self.low, self.high = tf.constant(constants["low"]), tf.constant(constants["high"])
        self.is_log = tf.constant(constants["is_log"])
        scaler = model.metadata.get("output_scaler")
        self.output_std = tf.constant(np.asarray(scaler["std"], np.float32)) if scaler else None
        k = len(model.latents)
        signature = [tf.TensorSpec((1,) + tuple(model.shape), tf.float32), tf.TensorSpec((1, k), tf.float32)]
        self.fit = tf.function(self._adam_loop(steps, learning_rate), input_signature=signature)

    def to_physical(self, u):
        v = self.low + (u + 1.0) * 0.5 * (self.high - self.low)
        return self.tf.where(self.is_log, self.tf.exp(v), v)

    def discrepancy(self, x, x_hat):
        tf = self.tf
        if self.model.is_image:
            p = tf.clip_by_value(x_hat, 1e-6, 1.0 - 1e-6)
            return -tf.reduce_mean(x * tf.math.log(p) + (1.0 - x) * tf.math.log(1.0 - p))
        return 0.5 * tf.reduce_mean(tf.square((x - x_hat) / self.output_std))

    def _adam_loop(self, steps: int, learning_rate: float):
        tf = self.tf
        beta1, beta2, epsilon = 0.9, 0.999, 1e-7  # Keras' Adam defaults

        def fit(x, u0):
            # Adam written out so that its moments start at zero for every observation.
            u, m, v = u0, tf.zeros_like(u0), tf.zeros_like(u0)
            for t in tf.range(1, steps + 1):
                with tf.GradientTape() as tape:
                    tape.watch(u)
                    loss = self.discrepancy(x, self.generator.serve(self.to_physical(u)))
                g = tf.ensure_shape(tape.gradient(loss, u), u0.shape)  # the generator's batch axis is None
                m = beta1 * m + (1 - beta1) * g
                v = beta2 * v + (1 - beta2) * g * g
                t = tf.cast(t, tf.float32)
                step = learning_rate * (m / (1 - beta1 ** t)) / (tf.sqrt(v / (1 - beta2 ** t)) + epsilon)
                u = tf.clip_by_value(u - step, -1.0, 1.0)
            return u

        return fit

    def generate(self, z: np.ndarray) -> np.ndarray:
        return self.generator.serve(self.tf.constant(z, self.tf.float32)).numpy()

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Posterior means in normalised coordinates."""
        return self.encoder.serve(self.tf.constant(x, self.tf.float32))["mean_normalized"].numpy()


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def evaluate(simulator, networks: Networks, x, z_true, u_hat) -> dict:
    """Latent R^2 / RMSE (normalised coordinates, canonicalised) and observable MAE of the
    simulator's and the generator's renderings of the estimate."""
    latents = networks.model.latents
    z_hat = base.denormalize(latents, np.clip(u_hat, -1.0, 1.0))
    truth = base.normalize(latents, simulator.canonicalize(z_true))
    estimate = base.normalize(latents, simulator.canonicalize(z_hat))
    r2 = metrics.r2_per_latent(truth, estimate)
    rerendered = data.simulate_checked(simulator, z_hat, data.noise_rng(0, "amortized_vs_optimization_rerender"))
    return {"r2": float(np.nanmean(r2)), "r2_per_latent": r2.tolist(),
            "rmse": float(np.sqrt(np.mean((truth - estimate) ** 2))),
            "obs_mae": float(np.mean(np.abs(rerendered - x))),
            "generator_mae": float(np.mean(np.abs(networks.generate(z_hat) - x)))}


def run_benchmark(export_dir: str, num_observations: int = 200, num_fitted: int = 40, steps: int = 200,
                  learning_rate: float = 0.05, seed: int = 0) -> dict:
    model = ExportSpec.read(export_dir)
    simulator, why_not = load_simulator(model)
    if simulator is None:
        raise UserError(f"{why_not}; the benchmark needs the simulator to draw held-out observations "
                                "(run it from the folder you trained from)")
    num_fitted = min(num_fitted, num_observations)
    rng = np.random.default_rng([seed, HELD_OUT_STREAM])
    z_true = simulator.sample_latents(rng, num_observations)
    x = data.simulate_checked(simulator, z_true, data.noise_rng(seed, "amortized_vs_optimization"))
    networks = Networks(model, steps, learning_rate)
    tf = networks.tf
    k = len(model.latents)

    networks.encode(x[:2])  # first calls build the graphs: keep them out of the timings
    networks.fit(tf.constant(x[:1]), tf.zeros((1, k)))
    batch_seconds = min(timed(lambda: networks.encode(x))[1] for _ in range(3))
    u_encoder = networks.encode(x)
    single = [timed(lambda i=i: networks.encode(x[i:i + 1]))[1] for i in range(num_fitted)]

    fitted = {"prior": [], "encoder": []}
    seconds = {"prior": 0.0, "encoder": 0.0}
    for i in range(num_fitted):
        observation = tf.constant(x[i:i + 1])
        u, elapsed = timed(lambda: networks.fit(observation, tf.zeros((1, k))).numpy())
        fitted["prior"].append(u[0])
        seconds["prior"] += elapsed
        u, elapsed = timed(lambda: networks.fit(observation, tf.constant(networks.encode(x[i:i + 1]))).numpy())
        fitted["encoder"].append(u[0])
        seconds["encoder"] += elapsed

    subset = slice(0, num_fitted)
    rows = [
        ("encoder, batch", 1e3 * batch_seconds / num_observations, u_encoder[subset]),
        ("encoder, one by one", 1e3 * float(np.median(single)), u_encoder[subset]),
        (f"GD from prior centre ({steps} steps)", 1e3 * seconds["prior"] / num_fitted, np.array(fitted["prior"])),
        (f"GD from encoder mean ({steps} steps)", 1e3 * seconds["encoder"] / num_fitted, np.array(fitted["encoder"])),
    ]
    table = [{"method": name, "ms_per_observation": ms,
              **evaluate(simulator, networks, x[subset], z_true[subset], u)} for name, ms, u in rows]
    encoder_all = evaluate(simulator, networks, x, z_true, u_encoder)
    return {"model": os.path.abspath(export_dir), "simulator": model.metadata.get("name"),
            "latents": model.latent_names, "num_observations": num_observations, "num_fitted": num_fitted,
            "steps": steps, "learning_rate": learning_rate, "seed": seed, "rows": table,
            "encoder_all_observations": encoder_all, "training_config": training_config(export_dir)}


def training_config(export_dir: str) -> dict | None:
    """The run's key training settings, when the export sits in its run's workdir."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(export_dir)), "config.json")) as f:
            config = json.load(f)["config"]
    except (OSError, ValueError, KeyError):
        return None
    return {"batch_size": config["batch_size"], "model.width": config["model"]["width"],
            "stage1.steps": config["stage1"]["steps"], "stage2.steps": config["stage2"]["steps"],
            "stage2.kl_weight": config["stage2"]["kl_weight"], "seed": config["seed"]}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{cores} CPU cores (nproc), {cpu}, {gpus} GPU; TensorFlow {tf.__version__}, Python {platform.python_version()}"


def format_table(results: dict) -> str:
    lines = ["| method | ms / observation | latent R^2 | latent RMSE | obs MAE, S(z_hat) vs x | obs MAE, G(z_hat) vs x |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        lines.append(f"| {row['method']} | {row['ms_per_observation']:.3g} | {row['r2']:.3f} | {row['rmse']:.3f} | "
                     f"{row['obs_mae']:.4f} | {row['generator_mae']:.4f} |")
    return "\n".join(lines)


def format_record(results: dict, command: str) -> str:
    per_latent = ", ".join(f"{name} {r2:.3f}" for name, r2 in
                           zip(results["latents"], results["encoder_all_observations"]["r2_per_latent"]))
    config = results["training_config"]
    return "\n".join([
        f"## {results['simulator']}: amortized encoder vs per-observation optimisation "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"Command: `{command}`",
        f"Machine: {machine()}",
        f"Model: {results['model']}" + (f" (trained with {', '.join(f'{k}={v}' for k, v in config.items())})"
                                        if config else ""),
        f"Held-out simulator observations: {results['num_observations']} (encoder); the first "
        f"{results['num_fitted']} fitted by every method; Adam lr {results['learning_rate']}, seed {results['seed']}.",
        "",
        format_table(results),
        "",
        f"Encoder on all {results['num_observations']} observations: latent R^2 "
        f"{results['encoder_all_observations']['r2']:.3f} ({per_latent}), obs MAE "
        f"{results['encoder_all_observations']['obs_mae']:.4f}.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained run's export directory (WORKDIR/export)")
    parser.add_argument("--num_observations", type=int, default=200)
    parser.add_argument("--num_fitted", type=int, default=40, help="observations fitted by gradient descent")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps per fitted observation")
    parser.add_argument("--learning_rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=DEFAULT_RESULTS, help="markdown file the record is appended to")
    parser.add_argument("--no_record", action="store_true", help="print only")
    args = parser.parse_args()
    for name in ("num_observations", "num_fitted", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}={getattr(args, name)} must be a positive integer")
    cli.import_tensorflow_quietly()  # before anything imports it, so its start-up chatter stays hidden
    from simvae_tf.errors import NotAnExportError

    try:
        results = run_benchmark(args.model, args.num_observations, args.num_fitted, args.steps, args.learning_rate,
                                args.seed)
    except (UserError, NotAnExportError) as e:
        parser.error(str(e))
    record = format_record(results, " ".join(["python", *sys.argv]))
    print(record)
    if not args.no_record:
        header = "" if os.path.exists(args.results) else (
            "# Amortized inference vs per-observation optimisation\n\n"
            "Recorded by `benchmarks/amortized_vs_optimization.py` (see its docstring for the method).\n\n")
        with open(args.results, "a") as f:
            f.write(header + record + "\n")
        print(f"Appended to {args.results}")


if __name__ == "__main__":
    main()
