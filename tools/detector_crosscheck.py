"""RetinaFace and MTCNN side by side on the fixtures, and the smallest face each still finds
(docs/detectors.md).

    python tools/detector_crosscheck.py [--artifacts DIR] [--variant baseline]

Prints markdown: per fixture, how many faces each detector finds, the IoU of the paired faces,
every face only one of them finds (score, size); then, for each fixture photograph's face shrunk
into an empty 1080p frame, the smallest height (frame pixels) each detector still finds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceperf.accuracy.cases import SUBJECT_MODELS, Candidate, photos
from faceperf.accuracy.crosscheck import compare_detectors, smallest_found
from faceperf.fixtures.faces import reference_faces
from faceperf.fixtures.samples import RETINAFACE_SIZE
from faceperf.models import inputs
from faceperf.paths import default_artifacts_dir
from faceperf.pipeline.mtcnn_detector import FACENET_DEFAULTS, OPENFACE_PRESET, MTCNNDetector
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector, RetinaFaceSettings

HEIGHTS = list(range(120, 7, -4))
PHOTOS = ("grace_hopper", "astronaut", "obama", "biden")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=default_artifacts_dir())
    parser.add_argument("--variant", default="baseline")
    args = parser.parse_args()
    candidate = Candidate(args.artifacts, args.variant)
    retinaface = RetinaFaceDetector(
        candidate.open("retinaface"), RetinaFaceSettings(input_size=RETINAFACE_SIZE)
    )
    nets = [candidate.open(m) for m in SUBJECT_MODELS["mtcnn"]]
    mtcnn = MTCNNDetector(*nets, params=FACENET_DEFAULTS, workers=1)
    detectors = {
        "RetinaFace, 640 letterbox": retinaface,
        "RetinaFace, full frame": RetinaFaceDetector(candidate.open("retinaface")),
        "MTCNN, min face 20": mtcnn,
        "MTCNN, min face 60 (Face Mirror)": MTCNNDetector(*nets, params=OPENFACE_PRESET, workers=1),
    }
    frames = photos()
    print("| fixture | RetinaFace | MTCNN | paired IoU | RetinaFace only | MTCNN only |")
    print("|---|---:|---:|---|---|---|")
    for row in compare_detectors(frames, retinaface.detect, mtcnn.detect):
        ious = ", ".join(f"{i:.3f}" for i in row.pair_ious)
        print(
            f"| {row.frame} | {row.retinaface} | {row.mtcnn} | {ious} | "
            f"{_lone(row.retinaface_only)} | {_lone(row.mtcnn_only)} |"
        )
    print()
    print("| face | " + " | ".join(detectors) + " |")
    print("|---|" + "---:|" * len(detectors))
    for name in PHOTOS:
        face = inputs.crop_box(frames[name], reference_faces(name)[0].box)
        sizes = [smallest_found(d.detect, face, HEIGHTS) for d in detectors.values()]
        print(f"| {name} | " + " | ".join(_px(s) for s in sizes) + " |")


def _lone(faces) -> str:
    return "; ".join(f"score {f.score:.3f}, {f.height:.0f} px tall" for f in faces) or "-"


def _px(size: int | None) -> str:
    return "not at 120 px" if size is None else f"{size} px"


if __name__ == "__main__":
    main()
