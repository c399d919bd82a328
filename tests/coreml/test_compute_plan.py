"""Compute plans: the plain structure, its JSON, and the analysis (coverage, partitions, fallbacks).

The plans under fixtures/computeplans/ are HAND-WRITTEN from the documented MLComputePlan API
shape, not captured from a device (see the README there); their numbers are worked out by hand
and asserted exactly. Reading a real plan needs macOS 14.4+: that test is skipped elsewhere.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from faceperf.artifacts.layout import artifact_path
from faceperf.cli import main
from faceperf.coreml.analysis import (
    ane_coverage_by_cost,
    ane_coverage_by_count,
    partitions,
    summarize,
)
from faceperf.coreml.compute_plan import ComputePlan, Device, PlanOp, load_plan, write_plan
from faceperf.coreml.errors import ComputePlanError
from faceperf.coreml.plan_macos import (
    compute_plan_unavailable_reason,
    load_compute_plan,
    neural_engine_unavailable_reason,
)
from faceperf.coreml.render import plan_text
from faceperf.errors import BackendUnavailableError
from faceperf.models.registry import default_registry
from faceperf.paths import fixtures_dir

PLANS = fixtures_dir() / "computeplans"
NE, CPU, GPU = Device.NEURAL_ENGINE, Device.CPU, Device.GPU
PLAN_UNAVAILABLE = compute_plan_unavailable_reason()


def _plan(*devices: Device | None, costs: tuple[float | None, ...] | None = None) -> ComputePlan:
    """A plan whose i-th op runs on devices[i] (None: a const op)."""
    costs = costs or tuple(None for _ in devices)
    ops = tuple(
        PlanOp(
            path=f"main/{i}",
            op_type="const" if device is None else "ios17.add",
            outputs=(f"v{i}",),
            preferred=device,
            supported=() if device is None else (device,),
            cost=cost,
        )
        for i, (device, cost) in enumerate(zip(devices, costs, strict=True))
    )
    return ComputePlan(model="toy", compute_units="CPU_AND_NE", ops=ops)


def test_the_recorded_plans_say_they_are_hand_written():
    for path in sorted(PLANS.glob("*.json")):
        assert load_plan(path).provenance.startswith("HAND-WRITTEN"), path


def test_summary_of_the_hand_written_v1_plan():
    summary = summarize(load_plan(PLANS / "handwritten_mtl_v1.json"))
    assert (summary.ops, summary.compute_ops, summary.ane_ops) == (12, 9, 5)
    assert summary.coverage_by_count == pytest.approx(5 / 9)
    # ANE ops cost 0.30 + 0.10 + 0.05 + 0.20 + 0.08 of 1.00
    assert summary.coverage_by_cost == pytest.approx(0.73)
    assert summary.costed_ops == 9
    # ANE ×4 | CPU ×2 (topk, cast) | ANE (mul) | GPU ×2 (pow, real_div)
    assert (summary.partitions, summary.device_switches) == (4, 3)
    assert [op.identity for op in summary.fallbacks] == [
        "topk:topk_0_values",
        "cast:cast_1",
        "pow:x_8_cast_fp16",
        "real_div:gaze",
    ]
    assert [(c.op_type, c.device, c.count) for c in summary.fallback_counts] == [
        ("cast", CPU, 1),
        ("pow", GPU, 1),
        ("real_div", GPU, 1),
        ("topk", CPU, 1),
    ]
    assert summary.unplaced == ()


def test_summary_of_the_hand_written_v2_plan():
    summary = summarize(load_plan(PLANS / "handwritten_mtl_v2.json"))
    assert (summary.compute_ops, summary.ane_ops, summary.coverage_by_count) == (10, 5, 0.5)
    assert summary.coverage_by_cost == pytest.approx(0.70)
    # ANE ×4 | GPU (topk) | CPU ×3 (cast, mul, sqrt) | ANE (add) | GPU (real_div)
    assert summary.partitions == 5
    counts = {(c.op_type, c.device): c.count for c in summary.fallback_counts}
    assert counts == {
        ("topk", GPU): 1,
        ("cast", CPU): 1,
        ("mul", CPU): 1,
        ("sqrt", CPU): 1,
        ("real_div", GPU): 1,
    }


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ((), 0),
        ((None, None), 0),  # consts only: nothing is placed
        ((NE, NE, NE), 1),
        ((NE, None, NE), 1),  # a const between two ANE ops does not split them
        ((NE, CPU, NE, CPU), 4),
        ((CPU, CPU, GPU, GPU, NE), 3),
    ],
)
def test_partitions_count_runs_of_one_device(devices, expected):
    assert partitions(_plan(*devices)) == expected


def test_coverage_leaves_const_ops_out_and_is_none_without_compute_ops():
    assert ane_coverage_by_count(_plan(None, NE, None, CPU)) == 0.5
    assert ane_coverage_by_count(_plan(None, None)) is None
    assert summarize(_plan()).coverage_by_count is None


def test_cost_coverage_uses_only_the_ops_with_an_estimate():
    plan = _plan(NE, CPU, NE, costs=(0.6, 0.2, None))
    assert ane_coverage_by_cost(plan) == pytest.approx(0.75)
    assert summarize(plan).costed_ops == 2
    assert ane_coverage_by_cost(_plan(NE, CPU)) is None
    assert ane_coverage_by_cost(_plan(NE, CPU, costs=(0.0, 0.0))) is None


def test_an_op_without_device_that_is_not_a_const_is_reported_unplaced():
    plan = ComputePlan(
        "toy",
        "CPU_AND_NE",
        (
            PlanOp("main/0", "ios17.conv", ("a",), NE, (NE,)),
            PlanOp("main/1", "ios17.gather", ("b",)),
            PlanOp("main/2", "const", ("c",)),
        ),
    )
    summary = summarize(plan)
    assert [op.identity for op in summary.unplaced] == ["gather:b"]
    assert (summary.compute_ops, summary.coverage_by_count) == (1, 1.0)


def test_identity_ignores_the_opset_prefix():
    assert PlanOp("main/3", "ios17.conv", ("x_1",)).identity == "conv:x_1"
    assert PlanOp("main/3", "ios16.conv", ("x_1",)).identity == "conv:x_1"
    assert PlanOp("main/4", "ios17.identity", ()).identity == "identity@main/4"


def test_json_round_trip_is_exact(tmp_path: Path):
    plan = load_plan(PLANS / "handwritten_mtl_v1.json")
    assert ComputePlan.from_json(json.loads(json.dumps(plan.to_json())), "x") == plan
    target = tmp_path / "plans" / "mtl.json"
    write_plan(target, plan)
    assert load_plan(target) == plan
    assert [p.name for p in target.parent.iterdir()] == ["mtl.json"]  # no temporary left


def _broken(tmp_path: Path, edit) -> Path:
    document = json.loads((PLANS / "handwritten_mtl_v1.json").read_text())
    edit(document)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema="faceperf.computeplan/0"), "schema = 'faceperf.computeplan/0'"),
        (lambda d: d.pop("model"), "model = None: expected a non-empty string"),
        (lambda d: d.update(ops={}), "ops: expected a list of operations"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d["ops"].__setitem__(2, "conv"), "ops[2]: expected a JSON object, got str"),
        (lambda d: d["ops"][2].update(preferred="tpu"), "ops[2].preferred = 'tpu': expected one"),
        (lambda d: d["ops"][3]["supported"].append("npu"), "ops[3].supported[3] = 'npu'"),
        (lambda d: d["ops"][2].update(cost=-0.1), "ops[2].cost = -0.1: expected a share >= 0"),
        (lambda d: d["ops"][2].update(cost=True), "ops[2].cost = True: expected a number"),
        (lambda d: d["ops"][2].update(outputs="x"), "ops[2].outputs = 'x': expected a list"),
        (lambda d: d["ops"][2].pop("type"), "ops[2]: type = None: expected a non-empty string"),
    ],
)
def test_a_malformed_plan_is_one_line_naming_the_file_and_field(tmp_path, edit, message):
    path = _broken(tmp_path, edit)
    with pytest.raises(ComputePlanError) as raised:
        load_plan(path)
    text = str(raised.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_truncated_or_missing_plan_file_is_a_clear_error(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text((PLANS / "handwritten_mtl_v1.json").read_text()[:200])
    with pytest.raises(ComputePlanError, match=r"plan\.json: not valid JSON"):
        load_plan(path)
    with pytest.raises(ComputePlanError, match=r"missing\.json: compute plan file not found"):
        load_plan(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("system", "version", "expected"),
    [
        ("Linux", "", "Core ML compute plans need macOS 14.4+ (MLComputePlan); this is Linux"),
        ("Windows", "", "this is Windows"),
        ("Darwin", "14.3.1", "this is macOS 14.3.1"),
        ("Darwin", "13.6", "this is macOS 13.6"),
        ("Darwin", "", "this is macOS of unknown version"),
        ("Darwin", "14.4", None),
        ("Darwin", "15.0.1", None),
        ("Darwin", "26.1", None),
    ],
)
def test_compute_plans_need_macos_14_4(system, version, expected):
    reason = compute_plan_unavailable_reason(system, version)
    assert reason is None if expected is None else expected in reason


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the refusal off macOS")
def test_off_macos_reading_a_plan_is_refused_with_the_reason(artifacts_dir, tmp_path, capsys):
    assert neural_engine_unavailable_reason() == compute_plan_unavailable_reason()
    package = artifact_path(artifacts_dir, "mtcnn_pnet", "coreml")
    with pytest.raises(BackendUnavailableError, match=r"need macOS 14\.4\+.*this is"):
        load_compute_plan(package)
    assert main(["coreml", "plan", str(package)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("faceperf: error: Core ML compute plans need macOS") and "\n" not in err
    out = tmp_path / "snapshot.json"
    assert main(["coreml", "snapshot", "--dir", str(artifacts_dir), "--out", str(out)]) == 2
    assert "need macOS 14.4+" in capsys.readouterr().err and not out.exists()


@pytest.mark.coreml
@pytest.mark.skipif(PLAN_UNAVAILABLE is not None, reason=PLAN_UNAVAILABLE or "")
@pytest.mark.parametrize("model", default_registry().names())
def test_a_real_plan_of_each_default_artifact(artifacts_dir, model):
    plan = load_compute_plan(artifact_path(artifacts_dir, model, "coreml"))
    summary = summarize(plan)
    assert plan.model == model and summary.compute_ops > 0
    for op in plan.ops:
        if op.computes:
            assert op.preferred in op.supported, op
        if op.cost is not None:
            assert 0 <= op.cost <= 1, op
    costs = [op.cost for op in plan.ops if op.cost is not None]
    assert sum(costs) <= 1 + 1e-6  # each weight is a share of the whole model's work
    assert ComputePlan.from_json(json.loads(json.dumps(plan.to_json())), "x") == plan


def test_the_plan_table_names_coverage_partitions_and_each_fallback():
    plan = load_plan(PLANS / "handwritten_mtl_v1.json")
    lines = plan_text(plan, summarize(plan)).splitlines()
    assert lines[1:4] == [
        "  ops: 12 (9 compute, 3 const)",
        "  Neural Engine: 5 of 9 compute ops (55.6 %), 73.0 % of the estimated cost (9 ops costed)",
        "  partitions: 4 (3 device switches)",
    ]
    assert "    topk      cpu     1" in lines
    assert "    main/10  ios16.pow       x_8_cast_fp16  gpu     cpu,gpu    10.00 %" in lines
    everything_on_ane = _plan(NE, None, NE)
    assert plan_text(everything_on_ane, summarize(everything_on_ane)).endswith(
        "every compute op prefers the Neural Engine"
    )
