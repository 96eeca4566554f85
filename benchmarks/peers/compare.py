"""simvae_tf beside BayesFlow, in one run on one machine, scored on one shared test set.

    make peers                                   # builds the peer environment, then runs this
    .venv/bin/python benchmarks/peers/compare.py [--record] [--budget_factors=1,4] [--sims=rlc,oscillator] [--quick]

For each simulator (RLC: configs/rlc.py, 100k cached ngspice samples; the damped oscillator
of examples/damped_oscillator.py: the default custom config, samples streamed):
  1. a shared test set (--test_size fresh simulations; RLC: inside the paper's validity
     region f0 < 10 kHz, Q < 4) in ROOT/SIM/test.npz;
  2. simvae_tf trained with `simvae_tf.fit` on the shipped config in ROOT/SIM/simvae (its
     own metrics.json, figures and export as usual), training timed;
  3. the exact simulations simvae_tf trained on (RLC: its cache; oscillator: the batches of
     both stages' streams, regenerated from their seeds) in ROOT/SIM/train.npz, latents in
     simvae_tf's normalised coordinates;
  4. BayesFlow trained on them by bayesflow_side.py in the peer environment (--peer_python),
     with simvae_tf's training wall time as its budget (bayesflow_side.py says how);
  5. both posteriors drawn (--draws per observation), timed (batched: the whole test set in
     one call; one at a time: the median of single-observation calls) and scored by
     scoring.py; the table goes to stdout, ROOT/results.json and, with --record,
     benchmarks/RESULTS.md.
Finished steps are kept: a rerun after a kill resumes. A timed training that was interrupted
starts over (its wall time is a result).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [REPO, HERE]  # examples.damped_oscillator; scoring

import numpy as np  # noqa: E402

import scoring  # noqa: E402
import simvae_tf as sv  # noqa: E402
from simvae_tf import data, simulators  # noqa: E402
from simvae_tf.files import atomic_write, write_json  # noqa: E402
from simvae_tf.simulators import base  # noqa: E402
from simvae_tf.training_data import TrainingData  # noqa: E402
from simvae_tf.workdir import CONFIG_RECORD, Workdir  # noqa: E402

SIMS = {"rlc": "rlc", "oscillator": "examples.damped_oscillator:DampedOscillator"}
TEST_STREAM = "peers_test"
SINGLE_OBSERVATIONS = 50  # observations timed one call each (as bayesflow_side.py)
DEFAULT_PEER_PYTHON = os.path.join(HERE, ".venv", "bin", "python")


# -- data ---------------------------------------------------------------------------------------
def test_set(simulator, path: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(z physical [n, K] float64, x [n, ...]): fresh prior draws from a stream no training
    stream uses, kept inside the simulator's validity region."""
    if not os.path.exists(path):
        zs, xs, found, index = [], [], 0, 0
        while found < size:
            rng = np.random.default_rng([seed, zlib.crc32(TEST_STREAM.encode()), index])
            z = simulator.sample_latents(rng, size)
            z = z[simulator.validity_mask(z)][:size - found]
            zs.append(z)
            xs.append(data.simulate_checked(simulator, z))
            found, index = found + len(z), index + 1
        write_npz(path, z=np.concatenate(zs), x=np.concatenate(xs))
    with np.load(path, allow_pickle=False) as f:
        return f["z"], f["x"]


def training_set(simulator, config, workdir: str, path: str) -> int:
    """Writes the simulations simvae_tf trained on (normalised latents `theta`, outputs `x`);
    returns their count."""
    if not os.path.exists(path):
        cache = TrainingData(simulator, config, workdir, verbose=0).cache()
        if cache is not None:
            theta, x = cache
        else:  # streamed: stage 1 saw (z, x), stage 2 x alone, one batch per step
            batches = [data.simulate_batch(simulator, config.seed, stream, i, config.batch_size)
                       for stream in ("stage1", "stage2") for i in range(config[stream].steps)]
            theta, x = (np.concatenate(parts) for parts in zip(*batches))
        write_npz(path, theta=theta, x=x)
    with np.load(path, allow_pickle=False) as f:
        return len(f["x"])


def write_npz(path: str, **arrays) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **arrays))


# -- simvae_tf ----------------------------------------------------------------------------------
def train_simvae(spec: str, config, simulator, workdir: str, record_path: str) -> dict:
    """Trains (timed), evaluates and exports; the cache is simulated before the clock starts,
    as BayesFlow gets its training set ready-made."""
    if os.path.exists(record_path):
        with open(record_path) as f:
            return json.load(f)
    if os.path.isdir(workdir):  # an interrupted timed training: start over, keeping the cache
        for entry in os.listdir(workdir):
            if entry not in ("data", CONFIG_RECORD):
                path = os.path.join(workdir, entry)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    Workdir(workdir).record(simulators.name_of(spec), simulator, config)  # what fit does first
    TrainingData(simulator, config, workdir).cache()
    started = time.perf_counter()
    sv.fit(spec, config=config, workdir=workdir, mode="train")
    record = {"train_seconds": round(time.perf_counter() - started, 1),
              "steps": {stage: config[stage].steps for stage in ("stage1", "stage2")},
              "batch_size": config.batch_size}
    write_json(record_path, record)
    return record


def simvae_posterior(export_dir: str, x: np.ndarray, draws: int, seed: int, out: str) -> dict:
    """Draws for the test set (normalised coordinates) and ms per observation."""
    path = os.path.join(out, "simvae_draws.npz")
    model = sv.load(export_dir)

    def sample(batch, seed):  # like-for-like with BayesFlow: the posterior alone, no misfit score
        return model.posterior(batch, score_misfit=False).sample(draws, seed=seed)

    sample(x[:2], seed)  # warm-up
    started = time.perf_counter()
    z = sample(x, seed)
    batched_ms = (time.perf_counter() - started) * 1e3 / len(x)
    single = []
    for i in range(min(SINGLE_OBSERVATIONS, len(x))):
        started = time.perf_counter()
        sample(x[i:i + 1], seed + 1 + i)
        single.append((time.perf_counter() - started) * 1e3)
    theta = base.normalize(model.latents, z.reshape(-1, z.shape[-1])).reshape(z.shape)
    write_npz(path, theta=theta)
    return {"ms_per_observation_batched": batched_ms, "ms_per_observation_single": float(np.median(single))}


# -- BayesFlow ----------------------------------------------------------------------------------
def run_bayesflow(peer_python: str, train_path: str, test_path: str, out: str, budget_seconds: float,
                  batch_size: int, draws: int, seed: int) -> dict:
    result_path = os.path.join(out, "result.json")
    if not os.path.exists(result_path):
        shutil.rmtree(out, ignore_errors=True)  # an interrupted run starts over
        command = [peer_python, os.path.join(HERE, "bayesflow_side.py"), f"--train={train_path}",
                   f"--test={test_path}", f"--out={out}", f"--budget_seconds={budget_seconds}",
                   f"--batch_size={batch_size}", f"--draws={draws}", f"--seed={seed}"]
        print("$ " + " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            raise SystemExit("compare.py: the BayesFlow side failed (its output is above); rerun to retry")
    with open(result_path) as f:
        return json.load(f)


# -- one simulator --------------------------------------------------------------------------------
def shrink(config) -> None:
    """--quick: a smoke test of the whole pipeline in a few minutes."""
    config.stage1.steps = config.stage2.steps = 200
    config.stage1.steps_per_loop = config.stage2.steps_per_loop = 100
    config.data.cache_size = min(config.data.cache_size, 4000)
    config.eval.num_samples = 500
    config.eval.reference_samples = config.eval.std_calibration_samples = 200


def compare(key: str, args) -> dict:
    spec, root = SIMS[key], os.path.join(args.root, key)
    config = sv.get_config(spec)
    if args.quick:
        shrink(config)
    simulator = simulators.make(spec, config.simulator.to_dict())
    workdir = os.path.join(root, "simvae")
    z_test, x_test = test_set(simulator, os.path.join(root, "test.npz"), args.test_size, args.seed)

    print(f"== {key}: simvae_tf ({spec}) in {workdir}", flush=True)
    simvae = train_simvae(spec, config, simulator, workdir, os.path.join(root, "simvae_training.json"))
    sv.fit(spec, config=config, workdir=workdir, mode="all")  # evaluation and export (training is done)
    timing_path = os.path.join(root, "simvae_timing.json")
    if not os.path.exists(timing_path):
        write_json(timing_path, simvae_posterior(os.path.join(workdir, "export"), x_test, args.draws, args.seed, root))
    with open(timing_path) as f:
        simvae.update(json.load(f))
    train_path = os.path.join(root, "train.npz")
    simvae["training_samples"] = training_set(simulator, config, workdir, train_path)

    methods = {"simvae_tf": simvae}
    for factor in args.budget_factors:
        label = "BayesFlow" if factor == 1 else f"BayesFlow ({factor:g}x budget)"
        out = os.path.join(root, "bayesflow" if factor == 1 else f"bayesflow_{factor:g}x")
        print(f"== {key}: {label}, budget {factor * simvae['train_seconds']:.0f} s", flush=True)
        methods[label] = run_bayesflow(args.peer_python, train_path, os.path.join(root, "test.npz"), out,
                                       factor * simvae["train_seconds"], config.batch_size, args.draws, args.seed)
        methods[label]["draws_path"] = os.path.join(out, "draws.npz")
    simvae["draws_path"] = os.path.join(root, "simvae_draws.npz")
    for record in methods.values():
        with np.load(record["draws_path"], allow_pickle=False) as f:
            record["scores"] = scoring.score(simulator, z_test, f["theta"], seed=args.seed)
    return {"simulator": spec, "test_size": len(z_test), "methods": methods}


# -- report ---------------------------------------------------------------------------------------
def machine() -> str:
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return (f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; simvae_tf: Python "
            f"{platform.python_version()}, TF {tf.__version__}")


def table(results: dict) -> list[str]:
    lines = ["| simulator | method | quantity | recovery | coverage 68% | coverage 95% | training | "
             "ms/obs batched | ms/obs one at a time |", "|---|---|---|---|---|---|---|---|---|"]
    for key, result in results.items():
        for method, record in result["methods"].items():
            if method == "simvae_tf":
                steps = f"{record['steps']['stage1']} + {record['steps']['stage2']} steps"
            else:
                steps = f"{record['epochs']} epochs, {record['steps']} steps"
            shared = [key, method, f"{record['train_seconds']:.0f} s ({steps})",
                      f"{record['ms_per_observation_batched']:.3f}", f"{record['ms_per_observation_single']:.1f}"]
            for name, recovery in record["scores"]["recovery"].items():
                if "slope" in recovery:
                    shown = (f"slope {recovery['slope']:.4f}, R^2 {recovery['r2']:.5f}, "
                             f"median error {recovery['median_relative_error']:.2%}")
                else:
                    shown = f"R^2 {recovery['r2']:.4f}"
                coverage = record["scores"]["coverage"][name]
                simulator, method_name, trained, batched, single = shared
                lines.append(f"| {simulator} | {method_name} | {name} | {shown} | {coverage['0.68']:.3f} | "
                             f"{coverage['0.95']:.3f} | {trained} | {batched} | {single} |")
                shared = [""] * 5  # once per method
    return lines


def report(results: dict, args) -> str:
    bayesflow = next(iter(results.values()))["methods"]["BayesFlow"]
    draws = args.draws
    sizes = ", ".join(f"{key}: {result['test_size']}" for key, result in results.items())
    lines = [f"### simvae_tf vs BayesFlow {bayesflow['bayesflow']} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", f"Command: `python benchmarks/peers/compare.py {' '.join(sys.argv[1:])}`  ",
             f"Machine: {machine()}; BayesFlow: Python {bayesflow['python']}, Keras {bayesflow['keras']} "
             f"({bayesflow['backend']})", "",
             "Same training simulations for both (count in the notes below), one shared test set "
             f"({sizes}; RLC inside the validity region), "
             f"{draws} posterior draws per observation for both; recovery from the mean of the draws; "
             "BayesFlow's budget: simvae_tf's training wall time (times the factor where shown).", ""]
    lines += table(results)
    lines += [""]
    for key, result in results.items():
        methods = result["methods"]
        peers = "; ".join(f"{label}: batch {peer['batch_size']}, {peer['probe_ms_per_step']:.0f} ms per step in the "
                          f"probe ({peer['probe_seconds']:.0f} s, not counted), final loss {peer['final_loss']:.3f}"
                          for label, peer in methods.items() if label != "simvae_tf")
        lines.append(f"- {key}: {methods['simvae_tf']['training_samples']} training simulations for all; {peers}.")
    return "\n".join(lines) + "\n"


SECTION = "## simvae_tf beside BayesFlow"


def record(text: str) -> None:
    """Appends to benchmarks/RESULTS.md, under this benchmark's section (added if missing)."""
    path = os.path.join(REPO, "benchmarks", "RESULTS.md")
    with open(path) as f:
        has_section = any(line.strip() == SECTION for line in f)
    with open(path, "a") as f:
        f.write("\n" + ("" if has_section else SECTION + "\n\n") + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", default="rlc,oscillator", help=f"comma-separated, of {', '.join(SIMS)}")
    parser.add_argument("--root", default=None, help="folder of the runs (default runs/peers, --quick runs/peers_quick)")
    parser.add_argument("--peer_python", default=DEFAULT_PEER_PYTHON,
                        help="python of the BayesFlow environment (`make peers` builds it)")
    parser.add_argument("--test_size", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--budget_factors", default="1",
                        help="BayesFlow's training budgets, as multiples of simvae_tf's training wall time (1,4: two runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny configs: a smoke test of the pipeline, not a result")
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    keys = [k for k in args.sims.split(",") if k]
    unknown = [k for k in keys if k not in SIMS]
    if unknown or not keys:
        parser.error(f"--sims={args.sims!r}: unknown {unknown or 'empty'}; use a comma-separated subset of {','.join(SIMS)}")
    if not os.access(args.peer_python, os.X_OK):
        parser.error(f"--peer_python={args.peer_python}: no such python; run `make peers` (it builds "
                     f"benchmarks/peers/.venv) or point --peer_python at a python with bayesflow")
    if args.quick and args.record:
        parser.error("--quick --record: a smoke test is no result; drop one of them")
    if args.test_size < 10 or args.draws < 10:
        parser.error(f"--test_size={args.test_size} --draws={args.draws}: use at least 10 of each")
    try:
        factors = [float(f) for f in args.budget_factors.split(",")]
    except ValueError:
        factors = []
    if 1.0 not in factors or min(factors) <= 0:
        parser.error(f"--budget_factors={args.budget_factors!r}: use positive numbers that include 1 (e.g. 1 or 1,4)")
    args.budget_factors = factors
    args.root = args.root or os.path.join(REPO, "runs", "peers_quick" if args.quick else "peers")

    results = {key: compare(key, args) for key in keys}
    write_json(os.path.join(args.root, "results.json"), results)
    text = report(results, args)
    print(text)
    if args.record:
        record(text)


if __name__ == "__main__":
    main()
