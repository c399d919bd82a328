"""Handlers of the pipeline commands (detect, landmarks, pipeline, bench-mtcnn, video make).

Thin: each parses nothing, calls the library and formats its result; cli.py owns the parser,
the errors and the exit codes.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from faceperf.fileio import atomic_write_bytes, atomic_write_json
from faceperf.paths import default_artifacts_dir


def _directory(args: argparse.Namespace) -> Path:
    return args.artifacts or default_artifacts_dir()


def _mtcnn(args: argparse.Namespace, params_name: str):  # -> MTCNNDetector (imported lazily)
    from faceperf.pipeline import mtcnn_detector

    params = {
        "facenet": mtcnn_detector.FACENET_DEFAULTS,
        "openface": mtcnn_detector.OPENFACE_PRESET,
    }[params_name]
    return mtcnn_detector.MTCNNDetector.from_artifacts(
        _directory(args),
        variant=args.variant,
        backend=args.backend,
        params=params,
    )


def _faces_json(faces: list) -> list[dict]:
    return [
        {
            "box": [round(float(v), 2) for v in face.box],
            "score": round(float(face.score), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
        }
        for face in faces
    ]


def warn_if_surrogate(directory: Path, models: list[str]) -> None:
    """Say on stderr when results come from surrogate weights (meaningless as face analysis)."""
    import sys

    from faceperf.artifacts.manifest import read_manifest

    manifest = read_manifest(directory)
    fake = [
        m
        for m in models
        if m in manifest.models and manifest.models[m].weights["kind"] == "surrogate"
    ]
    if fake:
        print(
            f"note: {', '.join(fake)} use SURROGATE weights (no real checkpoint in weights/): "
            "the numbers exercise the pipeline but are not real face analysis",
            file=sys.stderr,
        )


def _find_faces(args: argparse.Namespace, frame: np.ndarray) -> list:
    if args.model == "mtcnn":
        return _mtcnn(args, args.preset).detect(frame)
    from faceperf.pipeline.retinaface_detector import RetinaFaceDetector

    detector = RetinaFaceDetector.from_artifacts(
        _directory(args), variant=args.variant, backend=args.backend
    )
    return detector.detect(frame)


def detect(args: argparse.Namespace) -> int:
    from faceperf.pipeline.frames import read_image

    faces = _find_faces(args, read_image(args.image))
    warn_if_surrogate(_directory(args), [args.model])
    if args.json:
        print(
            json.dumps(
                {"image": str(args.image), "model": args.model, "faces": _faces_json(faces)},
                indent=2,
            )
        )
        return 0
    print(f"{len(faces)} face(s) in {args.image} ({args.model}, {args.variant}, {args.backend})")
    for face in faces:
        x1, y1, x2, y2 = face.box
        print(f"  box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f})  score {face.score:.4f}")
    return 0


def landmarks(args: argparse.Namespace) -> int:
    from faceperf.pipeline.frames import read_image
    from faceperf.pipeline.landmarker import StarLandmarker

    frame = read_image(args.image)
    faces = _find_faces(args, frame)
    warn_if_surrogate(_directory(args), [args.model, "star"])
    star = StarLandmarker.from_artifacts(
        _directory(args), variant=args.variant, backend=args.backend
    )
    points = star.landmarks(frame, np.array([f.box for f in faces]).reshape(-1, 4))
    result = [
        {"box": [round(float(v), 2) for v in face.box], "landmarks": np.round(pts, 2).tolist()}
        for face, pts in zip(faces, points, strict=True)
    ]
    if args.json:
        print(
            json.dumps(
                {"image": str(args.image), "detector": args.model, "faces": result}, indent=2
            )
        )
        return 0
    print(f"{len(result)} face(s) in {args.image}; 98 landmarks each (STAR, {args.variant})")
    for face in result:
        xs = [p[0] for p in face["landmarks"]]
        ys = [p[1] for p in face["landmarks"]]
        print(
            f"  box {face['box']}  landmarks span x {min(xs):.1f}..{max(xs):.1f}, "
            f"y {min(ys):.1f}..{max(ys):.1f}"
        )
    return 0


def pipeline(args: argparse.Namespace) -> int:
    from faceperf.pipeline import video
    from faceperf.pipeline.face_mirror import FaceMirrorLoop
    from faceperf.pipeline.profiler import MODEL_INFERENCE, StageProfiler
    from faceperf.pipeline.results_csv import write_results

    if args.video is not None:
        frames = video.read_frames(args.video)
        source = str(args.video)
    else:
        frames = video.synthetic_frames(args.synthetic, seed=args.seed)
        source = f"synthetic clip ({args.synthetic} frames, seed {args.seed})"
    warn_if_surrogate(_directory(args), ["retinaface", "star", "mtl"])
    profiler = StageProfiler()
    loop = FaceMirrorLoop.from_artifacts(
        _directory(args),
        variant=args.variant,
        backend=args.backend,
        profiler=profiler,
        threads=args.threads,
    )
    source_timer = _TimedIterator(frames)
    results = []
    start = time.perf_counter()
    for result in loop.run(source_timer):
        results.append(result)
    # Decoding or synthesising frames is not the pipeline's work: it is reported apart.
    elapsed = time.perf_counter() - start - source_timer.seconds
    report = Path(args.report)
    report.mkdir(parents=True, exist_ok=True)
    write_results(report / "results.csv", results)
    atomic_write_bytes(report / "profile.txt", profiler.text().encode())
    inference = sum(r.total_s for r in profiler.stats() if r.category == MODEL_INFERENCE)
    summary = {
        "source": source,
        "frames": len(results),
        "seconds": elapsed,
        "frame_source_seconds": source_timer.seconds,
        "fps": len(results) / elapsed if elapsed > 0 else None,
        "share_outside_inference": 1.0 - inference / elapsed if elapsed > 0 else None,
        "variant": args.variant,
        "backend": args.backend,
        "profile": profiler.to_json(),
    }
    atomic_write_json(report / "pipeline.json", summary)
    print(profiler.text())
    print(
        f"{len(results)} frames in {elapsed:.2f} s: {summary['fps']:.2f} FPS; "
        f"{100 * summary['share_outside_inference']:.1f} % of the time outside model inference"
    )
    print(f"(reading or making the frames took {source_timer.seconds:.2f} s more, not counted)")
    print(f"report written to {report}")
    return 0


class _TimedIterator:
    """Passes items through and adds up the time spent producing them."""

    def __init__(self, items: Iterable[np.ndarray]) -> None:
        self._items = iter(items)
        self.seconds = 0.0

    def __iter__(self) -> _TimedIterator:
        return self

    def __next__(self) -> np.ndarray:
        start = time.perf_counter()
        try:
            return next(self._items)
        finally:
            self.seconds += time.perf_counter() - start


def bench_mtcnn(args: argparse.Namespace) -> int:
    from faceperf.pipeline.frames import read_image
    from faceperf.pipeline.mtcnn_bench import measure_throughput

    frames = [read_image(path) for path in args.images]
    detector = _mtcnn(args, args.preset)
    result = measure_throughput(
        detector, frames, batch=args.batch, warmup=args.warmup, rounds=args.rounds
    )
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    print(
        f"MTCNN ({args.preset} preset, {args.variant}, {args.backend}) on {len(frames)} "
        f"frame(s), batch {args.batch}, {result.rounds} rounds after {args.warmup} warm-up"
    )
    print(
        f"  {result.ms_per_frame_median:.2f} ms/frame median, p90 "
        f"{result.ms_per_frame_p90:.2f} ms, {result.fps:.1f} FPS"
    )
    for stage in result.stages:
        print(f"  {stage.name:<28} {stage.ms_per_frame:8.2f} ms/frame {stage.percent:6.1f} %")
    return 0


def video_make(args: argparse.Namespace) -> int:
    from faceperf.pipeline.video import synthetic_frames, write_video

    write_video(Path(args.out), synthetic_frames(args.frames, seed=args.seed), fps=args.fps)
    print(
        f"wrote {args.frames} frames of the synthetic 1080p clip (seed {args.seed}) to {args.out}"
    )
    return 0
