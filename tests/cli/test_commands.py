"""The faceperf command: thin, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from faceperf.cli import main
from faceperf.fixtures import faces as fixture_faces


def test_artifacts_list_prints_one_row_per_model_and_variant(artifacts_dir, capsys):
    assert main(["artifacts", "list", "--dir", str(artifacts_dir)]) == 0
    table = capsys.readouterr().out
    rows = [
        line
        for line in table.splitlines()
        if line.startswith(("retinaface", "star", "mtl", "mtcnn"))
    ]
    assert len(rows) == 24
    assert "built with: torch" in table


def test_artifacts_list_json_is_the_manifest(artifacts_dir, capsys):
    assert main(["artifacts", "list", "--dir", str(artifacts_dir), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == json.loads((artifacts_dir / "manifest.json").read_text())


def test_listing_a_folder_without_manifest_is_a_one_line_error(tmp_path, capsys):
    assert main(["artifacts", "list", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("faceperf: error: ") and "no manifest" in err and "\n" not in err


def test_unknown_model_is_rejected_at_parse_time(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["artifacts", "build", "--models", "star,resnet"])
    assert exited.value.code == 2
    assert "unknown model(s) 'resnet'" in capsys.readouterr().err


def test_missing_real_weights_exit_non_zero_and_build_nothing(tmp_path, capsys):
    out = tmp_path / "build"
    code = main(
        [
            "artifacts",
            "build",
            "--models",
            "star",
            "--weights",
            "real",
            "--weights-dir",
            str(tmp_path),
            "--out",
            str(out),
        ]
    )
    assert code == 2
    assert "Landmark_98.pkl" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_build_if_stale_builds_once_then_reports_up_to_date(tmp_path):
    out = tmp_path / "build"
    command = [
        sys.executable,
        "-m",
        "faceperf",
        "artifacts",
        "build",
        "--models",
        "mtcnn_rnet",
        "--out",
        str(out),
        "--if-stale",
    ]
    first = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "built mtcnn_rnet" in first.stdout and "packaged facenet-pytorch 2.6.0" in first.stdout
    assert "artifacts:" in first.stderr  # the tqdm progress line
    second = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "up to date" in second.stdout


def test_profile_prints_the_name_and_the_reasons(capsys):
    assert main(["profile", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["name"].endswith("/ort-cpu") and document["reasons"]
    assert main(["profile", "--perf-profile", "ci/ort-cpu"]) == 0
    assert capsys.readouterr().out.startswith("ci/ort-cpu\n")


def test_profile_of_an_unknown_backend_is_a_one_line_error(capsys):
    assert main(["profile", "--backend", "tpu"]) == 2
    assert "unknown backend 'tpu'" in capsys.readouterr().err


def test_detect_with_mtcnn_prints_the_reference_faces_as_json(artifacts_dir, capsys):
    image = str(fixture_faces.image_path("obama"))
    code = main(["detect", "--image", image, "--artifacts", str(artifacts_dir), "--json"])
    assert code == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert len(faces) == 2 and faces[0]["box"][0] == pytest.approx(367.13, abs=1.0)


def test_detect_on_a_missing_image_is_a_one_line_error(capsys):
    assert main(["detect", "--image", "no/such.png"]) == 2
    assert capsys.readouterr().err.strip() == "faceperf: error: no/such.png: no such image file"


def test_landmarks_json_has_98_points_per_face(artifacts_dir, capsys):
    code = main(
        [
            "landmarks",
            "--image",
            "fixtures/images/grace_hopper.jpg",
            "--artifacts",
            str(artifacts_dir),
            "--json",
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    (face,) = json.loads(out.out)["faces"]
    assert len(face["landmarks"]) == 98
    if "SURROGATE" in out.err:
        assert "star" in out.err


def test_pipeline_writes_csv_profile_and_summary(artifacts_dir, tmp_path, capsys):
    report = tmp_path / "report"
    code = main(
        [
            "pipeline",
            "--synthetic",
            "3",
            "--artifacts",
            str(artifacts_dir),
            "--report",
            str(report),
            "--threads",
            "1",
        ]
    )
    assert code == 0
    summary = json.loads((report / "pipeline.json").read_text())
    assert summary["frames"] == 3 and summary["fps"] > 0
    assert len((report / "results.csv").read_text().splitlines()) == 4
    assert "STAR_onnx" in (report / "profile.txt").read_text()
    assert "FPS" in capsys.readouterr().out


def test_pipeline_on_a_missing_video_is_a_one_line_error(tmp_path, capsys):
    code = main(["pipeline", "--video", str(tmp_path / "none.mp4"), "--report", str(tmp_path)])
    assert code == 2
    assert "none.mp4" in capsys.readouterr().err


def test_bench_mtcnn_reports_ms_per_frame(artifacts_dir, capsys):
    code = main(
        [
            "bench-mtcnn",
            "--images",
            "fixtures/images/grace_hopper.jpg",
            "--artifacts",
            str(artifacts_dir),
            "--warmup",
            "0",
            "--rounds",
            "1",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["batch"] == 1 and result["ms_per_frame_median"] > 0


def test_video_make_writes_a_readable_clip(tmp_path, capsys):
    from faceperf.pipeline.video import read_frames

    out = tmp_path / "clip.mp4"
    assert main(["video", "make", "--out", str(out), "--frames", "3"]) == 0
    assert sum(1 for _ in read_frames(out)) == 3


def test_artifacts_check_passes_the_default_set(artifacts_dir, capsys):
    assert main(["artifacts", "check", "--dir", str(artifacts_dir)]) == 0
    assert "0 conformance problem(s)" in capsys.readouterr().out
