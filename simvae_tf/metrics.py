"""Disentanglement and recovery metrics for SimVAE (paper section 4.2, Table 1, Fig. 3-4).

Pure numpy, no TensorFlow (the tests cross-check it against scikit-learn). Arrays are
sample-major: Z (the model's latents, usually the encoder mean mu) is [N, Kz], V (the
simulator's input factors) is [N, Kv]. Pass both in the scale you want binned: for a latent
sampled log-uniformly (RLC's R, L, C) pass log(value), e.g. `simulators.base.normalize`'s
output, or equal-width bins put almost every sample in the first bin.

Definitions
-----------
Discretisation (`discretize`). Each continuous column is cut into `num_bins` equal-width
bins spanning [min, max] of that column in the sample at hand: edges are
`np.histogram_bin_edges(col, num_bins)`, a value's bin is the number of left edges <= it
(`np.digitize(col, edges[:-1]) - 1`), so the maximum falls in the last bin. This is exactly
disentanglement_lib's `_histogram_discretize`, with bin ids starting at 0 instead of 1.
A column flagged discrete keeps its distinct values as categories (ids 0..C-1 in sorted
order). A column whose spread is below 1e-12 x its magnitude counts as constant (one bin),
so float rounding noise in an otherwise constant column does not pose as information.

Normalised mutual information (`mutual_information_matrix`), paper eq. (6). With a and b
the bin ids of z_i and v_j, and p their empirical joint distribution (plug-in estimate),

    MIM[i, j] = MI(z_i, v_j) / H(v_j),
    MI(z_i, v_j) = sum_{a,b} p(a, b) log(p(a, b) / (p(a) p(b))),  H(v_j) = -sum_b p(b) log p(b).

Logs are natural; the base cancels in the ratio. 0 <= MIM <= 1; MIM[i, j] = 1 iff v_j's
bin is a function of z_i's bin. A constant factor (H(v_j) = 0) has nothing to recover and
its ratio is 0/0: its whole column is NaN (never a made-up 0 or 1).

Mutual information gap (`mig`), Chen et al. 2018. For factor j, with MIM[:, j] sorted
descending into m_(1) >= m_(2),

    gap_j = m_(1) - m_(2),     MIG = mean_j gap_j   over the chosen factors (default all).

Constant (NaN) factors are left out of the mean. dSprites convention (Chen et al., paper
4.3): `factors` = the indices of scale, rotation, x, y, so the shape factor is noise.

Regression scores. `r2_per_latent(z_true, z_pred)[k] = 1 - sum (t - p)^2 / sum (t - mean t)^2`
per column: z_pred used as is, as a prediction of z_true (no fitted line), so it rewards
only Z ~= V in the simulator's own units; NaN for a constant z_true column. `fit_slope(x, y)`
fits y = slope * x + intercept by least squares and returns its R^2 (= squared Pearson
correlation); used for the RLC plot of f0 and Q computed from Z (y) against from V (x),
paper Fig. 3 right (slopes 1.00 / 0.97, R^2 0.99 / 0.97).

Ground truth (`ground_truth`), paper section 4.2. Without an invariance:
MIM(V, V) = `mutual_information_matrix(z=v, v=v)`, i.e. a perfect encoder Z = V. With one
(the inverse simulator is one-to-many): V-bar = apply_invariance(v, rng), a random element
of the invariance group applied to each row (RLC: (R, L, C) -> (R/s, L/s, C s); polygon: a
reordering of the points), and MIM(V, V-bar) = `mutual_information_matrix(z=v_bar, v=v)`:
V-bar plays the encoder (an ideal encoder may return any preimage), V the factors,
normalised by H(V) exactly as MIM(Z, V) is, so the two are comparable entry by entry.

Invariance-aware scores (the paper's open problem, end of 4.3: MIM/MIG are uninformative
when the inverse is one-to-many).
  * `canonical_recovery(z_pred, v, canonicalize)`: map Z and V to the canonical
    representative of their invariance class, then score R^2 per canonical coordinate,
    MIM and MIG as above. Any valid preimage scores as well as V itself.
  * `observable_consistency_images(x, x_rec)`: x = S(z), x_rec = S(E(S(z))). Foreground =
    elements > threshold (the drawn ink / shape pixels, value 1 in binary images), over all
    non-batch axes. Per sample IoU = |A and B| / |A or B|, and 1 when both are empty (both
    blank: perfect agreement). Returns the mean over samples. It asks only that E's answer
    re-simulates to the same observation, so it is blind to which preimage E chose.
  * `observable_consistency_signals(x, x_rec)`: mean |x - x_rec| over every axis but the
    last, one number per channel of the last axis (RLC: gain in dB, phase in rad).

Comparison with disentanglement_lib's MIG (`evaluation/metrics/mig.py`)
--------------------------------------------------------------------------
  * Representation: both bin each code with 20 equal-width histogram bins; identical ids.
  * Factors: disentanglement_lib uses the factor values themselves as discrete labels (its
    datasets' factors are grid indices). A simulator's continuous factor has N distinct
    values, for which that gives H(v) = log N and a meaningless MI, so we bin continuous
    factors with the same equal-width bins. Flag every factor discrete
    (`discrete_v=[True] * Kv`, e.g. from `Latent.discrete`) and our MIG equals
    disentanglement_lib's to rounding (tests/test_metrics.py checks this on random data).
  * It computes mean_j (m_(1) - m_(2)) / H(v_j); we normalise first, then take the gap:
    the same number.
  * A constant factor gives NaN for its whole score there; here the factor is skipped.
  * `factors` selects a subset (their MIG always averages all factors).
  * Because continuous factors are binned, our MIG(V, V) on independent factors is ~1 and
    drops below 1 only for genuinely dependent factors (box plotter), as in Table 1.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = [
    "discretize",
    "mutual_information_matrix",
    "mig",
    "r2_per_latent",
    "fit_slope",
    "canonical_recovery",
    "observable_consistency_images",
    "observable_consistency_signals",
    "ground_truth",
]

# Spread below this fraction of a column's magnitude is float rounding, not information.
_CONSTANT_RELATIVE_TOLERANCE = 1e-12
# Above this many cells a dense joint histogram wastes memory; count occupied cells instead.
_MAX_DENSE_CELLS = 1 << 22


# -- input checks ----------------------------------------------------------------------------
def _as_matrix(name: str, array: np.ndarray) -> np.ndarray:
    """Returns `array` as a finite float64 [N, K] matrix or raises a one-line ValueError."""
    matrix = np.asarray(array, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array [N, K], got shape {matrix.shape}; "
            f"reshape a single column with {name}[:, None]")
    _check_finite(name, matrix)
    return matrix


def _check_finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite values (first at index {first}); "
            "drop or impute them before computing metrics")


def _check_num_bins(num_bins: int) -> int:
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise ValueError(f"num_bins={num_bins!r} must be an integer >= 2 (the paper uses 20)")
    return int(num_bins)


def _discrete_flags(name: str, discrete: Sequence[bool] | None, num_columns: int) -> np.ndarray:
    if discrete is None:
        return np.zeros(num_columns, dtype=bool)
    flags = np.asarray(discrete, dtype=bool).reshape(-1)
    if flags.shape[0] != num_columns:
        raise ValueError(
            f"{name} has {flags.shape[0]} flags but the array has {num_columns} columns; "
            "pass one bool per column")
    return flags


def _is_constant(column: np.ndarray) -> bool:
    spread = float(column.max() - column.min())
    return spread <= _CONSTANT_RELATIVE_TOLERANCE * max(1.0, float(np.abs(column).max()))


# -- discretisation and mutual information ----------------------------------------------------
def _discretize_with_sizes(
    x: np.ndarray, num_bins: int, discrete: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """Bin ids [N, K] (int64) and the number of possible ids per column."""
    codes = np.empty(x.shape, dtype=np.int64)
    sizes = []
    for k in range(x.shape[1]):
        column = x[:, k]
        if discrete[k]:
            categories, codes[:, k] = np.unique(column, return_inverse=True)
            sizes.append(len(categories))
        elif _is_constant(column):
            codes[:, k] = 0
            sizes.append(1)
        else:
            edges = np.histogram_bin_edges(column, bins=num_bins)
            codes[:, k] = np.digitize(column, edges[:-1]) - 1
            sizes.append(num_bins)
    return codes, sizes


def discretize(
    x: np.ndarray, num_bins: int = 20, discrete: Sequence[bool] | None = None
) -> np.ndarray:
    """Bins each column of `x` [N, K] into integer ids [N, K] (see module docstring).

    Continuous columns: `num_bins` equal-width bins over the column's [min, max], ids
    0..num_bins-1 (disentanglement_lib's `_histogram_discretize` minus 1). Columns flagged
    in `discrete` (one bool per column): ids 0..C-1 of their C distinct values, in sorted
    order. Constant columns: all 0.
    """
    matrix = _as_matrix("x", x)
    flags = _discrete_flags("discrete", discrete, matrix.shape[1])
    codes, _ = _discretize_with_sizes(matrix, _check_num_bins(num_bins), flags)
    return codes


def _entropy(codes: np.ndarray, size: int) -> float:
    p = np.bincount(codes, minlength=size) / codes.shape[0]
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _mutual_information(a: np.ndarray, size_a: int, b: np.ndarray, size_b: int) -> float:
    """Plug-in MI (nats) of two integer label vectors with ids < size_a, < size_b."""
    n = a.shape[0]
    joint_keys = a * size_b + b
    if size_a * size_b <= _MAX_DENSE_CELLS:
        joint = np.bincount(joint_keys, minlength=size_a * size_b)
        keys = np.flatnonzero(joint)
        counts = joint[keys]
    else:
        keys, counts = np.unique(joint_keys, return_counts=True)
    count_a = np.bincount(a, minlength=size_a)[keys // size_b]
    count_b = np.bincount(b, minlength=size_b)[keys % size_b]
    counts = counts.astype(np.float64)
    mi = float(np.sum(counts / n * np.log(counts * n / (count_a * count_b.astype(np.float64)))))
    return max(mi, 0.0)  # rounding can push an exact 0 slightly negative


def mutual_information_matrix(
    z: np.ndarray,
    v: np.ndarray,
    num_bins: int = 20,
    discrete_z: Sequence[bool] | None = None,
    discrete_v: Sequence[bool] | None = None,
) -> np.ndarray:
    """MIM [Kz, Kv]: MI(z_i, v_j) / H(v_j) of the discretised columns (paper eq. 6).

    Args:
      z: latents [N, Kz], the model's side (e.g. encoder means).
      v: factors [N, Kv], the simulator's side; each column's entropy normalises.
      num_bins: equal-width bins per continuous column (of z and v alike).
      discrete_z, discrete_v: one bool per column; True keeps values as categories.

    Returns:
      float64 [Kz, Kv] in [0, 1]; a column is all NaN where v_j is constant (H = 0).
    """
    z_matrix, v_matrix = _as_matrix("z", z), _as_matrix("v", v)
    if z_matrix.shape[0] != v_matrix.shape[0]:
        raise ValueError(
            f"z has {z_matrix.shape[0]} rows but v has {v_matrix.shape[0]}; "
            "pass the latents and factors of the same samples, row by row")
    num_bins = _check_num_bins(num_bins)
    z_codes, z_sizes = _discretize_with_sizes(
        z_matrix, num_bins, _discrete_flags("discrete_z", discrete_z, z_matrix.shape[1]))
    v_codes, v_sizes = _discretize_with_sizes(
        v_matrix, num_bins, _discrete_flags("discrete_v", discrete_v, v_matrix.shape[1]))

    mim = np.full((z_matrix.shape[1], v_matrix.shape[1]), np.nan)
    for j in range(v_matrix.shape[1]):
        entropy_v = _entropy(v_codes[:, j], v_sizes[j])
        if entropy_v == 0.0:
            continue  # constant factor: 0/0, left NaN
        for i in range(z_matrix.shape[1]):
            mi = _mutual_information(z_codes[:, i], z_sizes[i], v_codes[:, j], v_sizes[j])
            mim[i, j] = min(mi / entropy_v, 1.0)  # MI <= H(v); clip rounding overshoot
    return mim


def mig(mim: np.ndarray, factors: Sequence[int] | None = None) -> tuple[float, np.ndarray]:
    """Mutual information gap (Chen et al. 2018) of a normalised MIM [Kz, Kv].

    Args:
      mim: output of `mutual_information_matrix` (rows latents, columns factors).
      factors: indices of the factor columns to score (default all), e.g. dSprites'
        scale, rotation, x, y with shape treated as noise.

    Returns:
      (score, per_factor): per_factor[k] = top-1 minus top-2 entry of column factors[k]
      (NaN for a constant factor's NaN column); score = mean of the non-NaN gaps.
    """
    matrix = np.asarray(mim, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"mim must be a 2-D array [Kz, Kv], got shape {matrix.shape}")
    if matrix.shape[0] < 2:
        raise ValueError(
            f"MIG needs at least 2 latents (rows of mim), got {matrix.shape[0]}; "
            "with one latent there is no gap, report mim itself")
    undefined = np.isnan(matrix)
    partly_nan = undefined.any(axis=0) & ~undefined.all(axis=0)
    if partly_nan.any():
        raise ValueError(
            f"mim column {int(np.argmax(partly_nan))} is partly NaN; only a constant "
            "factor's whole column may be NaN")
    _check_finite("mim", np.where(undefined, 0.0, matrix))

    if factors is None:
        selected = np.arange(matrix.shape[1])
    else:
        selected = np.asarray(factors).reshape(-1)
        if selected.size == 0 or not np.issubdtype(selected.dtype, np.integer):
            raise ValueError(f"factors={factors!r} must be a non-empty sequence of column indices")
        if selected.min() < 0 or selected.max() >= matrix.shape[1]:
            raise ValueError(
                f"factors={list(selected)} out of range; mim has {matrix.shape[1]} factor "
                f"columns, use indices 0..{matrix.shape[1] - 1}")
        if len(np.unique(selected)) != selected.size:
            raise ValueError(f"factors={list(selected)} repeats an index; list each factor once")

    top_two = -np.sort(-matrix[:, selected], axis=0)[:2]  # NaN columns stay NaN
    per_factor = top_two[0] - top_two[1]
    if np.isnan(per_factor).all():
        raise ValueError(
            f"every selected factor {list(selected)} is constant, so MIG is undefined; "
            "score factors that vary")
    return float(np.nanmean(per_factor)), per_factor


# -- regression scores --------------------------------------------------------------------------
def r2_per_latent(z_true: np.ndarray, z_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column, z_pred taken as is as a prediction of z_true.

    r2[k] = 1 - sum_n (t - p)^2 / sum_n (t - mean(t))^2 with t = z_true[:, k], p = z_pred[:, k].
    1 is perfect, 0 is as good as predicting the mean, negative is worse; NaN where z_true's
    column is constant (nothing to explain).
    """
    truth, prediction = _as_matrix("z_true", z_true), _as_matrix("z_pred", z_pred)
    if truth.shape != prediction.shape:
        raise ValueError(
            f"z_true has shape {truth.shape} but z_pred {prediction.shape}; pass the same "
            "samples and latents in the same order")
    residual = np.sum((truth - prediction) ** 2, axis=0)
    total = np.sum((truth - truth.mean(axis=0)) ** 2, axis=0)
    constant = np.array([_is_constant(truth[:, k]) for k in range(truth.shape[1])])
    return np.where(constant, np.nan, 1.0 - residual / np.where(constant, 1.0, total))


def posterior_coverage(z_true: np.ndarray, mean: np.ndarray, std: np.ndarray,
                       widths: Sequence[float] = (1.0, 2.0)) -> dict[float, np.ndarray]:
    """Calibration of a Gaussian posterior: per latent, the fraction of samples whose true
    value lies within mean +- width * std. A calibrated posterior covers 0.683 at width 1
    and 0.954 at width 2; less is overconfident, more underconfident. {width: [K]}."""
    truth, centre, spread = _as_matrix("z_true", z_true), _as_matrix("mean", mean), _as_matrix("std", std)
    if not truth.shape == centre.shape == spread.shape:
        raise ValueError(f"z_true {truth.shape}, mean {centre.shape} and std {spread.shape} must have the same shape")
    if np.any(spread <= 0):
        raise ValueError("std must be positive (pass exp(log_std))")
    standardised = np.abs(truth - centre) / spread
    return {float(w): np.mean(standardised <= w, axis=0) for w in widths}


def fit_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line y = slope * x + intercept; returns (slope, intercept, r2).

    x is the reference (e.g. f0 computed from V, the simulator's inputs), y the estimate
    (f0 computed from Z, the encoder's output); a perfect estimate gives (1, 0, 1).
    r2 = 1 - SS_res / SS_tot of the fitted line (= squared Pearson correlation), NaN when y
    is constant. x must vary.
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.ndim != 1 or ys.ndim != 1 or xs.shape != ys.shape or xs.shape[0] < 2:
        raise ValueError(
            f"x and y must be 1-D arrays of the same length >= 2, got shapes {xs.shape} "
            f"and {ys.shape}; flatten them with .ravel()")
    _check_finite("x", xs)
    _check_finite("y", ys)
    if _is_constant(xs):
        raise ValueError(f"x is constant (= {xs[0]!r}), so no line can be fitted; x must vary")
    x_centred, y_centred = xs - xs.mean(), ys - ys.mean()
    slope = float(np.dot(x_centred, y_centred) / np.dot(x_centred, x_centred))
    intercept = float(ys.mean() - slope * xs.mean())
    if _is_constant(ys):
        return slope, intercept, float("nan")
    residual = ys - (slope * xs + intercept)
    r2 = 1.0 - float(np.dot(residual, residual) / np.dot(y_centred, y_centred))
    return slope, intercept, r2


# -- invariance-aware scores ----------------------------------------------------------------------
def canonical_recovery(
    z_pred: np.ndarray,
    v: np.ndarray,
    canonicalize: Callable[[np.ndarray], np.ndarray],
    num_bins: int = 20,
    discrete: Sequence[bool] | None = None,
    factors: Sequence[int] | None = None,
) -> dict[str, np.ndarray | float]:
    """Recovery scores after mapping both sides to canonical form.

    Args:
      z_pred: encoder output [N, K] in the simulator's units (the Z side).
      v: the simulator's inputs [N, K] (the V side).
      canonicalize: [N, K] -> [N, K'], the canonical representative of each row's
        invariance class (e.g. `Simulator.canonicalize`), applied to z_pred and v alike.
      num_bins, discrete: as `mutual_information_matrix`; `discrete` flags the canonical
        coordinates and applies to both sides.
      factors: canonical columns that MIG averages over (default all).

    Returns:
      {"r2": r2_per_latent(C(v), C(z_pred)) [K'], "mim": MIM(C(z_pred), C(v)) [K', K'],
       "mig": float, "mig_per_factor": [len(factors)]}.
    """
    z_matrix, v_matrix = _as_matrix("z_pred", z_pred), _as_matrix("v", v)
    if z_matrix.shape != v_matrix.shape:
        raise ValueError(
            f"z_pred has shape {z_matrix.shape} but v {v_matrix.shape}; both must be the "
            "simulator's latents [N, K] for the same samples")
    canonical_z = _as_matrix("canonicalize(z_pred)", canonicalize(z_matrix))
    canonical_v = _as_matrix("canonicalize(v)", canonicalize(v_matrix))
    if canonical_z.shape != canonical_v.shape or canonical_z.shape[0] != z_matrix.shape[0]:
        raise ValueError(
            f"canonicalize returned shapes {canonical_z.shape} and {canonical_v.shape} for "
            f"inputs of shape {z_matrix.shape}; it must keep one row per sample and map every "
            "input to the same number of columns")
    mim = mutual_information_matrix(canonical_z, canonical_v, num_bins, discrete, discrete)
    score, per_factor = mig(mim, factors)
    return {"r2": r2_per_latent(canonical_v, canonical_z), "mim": mim, "mig": score,
            "mig_per_factor": per_factor}


def _paired_observations(
    x: np.ndarray, x_rec: np.ndarray, min_ndim: int
) -> tuple[np.ndarray, np.ndarray]:
    """x and x_rec as float64 arrays of one shape [N, ...], finite, or a ValueError."""
    original, reconstruction = np.asarray(x, dtype=np.float64), np.asarray(x_rec, dtype=np.float64)
    if original.shape != reconstruction.shape:
        raise ValueError(
            f"x has shape {original.shape} but x_rec {reconstruction.shape}; x_rec must be "
            "S(E(x)) for the same samples")
    if original.ndim < min_ndim or original.shape[0] == 0:
        raise ValueError(
            f"x must be a batch of observations with at least {min_ndim} axes [N, ...], "
            f"got shape {original.shape}")
    _check_finite("x", original)
    _check_finite("x_rec", reconstruction)
    return original, reconstruction


def observable_consistency_images(
    x: np.ndarray, x_rec: np.ndarray, threshold: float = 0.5
) -> float:
    """Mean IoU of foreground (value > threshold) between x = S(z) and x_rec = S(E(S(z))).

    Per sample, over all non-batch axes: IoU = |A and B| / |A or B| with A, B the
    foreground elements of x and x_rec; IoU = 1 when both are empty (both blank agree).
    Returns the mean over the N samples, in [0, 1].
    """
    if not np.isfinite(threshold):
        raise ValueError(f"threshold={threshold!r} must be a finite number (0.5 for [0, 1] images)")
    original, reconstruction = _paired_observations(x, x_rec, min_ndim=2)
    foreground = (original > threshold).reshape(original.shape[0], -1)
    foreground_rec = (reconstruction > threshold).reshape(original.shape[0], -1)
    intersection = np.count_nonzero(foreground & foreground_rec, axis=1)
    union = np.count_nonzero(foreground | foreground_rec, axis=1)
    iou = np.where(union == 0, 1.0, intersection / np.maximum(union, 1))
    return float(iou.mean())


def observable_consistency_signals(x: np.ndarray, x_rec: np.ndarray) -> np.ndarray:
    """Mean absolute error per channel of the last axis between x = S(z) and x_rec = S(E(S(z))).

    For x of shape [N, ..., C] returns [C]: mean of |x - x_rec| over all other axes, in each
    channel's own unit (RLC [N, F, 2]: dB and rad). A single-channel signal [N, T] would give
    one number per time step: pass x[..., None] to get one number.
    """
    original, reconstruction = _paired_observations(x, x_rec, min_ndim=2)
    return np.abs(original - reconstruction).reshape(-1, original.shape[-1]).mean(axis=0)


# -- surrogate fidelity ------------------------------------------------------------------------
# A blurred surrogate keeps a low mean error on images that are mostly background, so the
# fidelity scores look where the detail lives: PSNR over the whole output, and the error on
# the elements that a light blur changes (edges, thin lines, the box's cross).
DETAIL_BLUR_SIGMA = 1.0  # pixels
DETAIL_THRESHOLD = 0.1  # |S(z) - blur(S(z))| above this (images in [0, 1]) marks a detail pixel
DETAIL_CHUNK = 500  # images per step of `detail_error`


def psnr(x: np.ndarray, y: np.ndarray, peak: float | np.ndarray = 1.0) -> float:
    """Mean over samples of 10 log10(peak^2 / MSE) in dB (the MSE floored at 1e-10: identical
    samples score 100 dB). `peak` is the value range: 1 for [0, 1] images; for signals the
    per-channel range (broadcast against the last axis), so every channel counts in its unit."""
    original, other = _paired_observations(x, y, min_ndim=2)
    ratio = (original - other) / np.asarray(peak, dtype=np.float64)
    mse = np.square(ratio).reshape(len(original), -1).mean(axis=1)
    return float(np.mean(10.0 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def gaussian_blur(images: np.ndarray, sigma: float = DETAIL_BLUR_SIGMA) -> np.ndarray:
    """[N, H, W, C] images blurred by a separable Gaussian of `sigma` pixels (edges repeated)."""
    radius = max(int(np.ceil(3 * sigma)), 1)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)  # float32 throughout: 10k RGB images
    blurred = np.asarray(images, dtype=np.float32)
    for axis in (1, 2):
        padding = [(0, 0)] * blurred.ndim
        padding[axis] = (radius, radius)
        padded = np.pad(blurred, padding, mode="edge")
        size = blurred.shape[axis]
        blurred = sum(w * np.take(padded, np.arange(i, i + size), axis=axis) for i, w in enumerate(kernel))
    return blurred


def detail_mask(images: np.ndarray, sigma: float = DETAIL_BLUR_SIGMA, threshold: float = DETAIL_THRESHOLD) -> np.ndarray:
    """[N, H, W] True where any channel of S(z) differs from its blur by more than `threshold`."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape [N, H, W, C], got {images.shape}")
    return np.any(np.abs(images - gaussian_blur(images, sigma)) > threshold, axis=-1)


def detail_error(x: np.ndarray, y: np.ndarray, sigma: float = DETAIL_BLUR_SIGMA,
                 threshold: float = DETAIL_THRESHOLD) -> dict:
    """Mean |x - y| over the detail pixels of x = S(z) (`detail_mask`; all channels), beside
    the error elsewhere and the share of detail pixels. None when x has no detail."""
    original, other = _paired_observations(x, y, min_ndim=4)
    sums, counts = np.zeros(2), np.zeros(2, np.int64)  # [detail, flat]
    for start in range(0, len(original), DETAIL_CHUNK):  # a blurred copy of 10k RGB images is ~0.5 GB
        chunk = slice(start, start + DETAIL_CHUNK)
        mask = detail_mask(original[chunk], sigma, threshold)
        error = np.abs(original[chunk] - other[chunk]).mean(axis=-1)  # [n, H, W]
        sums += (error[mask].sum(), error[~mask].sum())
        counts += (mask.sum(), (~mask).sum())
    means = [float(s / c) if c else None for s, c in zip(sums, counts)]
    return {"detail_mean_abs_error": means[0], "flat_mean_abs_error": means[1],
            "detail_fraction": float(counts[0] / counts.sum())}


# -- ground truth ------------------------------------------------------------------------------
def ground_truth(
    v: np.ndarray,
    apply_invariance: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    rng: np.random.Generator | None = None,
    num_bins: int = 20,
    discrete: Sequence[bool] | None = None,
    factors: Sequence[int] | None = None,
) -> dict[str, np.ndarray | float]:
    """The ground-truth MIM and MIG a perfect encoder would reach (paper section 4.2).

    Without `apply_invariance`: MIM(V, V) = mutual_information_matrix(z=v, v=v).
    With it: V-bar = apply_invariance(v, rng) (e.g. `Simulator.apply_random_invariance`),
    MIM(V, V-bar) = mutual_information_matrix(z=v_bar, v=v): V-bar is the Z side (a valid
    encoder answer), V the factor side whose entropy normalises, as in MIM(Z, V).

    Args:
      v: the simulator's inputs [N, K].
      apply_invariance: (v, rng) -> v_bar [N, K], a random invariance element per row.
      rng: randomness for apply_invariance; default np.random.default_rng(0), reproducible.
      num_bins, discrete: as `mutual_information_matrix`, applied to both sides.
      factors: columns that MIG averages over (default all).

    Returns:
      {"mim": [K, K], "mig": float, "mig_per_factor": [len(factors)]}.
    """
    v_matrix = _as_matrix("v", v)
    if apply_invariance is None:
        z_side = v_matrix
    else:
        if rng is None:
            rng = np.random.default_rng(0)
        # A copy, so an in-place invariance cannot alter the caller's v or the V side here.
        z_side = _as_matrix("apply_invariance(v, rng)", apply_invariance(v_matrix.copy(), rng))
        if z_side.shape != v_matrix.shape:
            raise ValueError(
                f"apply_invariance returned shape {z_side.shape} for v of shape "
                f"{v_matrix.shape}; it must return the same shape")
    mim = mutual_information_matrix(z_side, v_matrix, num_bins, discrete, discrete)
    score, per_factor = mig(mim, factors)
    return {"mim": mim, "mig": score, "mig_per_factor": per_factor}
