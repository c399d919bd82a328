"""Detector time per 1080p frame by face count and face size: MTCNN (the OpenFace preset, as the
application runs it) and RetinaFace (preprocess, network, decode and NMS), on frames composed of
1, 4 and 16 fixture faces of one size (fixtures/crowds.py), so that a detector whose time grows
with the faces in view shows it.

A trend report, not a precision benchmark: five rounds a cell, each beside a canary call
(ms and canary calls a frame in each record's ``extra_info``; the cells are not baseline-gated,
see budgets.toml ``[not_gated]``). Each cell also checks that the detector finds the pasted
faces: time spent finding nothing measures nothing. One gate, on ratios of MTCNN's own times
measured interleaved (machine-independent): 16 small faces over 1 small face must stay under
``SMALL_FACE_SLOWDOWN_CEILING``. The table goes to ``reports/<time>/face-density.md`` and to the
"faceperf budgets" section of the terminal summary. docs/face-density.md has the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from faceperf.bench.calibration import CalibratedTiming
from faceperf.bench.gate.canary import CANARY_KEY, pedantic_with_canary
from faceperf.bench.speedups.estimate import InterleavedBlocks
from faceperf.bench.speedups.interleaved import speedup_interval
from faceperf.fixtures.crowds import Crowd, crowd
from faceperf.pipeline.boxes import overlap_matrix
from faceperf.pipeline.detection import Detection
from faceperf.pipeline.mtcnn_detector import OPENFACE_PRESET, MTCNNDetector
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.backends import backend_name

pytestmark = pytest.mark.perf

COUNTS = (1, 4, 16)
# Box heights in px. Small: under the OpenFace preset's 60 px minimum, so P-Net's finest pyramid
# level (scale 12/60, the most windows) sees a 40 px face at 8 px; RetinaFace's 640x640 input
# sees it at 13 px, below its smallest (16 px) anchor. Medium: both detectors find every face.
# Large: about 300 px; 16 faces with their margins fit in 1080p up to 297 px (3 x 6 cells).
SIZES = {"small": 40, "medium": 96, "large": 288}
DETECTORS = ("mtcnn", "retinaface")
ROUNDS = 5
MATCH_IOU = 0.5  # a pasted face is found when a detection overlaps its box by this much
# Least share of the pasted faces each detector must find, measured 1.0 in every cell except
# MTCNN 4 small (0.75: one 40 px face, under the preset's 60 px minimum, slips); None: not
# asserted (RetinaFace finds no 40 px face at its 640 px input, see SIZES).
MIN_RECALL = {
    ("mtcnn", "small"): 0.5,
    ("mtcnn", "medium"): 0.9,
    ("mtcnn", "large"): 0.9,
    ("retinaface", "small"): None,
    ("retinaface", "medium"): 0.9,
    ("retinaface", "large"): 0.9,
}
MAX_SPURIOUS = 2  # detections matching no pasted face, per frame
# MTCNN's time for 16 small faces over its time for 1, measured interleaved in one process, ONNX
# Runtime CPU (docs/face-density.md, 2-core AMD EPYC, 2026-12-07): point estimates 1.57-1.99,
# lower bounds of the 95 % interval up to 1.67, quiet or beside a load of 7. A ratio of the
# cascade's own times is machine-independent to first order (a slower CPU slows both frames).
# Judged on the interval's lower bound, 2.5 is 50 % above the highest one measured; R-Net and
# O-Net made 4-5x slower (P-Net untouched: the cost of each extra face grows, not the frame's)
# measured 3.11 [2.97, 3.46] and fail it. Not a budgets.toml entry: no [[budget]] kind states a
# ratio of two frames' times, and adding one changes bench/budgets.py and its tests.
SMALL_FACE_SLOWDOWN_CEILING = 2.5
GATE_MIN_BLOCKS = 12  # ABBA blocks: 24 calls a side, about 2 s


@dataclass(frozen=True)
class Cell:
    """One measured grid cell: what the report table shows."""

    detector: str
    size_name: str
    crowd: Crowd
    detections: int
    matched: int
    spurious: int
    ms: float | None
    units: float | None

    @property
    def recall(self) -> float:
        return self.matched / self.crowd.count

    def row(self) -> str:
        ms = "-" if self.ms is None else f"{self.ms:.1f}"
        units = "-" if self.units is None else f"{self.units:.2f}"
        return (
            f"| {self.detector} | {self.size_name} ({self.crowd.size} px) | {self.crowd.count} "
            f"| {self.detections} | {self.recall:.2f} | {ms} | {units} |"
        )


TABLE_HEAD = (
    "| detector | face size | faces | detections | recall | ms a frame | canary calls |",
    "|---|---|---:|---:|---:|---:|---:|",
)


@pytest.fixture(scope="module")
def variant(perf_profile) -> str:
    return "coreml" if perf_profile.backend == "coreml" else "optimized"


@pytest.fixture(scope="module")
def detectors(artifacts_dir, perf_profile, perf_threads, variant) -> dict[str, Callable]:
    # MTCNN as test_budgets.py opens it: its default workers, one ONNX Runtime thread each.
    mtcnn = MTCNNDetector.open(
        ArtifactRef(artifacts_dir, variant, perf_profile.backend), params=OPENFACE_PRESET
    )
    ref = ArtifactRef(artifacts_dir, variant, perf_profile.backend, perf_threads)
    retinaface = RetinaFaceDetector.open(ref)
    return {"mtcnn": mtcnn.detect, "retinaface": retinaface.detect}


@pytest.fixture(scope="module")
def density_table(perf_report_dir, budget_report, perf_profile):
    """Cells as they are measured; after the module, the table in the report folder and in the
    terminal summary (when anything was timed)."""
    cells: list[Cell] = []
    yield cells
    timed = [cell for cell in cells if cell.ms is not None]
    if not timed:
        return
    lines = [
        f"# Detector time by face count and size ({perf_profile.name})",
        "",
        *TABLE_HEAD,
        *(cell.row() for cell in timed),
        "",
    ]
    path = perf_report_dir / "face-density.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    for cell in timed:
        budget_report(
            f"face density, {cell.detector} {cell.crowd.count} x {cell.crowd.size} px: "
            f"{cell.ms:.1f} ms a frame"
            + ("" if cell.units is None else f", {cell.units:.2f} canary calls")
            + f"; found {cell.matched} of {cell.crowd.count} ({cell.detections} detections)"
        )
    budget_report(f"face density table: {path}")


def _matches(faces: Crowd, detections: list[Detection]) -> tuple[int, int]:
    """(pasted faces found, detections matching no pasted face)."""
    if not detections:
        return 0, 0
    overlap = overlap_matrix(faces.boxes, np.stack([d.box for d in detections]))
    found = overlap >= MATCH_IOU
    return int(found.any(axis=1).sum()), int((~found.any(axis=0)).sum())


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("detector", DETECTORS)
def test_detector_time_by_face_density(
    benchmark, detectors, perf_canary, perf_profile, density_table, detector, size_name, count
):
    faces = crowd(count, SIZES[size_name])
    detect = detectors[detector]
    benchmark.group = f"{detector} face density"
    detections = pedantic_with_canary(
        benchmark, detect, (faces.frame,), rounds=ROUNDS, warmup_rounds=1, canary=perf_canary
    )
    matched, spurious = _matches(faces, detections)
    ms = units = None
    if not benchmark.disabled:
        timing = CalibratedTiming.of(
            benchmark.stats.stats.data, benchmark.extra_info.get(CANARY_KEY)
        )
        ms, units = timing.per_call_ms, timing.units
    cell = Cell(detector, size_name, faces, len(detections), matched, spurious, ms, units)
    density_table.append(cell)
    benchmark.extra_info.update(
        profile=perf_profile.name,
        detector=detector,
        faces=count,
        face_size_px=faces.size,
        detections=len(detections),
        found=matched,
        spurious=spurious,
        ms_per_frame=ms,
        canary_units=units,
    )
    least = MIN_RECALL[(detector, size_name)]
    if least is not None:
        assert cell.recall >= least, (
            f"{detector} found {matched} of {count} pasted {faces.size} px faces "
            f"({len(detections)} detections): its time on this frame would measure nothing"
        )
    assert spurious <= MAX_SPURIOUS, (
        f"{detector}: {spurious} of {len(detections)} detections match no pasted face"
    )


def test_mtcnn_slowdown_with_many_small_faces(benchmark, detectors, perf_profile, budget_report):
    """MTCNN's time on 16 small faces over its time on 1, interleaved (ABBA blocks, so drift
    falls on both alike); fails when the whole 95 % interval of the ratio of medians lies above
    the ceiling. Judged on ONNX Runtime CPU only, where it was measured: an accelerator's fixed
    cost a call (R-Net and O-Net chunks) would move the ratio for reasons of its own."""
    many = crowd(16, SIZES["small"])
    one = crowd(1, SIZES["small"])
    detect = detectors["mtcnn"]
    blocks = InterleavedBlocks(lambda: detect(many.frame), lambda: detect(one.frame))
    benchmark.group = "mtcnn face density slowdown"
    if not benchmark.disabled:
        # Warm-up outside the blocks, which keep every call they time.
        detect(many.frame)
        detect(one.frame)
    benchmark.pedantic(blocks, rounds=1 if benchmark.disabled else GATE_MIN_BLOCKS)
    if benchmark.disabled:
        return  # smoke mode: both frames ran; timing is not judged
    samples = blocks.samples()
    ratio = speedup_interval(samples.a_s, samples.b_s)
    benchmark.extra_info.update(
        profile=perf_profile.name,
        slowdown=ratio.point,
        slowdown_interval=[ratio.low, ratio.high],
        ceiling=SMALL_FACE_SLOWDOWN_CEILING,
        ms_16=1e3 * float(np.median(samples.a_s)),
        ms_1=1e3 * float(np.median(samples.b_s)),
    )
    passed = ratio.low <= SMALL_FACE_SLOWDOWN_CEILING
    measured = (
        f"mtcnn, 16 over 1 small ({SIZES['small']} px) faces: x{ratio.point:.2f} "
        f"[{ratio.low:.2f}, {ratio.high:.2f}] ({1e3 * np.median(samples.a_s):.1f} / "
        f"{1e3 * np.median(samples.b_s):.1f} ms)"
    )
    if backend_name(perf_profile.backend) != "ort-cpu":
        budget_report(f"{measured}; not judged on {perf_profile.name}")
        pytest.skip(f"the slowdown ceiling was measured on ONNX Runtime CPU only; {measured}")
    line = f"{measured}; ceiling x{SMALL_FACE_SLOWDOWN_CEILING:g}: {'pass' if passed else 'FAIL'}"
    budget_report(line)
    assert passed, line
