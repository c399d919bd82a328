"""faceperf bench memory / bench leak: the tables, the JSON, and the exit codes."""

from __future__ import annotations

import json
import shutil

import onnx
from memory_folders import one_model_folder, replace_variant

from faceperf.artifacts.layout import artifact_path
from faceperf.cli import main

ONET = ("optimized", "optimized_fp16")


def test_bench_memory_prints_the_table_and_passes(artifacts_dir, tmp_path, capsys):
    folder = one_model_folder(artifacts_dir, tmp_path / "a", "mtcnn_onet", ONET)
    argv = ["bench", "memory", "--artifacts", str(folder), "--models", "mtcnn_onet"]
    assert main([*argv, "--variants", "optimized", "--pipeline-frames", "0", "--calls", "2"]) == 0
    out = capsys.readouterr().out
    assert "| mtcnn_onet | optimized |" in out
    assert "mtcnn_onet/optimized_fp16: pass" in out


def test_bench_memory_json_and_a_size_comparison(artifacts_dir, tmp_path, capsys):
    folder = one_model_folder(artifacts_dir, tmp_path / "a", "mtcnn_onet", ONET)
    argv = ["bench", "memory", "--artifacts", str(folder), "--models", "mtcnn_onet", "--json"]
    argv += ["--variants", "optimized", "--pipeline-frames", "0", "--mtcnn-frames", "0"]
    argv += ["--reference", str(folder)]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["subject"] for r in doc["memory"]] == ["mtcnn_onet"]
    assert {c["verdict"] for c in doc["size_changes"]} == {"same"}


def test_an_fp16_that_is_really_fp32_exits_1(artifacts_dir, tmp_path, capsys):
    folder = one_model_folder(artifacts_dir, tmp_path / "a", "mtcnn_onet", ONET)
    shutil.copy2(artifact_path(folder, "mtcnn_onet", "optimized"), tmp_path / "fp32.onnx")
    replace_variant(folder, "mtcnn_onet", "optimized_fp16", onnx.load(tmp_path / "fp32.onnx"))
    argv = ["bench", "memory", "--artifacts", str(folder), "--models", "mtcnn_onet"]
    assert (
        main([*argv, "--variants", "optimized", "--pipeline-frames", "0", "--mtcnn-frames", "0"])
        == 1
    )
    assert "mtcnn_onet/optimized_fp16: fail" in capsys.readouterr().out


def test_bench_leak_judges_and_plots(artifacts_dir, tmp_path, capsys):
    folder = one_model_folder(artifacts_dir, tmp_path / "a", "mtcnn_onet", ("optimized",))
    plot = tmp_path / "leak.png"
    argv = ["bench", "leak", "--artifacts", str(folder), "--models", "mtcnn_onet"]
    assert (
        main([*argv, "--calls", "300", "--frames", "0", "--mtcnn-frames", "0", "--plot", str(plot)])
        == 0
    )
    assert "| mtcnn_onet/optimized | 300 |" in capsys.readouterr().out
    assert plot.stat().st_size > 0
