"""bench/memory/size.py: bytes on disk, two folders compared, and the FP16 ratio."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from memory_folders import one_model_folder, replace_variant
from onnx import helper, numpy_helper

from faceperf.artifacts.layout import artifact_path
from faceperf.bench.memory.size import (
    FP16_LIMIT,
    artifact_files,
    artifact_size,
    compare_sizes,
    fp16_checks,
    size_verdict,
)
from faceperf.errors import ArtifactError
from faceperf.verdicts import Verdict


def _graph_with_weight(elements: int) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.arange(elements, dtype=np.float32), "w")
    node = helper.make_node("Add", ["x", "w"], ["y"])
    tensor = helper.make_tensor_value_info
    graph = helper.make_graph(
        [node],
        "g",
        [tensor("x", onnx.TensorProto.FLOAT, [elements])],
        [tensor("y", onnx.TensorProto.FLOAT, [elements])],
        [weight],
    )
    return helper.make_model(graph)


def test_an_onnx_file_counts_its_external_data(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(
        _graph_with_weight(100_000),
        path,
        save_as_external_data=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    files = artifact_files(path)
    assert files == (path, tmp_path / "model.onnx.data")
    assert path.stat().st_size < 1000  # the weights really are outside
    assert sum(f.stat().st_size for f in files) >= 400_000


def test_a_missing_external_data_file_is_named(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(_graph_with_weight(1000), path, save_as_external_data=True, size_threshold=0)
    (tmp_path / "model.onnx.data").unlink(missing_ok=True)
    for extra in tmp_path.iterdir():
        if extra != path:
            extra.unlink()
    with pytest.raises(ArtifactError, match=r"external data file .* is missing"):
        artifact_files(path)


def test_a_package_folder_is_summed(artifacts_dir, tmp_path):
    folder = one_model_folder(artifacts_dir, tmp_path / "a", "mtcnn_onet", ("coreml",))
    package = artifact_path(folder, "mtcnn_onet", "coreml")
    size = artifact_size(folder, "mtcnn_onet", "coreml")
    on_disk = [p for p in package.rglob("*") if p.is_file()]
    assert size.files == len(on_disk) > 1
    assert size.bytes == sum(p.stat().st_size for p in on_disk)


@pytest.mark.parametrize(
    ("candidate", "verdict"),
    [(1010, Verdict.SAME), (1011, Verdict.LARGER), (990, Verdict.SAME), (989, Verdict.SMALLER)],
)
def test_one_percent_either_way_is_the_same(candidate, verdict):
    assert size_verdict(1000, candidate) is verdict


def test_two_folders_compared(artifacts_dir, tmp_path):
    variants = ("optimized", "optimized_fp16")
    reference = one_model_folder(artifacts_dir, tmp_path / "ref", "mtcnn_onet", variants)
    candidate = one_model_folder(artifacts_dir, tmp_path / "cand", "mtcnn_onet", variants)
    same = {c.variant: c.verdict for c in compare_sizes(reference, candidate)}
    assert same == {"optimized": Verdict.SAME, "optimized_fp16": Verdict.SAME}
    # The FP16 slot now holds the FP32 graph: twice the bytes.
    fp32 = onnx.load(artifact_path(reference, "mtcnn_onet", "optimized"))
    replace_variant(candidate, "mtcnn_onet", "optimized_fp16", fp32)
    changes = {c.variant: c for c in compare_sizes(reference, candidate)}
    assert changes["optimized"].verdict is Verdict.SAME
    assert changes["optimized_fp16"].verdict is Verdict.LARGER
    assert changes["optimized_fp16"].ratio == pytest.approx(2.0, rel=0.02)
    assert "larger" in changes["optimized_fp16"].describe()


def test_an_artifact_on_one_side_only_is_added_or_removed(artifacts_dir, tmp_path):
    reference = one_model_folder(artifacts_dir, tmp_path / "ref", "mtcnn_onet", ("optimized",))
    candidate = one_model_folder(
        artifacts_dir, tmp_path / "cand", "mtcnn_onet", ("optimized", "optimized_fp16")
    )
    verdicts = {c.variant: c.verdict for c in compare_sizes(reference, candidate)}
    assert verdicts == {"optimized": Verdict.SAME, "optimized_fp16": Verdict.ADDED}
    verdicts = {c.variant: c.verdict for c in compare_sizes(candidate, reference)}
    assert verdicts["optimized_fp16"] is Verdict.REMOVED


def test_the_built_fp16_variants_are_half_their_fp32_sibling(artifacts_dir, tmp_path):
    folder = one_model_folder(
        artifacts_dir, tmp_path / "a", "mtcnn_onet", ("optimized", "optimized_fp16")
    )
    (check,) = fp16_checks(folder)
    assert check.verdict is Verdict.PASS, check.describe()
    assert check.ratio <= FP16_LIMIT


def test_an_fp16_variant_that_is_really_fp32_fails(artifacts_dir, tmp_path):
    """The upstream fault: optimized.onnx shipped as optimized_fp16.onnx, manifest rewritten to
    match the file, so no hash check stops it; only its size gives it away."""
    folder = one_model_folder(
        artifacts_dir, tmp_path / "a", "mtcnn_onet", ("optimized", "optimized_fp16")
    )
    shutil.copy2(
        artifact_path(folder, "mtcnn_onet", "optimized"),
        tmp_path / "fp32.onnx",
    )
    replace_variant(folder, "mtcnn_onet", "optimized_fp16", onnx.load(tmp_path / "fp32.onnx"))
    (check,) = fp16_checks(folder)
    assert check.verdict is Verdict.FAIL
    assert check.ratio == pytest.approx(1.0, abs=0.01)
    assert "fail" in check.describe() and "limit 0.55x" in check.describe()


def test_a_model_too_small_for_the_ratio_is_not_gated(artifacts_dir, tmp_path):
    folder = one_model_folder(
        artifacts_dir, tmp_path / "a", "mtcnn_pnet", ("optimized", "optimized_fp16")
    )
    (check,) = fp16_checks(folder)
    assert check.verdict is Verdict.NOT_GATED
    assert "graph, not the weights" in check.describe()
