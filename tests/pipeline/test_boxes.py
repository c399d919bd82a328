"""The one box-overlap function: IoU and intersection over the smaller box, with and without
the "+1 pixel" convention."""

from __future__ import annotations

import numpy as np
import pytest

from faceperf.pipeline.boxes import box_areas, overlap_matrix


def test_iou_of_two_offset_squares():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(overlap_matrix(a, b), [[50.0 / 150.0, 0.0]])


def test_min_mode_divides_by_the_smaller_box():
    big = np.array([[0.0, 0.0, 10.0, 10.0]])
    inside = np.array([[2.0, 2.0, 4.0, 4.0]])
    assert overlap_matrix(big, inside, mode="min")[0, 0] == pytest.approx(1.0)
    assert overlap_matrix(big, inside)[0, 0] == pytest.approx(4.0 / 100.0)


def test_plus_one_counts_pixels():
    a = np.array([[0.0, 0.0, 9.0, 9.0]])
    assert box_areas(a, plus_one=True)[0] == 100.0
    assert overlap_matrix(a, a, plus_one=True)[0, 0] == 1.0


def test_degenerate_boxes_overlap_zero_without_a_warning():
    point = np.array([[1.0, 1.0, 1.0, 1.0]])
    with np.errstate(all="raise"):
        assert overlap_matrix(point, point)[0, 0] == 0.0
