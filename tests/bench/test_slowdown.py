"""The numerically neutral slowdown used to measure the gate's power."""

from __future__ import annotations

import numpy as np
import onnx

from faceperf.artifacts.conformance import check_artifact
from faceperf.artifacts.manifest import read_manifest
from faceperf.bench.slowdown import add_identity_convs, slowed_copy, widest_feature_map
from faceperf.fixtures.samples import sample_batch
from faceperf.models.registry import default_registry
from faceperf.runtime.factory import open_runner


def test_identity_convolutions_cost_work_but_change_no_output(artifacts_dir, tmp_path):
    target = slowed_copy(artifacts_dir, tmp_path / "slow", "mtcnn_onet", "optimized", count=3)
    graph = onnx.load(target / "mtcnn_onet" / "optimized.onnx")
    original = onnx.load(artifacts_dir / "mtcnn_onet" / "optimized.onnx")
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    assert len(convs) == len([n for n in original.graph.node if n.op_type == "Conv"]) + 3
    feeds = {"image": np.array(sample_batch("mtcnn_onet")[:4])}
    slow = open_runner(target, "mtcnn_onet", "optimized").run(feeds)
    fast = open_runner(artifacts_dir, "mtcnn_onet", "optimized").run(feeds)
    for name, value in fast.items():
        np.testing.assert_array_equal(slow[name], value)
    # The copy is a valid candidate: its manifest agrees with the edited file.
    manifest = read_manifest(target)
    spec = default_registry()["mtcnn_onet"]
    assert check_artifact(target, manifest, spec, "optimized") == []


def test_the_convolutions_go_where_they_cost_most(artifacts_dir):
    name, channels = widest_feature_map(onnx.load(artifacts_dir / "star" / "optimized.onnx"))
    assert channels >= 256  # a 64x64 map of the hourglass (its coord-conv input has 261)
    model = add_identity_convs(onnx.load(artifacts_dir / "star" / "optimized.onnx"), 2)
    assert sum(1 for n in model.graph.node if name in n.input) == 1  # only the first added conv
