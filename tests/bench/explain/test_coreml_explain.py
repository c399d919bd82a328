"""The Core ML explanation: two compute plans compared op by op (bench/explain/coreml.py).

The plans are the HAND-WRITTEN ones of fixtures/computeplans/ (not captured from a device) and
plans derived from them here, each change made by hand so the expected lines are known. Reading
real plans needs macOS 14.4+: those tests are skipped elsewhere, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from ab_outcomes import outcome

from faceperf.artifacts.layout import artifact_path
from faceperf.bench.ab.pairings import AbRequest
from faceperf.bench.ab.render import markdown
from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.run import explain_slower
from faceperf.bench.explain.coreml import (
    ESTIMATES,
    NotExplained,
    PairedBy,
    explain_or_reason,
    explain_packages,
    explain_plans,
    per_call_ms,
)
from faceperf.bench.explain.diff import Change
from faceperf.coreml.compute_plan import ComputePlan, Device, PlanOp, load_plan
from faceperf.coreml.drift import MovedOp
from faceperf.coreml.plan_macos import compute_plan_unavailable_reason
from faceperf.errors import BackendUnavailableError
from faceperf.paths import fixtures_dir
from faceperf.verdicts import Verdict

PLANS = fixtures_dir() / "computeplans"
NE, CPU, GPU = Device.NEURAL_ENGINE, Device.CPU, Device.GPU
UNAVAILABLE = compute_plan_unavailable_reason()


@pytest.fixture
def v1() -> ComputePlan:
    return load_plan(PLANS / "handwritten_mtl_v1.json")


def _op(index: str, op_type: str, output: str, device: Device, cost: float) -> PlanOp:
    return PlanOp(f"main/{index}", op_type, (output,), device, (CPU, GPU, NE), cost)


def _edited(plan: ComputePlan, *, insert_after: str = "", new=(), **changes) -> ComputePlan:
    """``plan`` with ops changed by first output (``changes``: output -> replace() fields), and
    ``new`` ops inserted after the op whose first output is ``insert_after``."""
    ops = []
    for op in plan.ops:
        name = op.outputs[0] if op.outputs else ""
        ops.append(dataclasses.replace(op, **changes.get(name, {})))
        if name == insert_after:
            ops += new
    return dataclasses.replace(plan, ops=tuple(ops))


def _normalized(plan: ComputePlan) -> ComputePlan:
    """``plan`` with its costs divided by their sum: shares of the whole, as Core ML's are."""
    total = sum(op.cost for op in plan.ops if op.cost is not None)
    ops = tuple(
        op if op.cost is None else dataclasses.replace(op, cost=op.cost / total) for op in plan.ops
    )
    return dataclasses.replace(plan, ops=ops)


@pytest.fixture
def slowed(v1) -> ComputePlan:
    """v1 (10 ms: its costs sum to 1, so an op of cost 0.3 is 3 ms) with 2 conv of 0.3 ms each
    added after the first conv on the Neural Engine, silu's output renamed, and linear moved
    from the Neural Engine to the CPU, where it takes 2.3 ms instead of 2.0: 10.9 ms in all.
    Costs are written in tenths of the reference's ms, then made shares of the new whole."""
    convs = (
        _op("2a", "ios16.conv", "extra_conv_1", NE, 0.03),
        _op("2b", "ios16.conv", "extra_conv_2", NE, 0.03),
    )
    edited = _edited(
        v1,
        insert_after="x_1_cast_fp16",
        new=convs,
        x_3_cast_fp16={"outputs": ("x_3_renamed",)},
        emotion_logits={"preferred": CPU, "cost": 0.23},
    )
    return _normalized(edited)


def test_a_device_change_is_ranked_first_then_the_added_cost(v1, slowed):
    explanation = explain_plans(v1, slowed)
    first, second = explanation.ranked[:2]
    assert first.describe() == "linear emotion_logits moved from the Neural Engine to the CPU"
    assert first.moved and first.left_neural_engine and first.stands_out
    assert (first.reference_device, first.candidate_device) == (NE, CPU)
    assert second.describe() == "2 new conv on the Neural Engine after x_1_cast_fp16"
    assert second.change is Change.NEW and second.ops == ("extra_conv_1", "extra_conv_2")
    # No times given: in shares of each plan's work, where every other op's share shrank.
    assert second.delta == pytest.approx(0.06 / 1.09)
    assert explanation.ranked[2].delta < 0
    assert explanation.moved == (MovedOp("linear:emotion_logits", NE, CPU),)
    assert explanation.culprits()[0] is second


def test_a_renamed_output_pairs_by_operator_and_position(v1, slowed):
    explanation = explain_plans(v1, slowed)
    silu = next(line for line in explanation.ranked if line.op_type == "silu")
    assert silu.change is Change.CHANGED and silu.was == "x_3_cast_fp16"
    assert silu.describe() == "silu x_3_renamed (was x_3_cast_fp16) on the Neural Engine"
    assert explanation.paired == {str(PairedBy.IDENTITY): 8, str(PairedBy.POSITION): 1}
    assert explanation.count(Change.NEW) == 2 and explanation.count(Change.GONE) == 0


def test_the_headline_says_the_move_first_and_that_costs_are_estimates(v1, slowed):
    headline = explain_plans(v1, slowed).headline()
    assert headline == (
        "mtl/coreml (compute plan: Core ML's estimates, not measured times): 1 op moved from "
        "the Neural Engine to the CPU (linear); 2 new conv on the Neural Engine after "
        "x_1_cast_fp16: +5.5 points of the plan's work est."
    )


def test_measured_times_turn_shares_into_estimated_ms(v1, slowed):
    explanation = explain_plans(v1, slowed, measured_ms=(10.0, 10.9))
    conv = explanation.ranked[1]
    assert conv.reference_ms == 0.0 and conv.candidate_ms == pytest.approx(0.6)
    assert conv.share == pytest.approx(0.6 / 0.9)
    linear = explanation.ranked[0]
    assert (linear.reference_ms, linear.candidate_ms) == pytest.approx((2.0, 2.3))
    assert linear.share == pytest.approx(0.3 / 0.9)
    # Every other op does the same work: the shares turn back into the same ms.
    rest = explanation.ranked[2:]
    assert all(line.delta == pytest.approx(0.0, abs=1e-9) for line in rest)
    assert explanation.headline().startswith("mtl/coreml x1.09 measured (compute plan: ")
    assert explanation.headline().endswith(
        "2 new conv on the Neural Engine after x_1_cast_fp16: +0.600 ms est. of +0.900 ms measured"
    )


def test_the_fixture_reconversion_reads_op_by_op(v1):
    v2 = load_plan(PLANS / "handwritten_mtl_v2.json")
    explanation = explain_plans(v1, v2)
    texts = [line.describe() for line in explanation.ranked]
    # Off the Neural Engine first, then other moves, then by added cost; pow is gone.
    assert texts[:2] == [
        "mul x_7_cast_fp16 moved from the Neural Engine to the CPU",
        "topk topk_0_values moved from the CPU to the GPU",
    ]
    assert set(texts[2:4]) == {
        "1 new sqrt on the CPU after x_7_cast_fp16",
        "1 new add on the Neural Engine after x_7_cast_fp16",
    }
    assert texts[-1] == "1 gone pow on the GPU after x_7_cast_fp16"
    # conv changed opset (ios16 -> ios17), not identity: it pairs by identity.
    assert explanation.paired[str(PairedBy.IDENTITY)] == 8
    assert (
        "1 op moved from the Neural Engine to the CPU (mul); 1 op moved from the CPU to the "
        "GPU (topk)" in explanation.headline()
    )


def test_ops_of_another_operator_do_not_pair_by_position(v1):
    # The sqrt takes the place of pow: another operator, so pow is gone and sqrt new.
    swapped = _edited(
        v1, x_8_cast_fp16={"op_type": "ios16.sqrt", "outputs": ("x_8_sqrt",), "preferred": CPU}
    )
    changes = {(line.change, line.op_type) for line in explain_plans(v1, swapped).ranked}
    assert {(Change.GONE, "pow"), (Change.NEW, "sqrt")} <= changes


def test_a_move_onto_the_neural_engine_is_listed_but_not_blamed(v1):
    onto = _edited(v1, cast_1={"preferred": NE, "supported": (CPU, GPU, NE)})
    explanation = explain_plans(v1, onto)
    assert explanation.ranked[0].describe() == "cast cast_1 moved from the CPU to the Neural Engine"
    assert "no op left the Neural Engine or changed device" in explanation.headline()


def test_identical_plans_name_nothing(v1):
    explanation = explain_plans(v1, v1, measured_ms=(2.0, 2.0))
    assert explanation.headline() == (
        "mtl/coreml x1.00 measured (compute plan: Core ML's estimates, not measured times): no "
        "op left the Neural Engine or changed device, and no estimated cost grew beyond 0.5 % "
        "of the reference's"
    )
    assert not explanation.moved and not explanation.culprits()
    assert all(line.delta == 0 and line.share is None for line in explanation.ranked)


def test_the_table_and_notes_say_they_are_estimates(v1, slowed):
    lines = explain_plans(v1, slowed, measured_ms=(10.0, 10.9), top=2).lines()
    assert lines[2] == (
        "| # | operation | device | reference est. ms | candidate est. ms | added est. ms | share |"
    )
    assert lines[4] == (
        "| 1 | linear emotion_logits moved from the Neural Engine to the CPU | neural_engine → "
        "cpu | 2.000 | 2.300 | +0.300 | 33 % |"
    )
    assert lines[6].startswith("| | 8 more line(s) |")
    assert f"- {ESTIMATES}; Core ML may still run an op elsewhere when it runs the model." in lines
    assert any(line.startswith("- ops: 9 paired (8 by identity") for line in lines)
    document = json.loads(json.dumps(explain_plans(v1, slowed).to_json()))
    assert document["estimates"] == ESTIMATES and document["new"] == 2
    assert document["moved"] == [
        {"identity": "linear:emotion_logits", "before": "neural_engine", "after": "cpu"}
    ]
    assert document["lines"][1]["unit"] == "share of the plan's work"


def test_bad_arguments_are_refused(v1):
    with pytest.raises(ValueError, match="top 0"):
        explain_plans(v1, v1, top=0)
    with pytest.raises(ValueError, match="measured_ms"):
        explain_plans(v1, v1, measured_ms=(0.0, 1.0))
    assert per_call_ms((0.010, 0.012, 0.011), (0.020,)) == pytest.approx((11.0, 20.0))
    assert per_call_ms((), (0.02,)) is None


@pytest.mark.skipif(UNAVAILABLE is None, reason="checks the refusal where plans cannot be read")
def test_without_compute_plans_the_packages_are_refused_with_the_reason(tmp_path: Path):
    # Refused before any file is read: no folder here exists, and no plan is made up.
    with pytest.raises(BackendUnavailableError) as raised:
        explain_packages(tmp_path / "ref", tmp_path / "cand", "mtl")
    assert str(raised.value) == UNAVAILABLE
    assert explain_or_reason(tmp_path / "ref", tmp_path / "cand", "mtl") == NotExplained(
        "mtl/coreml", UNAVAILABLE
    )


@pytest.mark.skipif(UNAVAILABLE is None, reason="checks the note where plans cannot be read")
def test_the_merge_gate_says_why_a_slower_package_is_not_explained(artifacts_dir, tmp_path):
    # Only the manifests are read: the candidate's differs in the star package's hash.
    reference, candidate = tmp_path / "reference", tmp_path / "candidate"
    document = json.loads((artifacts_dir / "manifest.json").read_text())
    for folder in (reference, candidate):
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps(document))
        document["models"]["star"]["variants"]["coreml"]["sha256"] = "0" * 64
    result = AbResult(outcomes=(outcome("star-coreml", Verdict.SLOWER, 1.05, 1.08, 1.11),))
    explained = explain_slower(AbRequest(reference=reference, candidate=candidate), result)
    assert explained.explanations["star-coreml"] == (NotExplained("star/coreml", UNAVAILABLE),)
    assert f"star/coreml: no Core ML explanation here: {UNAVAILABLE}" in markdown(explained)
    assert explained.to_json()["explanations"]["star-coreml"][0]["reason"] == UNAVAILABLE


@pytest.mark.coreml
@pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")
@pytest.mark.parametrize("model", ["mtl", "star"])
def test_real_plans_of_the_built_packages(artifacts_dir, model):
    if not artifact_path(artifacts_dir, model, "coreml").is_dir():
        pytest.skip(f"no {model}/coreml.mlpackage in {artifacts_dir}")
    # The same package on both sides: Core ML plans it alike, so nothing moves or is new.
    explanation = explain_packages(artifacts_dir, artifacts_dir, model, measured_ms=(5.0, 5.0))
    assert explanation.reference.provenance.startswith("MLComputePlan on macOS")
    assert explanation.paired[str(PairedBy.IDENTITY)] > 0
    assert not explanation.moved and explanation.count(Change.NEW) == 0
    assert "no op left the Neural Engine" in explanation.headline()
