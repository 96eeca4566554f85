"""`dsprites_procedural`: dSprites rendered procedurally, offline, as a TFDS dataset.

Same factor grid, example keys (the official row index) and feature schema as TFDS's
`dsprites` (image, label_*, value_*), drawn by `simvae_tf.simulators.dsprites`'s renderer
(its docstring documents the geometry). The simulator does not need this dataset: it
renders on demand. Build it when a TFDS dataset is wanted on disk:

    from simvae_tf_datasets import dsprites_procedural
    dsprites_procedural.prepare(data_dir="/tmp/tfds")              # all 737,280 images
    dsprites_procedural.prepare(data_dir="/tmp/tfds", config="tiny")  # 384 images, seconds

Configs: `full` (the official grid) and `tiny` (every shape, scales 0 and 5, four
orientations and four positions per axis: a smoke test).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from simvae_tf.simulators import dsprites

_BATCH = 4096  # grid points rendered per call


def disable_gcs() -> None:
    """Stops TFDS from probing gs://tfds-data (it would wait on the network). TFDS 4.9.10
    already ships with GCS disabled; this pins it for versions that do not."""
    from tensorflow_datasets.core.utils import gcs_utils

    gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access


@dataclasses.dataclass(eq=False)
class DspritesProceduralConfig(tfds.core.BuilderConfig):
    """Which class indices of each factor (shape, scale, orientation, x, y) to render."""

    class_indices: tuple[tuple[int, ...], ...] = tuple(tuple(range(size)) for size in dsprites.GRID_SIZES)

    def __post_init__(self):
        if len(self.class_indices) != len(dsprites.GRID_SIZES):
            raise ValueError(f"dsprites_procedural config {self.name!r}: class_indices has "
                             f"{len(self.class_indices)} factors; give one tuple per factor {dsprites.FACTOR_NAMES}")
        for name, indices, size in zip(dsprites.FACTOR_NAMES, self.class_indices, dsprites.GRID_SIZES):
            if not indices or min(indices) < 0 or max(indices) >= size or len(set(indices)) != len(indices):
                raise ValueError(f"dsprites_procedural config {self.name!r}: {name} indices {indices} must be "
                                 f"distinct values in 0..{size - 1}")


class DspritesProcedural(tfds.core.GeneratorBasedBuilder):
    """dSprites rendered procedurally (no download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: the official factor grid, procedural renderer."}
    BUILDER_CONFIGS = [
        DspritesProceduralConfig(name="full", description="The full official grid: 737,280 images."),
        DspritesProceduralConfig(
            name="tiny", description="3 shapes x 2 scales x 4 orientations x 4 x 4 positions: 384 images.",
            class_indices=((0, 1, 2), (0, 5), (0, 10, 20, 30), (0, 10, 21, 31), (0, 10, 21, 31))),
    ]
    DEFAULT_CONFIG_NAME = "full"
    # TFDS 4.9.10 derives this with `importlib_resources`, which it only installs on
    # Python < 3.9 (ModuleNotFoundError on import otherwise); the answer is this file.
    code_path = epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {"image": tfds.features.Image(shape=(dsprites.IMAGE_SIZE, dsprites.IMAGE_SIZE, 1))}
        for name, size in zip(dsprites.FACTOR_NAMES, dsprites.GRID_SIZES):
            features[f"label_{name}"] = tfds.features.ClassLabel(num_classes=size)
        for name in dsprites.FACTOR_NAMES:
            features[f"value_{name}"] = tfds.features.Tensor(shape=[], dtype=np.float32)
        info = self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            homepage="https://github.com/deepmind/dsprites-dataset",
            citation="""@misc{dsprites17,
  author = {Loic Matthey and Irina Higgins and Demis Hassabis and Alexander Lerchner},
  title = {dSprites: Disentanglement testing Sprites dataset},
  howpublished= {https://github.com/deepmind/dsprites-dataset/},
  year = "2017",
}""",
        )
        # Nothing of a procedural dataset is on GCS, and the look-up TFDS makes when an
        # unprepared builder is constructed leaves an empty /tmp/tmp*tfds folder behind.
        info.initialize_from_bucket = lambda: None
        return info

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # nothing to download
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        grids = np.meshgrid(*[np.asarray(i) for i in self.builder_config.class_indices], indexing="ij")
        classes = np.stack([g.reshape(-1) for g in grids], axis=1)
        for start in range(0, len(classes), _BATCH):
            batch = classes[start:start + _BATCH]
            images = dsprites.render_grid_images(batch)
            values = dsprites.grid_values(batch).astype(np.float32)
            for classes_row, values_row, image, key in zip(batch, values, images, dsprites.grid_index(batch)):
                record = {"image": image[..., None]}
                for k, name in enumerate(dsprites.FACTOR_NAMES):
                    record[f"label_{name}"] = int(classes_row[k])
                    record[f"value_{name}"] = values_row[k]
                yield int(key), record


def prepare(data_dir: str | os.PathLike, config: str = "full") -> DspritesProcedural:
    """Builds the dataset into data_dir (offline) and returns the builder, ready for
    `as_dataset`. Does nothing if it is already built."""
    disable_gcs()
    builder = DspritesProcedural(config=config, data_dir=os.fspath(data_dir))
    builder.download_and_prepare()
    return builder
