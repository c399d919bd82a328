"""A failing budget's account of where one artifact's time goes: operators, heaviest first."""

from __future__ import annotations

import pytest

from faceperf.bench.explain.slowest import operator_shares, slowest_summary


def test_many_small_nodes_of_one_operator_read_as_one_heavy_line(fab):
    nodes = [fab.node(f"split{i}", "Conv", [0.5, 0.5, 0.5]) for i in range(40)]
    nodes += [fab.node("head", "Gemm", [2.0, 2.0, 2.0]), fab.node("act", "Relu", [1.0] * 3)]
    profile = fab.profile(nodes, label="mtl/optimized")
    shares = operator_shares(profile)
    assert [(s.op_type, s.nodes) for s in shares] == [("Conv", 40), ("Gemm", 1), ("Relu", 1)]
    assert shares[0].total_ms == pytest.approx(20.0)
    assert shares[0].share == pytest.approx(20.0 / 23.0)
    text = slowest_summary(profile, canary_ms=8.0, top=2)
    assert text.startswith(
        "mtl/optimized, profiled (3 calls): Conv x40: 20.00 ms (2.50 canary calls, 87%)"
    )
    assert "Gemm x1: 2.00 ms (0.25 canary calls, 9%)" in text and "Relu" not in text.split(";")[1]
    assert text.endswith("slowest node Gemm head 1x8x4x4 2.00 ms")


def test_without_a_calibration_the_times_stand_alone(fab):
    profile = fab.profile([fab.node("c", "Conv", [1.0])])
    assert "canary" not in slowest_summary(profile, canary_ms=None)
