"""The faceperf command: thin, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from faceperf.cli import main


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
