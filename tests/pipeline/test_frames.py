"""Frames of every common layout become BGR uint8; unusable ones fail with one clear line."""

import cv2
import numpy as np
import pytest

from faceperf.pipeline.frames import FrameError, as_bgr, read_image


def test_bgr_frame_passes_through_unchanged():
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert as_bgr(frame) is frame


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 1)])
def test_grayscale_becomes_three_equal_channels(shape):
    gray = np.arange(20, dtype=np.uint8).reshape(shape)
    bgr = as_bgr(gray)
    assert bgr.shape == (4, 5, 3)
    assert (bgr[..., 0] == gray.reshape(4, 5)).all() and (bgr[..., 0] == bgr[..., 2]).all()


def test_bgra_drops_alpha():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., :3] = (1, 2, 3)
    bgra[..., 3] = 255
    assert (as_bgr(bgra) == np.array([1, 2, 3], np.uint8)).all()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((0, 5, 3), np.uint8), "empty image"),
        (np.zeros((5, 5, 3), np.float32), "expected uint8"),
        (np.zeros((5, 5, 2), np.uint8), "1, 3 or 4 channels"),
        ("not an image", "expected an image array"),
    ],
)
def test_unusable_frames_are_refused_clearly(frame, message):
    with pytest.raises(FrameError, match=message):
        as_bgr(frame, "frame 7")


def test_image_files_are_read_and_converted(tmp_path):
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), np.full((6, 7), 9, np.uint8))
    assert read_image(str(path)).shape == (6, 7, 3)
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    with pytest.raises(FrameError, match=r"not_an_image\.png: not a readable image file"):
        read_image(str(bad))
