"""The optimised graph a session ran: each timed node's operator domain."""

from __future__ import annotations

import onnx
import pytest
from onnx import helper

from faceperf.bench.explain.graph import RanGraph, read_ran_graph
from faceperf.bench.explain.trace import TraceError


def _saved(tmp_path, nodes) -> RanGraph:
    graph = helper.make_graph(nodes, "g", [], [])
    path = tmp_path / "ran.onnx"
    onnx.save(helper.make_model(graph), path)
    return read_ran_graph(path)


def test_a_named_node_has_its_own_domain(tmp_path):
    ran = _saved(
        tmp_path,
        [
            helper.make_node(
                "Conv", ["a", "w"], ["b"], name="c_nchwc", domain="com.microsoft.nchwc"
            ),
            helper.make_node("Conv", ["b", "w"], ["c"], name="plain"),
        ],
    )
    assert ran.domain_of("c_nchwc", "Conv") == "com.microsoft.nchwc"
    assert ran.domain_of("plain", "Conv") == ""


def test_an_unnamed_node_is_found_by_its_operator_when_that_is_unambiguous(tmp_path):
    # The trace calls an unnamed node "<op>_<index>", a name the saved graph does not hold.
    ran = _saved(
        tmp_path,
        [
            helper.make_node("Where", ["a", "b", "c"], ["d"]),
            helper.make_node("Relu", ["d"], ["e"]),
            helper.make_node("Relu", ["e"], ["f"], domain="custom"),
        ],
    )
    assert ran.domain_of("Where_3", "Where") == ""
    with pytest.raises(TraceError, match="several domains"):
        ran.domain_of("Relu_4", "Relu")
    with pytest.raises(TraceError, match="lacks"):
        ran.domain_of("Softmax_9", "Softmax")


def test_an_unreadable_optimised_graph_is_a_trace_error(tmp_path):
    garbage = tmp_path / "ran.onnx"
    garbage.write_bytes(b"\x00garbage")
    with pytest.raises(TraceError, match=r"ran\.onnx"):
        read_ran_graph(garbage)
