"""The BayesFlow side of benchmarks/peers/compare.py: trains BayesFlow's default coupling flow
with `BasicWorkflow.fit_offline` on the shared training set and draws its posterior for the
shared test set. Runs in the peer environment (`make peers`: BayesFlow 2.x, Keras 3 on
TensorFlow) and imports nothing of simvae_tf; compare.py scores what it writes.

    PEER_PYTHON benchmarks/peers/bayesflow_side.py --train=TRAIN.npz --test=TEST.npz --out=DIR \
        --budget_seconds=S --batch_size=B [--draws=1000] [--seed=0]

TRAIN.npz holds `theta` (latents in simvae_tf's normalised coordinates: [-1, 1], log value
for log-scale latents) and `x` (simulated outputs); TEST.npz holds `x`. Outputs are
flattened to vectors (BayesFlow would read a [65, 2] array as a sequence of 65 steps) and
passed as `inference_conditions`; `standardize="all"` lets BayesFlow standardise both the
latents and the outputs (simvae_tf standardises its signals per element the same way).

Budget: as many epochs as fit into --budget_seconds (simvae_tf's training wall time), from
the step time and the one-off cost (building, tracing) of a short probe fit, at least one; BayesFlow's cosine schedule then runs its
full course (a fit stopped by the clock would not). Writes DIR/draws.npz (`theta`
[n_test, draws, K]), DIR/result.json (epochs, wall times, ms per observation) and
TensorBoard logs in DIR/tensorboard; progress is Keras' line per epoch. A killed run starts
over: its wall time is one of the results.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TQDM_DISABLE", "1")  # BayesFlow's sampling bar, once per timed call

import bayesflow as bf  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

PROBE_BATCHES = 150  # per probe epoch; the second epoch's time is the step time (the first traces)
SINGLE_OBSERVATIONS = 50  # observations timed one call each
SAMPLE_BATCH = 100  # observations per sampling batch (BayesFlow's memory knob): 100 x 1000 draws at once


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def workflow() -> bf.BasicWorkflow:
    """BayesFlow's defaults: coupling flow, no summary network, its own optimizer and schedule."""
    return bf.BasicWorkflow(inference_network="coupling_flow", inference_variables=["theta"],
                            inference_conditions=["x"], standardize="all")


def step_time(data: dict, batch_size: int) -> tuple[float, float]:
    """(seconds per training step, seconds of one-off cost: building, tracing) from a
    throwaway two-epoch fit on a slice of the data."""
    n = min(len(data["x"]), PROBE_BATCHES * batch_size)
    probe = {key: value[:n] for key, value in data.items()}
    times = EpochTimes()
    started = time.perf_counter()
    workflow().fit_offline(probe, epochs=2, batch_size=batch_size, verbose=0, callbacks=[times])
    total = time.perf_counter() - started
    return times.seconds[-1] / (n // batch_size), total - 2 * times.seconds[-1]


def draw(wf: bf.BasicWorkflow, x: np.ndarray, num_draws: int, seed: int) -> np.ndarray:
    return wf.sample(num_samples=num_draws, conditions={"x": x}, batch_size=SAMPLE_BATCH, seed=seed)["theta"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget_seconds", type=float, required=True)
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    with np.load(args.train, allow_pickle=False) as f:
        data = {"theta": f["theta"].astype(np.float32), "x": f["x"].reshape(len(f["x"]), -1).astype(np.float32)}
    with np.load(args.test, allow_pickle=False) as f:
        x_test = f["x"].reshape(len(f["x"]), -1).astype(np.float32)

    started = time.perf_counter()
    step_seconds, one_off_seconds = step_time(data, args.batch_size)
    probe_seconds = time.perf_counter() - started
    steps_per_epoch = len(data["x"]) // args.batch_size
    epochs = max(1, int((args.budget_seconds - one_off_seconds) / (step_seconds * steps_per_epoch)))
    print(f"BayesFlow {bf.__version__}: {step_seconds * 1e3:.1f} ms per step of {args.batch_size}, "
          f"{one_off_seconds:.0f} s to build and trace; {epochs} epochs of {steps_per_epoch} steps fit "
          f"{args.budget_seconds:.0f} s", flush=True)

    keras.utils.set_random_seed(args.seed)
    wf = workflow()
    tensorboard = keras.callbacks.TensorBoard(os.path.join(args.out, "tensorboard"))
    started = time.perf_counter()
    history = wf.fit_offline(data, epochs=epochs, batch_size=args.batch_size, verbose=2, callbacks=[tensorboard])
    train_seconds = time.perf_counter() - started

    logging.getLogger("bayesflow").setLevel(logging.WARNING)  # "Sampling completed" per timed call
    draw(wf, x_test[:2], args.draws, args.seed)  # warm-up, as for simvae_tf
    started = time.perf_counter()
    theta = draw(wf, x_test, args.draws, args.seed)
    batched_ms = (time.perf_counter() - started) * 1e3 / len(x_test)
    single = []
    for i in range(min(SINGLE_OBSERVATIONS, len(x_test))):
        started = time.perf_counter()
        draw(wf, x_test[i:i + 1], args.draws, args.seed + 1 + i)
        single.append((time.perf_counter() - started) * 1e3)

    os.makedirs(args.out, exist_ok=True)
    np.savez(os.path.join(args.out, "draws.npz"), theta=theta.astype(np.float32))
    result = {
        "bayesflow": bf.__version__, "keras": keras.__version__, "backend": keras.backend.backend(),
        "python": platform.python_version(), "inference_network": "coupling_flow (BayesFlow defaults)",
        "batch_size": args.batch_size, "epochs": epochs, "steps": epochs * steps_per_epoch,
        "training_samples": len(data["x"]), "budget_seconds": args.budget_seconds,
        "probe_seconds": round(probe_seconds, 1), "probe_ms_per_step": round(step_seconds * 1e3, 2),
        "train_seconds": round(train_seconds, 1),
        "final_loss": float(history.history["loss"][-1]), "draws": args.draws,
        "ms_per_observation_batched": batched_ms, "ms_per_observation_single": float(np.median(single)),
    }
    # Written last and atomically: its presence marks a finished run.
    with open(os.path.join(args.out, "result.json.tmp"), "w") as f:
        json.dump(result, f, indent=1)
    os.replace(os.path.join(args.out, "result.json.tmp"), os.path.join(args.out, "result.json"))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
