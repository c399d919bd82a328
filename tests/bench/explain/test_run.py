"""Explaining real artifact folders: MTCNN O-Net against a copy with identity convolutions
inserted (bench/slowdown.py). Structural assertions only: what is new, not how fast."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import read_manifest, write_manifest
from faceperf.bench.explain.diff import Change
from faceperf.bench.explain.profile import Calls
from faceperf.bench.explain.run import explain_artifacts, sample_feeds
from faceperf.bench.slowdown import slowed_copy
from faceperf.cli import main
from faceperf.errors import ArtifactError

MODEL = "mtcnn_onet"


@pytest.fixture(scope="module")
def slowed(artifacts_dir, tmp_path_factory):
    """O-Net optimized with three identity 1x1 convolutions after its widest feature map."""
    return slowed_copy(
        artifacts_dir, tmp_path_factory.mktemp("explain") / "slow", MODEL, "optimized", count=3
    )


def test_the_inserted_convolutions_are_reported_as_new(artifacts_dir, slowed):
    explanation = explain_artifacts(artifacts_dir, slowed, MODEL, calls=Calls.exactly(5))
    new = [line for line in explanation.ranked if line.change is Change.NEW]
    assert len(new) == 1, [line.describe() for line in new]
    (line,) = new
    assert line.op_type == "Conv"
    assert len(line.nodes) == 3
    # ORT renames them (NCHWc) but keeps their output tensors' names in the node names.
    assert all("_slowdown" in name for name in line.nodes)
    assert line.after is not None  # placed after a node both graphs share
    assert line.after in explanation.matching.counterpart()
    # Nothing else is new or gone: ORT's renumbered Reorder nodes pair by their shapes.
    assert explanation.matching.gone == ()
    assert len(explanation.matching.pairs) == len(explanation.reference.nodes)
    assert explanation.label == f"{MODEL}/optimized"
    assert explanation.reference.calls == explanation.candidate.calls == 5


def test_an_unchanged_copy_has_nothing_new_or_gone(artifacts_dir):
    explanation = explain_artifacts(artifacts_dir, artifacts_dir, MODEL, calls=3)
    assert explanation.matching.new == () and explanation.matching.gone == ()
    assert {line.change for line in explanation.ranked} == {Change.CHANGED}


def test_feeds_follow_the_declared_input_batch_1_where_it_is_free(artifacts_dir, tmp_path):
    # The built FP16 variant keeps float32 inputs; a reconversion declaring float16 gets float16.
    manifest = read_manifest(artifacts_dir)
    record = manifest.models[MODEL]
    fp16 = record.variants["optimized_fp16"]
    (declared,) = fp16.inputs
    half = dataclasses.replace(fp16, inputs=(dataclasses.replace(declared, dtype="float16"),))
    variants = {**record.variants, "optimized_fp16": half}
    manifest.models[MODEL] = dataclasses.replace(record, variants=variants)
    write_manifest(tmp_path, manifest)
    assert isinstance(declared.shape[0], str)  # a free batch
    (built,) = sample_feeds(artifacts_dir, MODEL, "optimized_fp16").values()
    (edited,) = sample_feeds(tmp_path, MODEL, "optimized_fp16").values()
    assert (built.dtype, built.shape) == (np.dtype(declared.dtype), (1, 3, 48, 48))
    assert (edited.dtype, edited.shape) == (np.float16, (1, 3, 48, 48))


def test_a_model_the_manifest_lacks_is_an_error_naming_the_manifest(artifacts_dir, slowed):
    with pytest.raises(ArtifactError, match=r"manifest\.json: manifest has no model 'nope'"):
        explain_artifacts(artifacts_dir, slowed, "nope")


def test_a_missing_file_is_an_error_naming_it(artifacts_dir, tmp_path, slowed):
    folder = slowed_copy(artifacts_dir, tmp_path / "gone", MODEL, "optimized", count=1)
    artifact_path(folder, MODEL, "optimized").unlink()
    with pytest.raises(ArtifactError, match=r"optimized\.onnx: missing"):
        explain_artifacts(artifacts_dir, folder, MODEL)


def test_a_core_ml_variant_is_refused(artifacts_dir):
    with pytest.raises(ArtifactError, match="expected an ONNX variant"):
        explain_artifacts(artifacts_dir, artifacts_dir, MODEL, variant="coreml")


def test_the_command_prints_the_table_and_json(artifacts_dir, slowed, capsys):
    argv = ["bench", "explain", "--reference", str(artifacts_dir), "--candidate", str(slowed)]
    argv += ["--model", MODEL, "--calls", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{MODEL}/optimized x")
    assert "| # | operation |" in out
    assert "3 new Conv [1x32x46x46]" in out
    assert main([*argv, "--json", "--top", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["new"] == 3 and doc["gone"] == 0


def test_the_command_on_a_folder_without_manifest_is_one_line_and_exit_2(
    artifacts_dir, tmp_path, capsys
):
    argv = ["bench", "explain", "--reference", str(artifacts_dir), "--candidate", str(tmp_path)]
    assert main([*argv, "--model", MODEL]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"faceperf: error: {tmp_path}/manifest.json: no manifest")


def test_a_bad_count_is_a_usage_error(artifacts_dir, capsys):
    argv = ["bench", "explain", "--reference", str(artifacts_dir), "--candidate", "x"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--model", MODEL, "--calls", "0"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "faceperf bench explain: error: argument --calls: '0': expected an integer >= 1\n"
    )
