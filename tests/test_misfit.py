"""simvae_tf.misfit: the p-value of a discrepancy against a reference distribution, and the
score carried by posteriors (pure numpy; the models' side is covered by test_api/test_invert)."""

import numpy as np

from simvae_tf import misfit


def test_p_values_are_uniform_for_the_reference_distribution_and_small_outside_it(rng):
    reference = np.sort(rng.standard_normal(2000))
    fresh = misfit.p_values(reference, rng.standard_normal(20000))
    assert 0.006 <= np.mean(fresh < 0.01) <= 0.014 and 0.04 <= np.mean(fresh < 0.05) <= 0.06
    assert np.all(misfit.p_values(reference, rng.normal(6.0, 1.0, 100)) < 0.01)
    # The extremes: above every reference value 1 / (n + 1), below every one 1.
    np.testing.assert_allclose(misfit.p_values(reference, [1e9, -1e9]), [1 / 2001, 1.0])


def test_metadata_round_trip_and_verdict():
    reference = np.array([3.0, 1.0, 2.0])
    block = misfit.to_metadata(np.sort(reference), seed=7)
    assert block["samples"] == 3 and block["seed"] == 7 and block["reference"] == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(misfit.from_metadata({"misspecification": block}), [1.0, 2.0, 3.0])
    assert misfit.from_metadata({}) is None
    assert misfit.verdict(0.001).startswith("atypical for this simulator (p = 0.001)")
    assert misfit.verdict(0.3).startswith("typical")
