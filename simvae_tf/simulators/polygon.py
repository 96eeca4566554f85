"""Polygon plotter (paper section 4.1): a filled four-point polygon, dark on white.

Latents, in the paper's order x1, y1, x2, y2, x3, y3, x4, y4: the four vertices, drawn in
that order and closed back to the first, in units of the field's side (the unit square,
x to the right, y up, like the box plotter), each uniform in [0.05, 0.95] so that every
polygon lies inside the 64x64 image with at least 3 pixels of white around it.

The polygon may cross itself ("folded" shapes, paper section 4.1): a bow-tie fills both of
its triangles, as matplotlib's non-zero winding rule does (for four vertices non-zero and
even-odd agree, see `rendering`).

Invariance: the 8 orderings of the vertices obtained by cyclic shifts and by reversing the
drawing direction (the dihedral group on the vertex sequence) describe the same outline.
The other 16 permutations of the four points draw different polygons in general.
`canonicalize` picks, of the 8 orderings, the one whose (x1, y1, ..., x4, y4) is
lexicographically smallest: it starts at the vertex with the smallest x (then smallest y)
and walks towards the smaller of its two neighbours.

Agg, drawing without antialiasing, fills pixels that a shape covers by less than 1/256
differently depending on the direction the outline runs in (see `rendering`), so the same
outline drawn in reverse differs in ~6 pixels. `simulate` therefore draws every polygon in
its canonical ordering: the image depends only on the outline, exactly, as the paper's
one-to-many inverse assumes.

Renderers: `numpy` (default) is `rendering.rasterize_polygons`, bit-exact with the
`matplotlib` reference (`rendering.AggCanvas`) and about 3x faster.
"""

from __future__ import annotations

import numpy as np

from simvae_tf.simulators.base import Latent, OutputSpec, Simulator
from simvae_tf.simulators.rendering import IMAGE_SIZE, PolygonFill

NUM_VERTICES = 4
COORDINATE_LOW, COORDINATE_HIGH = 0.05, 0.95


def _dihedral_orderings(num_vertices: int) -> np.ndarray:
    """[2 * num_vertices, num_vertices] vertex indices: all cyclic shifts, then reversed."""
    shifts = [np.roll(np.arange(num_vertices), -s) for s in range(num_vertices)]
    return np.array(shifts + [shift[::-1] for shift in shifts])


ORDERINGS = _dihedral_orderings(NUM_VERTICES)  # row 0 is the identity


class PolygonSimulator(PolygonFill, Simulator):
    name = "polygon"
    latents = tuple(
        Latent(f"{axis}{i}", COORDINATE_LOW, COORDINATE_HIGH, unit="field")
        for i in range(1, NUM_VERTICES + 1) for axis in ("x", "y"))
    output_spec = OutputSpec(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), kind="binary_image")
    has_invariance = True

    def __init__(self, renderer: str = "numpy"):
        self._init_renderer(renderer)

    def simulate(self, z: np.ndarray) -> np.ndarray:
        """[n, 8] vertices (field units) -> [n, 64, 64, 1] float32, 1 = filled."""
        vertices = self.canonicalize(z).reshape(-1, NUM_VERTICES, 2) * IMAGE_SIZE
        filled = self._fill(vertices)
        return filled[..., None].astype(np.float32)

    # -- invariance: the dihedral group on the vertex sequence --------------------------------
    def canonicalize(self, z: np.ndarray) -> np.ndarray:
        """Each row's lexicographically smallest ordering among the 8 that draw the same outline."""
        candidates = self.orbit(z)  # [n, 8, 8]
        # Lexicographic argmin, one coordinate at a time, keeping the tied candidates.
        tied = np.ones(candidates.shape[:2], dtype=bool)
        for position in range(candidates.shape[2]):
            values = np.where(tied, candidates[:, :, position], np.inf)
            tied &= values == values.min(axis=1, keepdims=True)
        best = np.argmax(tied, axis=1)
        return candidates[np.arange(len(candidates)), best]

    def derived_quantities(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Quantities that do not depend on the vertex order: centroid of the vertices, perimeter."""
        points = _as_latents(z).reshape(-1, NUM_VERTICES, 2)
        edges = np.roll(points, -1, axis=1) - points
        return {
            "centroid_x": points[:, :, 0].mean(axis=1),
            "centroid_y": points[:, :, 1].mean(axis=1),
            "perimeter": np.linalg.norm(edges, axis=2).sum(axis=1),
        }

    def orbit(self, z: np.ndarray) -> np.ndarray:
        """[n, 8] latents -> [n, 8 orderings, 8] latents, identity first."""
        points = _as_latents(z).reshape(-1, NUM_VERTICES, 2)
        return points[:, ORDERINGS].reshape(len(points), len(ORDERINGS), 2 * NUM_VERTICES)


def _as_latents(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 2 * NUM_VERTICES:
        raise ValueError(f"polygon latents must have shape [n, {2 * NUM_VERTICES}] "
                         f"(x1, y1, ..., x4, y4), got {z.shape}")
    return z
