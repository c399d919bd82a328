"""Pictures of accuracy results for a reviewer: the frame a case ran on with the reference's and
the candidate's answers drawn over it, a contact sheet of such pictures, and the jitter clips'
tracks over time.

Everything is drawn from outputs already computed (``SubjectResult.outputs`` and
``jitter_outputs``, the ``ReferenceSet``): nothing here runs a model. The reference is drawn in
``REFERENCE_BGR`` (sky blue), the candidate in ``CANDIDATE_BGR`` (orange), the candidate on top
and smaller, so both show where they differ and the reference's rim shows where they agree.
Overlays are drawn with OpenCV without anti-aliasing, so a drawn point has exactly its colour
(the tests read the pixels back); the plots use matplotlib's Agg backend.

- STAR: the 98 landmarks around the face (the face box widened by ``FACE_MARGIN``).
- RetinaFace, MTCNN: the boxes (reference thick, candidate thin) and 5 landmarks on the frame.
- MTL: the face crop as MTL gets it, the gaze of both sides as arrows, and the top emotions and
  the largest AU deltas printed on the face.
- Cases without a frame (MTCNN's nets run alone on sampled crops): candidate against reference
  values of each raw tensor (a scatter; on the diagonal when they agree).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from faceperf.accuracy import cases, clips, jitter
from faceperf.fileio import atomic_write_bytes
from faceperf.models import inputs

REFERENCE_BGR = (255, 160, 0)  # sky blue
CANDIDATE_BGR = (0, 128, 255)  # orange
REFERENCE_RGB = tuple(c / 255 for c in REFERENCE_BGR[::-1])
CANDIDATE_RGB = tuple(c / 255 for c in CANDIDATE_BGR[::-1])
# Further candidate variants in one plot (the jitter tracks), after the first's orange.
MORE_CANDIDATES_RGB = ((0.84, 0.15, 0.16), (0.58, 0.4, 0.74), (0.55, 0.34, 0.29))
PASS_BGR, FAIL_BGR, TEXT_BGR = (40, 140, 40), (30, 30, 210), (20, 20, 20)
PANEL_WIDTH = 512  # px: every picture, so the contact sheet lines them up
FACE_MARGIN = 0.3  # the STAR view: the face box widened by this fraction of its size per side
REFERENCE_RADIUS, CANDIDATE_RADIUS = 3, 2  # the reference's dot shows as a rim around the other
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE, _LINE_HEIGHT = 0.42, 17
# Points of the jitter tracks, with their names: three of STAR's 98 (WFLW: the left outer eye
# corner, the nose tip, a mouth corner); a box's two corners.
TRACKED = {
    "star": ((60, "eye corner 60"), (54, "nose tip 54"), (76, "mouth corner 76")),
    "retinaface": ((0, "top-left"), (1, "bottom-right")),
}


@dataclass(frozen=True)
class View:
    """Where frame pixels land in a picture: ``(point - origin) * scale``, rounded."""

    origin: tuple[float, float]
    scale: float

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) frame points as integer picture pixels (x, y)."""
        shifted = (np.asarray(points, np.float64) - np.asarray(self.origin)) * self.scale
        return np.rint(shifted).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Overlay:
    """A finished picture (BGR uint8, caption included), the view its frame was drawn in (None
    for a picture without frame coordinates) and how many rows above the caption it takes."""

    image: np.ndarray
    view: View | None
    frame_rows: int


class CaseFrames:
    """The frames the accuracy cases ran on, each made when first asked for (the synthetic
    clip's frames take most of a second)."""

    @cached_property
    def _photos(self) -> dict[str, np.ndarray]:
        return cases.photos()

    @cached_property
    def _clip(self) -> dict[str, np.ndarray]:
        return cases.clip_frames()

    @cached_property
    def _faces(self) -> dict[str, tuple[str, np.ndarray]]:
        return {case: (image, box) for case, image, box in cases.face_cases()}

    def detector_frame(self, case: str) -> np.ndarray | None:
        """The frame of a detector case (a photograph, ``<photo>@wider``, ``clip#<i>``), or None
        for a case without one."""
        name = case.removesuffix(cases.WIDER_SUFFIX)
        if name.startswith("clip#"):
            return self._clip.get(name)
        return self._photos.get(name)

    def face(self, case: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(photograph, face box) of a face case ``<image>#<k>``, or None."""
        if case not in self._faces:
            return None
        image, box = self._faces[case]
        return self._photos[image], box


# --- drawing primitives -----------------------------------------------------------------------


def framed(
    frame: np.ndarray, region: np.ndarray, width: int = PANEL_WIDTH
) -> tuple[np.ndarray, View]:
    """The part of ``frame`` inside ``region`` [x1, y1, x2, y2] (clipped to the frame), scaled
    to ``width`` pixels, and its view."""
    h, w = frame.shape[:2]
    x1, y1 = max(int(np.floor(region[0])), 0), max(int(np.floor(region[1])), 0)
    x2, y2 = min(int(np.ceil(region[2])), w), min(int(np.ceil(region[3])), h)
    if x2 <= x1 or y2 <= y1:
        x1, y1, x2, y2 = 0, 0, w, h  # nothing of the region is in the frame: show all of it
    scale = width / (x2 - x1)
    height = max(1, round((y2 - y1) * scale))
    shrink = scale < 1.0
    image = cv2.resize(
        np.ascontiguousarray(frame[y1:y2, x1:x2]),
        (width, height),
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
    )
    return image, View((float(x1), float(y1)), scale)


def draw_points(
    image: np.ndarray, view: View, points: np.ndarray, colour: tuple[int, ...], radius: int
) -> None:
    for x, y in view.pixels(np.asarray(points).reshape(-1, 2)):
        cv2.circle(image, (int(x), int(y)), radius, colour, -1, cv2.LINE_8)


def draw_boxes(
    image: np.ndarray, view: View, boxes: np.ndarray, colour: tuple[int, ...], thickness: int
) -> None:
    for box in np.asarray(boxes, np.float64).reshape(-1, 4):
        (x1, y1), (x2, y2) = view.pixels(box.reshape(2, 2))
        cv2.rectangle(image, (int(x1), int(y1)), (int(x2), int(y2)), colour, thickness, cv2.LINE_8)


def _wrapped(line: str, width: int) -> list[str]:
    words, lines, current = line.split(" "), [], ""
    for word in words:
        trial = f"{current} {word}".strip()
        if current and cv2.getTextSize(trial, _FONT, _FONT_SCALE, 1)[0][0] > width:
            lines.append(current)
            current = f"  {word}"  # a continuation reads as one
        else:
            current = trial
    return [*lines, current]


def captioned(
    image: np.ndarray, title: str, passed: bool, lines: Sequence[str], legend: tuple[str, str]
) -> np.ndarray:
    """``image`` with a white band below it: the title (green for pass, red for fail), a
    legend naming the two colours, then ``lines`` wrapped to the picture's width."""
    width = image.shape[1]
    text = [line for raw in lines for line in _wrapped(raw, width - 12)]
    band = np.full((_LINE_HEIGHT * (len(text) + 2) + 10, width, 3), 255, np.uint8)
    y = _LINE_HEIGHT
    colour = PASS_BGR if passed else FAIL_BGR
    cv2.putText(band, title, (6, y), _FONT, _FONT_SCALE, colour, 1, cv2.LINE_AA)
    y += _LINE_HEIGHT
    x = 6
    for label, swatch in zip(legend, (REFERENCE_BGR, CANDIDATE_BGR), strict=True):
        cv2.circle(band, (x + 5, y - 5), 5, swatch, -1, cv2.LINE_8)
        cv2.putText(band, label, (x + 14, y), _FONT, _FONT_SCALE, TEXT_BGR, 1, cv2.LINE_AA)
        x += 24 + cv2.getTextSize(label, _FONT, _FONT_SCALE, 1)[0][0]
    for line in text:
        y += _LINE_HEIGHT
        cv2.putText(band, line, (6, y), _FONT, _FONT_SCALE, TEXT_BGR, 1, cv2.LINE_AA)
    return np.vstack([image, band])


def _text_on(image: np.ndarray, lines: Sequence[tuple[str, tuple[int, ...]]], top: int) -> None:
    """Coloured lines on a dark strip across ``image`` from row ``top``: legible on any face."""
    height = _LINE_HEIGHT * len(lines) + 6
    strip = image[top : top + height]
    strip[:] = (strip * 0.35).astype(np.uint8)
    for i, (line, colour) in enumerate(lines):
        y = top + _LINE_HEIGHT * (i + 1) - 2
        cv2.putText(image, line, (6, y), _FONT, _FONT_SCALE, colour, 1, cv2.LINE_AA)


# --- one picture per case ---------------------------------------------------------------------


@dataclass(frozen=True)
class Caption:
    """What a picture's band says: its title, verdict, the legend's two labels and the lines
    (the measurements it shows)."""

    title: str
    passed: bool
    legend: tuple[str, str]
    lines: tuple[str, ...]

    def under(self, image: np.ndarray) -> np.ndarray:
        return captioned(image, self.title, self.passed, self.lines, self.legend)


def landmarks_picture(
    frame: np.ndarray,
    box: np.ndarray,
    reference: np.ndarray,
    candidate: np.ndarray,
    caption: Caption,
) -> Overlay:
    """STAR's points of both sides around the face ``box`` of ``frame`` (the box in grey)."""
    box = np.asarray(box, np.float64)
    pad = FACE_MARGIN * (box[2:] - box[:2])
    image, view = framed(frame, np.concatenate([box[:2] - pad, box[2:] + pad]))
    draw_boxes(image, view, box, (160, 160, 160), 1)
    draw_points(image, view, reference, REFERENCE_BGR, REFERENCE_RADIUS)
    draw_points(image, view, candidate, CANDIDATE_BGR, CANDIDATE_RADIUS)
    return Overlay(caption.under(image), view, image.shape[0])


def detections_picture(
    frame: np.ndarray,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    caption: Caption,
) -> Overlay:
    """Both sides' boxes and 5 landmarks on ``frame``, framed on every box with a margin (the
    whole frame when neither side found a face)."""
    boxes = np.concatenate(
        [np.reshape(reference["boxes"], (-1, 4)), np.reshape(candidate["boxes"], (-1, 4))]
    )
    boxes = boxes[np.isfinite(boxes).all(axis=1)]
    if len(boxes):
        low, high = boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)
        pad = 0.25 * np.maximum(high - low, 64.0)
        region = np.concatenate([low - pad, high + pad])
    else:
        region = np.array([0, 0, frame.shape[1], frame.shape[0]], np.float64)
    image, view = framed(frame, region)
    draw_boxes(image, view, reference["boxes"], REFERENCE_BGR, 3)
    draw_boxes(image, view, candidate["boxes"], CANDIDATE_BGR, 1)
    for side, colour, radius in (
        (reference, REFERENCE_BGR, REFERENCE_RADIUS),
        (candidate, CANDIDATE_BGR, CANDIDATE_RADIUS),
    ):
        if "landmarks" in side:
            draw_points(image, view, side["landmarks"], colour, radius)
    return Overlay(caption.under(image), view, image.shape[0])


def gaze_end(start: tuple[float, float], gaze: np.ndarray, length: float) -> tuple[int, int]:
    """Where the gaze arrow ends: the (yaw, pitch) direction ``metrics.gaze_angle_deg``
    compares (x = cos p sin y, y = sin p), projected onto the image."""
    yaw, pitch = float(gaze[0]), float(gaze[1])
    dx, dy = np.cos(pitch) * np.sin(yaw), np.sin(pitch)
    return round(start[0] + length * dx), round(start[1] + length * dy)


def multitask_picture(
    crop: np.ndarray,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    caption: Caption,
    emotions: Sequence[str],
    aus: Sequence[str],
) -> Overlay:
    """MTL's face crop with both sides' gaze arrows, and on the face the top emotions of each
    side and the largest AU deltas (candidate minus reference)."""
    image, view = framed(crop, np.array([0, 0, crop.shape[1], crop.shape[0]], np.float64))
    h, w = image.shape[:2]
    start = (w / 2, 0.42 * h)  # about the eyes of a face box
    for side, colour, thickness in (
        (reference, REFERENCE_BGR, 4),
        (candidate, CANDIDATE_BGR, 2),
    ):
        end = gaze_end(start, side["gaze"], 0.35 * w)
        origin = (round(start[0]), round(start[1]))
        cv2.arrowedLine(image, origin, end, colour, thickness, cv2.LINE_8, tipLength=0.2)

    def top(probs: np.ndarray) -> str:
        order = np.argsort(-np.asarray(probs), kind="stable")[:3]
        return ", ".join(f"{emotions[i]} {probs[i]:.2f}" for i in order)

    delta = np.asarray(candidate["au"], np.float64) - np.asarray(reference["au"], np.float64)
    largest = np.argsort(-np.abs(delta), kind="stable")[:3]
    gaze_text = "gaze yaw, pitch (deg): ref {:+.1f}, {:+.1f}; cand {:+.1f}, {:+.1f}".format(
        *np.degrees(reference["gaze"]), *np.degrees(candidate["gaze"])
    )
    lines = [
        (f"ref:  {top(reference['emotion_probs'])}", REFERENCE_BGR),
        (f"cand: {top(candidate['emotion_probs'])}", CANDIDATE_BGR),
        ("AU delta: " + ", ".join(f"{aus[i]} {delta[i]:+.3f}" for i in largest), (255, 255, 255)),
        (gaze_text, (255, 255, 255)),
    ]
    _text_on(image, lines, top=max(0, h - _LINE_HEIGHT * len(lines) - 6))
    return Overlay(caption.under(image), view, image.shape[0])


def tensors_picture(
    reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], caption: Caption
) -> Overlay:
    """Candidate against reference values of each raw output tensor of a case without a frame
    (aligned on the reference's kept anchors, as compare.py does)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in reference if n.startswith("tensor/") and n in candidate]
    anchors = reference.get("anchors")
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(PANEL_WIDTH / 100, 2.4), dpi=100)
    for ax, name in zip(np.atleast_1d(axes), names, strict=False):
        expected = np.asarray(reference[name], np.float64).ravel()
        actual = np.asarray(candidate[name], np.float64)
        actual = (actual[anchors] if anchors is not None else actual).ravel()
        ax.plot(expected, actual, ".", ms=2, color=CANDIDATE_RGB)
        ends = [float(np.nanmin(expected)), float(np.nanmax(expected))]
        ax.plot(ends, ends, "-", lw=1, color=REFERENCE_RGB)
        ax.set_title(name.removeprefix("tensor/"), fontsize=8)
        ax.set_xlabel("reference", fontsize=7)
        ax.tick_params(labelsize=6)
    np.atleast_1d(axes)[0].set_ylabel("candidate", fontsize=7)
    fig.tight_layout()
    image = _figure_bgr(fig)
    plt.close(fig)
    if image.shape[1] != PANEL_WIDTH:
        height = round(image.shape[0] * PANEL_WIDTH / image.shape[1])
        image = cv2.resize(image, (PANEL_WIDTH, height), interpolation=cv2.INTER_AREA)
    return Overlay(caption.under(image), None, image.shape[0])


def _figure_bgr(fig: object) -> np.ndarray:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # type: ignore[attr-defined]
    return cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_COLOR)


def case_picture(
    subject: str,
    case: str,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    caption: Caption,
    frames: CaseFrames,
) -> Overlay:
    """The picture of one accuracy case of ``subject``: its frame (photograph, clip frame or
    face crop, as the case used it) with both sides' answers, or its tensors when it has none."""
    if subject == "star":
        found = frames.face(case)
        if found is not None:
            frame, box = found
            return landmarks_picture(
                frame, box, reference["landmarks"], candidate["landmarks"], caption
            )
    elif subject == "mtl":
        found = frames.face(case)
        if found is not None:
            from faceperf.models.mtl import AU_NAMES, EMOTION_NAMES

            crop = inputs.crop_box(*found)
            return multitask_picture(crop, reference, candidate, caption, EMOTION_NAMES, AU_NAMES)
    elif "boxes" in reference and "boxes" in candidate:
        frame = frames.detector_frame(case)
        if frame is not None:
            return detections_picture(frame, reference, candidate, caption)
    return tensors_picture(reference, candidate, caption)


def farthest_frame(
    subject: str,
    clip_name: str,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
) -> int:
    """The frame of a jitter clip where the candidate's points lie farthest from the
    reference's (a frame where a side lost the face first)."""
    output = "landmarks" if subject == "star" else "boxes"
    frames = len(reference[output])
    ref = np.asarray(reference[output], np.float64).reshape(frames, -1, 2)
    cand = np.asarray(candidate[output], np.float64).reshape(frames, -1, 2)
    apart = np.hypot(*(cand - ref).transpose(2, 0, 1)).max(axis=1)
    return int(np.argmax(np.nan_to_num(apart, nan=np.inf)))


def clip_picture(
    subject: str,
    clip_name: str,
    t: int,
    reference: Mapping[str, np.ndarray],
    candidate: Mapping[str, np.ndarray],
    caption: Caption,
) -> Overlay:
    """Frame ``t`` of a jitter clip with both sides' answers: STAR's points around the box
    both were cropped from, or RetinaFace's box of the clip's face."""
    clip = next(c for c in jitter.clips() if c.name == clip_name)
    frame = clip.frames[t]
    if subject == "star":
        return landmarks_picture(
            frame,
            reference["boxes"][t],
            reference["landmarks"][t],
            candidate["landmarks"][t],
            caption,
        )
    return detections_picture(
        frame, {"boxes": reference["boxes"][t]}, {"boxes": candidate["boxes"][t]}, caption
    )


# --- the contact sheet and the jitter tracks --------------------------------------------------


def contact_sheet(images: Sequence[np.ndarray], columns: int = 3, gap: int = 8) -> np.ndarray:
    """The pictures on a white grid, row by row, each row as tall as its tallest picture."""
    if not images:
        raise ValueError("a contact sheet needs at least one picture, got none")
    width = max(image.shape[1] for image in images)
    rows = []
    for start in range(0, len(images), columns):
        row = images[start : start + columns]
        height = max(image.shape[0] for image in row)
        canvas = np.full((height, columns * (width + gap) - gap, 3), 255, np.uint8)
        for i, image in enumerate(row):
            x = i * (width + gap)
            canvas[: image.shape[0], x : x + image.shape[1]] = image
        rows.append(canvas)
    spacer = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    stacked = [part for row in rows for part in (row, spacer)][:-1]
    return np.vstack(stacked)


def write_png(path: Path, image: np.ndarray) -> None:
    """``image`` (BGR uint8) as a PNG at ``path``, atomically."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {image.shape} picture as PNG")
    atomic_write_bytes(path, encoded.tobytes())


def track_points(subject: str, arrays: Mapping[str, np.ndarray], clip: clips.Clip) -> np.ndarray:
    """(T, K, 2) the tracked points of one side, mapped back into the photograph (the clip's
    true motion removed, as jitter.py measures)."""
    return jitter.photo_points(subject, arrays, clip)[:, [i for i, _ in TRACKED[subject]]]


def plot_tracks(
    path: Path,
    subject: str,
    reference: Mapping[str, Mapping[str, np.ndarray]],
    candidates: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
) -> None:
    """x and y of ``TRACKED`` points per frame of every jitter clip, true motion removed, the
    reference against each candidate variant, as a PNG at ``path``. Each point's track is drawn
    about the reference's mean position over its clip, in photograph pixels.

    Args:
        path: the PNG to write (atomically).
        subject: ``star`` or ``retinaface``.
        reference: the jitter reference's outputs, per clip.
        candidates: per variant, the candidate's jitter outputs, per clip.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in jitter.clips() if c.name in reference]
    points = TRACKED[subject]
    columns = [(k, axis) for k in range(len(points)) for axis in (0, 1)]
    fig, axes = plt.subplots(
        len(shown),
        len(columns),
        figsize=(2.1 * len(columns), 2.0 * len(shown) + 0.6),
        squeeze=False,
        sharex=True,
    )
    sides = [("reference", REFERENCE_RGB, reference, 2.2)]
    colours = (CANDIDATE_RGB, *MORE_CANDIDATES_RGB)
    for i, (variant, outputs) in enumerate(candidates.items()):
        sides.append((variant, colours[i % len(colours)], outputs, 1.2))
    for row, clip in enumerate(shown):
        centre = np.nanmean(track_points(subject, reference[clip.name], clip), axis=0)
        for label, colour, outputs, width in sides:
            if clip.name not in outputs:
                continue
            tracks = track_points(subject, outputs[clip.name], clip) - centre
            for col, (k, axis) in enumerate(columns):
                ax = axes[row, col]
                ax.plot(tracks[:, k, axis], "-o", ms=2.5, lw=width, color=colour, label=label)
        for col, (k, axis) in enumerate(columns):
            ax = axes[row, col]
            ax.set_title(f"{clip.name}\n{points[k][1]} {'xy'[axis]}", fontsize=7)
            ax.tick_params(labelsize=6)
        axes[row, 0].set_ylabel("px from the reference's mean", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("frame", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(
        f"{subject} jitter clips: positions in the photograph, true motion removed", fontsize=9
    )
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.95), ncol=len(sides), fontsize=8
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
