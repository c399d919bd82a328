"""Face mirroring: the midline, the remap maps, and the mirrored crops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceperf.pipeline.symmetry import (
    CHIN_POINT,
    GLABELLA_POINTS,
    midline,
    mirror_faces,
    mirror_maps,
    reflect_points,
    reflection_maps,
)

SETTINGS = settings(max_examples=60, derandomize=True, database=None, deadline=None)
coordinate = st.floats(-200.0, 200.0, allow_nan=False)


def _landmarks_with_midline(top, bottom, seed: int = 0) -> np.ndarray:
    """98 points whose glabella (mean of 38 and 50) is ``top`` and chin (16) is ``bottom``."""
    points = np.random.default_rng(seed).uniform(0, 50, size=(98, 2))
    offset = np.array([7.0, -1.5])
    points[GLABELLA_POINTS[0]] = np.asarray(top) - offset
    points[GLABELLA_POINTS[1]] = np.asarray(top) + offset
    points[CHIN_POINT] = bottom
    return points


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact (float64) bilinear sampling, for points strictly inside the image."""
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    if image.ndim == 3:  # broadcast the weights over channels
        fx, fy = fx[:, None], fy[:, None]
    return (
        image[y0, x0] * (1 - fx) * (1 - fy)
        + image[y0, x0 + 1] * fx * (1 - fy)
        + image[y0 + 1, x0] * (1 - fx) * fy
        + image[y0 + 1, x0 + 1] * fx * fy
    )


def _signed_distance(shape, top, bottom, origin=(0, 0)):
    """Distance of each pixel to the line along n = (dy, -dx)/|d| (positive: image right)."""
    d = np.asarray(bottom, np.float64) - np.asarray(top, np.float64)
    n = np.array([d[1], -d[0]]) / np.hypot(*d)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    return (x + origin[0] - top[0]) * n[0] + (y + origin[1] - top[1]) * n[1]


def test_midline_runs_from_the_glabella_to_the_chin():
    landmarks = _landmarks_with_midline((30.0, 12.0), (31.0, 80.0))
    top, bottom = midline(landmarks)
    np.testing.assert_allclose(top, [30.0, 12.0])
    np.testing.assert_allclose(bottom, [31.0, 80.0])
    np.testing.assert_array_equal(top, (landmarks[38] + landmarks[50]) / 2)
    with pytest.raises(ValueError, match=r"\(98, 2\)"):
        midline(landmarks[:68])


def test_reflection_is_an_involution_on_the_maps():
    """Reflecting the reflection maps through themselves gives back every pixel's own position."""
    shape = (90, 120)
    top, bottom = np.array([52.3, 4.1]), np.array([71.8, 88.6])  # tilted by about 13 degrees
    map_x, map_y = reflection_maps(shape, top, bottom)
    inside = (map_x >= 0) & (map_x < shape[1] - 1) & (map_y >= 0) & (map_y < shape[0] - 1)
    assert inside.mean() > 0.5
    back_x = _bilinear(map_x.astype(np.float64), map_x[inside], map_y[inside])
    back_y = _bilinear(map_y.astype(np.float64), map_x[inside], map_y[inside])
    y, x = np.nonzero(inside)
    # Bilinear interpolation of an affine map is exact; float32 storage costs ~1e-5 px.
    np.testing.assert_allclose(back_x, x, atol=1e-3)
    np.testing.assert_allclose(back_y, y, atol=1e-3)


def test_mirror_maps_are_identity_on_the_kept_side_and_reflection_on_the_other():
    shape = (70, 90)
    top, bottom = np.array([40.5, 3.0]), np.array([47.25, 66.0])
    distance = _signed_distance(shape, top, bottom)
    identity_y, identity_x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    full_x, full_y = reflection_maps(shape, top, bottom)
    for side, mirrored in (("left", distance > 0), ("right", distance < 0)):
        map_x, map_y = mirror_maps(shape, top, bottom, side)
        assert map_x.dtype == map_y.dtype == np.float32
        assert 0.3 < mirrored.mean() < 0.7
        np.testing.assert_array_equal(map_x[~mirrored], identity_x[~mirrored])
        np.testing.assert_array_equal(map_y[~mirrored], identity_y[~mirrored])
        np.testing.assert_allclose(map_x[mirrored], full_x[mirrored], atol=1e-4)
        np.testing.assert_allclose(map_y[mirrored], full_y[mirrored], atol=1e-4)
        # Every mirrored pixel reads from the kept side.
        d = np.asarray(bottom - top)
        n = np.array([d[1], -d[0]]) / np.hypot(*d)
        source = (map_x[mirrored] - top[0]) * n[0] + (map_y[mirrored] - top[1]) * n[1]
        assert np.all(source <= 1e-3) if side == "left" else np.all(source >= -1e-3)


@pytest.mark.parametrize(("width", "centre"), [(41, 20.0), (40, 19.5)])
def test_vertical_midline_mirrors_columns_exactly(width, centre):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(36, width, 3), dtype=np.uint8)
    landmarks = _landmarks_with_midline((centre, 3.0), (centre, 33.0))
    box = np.array([0.0, 0.0, width, 36.0])
    left, right = mirror_faces(image, landmarks, box)
    flipped = np.fliplr(image)
    columns = np.arange(width)
    keep_left = columns <= centre
    # Left-mirrored: the left half as it was, the right half the flipped left half.
    np.testing.assert_array_equal(left[:, keep_left], image[:, keep_left])
    np.testing.assert_array_equal(left[:, ~keep_left], flipped[:, ~keep_left])
    keep_right = columns >= centre
    np.testing.assert_array_equal(right[:, keep_right], image[:, keep_right])
    np.testing.assert_array_equal(right[:, ~keep_right], flipped[:, ~keep_right])
    # Each mirrored face is symmetric about the midline.
    np.testing.assert_array_equal(left, np.fliplr(left))
    np.testing.assert_array_equal(right, np.fliplr(right))


@SETTINGS
@given(
    top=st.tuples(coordinate, coordinate),
    angle=st.floats(-np.pi, np.pi, allow_nan=False),
    length=st.floats(1.0, 300.0),
    point=st.tuples(coordinate, coordinate),
)
def test_a_tilted_line_maps_points_to_their_geometric_reflection(top, angle, length, point):
    top = np.array(top)
    u = np.array([np.cos(angle), np.sin(angle)])
    bottom = top + length * u
    p = np.array(point)
    reflected = reflect_points(p, top, bottom)
    # Independently, in complex numbers: z' = a + u² · conj(z − a).
    a, w, z = complex(*top), complex(*u), complex(*p)
    expected = a + w * w * (z - a).conjugate()
    np.testing.assert_allclose(reflected, [expected.real, expected.imag], atol=1e-9)
    np.testing.assert_allclose(reflect_points(reflected, top, bottom), p, atol=1e-9)
    # The maps agree at a pixel: integer positions of a small region around the point.
    origin = (float(np.floor(p[0])), float(np.floor(p[1])))
    map_x, map_y = reflection_maps((1, 1), top, bottom, origin=origin)
    pixel = reflect_points(np.array(origin), top, bottom)
    np.testing.assert_allclose([map_x[0, 0], map_y[0, 0]], pixel, atol=1e-3)
    kept, _ = mirror_maps((1, 1), top, bottom, "left", origin=origin)
    kept_other, _ = mirror_maps((1, 1), top, bottom, "right", origin=origin)
    # A pixel is left as it is by exactly one side (both, when it lies on the line).
    assert origin[0] in (kept[0, 0], kept_other[0, 0])


@SETTINGS
@given(
    glabella_x=st.floats(20.0, 60.0),
    chin_x=st.floats(20.0, 60.0),
    seed=st.integers(0, 2**16),
)
def test_the_kept_half_stays_bit_identical(glabella_x, chin_x, seed):
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, size=(80, 100, 3), dtype=np.uint8)
    top, bottom = np.array([glabella_x, 5.0]), np.array([chin_x, 70.0])
    box = np.array([12.4, 3.0, 77.6, 74.2])
    left, right = mirror_faces(frame, _landmarks_with_midline(top, bottom, seed), box)
    crop = frame[3:75, 12:78]
    assert left.shape == right.shape == crop.shape
    assert left.dtype == right.dtype == np.uint8
    distance = _signed_distance(crop.shape, top, bottom, origin=(12, 3))
    np.testing.assert_array_equal(left[distance <= 0], crop[distance <= 0])
    np.testing.assert_array_equal(right[distance >= 0], crop[distance >= 0])
    assert not np.array_equal(left[distance > 1], crop[distance > 1])


def test_mirrored_side_holds_the_reflected_pixels():
    """On a smooth image the mirrored half matches exact bilinear sampling at the reflections."""
    y, x = np.mgrid[0:120, 0:160].astype(np.float64)
    smooth = np.stack(
        [
            128 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0),
            128 + 90 * np.cos((x + y) / 17.0),
            40 + 1.2 * x,
        ],
        axis=-1,
    )
    frame = np.clip(np.rint(smooth), 0, 255).astype(np.uint8)
    top, bottom = np.array([78.0, 10.0]), np.array([86.0, 110.0])
    box = np.array([40.0, 20.0, 120.0, 100.0])
    left, _ = mirror_faces(frame, _landmarks_with_midline(top, bottom), box)
    crop_y, crop_x = np.mgrid[20:100, 40:120].astype(np.float64)
    distance = _signed_distance((80, 80), top, bottom, origin=(40, 20))
    mirrored = distance > 0
    source = reflect_points(np.stack([crop_x[mirrored], crop_y[mirrored]], -1), top, bottom)
    expected = _bilinear(frame.astype(np.float64), source[:, 0], source[:, 1])
    error = np.abs(left[mirrored].astype(np.float64) - expected)
    # OpenCV quantises sample positions to 1/32 px; the smooth image changes < 12 levels/px.
    assert error.max() <= 1.0
    assert error.mean() < 0.5


def test_a_face_crop_reads_its_reflection_from_outside_the_crop():
    """Mirroring a crop equals cropping the mirrored full frame: reflections leave the box."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, size=(100, 140, 3), dtype=np.uint8)
    landmarks = _landmarks_with_midline((62.0, 15.0), (70.0, 90.0))
    whole_left, whole_right = mirror_faces(frame, landmarks, np.array([0, 0, 140, 100.0]))
    # A box lopsided to the right: the left-mirrored half needs pixels left of the box.
    left, right = mirror_faces(frame, landmarks, np.array([55.0, 20.0, 120.0, 95.0]))
    np.testing.assert_array_equal(left, whole_left[20:95, 55:120])
    np.testing.assert_array_equal(right, whole_right[20:95, 55:120])


def test_reflections_leaving_the_frame_repeat_its_edge():
    frame = np.zeros((40, 60, 3), np.uint8)
    frame[:, 0] = 200  # the leftmost column
    landmarks = _landmarks_with_midline((5.0, 2.0), (5.0, 38.0))
    left, _ = mirror_faces(frame, landmarks, np.array([0.0, 0.0, 60.0, 40.0]))
    # Columns 11+ reflect to x < 0, beyond the left edge: the edge column repeats.
    assert np.all(left[:, 11:] == 200)


def test_bad_inputs_are_refused():
    frame = np.zeros((40, 60, 3), np.uint8)
    same = _landmarks_with_midline((5.0, 2.0), (5.0, 2.0))
    with pytest.raises(ValueError, match="no direction"):
        mirror_faces(frame, same, np.array([0.0, 0.0, 60.0, 40.0]))
    landmarks = _landmarks_with_midline((30.0, 2.0), (30.0, 38.0))
    with pytest.raises(ValueError, match="outside"):
        mirror_faces(frame, landmarks, np.array([70.0, 0.0, 90.0, 40.0]))
    with pytest.raises(ValueError, match="BGR uint8"):
        mirror_faces(frame.astype(np.float32), landmarks, np.array([0.0, 0.0, 60.0, 40.0]))
    with pytest.raises(ValueError, match="side"):
        mirror_maps((4, 4), np.array([0.0, 0.0]), np.array([0.0, 1.0]), "centre")
