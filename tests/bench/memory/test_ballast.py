"""The memory fault the gates' power is measured with: an extra tensor that changes nothing."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from faceperf.artifacts.layout import artifact_path
from faceperf.bench.memory.ballast import add_ballast
from faceperf.fixtures.samples import sample_batch


def _run(model: onnx.ModelProto, feed: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: feed})


def test_the_outputs_stay_bit_identical_and_the_tensor_is_the_asked_size(artifacts_dir):
    path = artifact_path(artifacts_dir, "mtcnn_onet", "optimized")
    feed = np.array(sample_batch("mtcnn_onet")[:2])
    ballasted = add_ballast(onnx.load(path), 30)
    for before, after in zip(_run(onnx.load(path), feed), _run(ballasted, feed), strict=True):
        np.testing.assert_array_equal(before, after)
    tile = next(node for node in ballasted.graph.node if node.op_type == "Tile")
    repeats = next(i for i in ballasted.graph.initializer if i.name == tile.input[1])
    copies = onnx.numpy_helper.to_array(repeats)[0]
    # One 3x48x48 float sample is 27,648 bytes; a batch of 2 tiled this often is ~60 MB.
    assert copies == round(30e6 / (3 * 48 * 48 * 4))


def test_a_size_that_is_not_positive_is_refused(artifacts_dir):
    model = onnx.load(artifact_path(artifacts_dir, "mtcnn_onet", "optimized"))
    with pytest.raises(ValueError, match="expected a positive size"):
        add_ballast(model, 0)
