"""Tests of simvae_tf.metrics: sanity cases in the style of disentanglement_lib's
mig_test.py, hand-computed values, cross-checks against scikit-learn / scipy and an
independent reimplementation of disentanglement_lib's MIG, and the invariance-aware scores.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from simvae_tf import metrics

NUM_SAMPLES = 10_000


def uniform_factors(num_factors: int, seed: int = 0, num_samples: int = NUM_SAMPLES) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(num_samples, num_factors))


# -- polygon-like invariance: the points of a closed polygon, any start and direction -------------
def random_dihedral_reordering(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row [x1, y1, ..., xP, yP] with its points cyclically shifted and maybe reversed."""
    num_rows, num_points = v.shape[0], v.shape[1] // 2
    shift = rng.integers(0, num_points, num_rows)
    reverse = rng.integers(0, 2, num_rows).astype(bool)
    order = (np.arange(num_points)[None, :] + shift[:, None]) % num_points
    order = np.where(reverse[:, None], order[:, ::-1], order)
    points = v.reshape(num_rows, num_points, 2)
    return np.take_along_axis(points, order[:, :, None], axis=1).reshape(num_rows, -1)


def canonical_polygon(v: np.ndarray) -> np.ndarray:
    """Starts at the point with the smallest x and walks towards its smaller-x neighbour."""
    num_rows, num_points = v.shape[0], v.shape[1] // 2
    points = v.reshape(num_rows, num_points, 2)
    start = np.argmin(points[:, :, 0], axis=1)
    rows = np.arange(num_rows)
    forward = points[rows, (start + 1) % num_points, 0] <= points[rows, (start - 1) % num_points, 0]
    steps = np.arange(num_points)[None, :]
    order = np.where(forward[:, None], start[:, None] + steps, start[:, None] - steps) % num_points
    return np.take_along_axis(points, order[:, :, None], axis=1).reshape(num_rows, -1)


# -- an independent disentanglement_lib-style MIG (its mig.py + utils.py, [K, N] layout) --------
def reference_discrete_mig(mus: np.ndarray, ys: np.ndarray, num_bins: int = 20) -> tuple[float, np.ndarray]:
    """mus: codes [num_codes, N] (binned), ys: discrete factors [num_factors, N] (labels)."""
    discretized = np.zeros_like(mus)
    for i in range(mus.shape[0]):
        discretized[i, :] = np.digitize(mus[i, :], np.histogram(mus[i, :], num_bins)[1][:-1])
    m = np.array([[sklearn.metrics.mutual_info_score(ys[j, :], discretized[i, :])
                   for j in range(ys.shape[0])] for i in range(mus.shape[0])])
    entropy = np.array([sklearn.metrics.mutual_info_score(y, y) for y in ys])
    sorted_m = np.sort(m, axis=0)[::-1]
    return float(np.mean((sorted_m[0, :] - sorted_m[1, :]) / entropy)), m / entropy


# -- discretisation ---------------------------------------------------------------------------
def test_discretize_hand_example():
    x = np.stack([np.linspace(0.0, 1.0, 11), [3, 1, 3, 2, 1, 1, 3, 2, 2, 1, 3], np.full(11, 7.0)], axis=1)
    codes = metrics.discretize(x, num_bins=2, discrete=[False, True, False])
    # Bins [0, 0.5) and [0.5, 1]: the edge 0.5 and the maximum both go to the upper bin.
    np.testing.assert_array_equal(codes[:, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(codes[:, 1], [2, 0, 2, 1, 0, 0, 2, 1, 1, 0, 2])
    np.testing.assert_array_equal(codes[:, 2], np.zeros(11))


def test_discretize_equals_disentanglement_lib_histogram_binning():
    x = np.random.default_rng(3).normal(size=(5000, 6)) * [1, 10, 0.1, 3, 1, 100]
    expected = np.stack([np.digitize(col, np.histogram(col, 20)[1][:-1]) - 1 for col in x.T], axis=1)
    np.testing.assert_array_equal(metrics.discretize(x), expected)


def test_rounding_noise_in_a_constant_column_is_not_information():
    noisy_constant = 1.0 + np.random.default_rng(0).choice([0.0, 2.2e-16, -2.2e-16], size=(1000, 1))
    np.testing.assert_array_equal(metrics.discretize(noisy_constant), 0)


# -- disentanglement_lib mig_test.py sanity cases -----------------------------------------------
def test_identity_code_scores_one():
    v = uniform_factors(5)
    mim = metrics.mutual_information_matrix(v, v)
    np.testing.assert_allclose(np.diag(mim), 1.0)
    score, per_factor = metrics.mig(mim)
    assert 0.97 < score <= 1.0
    assert per_factor.shape == (5,)


def test_constant_code_scores_zero():
    v = uniform_factors(5)
    mim = metrics.mutual_information_matrix(np.zeros_like(v), v)
    np.testing.assert_array_equal(mim, 0.0)
    assert metrics.mig(mim)[0] == 0.0


def test_duplicated_latents_have_no_gap():
    v = uniform_factors(5)
    score, per_factor = metrics.mig(metrics.mutual_information_matrix(np.hstack([v, v]), v))
    np.testing.assert_array_equal(per_factor, 0.0)
    assert score == 0.0


def test_permuting_latents_leaves_mig_unchanged():
    v = uniform_factors(4)
    z = v @ np.random.default_rng(1).uniform(size=(4, 4)) * 0.3 + v  # entangled on purpose
    permutation = [2, 0, 3, 1]
    original = metrics.mig(metrics.mutual_information_matrix(z, v))
    permuted = metrics.mig(metrics.mutual_information_matrix(z[:, permutation], v))
    assert permuted[0] == original[0]
    np.testing.assert_array_equal(permuted[1], original[1])


def test_permuting_factors_permutes_mim_columns():
    v = uniform_factors(4)
    z = v + 0.2 * np.random.default_rng(2).normal(size=v.shape)
    permutation = [3, 1, 0, 2]
    mim = metrics.mutual_information_matrix(z, v)
    np.testing.assert_array_equal(metrics.mutual_information_matrix(z, v[:, permutation]), mim[:, permutation])


def test_mig_decreases_monotonically_with_noise():
    v = uniform_factors(3)
    noise = np.random.default_rng(7).normal(size=v.shape)
    scores = [metrics.mig(metrics.mutual_information_matrix(v + sigma * noise, v))[0]
              for sigma in (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)]
    assert np.all(np.diff(scores) < 0), scores
    assert scores[0] > 0.97 and scores[-1] < 0.1


def test_correlated_factors_ground_truth_mig_below_one():
    """Box-plotter-like sampling space: the corner is constrained by the size."""
    rng = np.random.default_rng(0)
    width, height = rng.uniform(0.1, 0.5, NUM_SAMPLES), rng.uniform(0.1, 0.5, NUM_SAMPLES)
    x, y = rng.uniform(0.0, 1.0 - width), rng.uniform(0.0, 1.0 - height)
    correlated = metrics.ground_truth(np.stack([width, height, x, y], axis=1))
    independent = metrics.ground_truth(uniform_factors(4))
    assert correlated["mig"] < independent["mig"] - 0.02
    np.testing.assert_allclose(np.diag(correlated["mim"]), 1.0)
    # The dependence sits where it was built in: width <-> x, height <-> y.
    for i, j in ((0, 2), (2, 0), (1, 3), (3, 1)):
        assert correlated["mim"][i, j] > 5 * independent["mim"][i, j]
    assert correlated["mim"][0, 3] < 0.02


def test_hand_computed_values():
    # v: a fair coin; z1 = v, z2 independent of v, z3 = 1 only for the last sample.
    v = np.array([[0.0], [0.0], [1.0], [1.0]])
    z = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    mim = metrics.mutual_information_matrix(z, v, discrete_z=[True] * 3, discrete_v=[True])
    # MI(z3, v) = 1/2 log2(4/3) + 1/4 log2(2/3) + 1/4 log2(2) = 3/2 - 3/4 log2(3) bits; H(v) = 1 bit.
    expected_z3 = 1.5 - 0.75 * math.log2(3.0)
    np.testing.assert_allclose(mim[:, 0], [1.0, 0.0, expected_z3], atol=1e-12)
    score, per_factor = metrics.mig(mim)
    np.testing.assert_allclose([score, per_factor[0]], [1.0 - expected_z3] * 2, atol=1e-12)
    # Binning continuous columns into 2 bins gives the same ids, hence the same numbers.
    np.testing.assert_allclose(metrics.mutual_information_matrix(z, v, num_bins=2), mim, atol=1e-12)


# -- agreement with independent implementations --------------------------------------------------
def test_mig_equals_disentanglement_lib_formula_on_random_data():
    rng = np.random.default_rng(11)
    # dSprites-like discrete factors (shape, scale, rotation, x, y) and a messy code.
    ys = np.stack([rng.integers(0, n, 4000) for n in (3, 6, 40, 32, 32)])
    mixing = rng.normal(size=(7, 5))
    mus = mixing @ (ys / ys.max(axis=1, keepdims=True)) + 0.3 * rng.normal(size=(7, 4000))
    expected_score, expected_mim = reference_discrete_mig(mus, ys)
    mim = metrics.mutual_information_matrix(mus.T, ys.T, discrete_v=[True] * 5)
    np.testing.assert_allclose(mim, expected_mim, rtol=1e-10, atol=1e-12)
    assert metrics.mig(mim)[0] == pytest.approx(expected_score, rel=1e-10, abs=1e-12)


def test_continuous_factors_are_binned_like_the_latents():
    rng = np.random.default_rng(5)
    v = rng.uniform(size=(3000, 3))
    z = np.tanh(v @ rng.normal(size=(3, 4))) + 0.1 * rng.normal(size=(3000, 4))
    z_codes, v_codes = metrics.discretize(z), metrics.discretize(v)
    expected = np.array([[sklearn.metrics.mutual_info_score(z_codes[:, i], v_codes[:, j])
                          / sklearn.metrics.mutual_info_score(v_codes[:, j], v_codes[:, j])
                          for j in range(3)] for i in range(4)])
    np.testing.assert_allclose(metrics.mutual_information_matrix(z, v), expected, rtol=1e-10, atol=1e-12)


# -- constant factors and factor subsets --------------------------------------------------------
def test_constant_factor_column_is_nan_and_left_out_of_mig():
    v = np.hstack([uniform_factors(2), np.full((NUM_SAMPLES, 1), 3.0)])
    mim = metrics.mutual_information_matrix(v, v)
    assert np.isnan(mim[:, 2]).all() and not np.isnan(mim[:, :2]).any()
    score, per_factor = metrics.mig(mim)
    assert np.isnan(per_factor[2])
    assert score == pytest.approx(per_factor[:2].mean())
    with pytest.raises(ValueError, match="constant"):
        metrics.mig(mim, factors=[2])


def test_factor_subset_treats_left_out_factors_as_noise():
    v = uniform_factors(5)
    z = v.copy()
    z[:, 0] = np.random.default_rng(3).uniform(size=NUM_SAMPLES)  # the code misses factor 0
    mim = metrics.mutual_information_matrix(z, v)
    all_score, all_gaps = metrics.mig(mim)
    subset_score, subset_gaps = metrics.mig(mim, factors=[1, 2, 3, 4])
    np.testing.assert_array_equal(subset_gaps, all_gaps[1:])
    assert subset_score == pytest.approx(all_gaps[1:].mean())
    assert subset_score > 0.97 > all_score + 0.15


# -- regression scores ---------------------------------------------------------------------------
def test_r2_per_latent_matches_sklearn_and_flags_constant_columns():
    rng = np.random.default_rng(4)
    truth = rng.normal(size=(500, 3))
    prediction = truth + rng.normal(size=(500, 3)) * [0.1, 1.0, 3.0]
    np.testing.assert_allclose(
        metrics.r2_per_latent(truth, prediction),
        sklearn.metrics.r2_score(truth, prediction, multioutput="raw_values"), rtol=1e-12)
    truth[:, 1] = 2.0
    r2 = metrics.r2_per_latent(truth, prediction)
    assert np.isnan(r2[1]) and np.isfinite(r2[[0, 2]]).all()


def test_posterior_coverage_calibrated_over_and_underconfident(rng):
    truth = rng.uniform(-1, 1, (20000, 2))
    mean = truth + rng.normal(0, 0.1, truth.shape)  # errors of std 0.1
    for std, low, high in ((0.1, 0.66, 0.70), (0.02, 0.14, 0.18), (1.0, 0.99, 1.0)):
        coverage = metrics.posterior_coverage(truth, mean, np.full_like(truth, std))
        assert np.all((low <= coverage[1.0]) & (coverage[1.0] <= high)), (std, coverage[1.0])
    calibrated = metrics.posterior_coverage(truth, mean, np.full_like(truth, 0.1))
    np.testing.assert_allclose(calibrated[2.0], 0.954, atol=0.01)
    with pytest.raises(ValueError, match="std must be positive"):
        metrics.posterior_coverage(truth, mean, np.zeros_like(truth))


def test_fit_slope_exact_line_and_agreement_with_scipy():
    x = np.linspace(0.0, 10.0, 50)
    slope, intercept, r2 = metrics.fit_slope(x, 2.0 * x + 1.0)
    assert (slope, intercept, r2) == pytest.approx((2.0, 1.0, 1.0))
    assert all(type(value) is float for value in (slope, intercept, r2))
    y = 0.97 * x + np.random.default_rng(0).normal(size=50)
    expected = scipy.stats.linregress(x, y)
    assert metrics.fit_slope(x, y) == pytest.approx((expected.slope, expected.intercept, expected.rvalue ** 2))


def test_fit_slope_degenerate_inputs():
    slope, intercept, r2 = metrics.fit_slope(np.arange(5.0), np.full(5, 4.0))
    assert (slope, intercept) == (0.0, 4.0) and math.isnan(r2)
    with pytest.raises(ValueError, match="x is constant"):
        metrics.fit_slope(np.ones(5), np.arange(5.0))


# -- ground truth and invariances ----------------------------------------------------------------
def test_ground_truth_without_invariance_is_mim_of_v_with_itself():
    v = uniform_factors(3)
    result = metrics.ground_truth(v)
    np.testing.assert_array_equal(result["mim"], metrics.mutual_information_matrix(v, v))
    assert result["mig"] == metrics.mig(result["mim"])[0]


def test_polygon_invariance_hides_recovery_that_canonical_form_reveals():
    mim_maxima = []
    for num_points in (3, 4, 8):
        v = uniform_factors(2 * num_points)
        truth = metrics.ground_truth(v, random_dihedral_reordering, np.random.default_rng(1))
        assert truth["mig"] < 0.02  # paper Table 1: polygon ground-truth MIG 0
        mim_maxima.append(np.max(truth["mim"]))
    # The bigger the invariance group, the less V-bar tells about V.
    assert mim_maxima[0] > mim_maxima[1] > mim_maxima[2] and mim_maxima[1] < 0.2

    v = uniform_factors(8)
    v_bar = random_dihedral_reordering(v, np.random.default_rng(2))  # an ideal encoder's answer
    recovered = metrics.canonical_recovery(v_bar, v, canonical_polygon)
    np.testing.assert_allclose(recovered["r2"], 1.0)
    canonical_truth = metrics.ground_truth(canonical_polygon(v))
    assert recovered["mig"] == pytest.approx(canonical_truth["mig"])
    assert recovered["mig"] > 0.5
    # ...while an encoder that ignores its input does not pass.
    wrong = metrics.canonical_recovery(v_bar[np.random.default_rng(3).permutation(NUM_SAMPLES)], v, canonical_polygon)
    assert np.all(wrong["r2"] < 0.0) and wrong["mig"] < 0.1


def test_rlc_like_scaling_invariance_with_constant_canonical_coordinate():
    log_rlc = uniform_factors(3) * 4.0  # log R, log L, log C

    def rescale(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        log_scale = rng.uniform(-3.0, 3.0, size=(v.shape[0], 1))
        return v + log_scale * np.array([-1.0, -1.0, 1.0])

    def fix_inductance(v: np.ndarray) -> np.ndarray:  # scale so that L = 1
        return v + v[:, 1:2] * np.array([-1.0, -1.0, 1.0])

    invariant = metrics.ground_truth(log_rlc, rescale, np.random.default_rng(0))
    plain = metrics.ground_truth(log_rlc)
    assert invariant["mig"] < plain["mig"] - 0.5
    recovered = metrics.canonical_recovery(rescale(log_rlc, np.random.default_rng(1)), log_rlc, fix_inductance)
    np.testing.assert_allclose(recovered["r2"][[0, 2]], 1.0)
    assert np.isnan(recovered["r2"][1]) and np.isnan(recovered["mim"][:, 1]).all()
    assert recovered["mig"] > 0.9


def test_observable_consistency_images_hand_example():
    x = np.zeros((3, 2, 2, 1))
    x_rec = np.zeros((3, 2, 2, 1))
    x[0, 0, :, 0] = 1.0                 # sample 0: A = 2 pixels,
    x_rec[0, :, 0, 0] = 0.9             #           B = 2 pixels, 1 shared -> IoU 1/3
    x[1], x_rec[1] = 1.0, 0.6           # sample 1: identical foreground -> 1
    # sample 2: both blank -> 1 by definition
    assert metrics.observable_consistency_images(x, x_rec) == pytest.approx((1 / 3 + 1 + 1) / 3)
    # Above 0.95 only x's ink counts: samples 0 and 1 share nothing, sample 2 stays blank.
    assert metrics.observable_consistency_images(x, x_rec, threshold=0.95) == pytest.approx((0 + 0 + 1) / 3)


def test_observable_consistency_signals_per_channel():
    x = np.zeros((2, 3, 2))
    x_rec = x.copy()
    x_rec[..., 0] = 6.0                 # gain off by 6 dB everywhere
    x_rec[0, 0, 1] = -0.6               # one phase value off by 0.6 rad out of 6
    np.testing.assert_allclose(metrics.observable_consistency_signals(x, x_rec), [6.0, 0.1])


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: metrics.mutual_information_matrix(np.zeros(5), np.zeros((5, 1))), r"z\[:, None\]"),
    (lambda: metrics.mutual_information_matrix(np.zeros((5, 1)), np.zeros((4, 1))), "same samples"),
    (lambda: metrics.mutual_information_matrix(np.array([[np.nan]]), np.zeros((1, 1))), "non-finite"),
    (lambda: metrics.discretize(np.zeros((5, 2)), num_bins=1), "num_bins=1"),
    (lambda: metrics.discretize(np.zeros((5, 2)), discrete=[True]), "one bool per column"),
    (lambda: metrics.mig(np.zeros((1, 3))), "at least 2 latents"),
    (lambda: metrics.mig(np.zeros((2, 3)), factors=[3]), "out of range"),
    (lambda: metrics.mig(np.zeros((2, 3)), factors=[0, 0]), "repeats"),
    (lambda: metrics.r2_per_latent(np.zeros((5, 2)), np.zeros((5, 3))), "same samples"),
    (lambda: metrics.observable_consistency_images(np.zeros((2, 4)), np.zeros((2, 5))), "S\\(E\\(x\\)\\)"),
    (lambda: metrics.ground_truth(np.zeros((5, 2)), lambda v, rng: v[:, :1]), "same shape"),
    (lambda: metrics.canonical_recovery(np.ones((5, 2)), np.ones((5, 2)), lambda v: v[:3]), "one row per sample"),
])
def test_bad_input_raises_value_error_naming_the_fix(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# -- speed -----------------------------------------------------------------------------------
def test_ten_thousand_samples_by_eleven_latents_is_fast():
    v = uniform_factors(11)
    z = v + 0.1 * np.random.default_rng(1).normal(size=v.shape)
    start = time.perf_counter()
    metrics.mig(metrics.mutual_information_matrix(z, v))
    assert time.perf_counter() - start < 2.0


# -- surrogate fidelity ------------------------------------------------------------------------
def cross_images(num: int = 3, size: int = 16) -> np.ndarray:
    """A grey square with a one-pixel blue cross at its centre: detail lives on the cross."""
    images = np.zeros((num, size, size, 3))
    images[:, 4:12, 4:12, :] = 0.5
    images[:, 8, 4:12, :] = images[:, 4:12, 8, :] = (0.0, 0.0, 1.0)
    return images


def test_psnr_hand_values():
    x = np.zeros((2, 4, 4, 1))
    assert metrics.psnr(x, x) == pytest.approx(100.0)
    assert metrics.psnr(x, x + 0.1) == pytest.approx(20.0)  # MSE 0.01 at peak 1
    assert metrics.psnr(x, x + 2.0, peak=20.0) == pytest.approx(20.0)


def test_psnr_peak_per_channel():
    x = np.zeros((2, 5, 2))
    y = x + np.array([0.1, 10.0])  # 10% of each channel's range
    assert metrics.psnr(x, y, peak=np.array([1.0, 100.0])) == pytest.approx(20.0)


def test_gaussian_blur_keeps_flat_images_and_mass():
    flat = np.full((1, 9, 9, 2), 0.3)
    np.testing.assert_allclose(metrics.gaussian_blur(flat), flat, rtol=1e-6)  # float32 sums
    point = np.zeros((1, 15, 15, 1))
    point[0, 7, 7, 0] = 1.0
    blurred = metrics.gaussian_blur(point)
    assert blurred.sum() == pytest.approx(1.0) and blurred[0, 7, 7, 0] < 0.2


def test_detail_mask_finds_the_cross_not_the_flat_parts():
    mask = metrics.detail_mask(cross_images())
    assert mask[:, 8, 6].all() and mask[:, 6, 8].all()  # on the cross
    assert not mask[:, 0, 0].any() and not mask[:, 5, 5].any()  # background, square interior
    assert 0 < mask.mean() < 0.5


def test_detail_error_scores_a_blurred_surrogate_worse_than_its_mean_error_suggests():
    x = cross_images()
    blurred = metrics.gaussian_blur(x, sigma=1.5)
    exact, blurry = metrics.detail_error(x, x), metrics.detail_error(x, blurred)
    assert exact["detail_mean_abs_error"] == 0.0
    assert blurry["detail_mean_abs_error"] > 3 * blurry["flat_mean_abs_error"]
    assert blurry["detail_mean_abs_error"] > np.abs(x - blurred).mean() * 2
    assert metrics.detail_error(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 1)))["detail_mean_abs_error"] is None


def test_detail_error_is_the_same_in_chunks(monkeypatch):
    x = np.concatenate([cross_images(5), np.zeros((2, 16, 16, 3))])
    y = metrics.gaussian_blur(x, sigma=1.5)
    whole = metrics.detail_error(x, y)
    monkeypatch.setattr(metrics, "DETAIL_CHUNK", 2)
    chunked = metrics.detail_error(x, y)
    for key in whole:
        assert chunked[key] == pytest.approx(whole[key], rel=1e-6)


def test_surrogate_scorer_psnr_skips_a_channel_the_simulator_never_varies():
    from types import SimpleNamespace

    from simvae_tf.evaluation import scorers
    from simvae_tf.simulators.base import OutputSpec

    x = np.zeros((4, 8, 2))
    x[..., 0] = np.linspace(0.0, 10.0, 8)  # range 10; channel 1 is constant
    generated = x + np.array([1.0, 0.5])  # 10% of channel 0's range; channel 1 off by a constant
    pair = SimpleNamespace(generate=lambda v: generated, discrepancy=lambda v, x: np.zeros(len(x)), likelihood="signal")
    samples = SimpleNamespace(pair=pair, v=np.zeros((4, 1)), x=x,
                              simulator=SimpleNamespace(output_spec=OutputSpec(shape=(8, 2), kind="signal")))
    blocks, _ = scorers.surrogate(samples)
    assert blocks["stage1"]["psnr_db"] == pytest.approx(20.0)
