"""The synthetic clip, and writing and reading video files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from faceperf.errors import FaceperfError
from faceperf.pipeline.video import (
    VideoError,
    read_frames,
    synthetic_boxes,
    synthetic_frames,
    write_video,
)

SMALL = (180, 320)


def _digest(frames) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(str(frame.shape).encode())
        digest.update(frame.tobytes())
    return digest.hexdigest()


def test_same_seed_same_frames_other_seed_other_frames():
    first = _digest(synthetic_frames(8, seed=0, size=SMALL))
    assert _digest(synthetic_frames(8, seed=0, size=SMALL)) == first
    assert _digest(synthetic_frames(8, seed=1, size=SMALL)) != first
    frames = list(synthetic_frames(3, seed=0, size=SMALL))
    assert all(f.shape == (*SMALL, 3) and f.dtype == np.uint8 for f in frames)
    # A prefix of a longer clip is the shorter clip.
    assert _digest(list(synthetic_frames(5, seed=0, size=SMALL))[:3]) == _digest(frames)


def test_default_size_is_1080p():
    frames = list(synthetic_frames(2))
    assert [f.shape for f in frames] == [(1080, 1920, 3)] * 2
    assert list(synthetic_frames(0)) == []


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_faces_move_smoothly(seed):
    count = 40
    boxes = synthetic_boxes(count, seed=seed, size=SMALL)
    assert boxes.shape[1] in (1, 2)
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    sizes = boxes[..., 2:] - boxes[..., :2]
    step = np.linalg.norm(np.diff(centres, axis=0), axis=-1)
    # Moving every frame, by at most 1 % of the frame width, with no jerks.
    assert np.all(step > 0)
    assert step.max() < 0.01 * SMALL[1]
    assert np.abs(np.diff(centres, n=2, axis=0)).max() < 0.002 * SMALL[1]
    # The scale changes slightly, never much.
    ratio = sizes / sizes[0]
    assert 0.003 < np.ptp(ratio) < 0.2
    # The faces stay inside the frame with their margin.
    assert boxes[..., :2].min() > 0
    assert boxes[..., 2].max() < SMALL[1] and boxes[..., 3].max() < SMALL[0]


def test_frames_change_only_where_the_faces_are():
    count = 12
    frames = np.stack(list(synthetic_frames(count, seed=0, size=SMALL))).astype(np.int16)
    boxes = synthetic_boxes(count, seed=0, size=SMALL)
    step = np.abs(np.diff(frames, axis=0))
    per_frame = step.reshape(count - 1, -1).mean(axis=1)
    assert np.all(per_frame > 0.01)  # something moves on every frame
    assert np.all(per_frame < 5.0)  # and never jumps
    # Outside the faces' boxes widened by their pasted margin, nothing changes.
    still = np.ones(SMALL, bool)
    rows, columns = np.mgrid[0 : SMALL[0], 0 : SMALL[1]]
    for box in boxes.reshape(-1, 4):
        side = box[2:] - box[:2]
        lo, hi = box[:2] - 0.6 * side, box[2:] + 0.6 * side
        still &= ~((columns >= lo[0]) & (columns <= hi[0]) & (rows >= lo[1]) & (rows <= hi[1]))
    assert still.mean() > 0.3
    assert step[:, still].max() == 0
    # Inside the faces' boxes, the frames are not the background: a face was pasted there.
    for box in boxes[0]:
        x1, y1, x2, y2 = box.astype(int)
        assert frames[0, y1:y2, x1:x2].std() > 10


def test_written_video_reads_back_with_its_frame_count_and_size(tmp_path: Path):
    frames = list(synthetic_frames(7, seed=2, size=(120, 160)))
    path = tmp_path / "clip.mp4"
    assert write_video(path, frames, fps=30) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temp file left
    decoded = list(read_frames(path))
    assert len(decoded) == 7
    assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in decoded)
    # mp4v is lossy but the content is the same picture.
    error = np.mean(
        [np.abs(a.astype(int) - b).mean() for a, b in zip(decoded, frames, strict=True)]
    )
    assert error < 8


def test_a_failed_write_leaves_nothing_and_keeps_the_previous_file(tmp_path: Path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"previous")
    frames = [np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 1 is 64x32, the video is 64x64"):
        write_video(path, frames)
    with pytest.raises(ValueError, match="no frames"):
        write_video(path, [])
    with pytest.raises(ValueError, match="BGR uint8"):
        write_video(path, [np.zeros((64, 64), np.uint8)])
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_unreadable_files_raise_a_clear_error_naming_them(tmp_path: Path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        read_frames(garbage)
    missing = tmp_path / "missing.mp4"
    with pytest.raises(VideoError, match=r"missing\.mp4: no such video file"):
        read_frames(missing)
    assert issubclass(VideoError, FaceperfError)
