"""The Face Mirror loop's per-frame results as CSV, one row per frame.

Columns: ``frame``, ``detected`` (1 when RetinaFace ran on the frame), the box ``x1, y1, x2,
y2``, the 98 smoothed landmarks ``lm0_x, lm0_y … lm97_y``, then for each mirrored side
(``left``, ``right``): ``<side>_emotion``, ``<side>_<emotion>_prob`` for the eight emotions
(lower case, in ``EMOTION_NAMES`` order), ``<side>_gaze_yaw``, ``<side>_gaze_pitch`` and
``<side>_AU01 …`` in ``AU_NAMES`` order. A field the frame does not have (no face) is empty.
Numbers are written with ``repr`` so they read back exactly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from faceperf.fileio import atomic_write_bytes
from faceperf.models.mtl import AU_NAMES, EMOTION_NAMES
from faceperf.pipeline.face_mirror import FrameResult
from faceperf.pipeline.multitask import FaceAttributes

LANDMARK_COUNT = 98
SIDES = ("left", "right")


def _side_columns(side: str) -> list[str]:
    return [
        f"{side}_emotion",
        *(f"{side}_{name.lower()}_prob" for name in EMOTION_NAMES),
        f"{side}_gaze_yaw",
        f"{side}_gaze_pitch",
        *(f"{side}_{au}" for au in AU_NAMES),
    ]


def header() -> list[str]:
    """The CSV's column names, in order."""
    columns = ["frame", "detected", "x1", "y1", "x2", "y2"]
    columns += [f"lm{i}_{axis}" for i in range(LANDMARK_COUNT) for axis in ("x", "y")]
    for side in SIDES:
        columns += _side_columns(side)
    return columns


def _number(value: float) -> str:
    return repr(float(value))


def _side_fields(attributes: FaceAttributes | None) -> list[str]:
    if attributes is None:
        return [""] * len(_side_columns("left"))
    return [
        attributes.emotion,
        *(_number(p) for p in attributes.emotion_probs),
        _number(attributes.gaze[0]),
        _number(attributes.gaze[1]),
        *(_number(attributes.aus[au]) for au in AU_NAMES),
    ]


def row(result: FrameResult) -> list[str]:
    """One frame's fields, matching :func:`header`."""
    fields = [str(result.frame), "1" if result.detected else "0"]
    fields += [""] * 4 if result.box is None else [_number(v) for v in result.box]
    if result.landmarks is None:
        fields += [""] * (2 * LANDMARK_COUNT)
    else:
        fields += [_number(v) for v in result.landmarks.reshape(-1)]
    fields += _side_fields(result.left)
    fields += _side_fields(result.right)
    return fields


def write_results(path: Path | str, results: Iterable[FrameResult]) -> int:
    """Write ``results`` as CSV with a header, atomically; returns the number of rows.

    The text is written to a temporary file beside ``path`` and renamed over it, so a reader
    never sees half a file and a failure leaves the previous file in place.

    Args:
        path: the CSV file.
        results: FrameResults, in frame order.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header())
    count = 0
    for result in results:
        writer.writerow(row(result))
        count += 1
    atomic_write_bytes(Path(path), buffer.getvalue().encode())
    return count
