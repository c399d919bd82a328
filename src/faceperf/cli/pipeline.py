"""``faceperf detect | landmarks | pipeline | video make``: the face pipeline on an image, a
video or the synthetic clip."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.cli.exits import EXIT_OK
from faceperf.cli.notes import warn_if_surrogate
from faceperf.cli.options import (
    add_json,
    add_mtcnn_preset,
    add_runtime_options,
    add_threads,
    artifact_ref,
)
from faceperf.options import at_least, frames_per_second

if TYPE_CHECKING:
    import numpy as np

    from faceperf.pipeline.detection import Detection
    from faceperf.runtime.artifact_ref import ArtifactRef

_DETECTORS = ("mtcnn", "retinaface")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``detect``, ``landmarks``, ``pipeline`` and ``video make`` to the top-level
    commands."""
    _add_image_command(
        commands,
        "detect",
        "find faces in an image",
        model_help="the detector",
        preset_help="MTCNN parameters: facenet-pytorch's (min face 20) or Face Mirror's (60)",
    ).set_defaults(func=_detect)
    _add_image_command(
        commands,
        "landmarks",
        "98 STAR landmarks of each face",
        model_help="the detector that finds the faces",
        preset_help="MTCNN parameters (with --model mtcnn)",
    ).set_defaults(func=_landmarks)

    _add_pipeline(commands)

    video = commands.add_parser("video", help="synthetic test video")
    sub = video.add_subparsers(dest="video_command", required=True)
    make = sub.add_parser("make", help="write the synthetic 1080p clip as mp4")
    make.add_argument("--out", required=True)
    make.add_argument("--frames", type=at_least(1), default=120, help="frames (default 120)")
    make.add_argument("--seed", type=at_least(0), default=0, help="seed of the clip (default 0)")
    make.add_argument(
        "--fps", type=frames_per_second, default=30.0, help="frame rate in the file (default 30)"
    )
    make.set_defaults(func=_video_make)


def _add_image_command(
    commands: argparse._SubParsersAction, name: str, help: str, *, model_help: str, preset_help: str
) -> argparse.ArgumentParser:
    """A command over one image's faces: the image, the detector and the runtime."""
    parser = commands.add_parser(name, help=help)
    parser.add_argument("--image", required=True)
    parser.add_argument("--model", choices=_DETECTORS, default="mtcnn", help=model_help)
    add_mtcnn_preset(parser, default="facenet", help=preset_help)
    add_json(parser)
    add_runtime_options(parser)
    return parser


def _add_pipeline(commands: argparse._SubParsersAction) -> None:
    pipeline = commands.add_parser("pipeline", help="run the Face Mirror frame loop")
    source = pipeline.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path)
    source.add_argument(
        "--synthetic",
        type=at_least(1),
        metavar="N",
        help="N frames of the deterministic synthetic 1080p clip",
    )
    pipeline.add_argument("--seed", type=at_least(0), default=0, help="seed of the synthetic clip")
    add_threads(pipeline, default=None, help="ONNX Runtime intra-op threads per model")
    pipeline.add_argument(
        "--report",
        type=Path,
        required=True,
        help="folder for results.csv, profile.txt and pipeline.json",
    )
    add_runtime_options(pipeline)
    pipeline.set_defaults(func=_pipeline)


def _find_faces(args: argparse.Namespace, ref: ArtifactRef, frame: np.ndarray) -> list[Detection]:
    if args.model == "mtcnn":
        from faceperf.pipeline.mtcnn_detector import PRESETS, MTCNNDetector

        detector = MTCNNDetector.open(ref, params=PRESETS[args.preset])
        return detector.detect(frame)
    from faceperf.pipeline.retinaface_detector import RetinaFaceDetector

    return RetinaFaceDetector.open(ref).detect(frame)


def _faces_json(faces: list[Detection]) -> list[dict]:
    return [
        {
            "box": [round(float(v), 2) for v in face.box],
            "score": round(float(face.score), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks],
        }
        for face in faces
    ]


def _detect(args: argparse.Namespace) -> int:
    from faceperf.pipeline.frames import read_image

    faces = _find_faces(args, artifact_ref(args), read_image(args.image))
    warn_if_surrogate(args.artifacts, [args.model])
    if args.json:
        document = {"image": str(args.image), "model": args.model, "faces": _faces_json(faces)}
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(f"{len(faces)} face(s) in {args.image} ({args.model}, {args.variant}, {args.backend})")
    for face in faces:
        x1, y1, x2, y2 = face.box
        print(f"  box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f})  score {face.score:.4f}")
    return EXIT_OK


def _landmarks(args: argparse.Namespace) -> int:
    import numpy as np

    from faceperf.pipeline.frames import read_image
    from faceperf.pipeline.landmarker import StarLandmarker

    ref = artifact_ref(args)
    frame = read_image(args.image)
    faces = _find_faces(args, ref, frame)
    warn_if_surrogate(args.artifacts, [args.model, "star"])
    star = StarLandmarker.open(ref)
    points = star.landmarks(frame, np.array([f.box for f in faces]).reshape(-1, 4))
    result = [
        {"box": [round(float(v), 2) for v in face.box], "landmarks": np.round(pts, 2).tolist()}
        for face, pts in zip(faces, points, strict=True)
    ]
    if args.json:
        document = {"image": str(args.image), "detector": args.model, "faces": result}
        print(json.dumps(document, indent=2))
        return EXIT_OK
    print(f"{len(result)} face(s) in {args.image}; 98 landmarks each (STAR, {args.variant})")
    for face in result:
        xs = [p[0] for p in face["landmarks"]]
        ys = [p[1] for p in face["landmarks"]]
        print(
            f"  box {face['box']}  landmarks span x {min(xs):.1f}..{max(xs):.1f}, "
            f"y {min(ys):.1f}..{max(ys):.1f}"
        )
    return EXIT_OK


def _pipeline(args: argparse.Namespace) -> int:
    from faceperf.bench.throughput.framerate import measure_frame_rate
    from faceperf.fileio import atomic_write_bytes, atomic_write_json
    from faceperf.pipeline import video
    from faceperf.pipeline.face_mirror import FaceMirrorLoop
    from faceperf.pipeline.profiler import StageProfiler
    from faceperf.pipeline.results_csv import write_results

    if args.video is not None:
        frames = video.read_frames(args.video)
        source = str(args.video)
    else:
        frames = video.synthetic_frames(args.synthetic, seed=args.seed)
        source = f"synthetic clip ({args.synthetic} frames, seed {args.seed})"
    warn_if_surrogate(args.artifacts, ["retinaface", "star", "mtl"])
    profiler = StageProfiler()
    loop = FaceMirrorLoop.open(artifact_ref(args), profiler=profiler)
    run = measure_frame_rate(loop, frames)
    rate = run.rate
    report = Path(args.report)
    report.mkdir(parents=True, exist_ok=True)
    write_results(report / "results.csv", run.results)
    atomic_write_bytes(report / "profile.txt", profiler.text().encode())
    summary = {
        "source": source,
        **rate.to_json(),
        "variant": args.variant,
        "backend": str(args.backend),
        "profile": profiler.to_json(),
    }
    atomic_write_json(report / "pipeline.json", summary)
    print(profiler.text())
    fps = "n/a" if rate.fps is None else f"{rate.fps:.2f}"
    share = rate.share_outside_inference
    outside = "n/a" if share is None else f"{100 * share:.1f} %"
    print(
        f"{rate.frames} frames in {rate.seconds:.2f} s: {fps} FPS; "
        f"{outside} of the time outside model inference"
    )
    print(
        f"(reading or making the frames took {rate.frame_source_seconds:.2f} s more, not counted)"
    )
    print(f"report written to {report}")
    return EXIT_OK


def _video_make(args: argparse.Namespace) -> int:
    from faceperf.pipeline.video import synthetic_frames, write_video

    write_video(Path(args.out), synthetic_frames(args.frames, seed=args.seed), fps=args.fps)
    print(
        f"wrote {args.frames} frames of the synthetic 1080p clip (seed {args.seed}) to {args.out}"
    )
    return EXIT_OK
