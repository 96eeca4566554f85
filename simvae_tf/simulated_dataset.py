"""A stored dataset of simulations (`python -m simvae_tf.simulate`): what it records, the
check that a run's simulator made it, and loading it for training.

The dataset is a TFDS dataset folder (`tfds.builder_from_directory(DIR)`), split `train`,
one example per sample in index order:

  index    int64        sample i
  z        float32 [K]  latents normalised to [-1, 1] (what the networks see)
  latents  float64 [K]  the same latents in physical units
  x        the output: uint8 images (x * 255, as the in-memory cache holds them) or float32

Sample i is row i % 256 of batch i // 256 of the seeded stream `data.materialize` reads
(stream "cache"), so the dataset equals `materialize(simulator, N, seed)` element for
element, whoever simulated it. Its `metadata.json` (TFDS `info.metadata`) records the
simulator's description (name, class, latents with their ranges, output), its options, the
seed, the sample count, and the versions and Beam runner that made it.

Training loads it into memory, like the cache (`data.cache_size`); a dataset larger than the
memory available is refused before anything is written (see docs/scale.md). This module
needs TFDS, not Apache Beam.
"""

from __future__ import annotations

import json

import numpy as np

from simvae_tf import data
from simvae_tf.errors import ConfigError
from simvae_tf.simulators.base import Simulator

FORMAT = 1  # bumped when the layout above changes; older readers refuse newer datasets
SPLIT = "train"
WORK = ".partial"  # an unfinished dataset's working folder (beam_simulation)
KEY = "--config.data.dataset_dir"
# What identifies a dataset's contents: two datasets that agree on these are identical.
REQUEST_KEYS = ("simvae_tf_dataset", "sim", "simulator", "simulator_options", "seed", "num_samples", "stream",
                "batch_size")


def jsonable(value):
    """`value` as JSON would give it back (tuples and numpy arrays become lists), so a
    record compares equal to the one read from disk."""
    def default(v):
        if isinstance(v, (np.ndarray, np.generic)):
            return v.tolist()
        return str(v)

    return json.loads(json.dumps(value, sort_keys=True, default=default))


def request(sim_name: str, simulator: Simulator, seed: int, num_samples: int) -> dict:
    """What a dataset holds, in the form its metadata records."""
    return jsonable({"simvae_tf_dataset": FORMAT, "sim": sim_name, "simulator": simulator.describe(),
                     "simulator_options": data.simulator_options(simulator), "seed": seed,
                     "num_samples": num_samples, "stream": data.CACHE_STREAM, "batch_size": data.CACHE_BATCH_SIZE})


def request_of(metadata: dict) -> dict:
    return {key: metadata.get(key) for key in REQUEST_KEYS}


def request_differences(old: dict, new: dict) -> list[str]:
    """The differences between two requests, worded for a one-line error ('old' = stored)."""
    differences = []
    for key in REQUEST_KEYS:
        a, b = old.get(key), new.get(key)
        if key == "simulator_options" and isinstance(a, dict) and isinstance(b, dict):
            differences += options_differences(a, b)
        elif key == "simulator" and isinstance(a, dict) and isinstance(b, dict):
            differences += simulator_differences(a, b)
        elif a != b:
            differences.append(f"{key}: {a!r} there, {b!r} now")
    return differences


def options_differences(old: dict, new: dict) -> list[str]:
    return [f"simulator option {k}: {old.get(k, '<unset>')!r} there, {new.get(k, '<unset>')!r} now"
            for k in sorted(set(old) | set(new)) if old.get(k, "<unset>") != new.get(k, "<unset>")]


def simulator_differences(old: dict, new: dict) -> list[str]:
    """Differences of two `Simulator.describe()` records: class, latents (names, ranges,
    scales), output."""
    if (old.get("name"), old.get("class")) != (new.get("name"), new.get("class")):
        return [f"simulator {old.get('name')!r} ({old.get('class')}) there, {new.get('name')!r} ({new.get('class')}) now"]
    differences = []
    old_latents, new_latents = old.get("latents") or [], new.get("latents") or []
    if [latent.get("name") for latent in old_latents] != [latent.get("name") for latent in new_latents]:
        differences.append(f"latents {[latent.get('name') for latent in old_latents]} there, "
                           f"{[latent.get('name') for latent in new_latents]} now")
    else:
        for a, b in zip(old_latents, new_latents):
            if a != b:
                differences.append(f"latent {a['name']!r}: range [{a.get('low')}, {a.get('high')}] ({a.get('scale')}) "
                                   f"there, [{b.get('low')}, {b.get('high')}] ({b.get('scale')}) now")
    if old.get("output_spec") != new.get("output_spec"):
        differences.append(f"output {old.get('output_spec')} there, {new.get('output_spec')} now")
    return differences


# -- reading ---------------------------------------------------------------------------------
def _path(directory):
    """Local folders and object stores (gs://, as TFDS reads them) alike."""
    from etils import epath

    return epath.Path(directory)


def is_dataset(directory: str) -> bool:
    """A finished dataset: the generator writes dataset_info.json last."""
    return (_path(directory) / "dataset_info.json").exists()


def read_metadata(directory: str, key: str = KEY) -> dict:
    """The dataset's record (metadata.json); a one-line ConfigError naming `key` when the
    folder is missing, unfinished, or no simvae_tf dataset."""
    if not _path(directory).is_dir():
        raise ConfigError(f"{key}={directory} does not exist; make it with python -m simvae_tf.simulate "
                          f"--output={directory} (docs/scale.md)")
    if not is_dataset(directory):
        unfinished = (_path(directory) / WORK).exists()
        raise ConfigError(f"{key}={directory} " + ("is unfinished (its simulation was interrupted); rerun the same "
                          "simvae_tf.simulate command to complete it" if unfinished else
                          "is not a dataset made by simvae_tf.simulate (no dataset_info.json); pass such a folder"))
    try:
        metadata = json.loads((_path(directory) / "metadata.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{key}={directory} has no readable metadata.json ({e}); it is not a dataset made by "
                          "simvae_tf.simulate, or it is damaged: simulate it again") from None
    version = metadata.get("simvae_tf_dataset") if isinstance(metadata, dict) else None
    if not isinstance(version, int):
        raise ConfigError(f"{key}={directory} is a TFDS dataset but not one made by simvae_tf.simulate; "
                          "pass a folder that command wrote")
    if version > FORMAT:
        raise ConfigError(f"{key}={directory} was written by a newer simvae_tf (dataset format {version}, this one "
                          f"reads {FORMAT}); upgrade simvae_tf or simulate the dataset again")
    return metadata


def memory_needed(metadata: dict) -> int:
    """Bytes the dataset takes in memory as training holds it (float32 z and x)."""
    spec = metadata["simulator"]
    per_sample = 4 * (len(spec["latents"]) + int(np.prod(spec["output_spec"]["shape"])))
    return per_sample * int(metadata["num_samples"])


def check(directory: str, sim_name: str, simulator: Simulator) -> dict:
    """The dataset's metadata, after checking that `simulator` (with its options) made it
    and that it fits in memory; a one-line ConfigError otherwise. Reads no samples."""
    metadata = read_metadata(directory)
    differences = simulator_differences(metadata.get("simulator") or {}, jsonable(simulator.describe())) + \
        options_differences(metadata.get("simulator_options") or {}, jsonable(data.simulator_options(simulator)))
    if differences:
        raise ConfigError(f"{KEY}={directory} holds simulations of another setup ({'; '.join(differences[:3])}"
                          f"{'; ...' if len(differences) > 3 else ''}); simulate a dataset for this one "
                          f"(python -m simvae_tf.simulate --sim={sim_name} ...) or train without dataset_dir")
    needed, available = memory_needed(metadata), _available_memory()
    if available is not None and needed > available:
        raise ConfigError(f"{KEY}={directory} needs {needed / 2**30:.1f} GiB in memory ({metadata['num_samples']} "
                          f"samples as float32), more than the {available / 2**30:.1f} GiB available here; simulate a "
                          "smaller dataset (--num_samples), or train without dataset_dir (the simulator streams)")
    return metadata


def _available_memory() -> int | None:
    try:
        import psutil  # a TFDS dependency
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def load(directory: str, sim_name: str, simulator: Simulator) -> tuple[np.ndarray, np.ndarray]:
    """(normalised z [N, K] float32, x [N, ...] float32), as `data.materialize` returns them,
    after `check`."""
    metadata = check(directory, sim_name, simulator)
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(directory)
    arrays = tfds.as_numpy(builder.as_dataset(split=SPLIT, shuffle_files=False, batch_size=-1))
    n = int(metadata["num_samples"])
    if not np.array_equal(arrays["index"], np.arange(n)):
        raise ConfigError(f"{KEY}={directory} is damaged: it holds {len(arrays['index'])} samples, not samples 0..{n - 1} "
                          "in order; simulate it again")
    x = arrays["x"]
    if simulator.output_spec.is_image and x.dtype != np.uint8:
        raise ConfigError(f"{KEY}={directory} stores images as {x.dtype}, expected uint8; simulate it again")
    return arrays["z"].astype(np.float32, copy=False), data.decode_x(x)
