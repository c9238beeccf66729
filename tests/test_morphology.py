"""The pipeline's connected-component labelling gives scipy's labels, in scipy's order."""

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from workbench.imaging._morphology import label


@pytest.mark.parametrize("connectivity", [8, 4])
def test_label_numbers_components_as_scipy_does(connectivity):
    # Blobs of every size on frames of odd sizes; the label order matters because
    # particles, their members and their records are listed in it.
    rng = np.random.default_rng(3)
    structure = np.ones((3, 3), bool) if connectivity == 8 else None
    for _ in range(12):
        rows, cols = rng.integers(20, 700, 2)
        noise = rng.random((rows, cols)).astype(np.float32)
        mask = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(0.5, 4))) > rng.uniform(0.45, 0.55)
        expected, expected_count = ndi.label(mask, structure=structure)
        labels, count = label(mask, connectivity)
        assert count == expected_count
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, expected)
