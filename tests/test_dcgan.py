"""The DCGAN encoder's optional ink profiles (`model.ink_profiles`)."""

import numpy as np
import pytest

from simvae_tf.models import dcgan


def test_ink_profiles_give_sub_pixel_centroids_per_column_and_row():
    images = np.zeros((2, 64, 64, 1), np.float32)
    images[0, 10:12, 5, 0] = 1.0  # a 2-px stroke in column 5: its centre lies between rows 10 and 11
    images[1, 40, 7:10, 0] = 0.5  # a half-grey 3-px stroke in row 40, centred on column 8
    profiles = np.asarray(dcgan.InkProfiles()(images)).reshape(2, 4, 64)
    column_ink, column_centroid, row_ink, row_centroid = profiles.transpose(1, 0, 2)
    coordinate = np.linspace(-1.0, 1.0, 64)
    assert column_ink[0, 5] == pytest.approx(2 / 64) and column_centroid[0, 5] == pytest.approx(
        coordinate[10:12].mean(), abs=1e-3)
    assert row_ink[1, 40] == pytest.approx(1.5 / 64) and row_centroid[1, 40] == pytest.approx(coordinate[8], abs=1e-3)
    # Empty columns and rows read 0 ink at the centre, not a division by zero.
    assert column_ink[0, 6] == 0 and column_centroid[0, 6] == 0 and np.all(np.isfinite(profiles))


def test_the_encoder_reads_the_profiles_only_when_asked():
    plain = dcgan.build_encoder(1, 3, width=4)
    with_profiles = dcgan.build_encoder(1, 3, width=4, ink_profiles=True)
    assert not any(isinstance(layer, dcgan.InkProfiles) for layer in plain.layers)
    assert any(isinstance(layer, dcgan.InkProfiles) for layer in with_profiles.layers)
    assert with_profiles.count_params() - plain.count_params() == 2 * (64 + 64) * 16 * 4  # the dense layer's new inputs

