"""The published Apple Silicon figures the measured speedups are shown beside.

Copied from the one place they are quoted, so a reader can check them against it: the
"Published figures (Apple M-series, from the optimisation reports)" table of
../shared/MODELS.md. They are not faceperf measurements, they compare the first shipped model
with the Core ML FP16 package on the Neural Engine (not this machine's ONNX pair), and MTCNN's
figure is the whole detector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

SOURCE = "../shared/MODELS.md, 'Published figures (Apple M-series, from the optimisation reports)'"


@dataclass(frozen=True)
class PublishedFigure:
    """One row of the published table.

    Args:
        subject: what was measured (a model, or the whole MTCNN detector).
        baseline: the published "before", as published.
        optimised: the published "after", as published.
        speedup: before / after when the report states both as one number each, else None.
        how: the settings the report gives.
    """

    subject: str
    baseline: str
    optimised: str
    speedup: float | None
    how: str


_STAR = PublishedFigure(
    "STAR",
    "163.2 ms",
    "70.5 ms",
    2.31,
    "mlprogram, FP16, CPU_AND_NE, fixed 256x256; ANE 99.7 % of 659 ops",
)
_MTL = PublishedFigure(
    "MTL", "60.8 ms", "7.5 ms", 8.1, "same settings, fixed 224x224; ANE 78.2 % of 248 ops"
)
_RETINAFACE = PublishedFigure("RetinaFace", "151 to 208 ms", "167 ms", None, "ANE 81.3 %")
_MTCNN = PublishedFigure(
    "MTCNN (whole detector)",
    "0.195 FPS (pure Python)",
    "34.26 FPS (CoreML FP32, batched)",
    None,  # a pure-Python detector against a batched Core ML one: not a per-network factor
    "FP16 was 2.6x slower and cost 5 % IoU",
)

APPLE_SILICON: Mapping[str, PublishedFigure] = MappingProxyType(
    {
        "retinaface": _RETINAFACE,
        "star": _STAR,
        "mtl": _MTL,
        "mtcnn_pnet": _MTCNN,
        "mtcnn_rnet": _MTCNN,
        "mtcnn_onet": _MTCNN,
    }
)
