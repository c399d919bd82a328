"""Video in and out: a deterministic synthetic clip, and reading/writing video files.

The synthetic clip stands in for the application's 1080p patient videos in the pipeline
benchmark: one or two of the fixture faces (with a margin of their photo around them, feathered
into the background) drift over a smooth background with sinusoidal translation and a slight
sinusoidal change of scale, so the tracker sees a head that moves and then holds still.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from faceperf.errors import FaceperfError
from faceperf.fixtures import faces as fixture_faces

# The fixture photographs' main faces (the scene images are composed of the same photos).
FACE_SOURCES = (("grace_hopper", 0), ("obama", 0), ("biden", 0), ("astronaut", 0))
MARGIN = 0.4  # photo kept around the face box, as a fraction of its side on each side
FACE_HEIGHT = {1: 0.30, 2: 0.24}  # face box height as a fraction of the frame height
FOURCC = "mp4v"


class VideoError(FaceperfError):
    """A video file cannot be opened, decoded or written."""


@dataclass(frozen=True)
class _Face:
    patch: np.ndarray  # float32 (h, w, 3), the face with its margin at the base scale
    alpha: np.ndarray  # float32 (h, w), feathered ellipse in [0, 1]
    anchor: np.ndarray  # (2,) the face box centre in patch pixels
    extent: np.ndarray  # (2,) the face box width and height in patch pixels
    centre: np.ndarray  # (2,) rest position of the face box centre in the frame
    amplitude: np.ndarray  # (2,) of the sinusoidal drift, pixels
    period: np.ndarray  # (2,) in frames
    phase: np.ndarray  # (2,) radians
    scale_amplitude: float
    scale_period: float
    scale_phase: float


@dataclass(frozen=True)
class _Clip:
    background: np.ndarray  # uint8 (H, W, 3)
    faces: tuple[_Face, ...]


def _background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    height, width = size
    corners = rng.uniform(60, 200, size=(4, 3)).astype(np.float32)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    image = (
        corners[0] * (1 - x) * (1 - y)
        + corners[1] * x * (1 - y)
        + corners[2] * (1 - x) * y
        + corners[3] * x * y
    )
    # A low-frequency ripple so the background is not a plain gradient.
    fx, fy = rng.uniform(1.0, 3.0, size=2)
    ripple = 12.0 * np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    return np.clip(np.rint(image + ripple), 0, 255).astype(np.uint8)


def _face(
    source: tuple[str, int],
    face_height: float,
    centre: np.ndarray,
    amplitude: np.ndarray,
    rng: np.random.Generator,
) -> _Face:
    name, index = source
    image = fixture_faces.load_image(name)
    box = fixture_faces.reference_faces(name)[index].box
    side = box[2:] - box[:2]
    lo = np.maximum(np.floor(box[:2] - MARGIN * side), 0).astype(int)
    hi = np.minimum(np.ceil(box[2:] + MARGIN * side), image.shape[1::-1]).astype(int)
    crop = image[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float32)
    scale = face_height / side[1]
    size = np.maximum(np.rint(np.array(crop.shape[1::-1]) * scale), 2).astype(int)
    # INTER_AREA once to the base scale: the per-frame warp then only changes scale by a few %.
    patch = cv2.resize(crop, (int(size[0]), int(size[1])), interpolation=cv2.INTER_AREA)
    anchor = ((box[:2] + box[2:]) / 2 - lo) * (size / np.array(crop.shape[1::-1]))
    extent = side * scale
    alpha = np.zeros(patch.shape[:2], np.float32)
    axes = (int(extent[0] * (0.5 + 0.8 * MARGIN)), int(extent[1] * (0.5 + 0.8 * MARGIN)))
    cv2.ellipse(alpha, (int(anchor[0]), int(anchor[1])), axes, 0, 0, 360, 1.0, -1)
    feather = max(3, int(0.1 * extent[1])) | 1
    alpha = cv2.GaussianBlur(alpha, (feather, feather), 0)
    return _Face(
        patch=patch,
        alpha=alpha,
        anchor=anchor,
        extent=extent,
        centre=centre,
        amplitude=amplitude,
        period=rng.uniform(60.0, 120.0, size=2),
        phase=rng.uniform(0.0, 2 * np.pi, size=2),
        scale_amplitude=float(rng.uniform(0.02, 0.05)),
        scale_period=float(rng.uniform(80.0, 160.0)),
        scale_phase=float(rng.uniform(0.0, 2 * np.pi)),
    )


@cache
def _clip(seed: int, size: tuple[int, int]) -> _Clip:
    height, width = size
    if height < 64 or width < 64:
        raise ValueError(f"synthetic frames need at least 64x64 pixels, got {width}x{height}")
    rng = np.random.default_rng(seed)
    background = _background(size, rng)
    count = 1 + int(rng.integers(2))
    sources = rng.choice(len(FACE_SOURCES), size=count, replace=False)
    faces = []
    for slot, source in enumerate(sources):
        centre = np.array([width * (slot + 1) / (count + 1), height * 0.5])
        # Two faces drift less sideways so their margins never overlap.
        amplitude = np.array([width * (0.05 if count == 1 else 0.03), height * 0.04])
        faces.append(
            _face(FACE_SOURCES[source], FACE_HEIGHT[count] * height, centre, amplitude, rng)
        )
    return _Clip(background=background, faces=tuple(faces))


def _pose(face: _Face, t: int) -> tuple[np.ndarray, float]:
    centre = face.centre + face.amplitude * np.sin(2 * np.pi * t / face.period + face.phase)
    scale = 1.0 + face.scale_amplitude * np.sin(
        2 * np.pi * t / face.scale_period + face.scale_phase
    )
    return centre, float(scale)


def _paste(frame: np.ndarray, face: _Face, t: int) -> None:
    centre, scale = _pose(face, t)
    height, width = frame.shape[:2]
    ph, pw = face.patch.shape[:2]
    origin = centre - scale * face.anchor  # frame position of the patch's top-left
    x1, y1 = (max(int(np.floor(v)), 0) for v in origin)
    x2 = min(int(np.ceil(origin[0] + scale * pw)), width)
    y2 = min(int(np.ceil(origin[1] + scale * ph)), height)
    if x2 <= x1 or y2 <= y1:
        return
    matrix = np.array([[scale, 0.0, origin[0] - x1], [0.0, scale, origin[1] - y1]])
    shape = (x2 - x1, y2 - y1)
    patch = cv2.warpAffine(face.patch, matrix, shape, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(face.alpha, matrix, shape, flags=cv2.INTER_LINEAR)[..., None]
    region = frame[y1:y2, x1:x2].astype(np.float32)
    blended = region * (1.0 - alpha) + patch * alpha
    frame[y1:y2, x1:x2] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def synthetic_frames(
    count: int, seed: int = 0, size: tuple[int, int] = (1080, 1920)
) -> Iterator[np.ndarray]:
    """``count`` BGR uint8 frames of a deterministic synthetic clip (same seed, same frames).

    Args:
        count: number of frames.
        seed: chooses the background, which fixture faces (one or two) and their motion.
        size: (height, width) of the frames; faces scale with the height.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    clip = _clip(int(seed), (int(size[0]), int(size[1])))
    for t in range(count):
        frame = clip.background.copy()
        for face in clip.faces:
            _paste(frame, face, t)
        yield frame


def synthetic_boxes(count: int, seed: int = 0, size: tuple[int, int] = (1080, 1920)) -> np.ndarray:
    """(count, faces, 4) [x1, y1, x2, y2] of the pasted faces' reference boxes per frame.

    The ground truth of :func:`synthetic_frames` with the same arguments: each fixture face's
    MTCNN reference box, moved and scaled with it.

    Args:
        count: number of frames.
        seed: as for ``synthetic_frames``.
        size: as for ``synthetic_frames``.
    """
    clip = _clip(int(seed), (int(size[0]), int(size[1])))
    boxes = np.empty((count, len(clip.faces), 4))
    for t in range(count):
        for i, face in enumerate(clip.faces):
            centre, scale = _pose(face, t)
            half = scale * face.extent / 2
            boxes[t, i] = np.concatenate([centre - half, centre + half])
    return boxes


def write_video(path: Path | str, frames: Iterable[np.ndarray], fps: float = 30.0) -> int:
    """Encode ``frames`` to ``path`` (fourcc mp4v) atomically; returns the frame count.

    The file is written beside ``path`` under a temporary name and renamed into place, so a
    crash never leaves half a video at ``path``.

    Args:
        path: the video file; its suffix picks the container (``.mp4``).
        frames: BGR uint8 (H, W, 3) frames, all the same size (at least one).
        fps: frames per second recorded in the file.
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    writer = None
    written = 0
    try:
        for frame in frames:
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(
                    f"{path}: frame {written} is {frame.dtype} {frame.shape}, expected BGR uint8"
                )
            if writer is None:
                shape = frame.shape
                writer = cv2.VideoWriter(
                    str(tmp), cv2.VideoWriter_fourcc(*FOURCC), float(fps), (shape[1], shape[0])
                )
                if not writer.isOpened():
                    raise VideoError(f"{path}: OpenCV cannot encode {FOURCC} video here")
            elif frame.shape != shape:
                raise ValueError(
                    f"{path}: frame {written} is {frame.shape[1]}x{frame.shape[0]}, "
                    f"the video is {shape[1]}x{shape[0]}"
                )
            writer.write(np.ascontiguousarray(frame))
            written += 1
        if writer is None:
            raise ValueError(f"{path}: no frames to write")
        writer.release()
        writer = None
        if tmp.stat().st_size == 0:
            raise VideoError(f"{path}: the encoder wrote nothing")
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return written


def read_frames(path: Path | str) -> Iterator[np.ndarray]:
    """The frames of a video file as BGR uint8 arrays.

    The file is opened and its first frame decoded before this returns, so a file that is
    missing or not a decodable video raises here, naming it.

    Args:
        path: a video file OpenCV can decode.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path}: cannot open as a video (not a video file, or no decoder)")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise VideoError(f"{path}: opened, but no frame could be decoded")
    return _frames(capture, first)


def _frames(capture: cv2.VideoCapture, first: np.ndarray) -> Iterator[np.ndarray]:
    try:
        yield first
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()
