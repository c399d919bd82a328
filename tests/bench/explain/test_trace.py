"""ONNX Runtime's profiler trace, fabricated: calls told apart, warm-up left out, shapes read."""

from __future__ import annotations

import json

import pytest

from faceperf.bench.explain.record import TensorShape
from faceperf.bench.explain.trace import TraceError, parse_trace, read_trace


def _run(ts: int, dur: int) -> dict:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur, "ph": "X", "args": {}}


def _kernel(name: str, op: str, ts: int, dur: int, shape=(1, 8, 4, 4)) -> dict:
    return {
        "cat": "Node",
        "name": f"{name}_kernel_time",
        "ts": ts,
        "dur": dur,
        "ph": "X",
        "args": {
            "op_name": op,
            "provider": "CPUExecutionProvider",
            "input_type_shape": [{"float": list(shape)}, {"float": [8, 8, 1, 1]}],
            "output_type_shape": [{"float": list(shape)}],
        },
    }


def _trace() -> list[dict]:
    """One warm-up call and three profiled ones (at ts 1000, 2000, 3000), as ORT writes them:
    session events first, kernels in between, a Loop body node twice in a call, and an If
    branch that runs in one call only."""
    events = [
        {"cat": "Session", "name": "model_loading_uri", "ts": 0, "dur": 50, "args": {}},
        {"cat": "Session", "name": "session_initialization", "ts": 60, "dur": 50, "args": {}},
    ]
    for call, start in enumerate((0 + 500, 1000, 2000, 3000)):
        events.append(_run(start, 400))
        events.append(_kernel("conv", "Conv", start + 10, 100 + call))
        events.append(
            {"cat": "Node", "name": "conv_fence_before", "ts": start + 9, "dur": 0, "args": {}}
        )
        events.append(_kernel("body", "Add", start + 120, 5))
        events.append(_kernel("body", "Add", start + 130, 7))
        if call == 2:
            events.append(_kernel("branch", "Relu", start + 140, 9))
        events.append(_kernel("head", "Gemm", start + 200, 20, shape=(1, 10)))
    events.append(_kernel("stray", "Relu", 9000, 3))  # outside every call: not counted
    return events


def test_kernels_are_split_by_call_and_the_warmup_is_left_out():
    nodes = parse_trace(_trace(), warmup=1)
    by_name = {n.name: n for n in nodes}
    assert [n.name for n in nodes] == ["conv", "body", "head", "branch"]
    assert [n.position for n in nodes] == [0, 1, 2, 3]
    assert by_name["conv"].durations_us == (101.0, 102.0, 103.0)  # not the warm-up's 100
    assert by_name["body"].durations_us == (12.0, 12.0, 12.0)  # both runs of a call summed
    assert by_name["branch"].durations_us == (0.0, 9.0, 0.0)  # absent from a call: nothing
    assert "stray" not in by_name


def test_operators_providers_and_shapes_come_from_the_args():
    conv = parse_trace(_trace(), warmup=1)[0]
    assert conv.op_type == "Conv"
    assert conv.provider == "CPUExecutionProvider"
    assert conv.inputs == (TensorShape("float", (1, 8, 4, 4)), TensorShape("float", (8, 8, 1, 1)))
    assert conv.outputs == (TensorShape("float", (1, 8, 4, 4)),)
    assert conv.shape_text() == "1x8x4x4"
    assert conv.median_ms == pytest.approx(0.102)


def test_domains_come_from_the_graph_that_ran():
    domains = {"conv": "com.microsoft.nchwc"}
    nodes = parse_trace(_trace(), warmup=1, domain_of=lambda name, op: domains.get(name, ""))
    assert [n.domain for n in nodes] == ["com.microsoft.nchwc", "", "", ""]


def test_read_trace_takes_a_list_or_a_chrome_document(tmp_path):
    bare, wrapped = tmp_path / "bare.json", tmp_path / "wrapped.json"
    bare.write_text(json.dumps(_trace()))
    wrapped.write_text(json.dumps({"traceEvents": _trace()}))
    assert parse_trace(read_trace(bare), 1) == parse_trace(read_trace(wrapped), 1)


@pytest.mark.parametrize("text", ["not json", '{"no": "events"}', "42"])
def test_an_unreadable_trace_is_a_trace_error_naming_the_file(tmp_path, text):
    path = tmp_path / "trace.json"
    path.write_text(text)
    with pytest.raises(TraceError, match=r"trace\.json"):
        read_trace(path)


def test_too_few_calls_for_the_warmup_is_an_error():
    with pytest.raises(TraceError, match="holds 4 call"):
        parse_trace(_trace(), warmup=4)


def test_a_kernel_without_a_duration_is_an_error():
    events = _trace()
    del events[3]["dur"]
    with pytest.raises(TraceError, match="dur None"):
        parse_trace(events, warmup=0)
