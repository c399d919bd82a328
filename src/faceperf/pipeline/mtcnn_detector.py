"""MTCNN face detection (P-Net → R-Net → O-Net) on BGR frames, from the MTCNN artifacts.

The cascade follows facenet-pytorch 2.6.0's MTCNN, the external reference the suite agrees with
(MODELS.md): an image pyramid from ``12 / min_face_size`` down by ``factor`` while the shorter
side stays ≥ 12 px, P-Net proposals (stride 2, 12 px cells), NMS within each level and across
levels, box regression and squaring, R-Net on 24x24 crops, O-Net on 48x48 crops with five
landmarks, a final "Min" NMS. Its quirks are kept on purpose: the level size ``int(h·s + 1)``,
proposal corners ``floor((2·i + 1)/s)`` and ``floor((2·i + 12)/s)``, crops from truncated
1-based corners, the "+1" widths of the later regressions and of the last NMS.

Resampling. The reference resizes with PyTorch's "area" interpolation, i.e. adaptive average
pooling: output cell ``i`` of ``n`` averages input rows ``floor(i·N/n)`` to ``ceil((i+1)·N/n)``
(exclusive), a box filter over whole pixels (so an upscaled crop gets 1- or 2-pixel means, not
OpenCV's fractional INTER_AREA weights). Every such mean is a rectangle sum, so one integral image
of the frame serves all pyramid levels and all R-Net/O-Net crops: the sums are exact integers and
the means are computed in float32, so no intermediate is ever rounded back to uint8 (the
"resize uint8 first" fault cannot occur) and the result equals area-resizing the float frame.
It is also much cheaper than resampling the full float frame once per level (measured with
bench/throughput/detector.py).

Cross-frame batching (``detect_batch``): P-Net per frame, then every frame's R-Net candidates in
one batch, then every O-Net candidate in one batch, regrouped per frame. A frame's result does not
depend on the other frames of its batch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

import cv2
import numpy as np

from faceperf.errors import ArtifactError, InputMismatchError
from faceperf.pipeline.detection import Detection
from faceperf.pipeline.frames import as_bgr
from faceperf.pipeline.nms import nms
from faceperf.pipeline.profiler import (
    MODEL_INFERENCE,
    POSTPROCESSING,
    PREPROCESSING,
    NullProfiler,
    StageProfiler,
)
from faceperf.pipeline.runner_io import image_input
from faceperf.pipeline.stage_names import stage_names
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.backends import BackendChoice, backend_name
from faceperf.runtime.base import Runner

PNET_STRIDE = 2
PNET_CELL = 12
RNET_SIZE = 24
ONET_SIZE = 48
MODELS = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
_OUTPUTS = {
    "mtcnn_pnet": ("reg", "prob"),
    "mtcnn_rnet": ("reg", "prob"),
    "mtcnn_onet": ("reg", "landmarks", "prob"),
}
# Columns of the R-Net and O-Net outputs.
_WIDTHS = {"reg": 4, "prob": 2, "landmarks": 10}
_T = TypeVar("_T")
_R = TypeVar("_R")
# Integral sums are exact in int32 while 255·H·W fits (frames up to about 8.4 Mpx, 4K UHD).
_INT32_PIXELS = (2**31 - 1) // 255


@dataclass(frozen=True)
class MTCNNParams:
    """The cascade's settings.

    Args:
        min_face_size: smallest face (px) the pyramid looks for; the first level's scale is
            12 / min_face_size.
        thresholds: face-score thresholds of P-Net (kept when ≥), R-Net and O-Net (kept when >).
        factor: scale step between pyramid levels, in (0, 1).
        nms_level: IoU threshold of the NMS within one pyramid level.
        nms_pyramid: IoU threshold of the NMS across levels.
        nms_rnet: IoU threshold of the NMS after R-Net.
        nms_onet: overlap-over-the-smaller-box threshold of the final NMS after O-Net.
    """

    min_face_size: float = 20.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    nms_level: float = 0.5
    nms_pyramid: float = 0.7
    nms_rnet: float = 0.7
    nms_onet: float = 0.7

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_face_size) and self.min_face_size > 0):
            raise ValueError(f"min_face_size must be a positive number, got {self.min_face_size}")
        if not (math.isfinite(self.factor) and 0.0 < self.factor < 1.0):
            raise ValueError(f"factor must lie in (0, 1), got {self.factor}")
        thresholds = tuple(float(t) for t in self.thresholds)
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(
                f"thresholds must be three scores in [0, 1] (P-Net, R-Net, O-Net), "
                f"got {self.thresholds}"
            )
        object.__setattr__(self, "thresholds", thresholds)
        for name in ("nms_level", "nms_pyramid", "nms_rnet", "nms_onet"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {value}")


FACENET_DEFAULTS = MTCNNParams()
# The Face Mirror application's setting for 1080p video: faces of 60 px and more.
OPENFACE_PRESET = replace(FACENET_DEFAULTS, min_face_size=60.0)
# The presets by the names the CLI's --preset takes.
PRESETS = {"facenet": FACENET_DEFAULTS, "openface": OPENFACE_PRESET}


def pyramid_scales(height: int, width: int, params: MTCNNParams) -> list[float]:
    """The pyramid's scales for a frame: m·factor^k with m = 12/min_face_size, while the shorter
    side times the scale stays ≥ 12 px.

    The recurrences are the reference's (scale and side each multiplied by ``factor`` per step),
    so level sizes agree to the last bit.

    Args:
        height: frame height in pixels.
        width: frame width in pixels.
        params: the cascade's settings.
    """
    scale = PNET_CELL / params.min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= params.factor
        side *= params.factor
    return scales


def level_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(height, width) of the pyramid level at ``scale``: ``int(side·scale + 1)``, as the
    reference sizes it (one more than rounding would give for most scales)."""
    return int(height * scale + 1), int(width * scale + 1)


class AreaSampler:
    """Area ("adaptive average pooling") resampling of one BGR uint8 frame, from its integral
    image, into float32 RGB normalised for MTCNN.

    Args:
        frame: (H, W, 3) BGR uint8.
    """

    def __init__(self, frame: np.ndarray) -> None:
        self.height, self.width = frame.shape[:2]
        depth = cv2.CV_32S if self.height * self.width <= _INT32_PIXELS else cv2.CV_64F
        # (H+1, W+1, 3): sums[y, x] = sum of frame[:y, :x].
        self._sums = cv2.integral(frame, sdepth=depth)

    def resize(self, height: int, width: int) -> np.ndarray:
        """The whole frame area-resampled to (1, 3, height, width), normalised RGB float32."""
        y0, y1 = _bins(np.zeros(1, np.int64), np.array([self.height]), height)
        x0, x1 = _bins(np.zeros(1, np.int64), np.array([self.width]), width)
        y0, y1, x0, x1 = y0[0], y1[0], x0[0], x1[0]
        # Separable: whole rows first (contiguous copies), then the columns of those few rows.
        rows = np.take(self._sums, y1, axis=0)
        rows -= np.take(self._sums, y0, axis=0)
        total = np.take(rows, x1, axis=1)
        total -= np.take(rows, x0, axis=1)
        area = (y1 - y0)[:, None] * (x1 - x0)[None, :]
        return _normalised_nchw(total, area)[None]

    def crops(self, boxes: np.ndarray, size: int) -> np.ndarray:
        """Area-resampled crops (N, 3, size, size), normalised RGB float32.

        Args:
            boxes: (N, 4) int [x0, y0, x1, y1] pixel ranges (exclusive ends), non-empty, inside
                the frame.
            size: output side.
        """
        y0, y1 = _bins(boxes[:, 1], boxes[:, 3], size)
        x0, x1 = _bins(boxes[:, 0], boxes[:, 2], size)
        # One flat gather per rectangle corner (pixel rows of 3 sums) is several times faster
        # than NumPy's multi-array fancy indexing.
        pixels = self._sums.reshape(-1, 3)
        stride = self._sums.shape[1]
        top, bottom = (y0 * stride)[:, :, None], (y1 * stride)[:, :, None]
        left, right = x0[:, None, :], x1[:, None, :]

        def corner(index: np.ndarray) -> np.ndarray:
            return np.take(pixels, index.reshape(-1), axis=0)

        total = corner(bottom + right)
        total -= corner(top + right)
        total -= corner(bottom + left)
        total += corner(top + left)
        area = (y1 - y0)[:, :, None] * (x1 - x0)[:, None, :]
        return _normalised_nchw(total.reshape(len(boxes), size, size, 3), area)


def _bins(start: np.ndarray, stop: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-pooling bins of ranges [start, stop) split into ``count`` cells: (N, count)
    first and one-past-last indices, ``floor(i·L/count)`` and ``ceil((i+1)·L/count)``."""
    length = (stop - start)[:, None]
    i = np.arange(count)[None, :]
    first = start[:, None] + (i * length) // count
    last = start[:, None] - ((-(i + 1) * length) // count)
    return first, last


def _normalised_nchw(total: np.ndarray, area: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) BGR pixel sums over (..., H, W) pixel counts → (..., 3, H, W) RGB float32
    means, scaled as (x − 127.5) · 0.0078125."""
    # The BGR→RGB flip and the channel move ride on the one float conversion copy.
    mean = np.moveaxis(total[..., ::-1], -1, -3).astype(np.float32, order="C")
    mean /= area.astype(np.float32)[..., None, :, :]
    mean -= np.float32(127.5)
    mean *= np.float32(0.0078125)
    return mean


@dataclass
class _Net:
    """A runner fed whatever batch its artifact takes: any size (dynamic), chunks of a fixed
    size (zero-padded), or chunks within a Core ML range ``lo..hi``; inputs cast to its dtype,
    outputs returned as float32."""

    runner: Runner
    model: str
    name: str = field(init=False)
    dtype: np.dtype = field(init=False)
    min_batch: int = field(init=False)
    max_batch: int | None = field(init=False)
    shape: tuple[int | str, ...] = field(init=False)

    def __post_init__(self) -> None:
        info = image_input(self.runner)
        if self.model == "mtcnn_pnet" and any(isinstance(d, int) for d in info.shape[2:]):
            raise ArtifactError(
                f"{self.runner.source}: P-Net input {info.name!r} has shape {info.shape}; "
                "the pyramid needs a dynamic height and width"
            )
        missing = set(_OUTPUTS[self.model]) - {t.name for t in self.runner.outputs}
        if missing:
            raise ArtifactError(
                f"{self.runner.source}: {self.model} outputs lack {sorted(missing)}; "
                f"expected {list(_OUTPUTS[self.model])}"
            )
        self.name = info.name
        self.dtype = np.dtype(info.dtype)
        self.min_batch, self.max_batch = _dim_limits(info.shape[0])
        self.shape = info.shape

    def __call__(
        self, batch: np.ndarray, profiler: StageProfiler, operation: str
    ) -> dict[str, np.ndarray]:
        for axis in (2, 3):
            # A ranged dimension (Core ML "12..1080") refuses larger inputs with an opaque
            # error: name the pyramid level instead.
            low, high = _dim_limits(self.shape[axis])
            if not low <= batch.shape[axis] <= (high or batch.shape[axis]):
                raise InputMismatchError(
                    f"{self.runner.source}: a {batch.shape[2]}x{batch.shape[3]} input is outside "
                    f"the artifact's {self.shape[2]} x {self.shape[3]} range; use a larger "
                    "min_face_size or a smaller frame"
                )
        feed = batch.astype(self.dtype, copy=False)
        step = self.max_batch or len(feed)
        results = []
        for start in range(0, len(feed), step):
            chunk = feed[start : start + step]
            if len(chunk) < self.min_batch:
                pad = np.zeros((self.min_batch - len(chunk), *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            with profiler.stage(operation, MODEL_INFERENCE):
                out = self.runner.run({self.name: np.ascontiguousarray(chunk)})
            results.append({k: out[k][: len(feed) - start] for k in _OUTPUTS[self.model]})
        if len(results) == 1:
            return {k: v.astype(np.float32, copy=False) for k, v in results[0].items()}
        return {
            k: np.concatenate([r[k] for r in results]).astype(np.float32, copy=False)
            for k in _OUTPUTS[self.model]
        }


def _dim_limits(dim: int | str) -> tuple[int, int | None]:
    """(smallest, largest) size a declared dimension accepts (None: unbounded): a fixed int, a
    Core ML range ``"lo..hi"``, or a symbolic (dynamic) name."""
    if isinstance(dim, int):
        return dim, dim
    low, sep, high = dim.partition("..")
    if sep and low.strip().isdigit() and high.strip().isdigit():
        return max(int(low), 1), int(high)
    return 1, None


@dataclass
class _Candidates:
    """One frame's boxes between stages: (N, 4) float32 corners and (N,) scores."""

    boxes: np.ndarray
    scores: np.ndarray

    def take(self, index: np.ndarray) -> _Candidates:
        return _Candidates(self.boxes[index], self.scores[index])


class MTCNNDetector:
    """Faces with five landmarks in BGR frames, from the three MTCNN artifacts.

    Args:
        pnet: a loaded ``mtcnn_pnet`` artifact (dynamic height and width).
        rnet: a loaded ``mtcnn_rnet`` artifact.
        onet: a loaded ``mtcnn_onet`` artifact.
        params: the cascade's settings (default: facenet-pytorch's).
        profiler: times ``MTCNN_<net>_preprocess``, ``MTCNN_<net>_<backend>`` and
            ``MTCNN_<net>_postprocess`` for each net (default: records nothing). With several
            workers, stages of different threads overlap, so their times add up to more than
            the wall time.
        workers: threads that share the work: pyramid levels (balanced by estimated cost) and
            chunks of the R-Net and O-Net batches. Give the runners one intra-op thread each
            when workers > 1, or the threads oversubscribe the cores. Results do not depend on
            it.
    """

    def __init__(
        self,
        pnet: Runner,
        rnet: Runner,
        onet: Runner,
        params: MTCNNParams = FACENET_DEFAULTS,
        profiler: StageProfiler | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.params = params
        self.profiler = profiler if profiler is not None else NullProfiler()
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, "mtcnn") if workers > 1 else None
        self._nets = {
            model: _Net(runner, model)
            for model, runner in zip(MODELS, (pnet, rnet, onet), strict=True)
        }
        self._names = {
            model: stage_names(f"MTCNN_{model.removeprefix('mtcnn_')[0].upper()}Net", r.backend)
            for model, r in zip(MODELS, (pnet, rnet, onet), strict=True)
        }

    @classmethod
    def open(
        cls,
        ref: ArtifactRef,
        params: MTCNNParams = FACENET_DEFAULTS,
        *,
        profiler: StageProfiler | None = None,
        workers: int | None = None,
    ) -> MTCNNDetector:
        """Open ``<ref.directory>/mtcnn_{pnet,rnet,onet}/<ref.variant>`` on ``ref.backend``.

        Args:
            ref: the artifact folder, variant, backend and threads; threads None means ONNX
                Runtime's default with one worker and 1 with several (they would contend).
            params: the cascade's settings.
            profiler: stage timing (default: records nothing).
            workers: threads sharing the work (see the class); None picks
                ``default_workers(ref.backend)``.
        """
        if workers is None:
            workers = default_workers(ref.backend)
        if ref.threads is None and workers > 1:
            ref = replace(ref, threads=1)
        runners = [ref.open(m) for m in MODELS]
        return cls(*runners, params=params, profiler=profiler, workers=workers)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one frame, best score first.

        Args:
            frame: an OpenCV BGR uint8 image (grayscale and BGRA are converted).
        """
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Faces in each frame (best score first), R-Net and O-Net batched across frames.

        Args:
            frames: OpenCV BGR uint8 images, of any sizes.
        """
        frames = [as_bgr(f, f"frame {i}") for i, f in enumerate(frames)]
        samplers = self._map(self._sampler, frames)
        candidates = self._proposals(samplers)
        refined = self._refine(samplers, candidates)
        return self._output(samplers, refined)

    def _map(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``function`` over ``items``, on the worker threads when there are several."""
        if self._pool is None or len(items) < 2:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    def _sampler(self, frame: np.ndarray) -> AreaSampler:
        with self.profiler.stage(self._names["mtcnn_pnet"].preprocess, PREPROCESSING):
            return AreaSampler(frame)

    # -- stage 1: P-Net on the pyramid ---------------------------------------------------------

    def _proposals(self, samplers: list[AreaSampler]) -> list[_Candidates]:
        """P-Net proposals of each frame: regressed, squared, in frame pixels."""
        levels = [
            (frame, index, scale)
            for frame, sampler in enumerate(samplers)
            for index, scale in enumerate(
                pyramid_scales(sampler.height, sampler.width, self.params)
            )
        ]

        def cost(level: tuple[int, int, float]) -> int:
            # Relative cost measured on a 2-core x86 machine: P-Net per level pixel, the
            # resampling per frame-width row it gathers, and a fixed cost per level.
            sampler = samplers[level[0]]
            height, width = level_size(sampler.height, sampler.width, level[2])
            return height * width + height * sampler.width // 30 + 2000

        def run(share: list[tuple[int, int, float]]) -> list[np.ndarray]:
            return [self._level(samplers[frame], scale) for frame, _, scale in share]

        shares = _balance(levels, cost, self.workers)
        rows: dict[tuple[int, int], np.ndarray] = {}
        for share, results in zip(shares, self._map(run, shares), strict=True):
            rows.update({(f, i): r for (f, i, _), r in zip(share, results, strict=True)})
        names = self._names["mtcnn_pnet"]
        proposals = []
        for frame in range(len(samplers)):
            with self.profiler.stage(names.postprocess, POSTPROCESSING):
                # Level order matters: it breaks ties between equal scores in the NMS below.
                mine = [rows[key] for key in sorted(k for k in rows if k[0] == frame)]
                proposals.append(self._merge_levels(mine))
        return proposals

    def _level(self, sampler: AreaSampler, scale: float) -> np.ndarray:
        """P-Net on one pyramid level: its proposal rows after the level's own NMS."""
        names, net = self._names["mtcnn_pnet"], self._nets["mtcnn_pnet"]
        with self.profiler.stage(names.preprocess, PREPROCESSING):
            image = sampler.resize(*level_size(sampler.height, sampler.width, scale))
        out = net(image, self.profiler, names.inference)
        with self.profiler.stage(names.postprocess, POSTPROCESSING):
            return self._level_boxes(out["reg"][0], out["prob"][0, 1], scale)

    def _merge_levels(self, levels: list[np.ndarray]) -> _Candidates:
        """One frame's level rows → NMS across levels, regression, squaring."""
        rows = np.concatenate(levels) if levels else np.zeros((0, 9), np.float32)
        rows = rows[nms(rows[:, :4], rows[:, 4], self.params.nms_pyramid)]
        # Stage-1 regression uses the plain width (no +1), unlike the later stages.
        size = rows[:, 2:4] - rows[:, 0:2]
        boxes = rows[:, :4] + rows[:, 5:9] * np.concatenate([size, size], axis=1)
        return _Candidates(_square(boxes), rows[:, 4].copy())

    def _level_boxes(self, reg: np.ndarray, prob: np.ndarray, scale: float) -> np.ndarray:
        """(N, 9) rows [x1, y1, x2, y2, score, 4 offsets] of one level, after its own NMS."""
        ys, xs = np.nonzero(prob >= self.params.thresholds[0])
        cells = np.stack([xs, ys], axis=1).astype(np.float32)
        # float32 like the reference, so the floors fall on the same pixels.
        s = np.float32(scale)
        first = np.floor((PNET_STRIDE * cells + 1) / s)
        last = np.floor((PNET_STRIDE * cells + PNET_CELL) / s)
        rows = np.concatenate(
            [first, last, prob[ys, xs][:, None], reg[:, ys, xs].T], axis=1, dtype=np.float32
        )
        return rows[nms(rows[:, :4], rows[:, 4], self.params.nms_level)]

    # -- stages 2 and 3: R-Net and O-Net, batched across frames --------------------------------

    def _refine(
        self, samplers: list[AreaSampler], candidates: list[_Candidates]
    ) -> list[_Candidates]:
        """R-Net on every frame's proposals in one batch: threshold, NMS, regress, square."""
        names = self._names["mtcnn_rnet"]
        candidates, out = self._second_stage("mtcnn_rnet", samplers, candidates, RNET_SIZE)
        with self.profiler.stage(names.postprocess, POSTPROCESSING):
            refined = []
            for c, (start, stop) in zip(candidates, _spans(candidates), strict=True):
                score, reg = out["prob"][start:stop, 1], out["reg"][start:stop]
                passed = score > self.params.thresholds[1]
                c, reg = _Candidates(c.boxes[passed], score[passed]), reg[passed]
                keep = nms(c.boxes, c.scores, self.params.nms_rnet)
                c, reg = c.take(keep), reg[keep]
                refined.append(_Candidates(_square(_regress(c.boxes, reg)), c.scores))
        return refined

    def _output(
        self, samplers: list[AreaSampler], candidates: list[_Candidates]
    ) -> list[list[Detection]]:
        """O-Net on every frame's refined boxes in one batch: threshold, landmarks, regress,
        "Min" NMS."""
        names = self._names["mtcnn_onet"]
        candidates, out = self._second_stage("mtcnn_onet", samplers, candidates, ONET_SIZE)
        with self.profiler.stage(names.postprocess, POSTPROCESSING):
            faces = []
            for c, (start, stop) in zip(candidates, _spans(candidates), strict=True):
                score = out["prob"][start:stop, 1]
                passed = score > self.params.thresholds[2]
                boxes, score = c.boxes[passed], score[passed]
                marks = out["landmarks"][start:stop][passed]
                # Landmarks are fractions of the box before regression, with its +1 size and
                # 1-based origin.
                size = boxes[:, 2:4] - boxes[:, 0:2] + 1
                xs = boxes[:, 0:1] + size[:, 0:1] * marks[:, :5] - 1
                ys = boxes[:, 1:2] + size[:, 1:2] * marks[:, 5:] - 1
                points = np.stack([xs, ys], axis=2)
                boxes = _regress(boxes, out["reg"][start:stop][passed])
                keep = nms(
                    boxes, _reference_rank(score), self.params.nms_onet, mode="min", plus_one=True
                )
                keep = keep[np.argsort(-score[keep], kind="stable")]
                faces.append(
                    [Detection(box=boxes[k], score=score[k], landmarks=points[k]) for k in keep]
                )
        return faces

    def _second_stage(
        self, model: str, samplers: list[AreaSampler], candidates: list[_Candidates], size: int
    ) -> tuple[list[_Candidates], dict[str, np.ndarray]]:
        """R-Net or O-Net on every frame's candidate crops as one batch, in frame order.

        Candidates whose crop is empty (the box lies outside the frame) are dropped, so the
        returned candidates line up with the output rows. With several workers, each takes one
        contiguous chunk of rows and cuts its own crops, so one chunk's resampling (memory-bound)
        overlaps another's inference (compute-bound).
        """
        names, net = self._names[model], self._nets[model]
        with self.profiler.stage(names.preprocess, PREPROCESSING):
            kept, rows = [], []
            for frame, (sampler, c) in enumerate(zip(samplers, candidates, strict=True)):
                corners = _crop_corners(c.boxes, sampler.width, sampler.height)
                valid = (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])
                kept.append(c.take(valid))
                rows.append(np.column_stack([np.full(valid.sum(), frame), corners[valid]]))
            rows = np.concatenate(rows) if rows else np.zeros((0, 5), np.int64)

        def run(chunk: np.ndarray) -> dict[str, np.ndarray]:
            with self.profiler.stage(names.preprocess, PREPROCESSING):
                # Chunk rows are in frame order: one crops() call per frame present.
                frames, starts = np.unique(chunk[:, 0], return_index=True)
                parts = np.split(chunk[:, 1:], starts[1:])
                batch = np.concatenate(
                    [samplers[f].crops(p, size) for f, p in zip(frames, parts, strict=True)]
                )
            return net(batch, self.profiler, names.inference)

        if not len(rows):
            return kept, {key: np.zeros((0, _WIDTHS[key]), np.float32) for key in _OUTPUTS[model]}
        outputs = self._map(run, np.array_split(rows, min(self.workers, len(rows))))
        if len(outputs) == 1:
            return kept, outputs[0]
        return kept, {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}


def default_workers(backend: str | BackendChoice) -> int:
    """Worker threads for a detector on ``backend``: two on ONNX Runtime CPU when there are two
    cores or more, else one.

    Measured on a 2-core x86-64 machine (openface preset, 1080p): two workers with one ONNX
    Runtime thread each ran about 1.5x faster than one worker, and faster than one worker with
    two ONNX Runtime threads (small P-Net levels do not split well across threads). Accelerator
    backends serialise on their device, so they get one.

    Args:
        backend: a runner backend, by name or parsed.
    """
    return 2 if backend_name(backend) == "ort-cpu" and (os.cpu_count() or 1) >= 2 else 1


def _balance(items: list[_T], weight: Callable[[_T], int], bins: int) -> list[list[_T]]:
    """``items`` dealt into at most ``bins`` non-empty shares of similar total weight (largest
    first, each to the lightest share), each share keeping the items' order."""
    shares: list[list[int]] = [[] for _ in range(bins)]
    totals = [0] * bins
    for index in sorted(range(len(items)), key=lambda i: -weight(items[i])):
        lightest = totals.index(min(totals))
        shares[lightest].append(index)
        totals[lightest] += weight(items[index])
    return [[items[i] for i in sorted(share)] for share in shares if share]


def _spans(candidates: list[_Candidates]) -> list[tuple[int, int]]:
    """Each frame's [start, stop) rows in the concatenated batch."""
    ends = np.cumsum([len(c.scores) for c in candidates])
    return [(int(e - len(c.scores)), int(e)) for c, e in zip(candidates, ends, strict=True)]


def _reference_rank(scores: np.ndarray) -> np.ndarray:
    """Scores replaced by their rank in NumPy's default ascending argsort.

    The reference's last NMS visits boxes from the end of ``np.argsort(scores)``, so among equal
    scores (common: O-Net saturates at 0.9999993 for neighbouring boxes of one face) it keeps the
    one that sort puts last, often a different box from the first. Ranking by that same sort
    makes the shared NMS visit boxes in exactly that order.
    """
    rank = np.empty(len(scores), np.int64)
    rank[np.argsort(scores)] = np.arange(len(scores))
    return rank


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares around their centres, side = the longer side ("rerec")."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(axis=1, keepdims=True)
    corner = boxes[:, 0:2] + size * 0.5 - side * 0.5
    return np.concatenate([corner, corner + side], axis=1).astype(np.float32)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes moved by regression offsets, as fractions of the "+1" width and height."""
    size = boxes[:, 2:4] - boxes[:, 0:2] + 1
    return (boxes + offsets * np.concatenate([size, size], axis=1)).astype(np.float32)


def _crop_corners(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 4) int pixel ranges [x0, y0, x1, y1) of each box's crop: corners truncated toward
    zero, the 1-based start clipped to ≥ 1 and the end to the frame, as the reference crops."""
    corners = np.trunc(boxes).astype(np.int64)
    x0 = np.maximum(corners[:, 0], 1) - 1
    y0 = np.maximum(corners[:, 1], 1) - 1
    x1 = np.minimum(corners[:, 2], width)
    y1 = np.minimum(corners[:, 3], height)
    return np.stack([x0, y0, x1, y1], axis=1)
