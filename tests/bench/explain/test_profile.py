"""Profiling: how many calls (on a fake clock), and real profiles of small graphs."""

from __future__ import annotations

import tempfile

import numpy as np
import onnx
import pytest
from fake_time import FakeTime
from onnx import numpy_helper

from faceperf.bench.explain.profile import (
    Calls,
    ProfileTarget,
    profile_interleaved,
    profile_onnx,
    run_rounds,
)
from faceperf.errors import ArtifactError, InputMismatchError

LAYERS = [("t1", "Tanh"), ("s1", "Softplus"), ("a1", "Abs"), ("t2", "Tanh")]


def test_calls_need_both_the_minimum_and_the_time_and_stop_at_the_maximum():
    calls = Calls(minimum=3, seconds=2.0, maximum=10)
    assert not calls.enough(2, 5.0)  # time enough, calls not
    assert not calls.enough(5, 1.0)  # calls enough, time not
    assert calls.enough(3, 2.0)
    assert calls.enough(10, 0.0)  # the maximum ends it however short
    assert Calls.exactly(4).enough(4, 0.0) and not Calls.exactly(4).enough(3, 99.0)


@pytest.mark.parametrize(
    "kwargs", [{"minimum": 0}, {"minimum": 5, "maximum": 4}, {"seconds": -1.0}, {"warmup": -1}]
)
def test_an_impossible_budget_is_refused(kwargs):
    with pytest.raises(ValueError):
        Calls(**kwargs)


def test_rounds_warm_up_then_alternate_the_order_until_the_time_is_spent():
    time = FakeTime()
    runs = [time.workload("ref", [0.25] * 100), time.workload("cand", [0.25] * 100)]
    made = run_rounds(runs, Calls(minimum=2, seconds=1.5, maximum=50, warmup=1), time.clock)
    # 0.5 s a round: the third round ends at 1.5 s.
    assert made == 3
    assert time.calls == ["ref", "cand", "ref", "cand", "cand", "ref", "ref", "cand"]


def test_a_slow_model_gets_the_minimum_and_a_fast_one_stops_at_the_maximum():
    slow, fast = FakeTime(), FakeTime()
    budget = Calls(minimum=5, seconds=1.0, maximum=40, warmup=0)
    assert run_rounds([slow.workload("m", [2.0] * 10)], budget, slow.clock) == 5
    assert run_rounds([fast.workload("m", [0.001] * 100)], budget, fast.clock) == 40


def test_a_real_profile_holds_every_node_once_per_call_in_order(fab, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = fab.chain(tmp_path / "chain.onnx", LAYERS)
    profile = profile_onnx(path, fab.feeds(), "chain/optimized", calls=Calls.exactly(4))
    assert [n.name for n in profile.nodes] == ["t1", "s1", "a1", "t2", "head"]
    assert [n.op_type for n in profile.nodes] == ["Tanh", "Softplus", "Abs", "Tanh", "ReduceMean"]
    assert [n.position for n in profile.nodes] == [0, 1, 2, 3, 4]
    assert profile.calls == 4 and all(len(n.durations_us) == 4 for n in profile.nodes)
    assert profile.nodes[0].outputs[0].dims == (1, 16, 32, 32)
    assert profile.total_ms == pytest.approx(sum(n.median_ms for n in profile.nodes))
    assert profile.call_totals_ms().shape == (4,)
    # The trace and the saved graph went with the session's temporary folder.
    assert list((tmp_path / "tmp").iterdir()) == []


def test_interleaved_profiles_keep_each_side_apart(fab, tmp_path):
    first = fab.chain(tmp_path / "a.onnx", LAYERS)
    second = fab.chain(tmp_path / "b.onnx", [*LAYERS, ("extra", "Abs")])
    targets = [ProfileTarget(p, fab.feeds(), p.stem) for p in (first, second)]
    a, b = profile_interleaved(targets, calls=Calls.exactly(3))
    assert (a.label, b.label) == ("a", "b")
    assert len(a.nodes) == 5 and len(b.nodes) == 6
    assert a.calls == b.calls == 3


def test_the_domain_comes_from_the_optimised_graph(tmp_path, fab):
    # A real ORT rewrite: a 1x1 convolution runs as a blocked-layout (NCHWc) Conv under a new
    # name, between Reorder nodes ORT inserted; the trace alone would not say so.
    path = fab.chain(tmp_path / "conv.onnx", LAYERS)
    model = onnx.load(path)
    weight = np.eye(16, dtype=np.float32).reshape(16, 16, 1, 1)
    model.graph.initializer.append(numpy_helper.from_array(weight, "w"))
    model.graph.node[1].input[:] = ["conv_out"]
    conv = onnx.helper.make_node("Conv", ["t0", "w"], ["conv_out"], name="conv")
    model.graph.node.insert(1, conv)
    onnx.save(model, path)
    profile = profile_onnx(path, fab.feeds(), "conv", calls=Calls.exactly(2))
    convs = [n for n in profile.nodes if n.op_type == "Conv"]
    assert len(convs) == 1
    assert convs[0].domain == "com.microsoft.nchwc"
    assert {n.domain for n in profile.nodes if n.op_type == "Tanh"} == {""}


def test_a_missing_or_broken_file_is_an_artifact_error(tmp_path, fab):
    with pytest.raises(ArtifactError, match="no such ONNX file"):
        profile_onnx(tmp_path / "none.onnx", fab.feeds(), "x")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="cannot load it"):
        profile_onnx(broken, fab.feeds(), "x")


def test_feeds_it_cannot_run_are_an_input_mismatch(tmp_path, fab):
    path = fab.chain(tmp_path / "chain.onnx", LAYERS)
    wrong = {"x": np.zeros((1, 3, 8, 8), np.float16)}
    with pytest.raises(InputMismatchError, match=r"chain\.onnx.*x float16\[1, 3, 8, 8\]"):
        profile_onnx(path, wrong, "x", calls=Calls.exactly(1))
