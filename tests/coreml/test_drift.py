"""Placement drift: snapshots of where each op runs, compared with the current plan.

The plans are the HAND-WRITTEN ones of fixtures/computeplans/ (not captured from a device); v2
is a made-up reconversion of v1 whose every change is listed in that folder's README.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from faceperf.coreml.compute_plan import Device, load_plan
from faceperf.coreml.drift import (
    MovedOp,
    compare_placement,
    computeplan_snapshot_path,
    load_snapshot,
    placement_of,
    update_snapshot,
)
from faceperf.coreml.errors import ComputePlanError, SnapshotMismatchError
from faceperf.paths import fixtures_dir

PLANS = fixtures_dir() / "computeplans"
NE, CPU, GPU = Device.NEURAL_ENGINE, Device.CPU, Device.GPU
RECORDED = {"macos": "hand-written", "coremltools": "9.0"}


@pytest.fixture
def v1():
    return load_plan(PLANS / "handwritten_mtl_v1.json")


@pytest.fixture
def v2():
    return load_plan(PLANS / "handwritten_mtl_v2.json")


@pytest.fixture
def snapshot_file(tmp_path: Path, v1) -> Path:
    path = tmp_path / "apple-m1-pro.computeplan.json"
    update_snapshot(path, "apple-m1-pro", [v1], RECORDED)
    return path


def test_the_snapshot_holds_each_compute_op_and_reads_back(snapshot_file, v1):
    snapshot = load_snapshot(snapshot_file)
    entry = snapshot.models["mtl"]
    assert entry.op_count == 9 and entry.compute_units == "ALL"
    assert entry.placement == placement_of(v1).placement
    assert entry.placement["mul:x_7_cast_fp16"] is NE
    assert "const:conv_0_weight_to_fp16" not in entry.placement  # consts have no device
    assert entry.ane_coverage == pytest.approx(5 / 9)
    assert snapshot.profile == "apple-m1-pro" and snapshot.recorded_with == RECORDED
    document = json.loads(snapshot_file.read_text())
    assert document["models"]["mtl"]["op_count"] == 9


def test_drift_of_the_reconversion_names_every_change(snapshot_file, v2):
    drift = compare_placement(load_snapshot(snapshot_file).models["mtl"], v2, str(snapshot_file))
    assert drift.left_neural_engine == (MovedOp("mul:x_7_cast_fp16", NE, CPU),)
    assert drift.moved == (
        MovedOp("topk:topk_0_values", CPU, GPU),
        MovedOp("mul:x_7_cast_fp16", NE, CPU),
    )
    assert drift.added == (("sqrt:x_9_cast_fp16", CPU), ("add:x_10_cast_fp16", NE))
    assert drift.added_off_neural_engine == (("sqrt:x_9_cast_fp16", CPU),)
    assert drift.removed == ("pow:x_8_cast_fp16",)
    assert drift.joined_neural_engine == ()
    assert (drift.coverage_before, drift.coverage_after) == (pytest.approx(5 / 9), 0.5)
    assert drift.regressed
    assert drift.describe().splitlines() == [
        "mtl: Neural Engine coverage 55.6 % -> 50.0 %",
        "  left the Neural Engine: mul:x_7_cast_fp16 (mul) now on cpu",
        "  new op off the Neural Engine: sqrt:x_9_cast_fp16 (sqrt) on cpu",
        "  moved: topk:topk_0_values (topk) cpu -> gpu",
        "  new op: add:x_10_cast_fp16 on neural_engine",
        "  removed op: pow:x_8_cast_fp16",
    ]


def test_an_op_that_only_changed_opset_is_the_same_op(snapshot_file, v2):
    drift = compare_placement(load_snapshot(snapshot_file).models["mtl"], v2)
    changed = {m.identity for m in drift.moved} | {k for k, _ in drift.added} | set(drift.removed)
    assert "conv:x_1_cast_fp16" not in changed  # ios16.conv -> ios17.conv


def test_the_same_plan_has_no_drift(snapshot_file, v1):
    drift = compare_placement(load_snapshot(snapshot_file).models["mtl"], v1)
    assert (drift.moved, drift.added, drift.removed, drift.regressed) == ((), (), (), False)


def test_an_op_joining_the_neural_engine_is_not_a_regression(tmp_path, v1):
    ops = tuple(
        replace(op, preferred=CPU) if op.identity == "mul:x_7_cast_fp16" else op for op in v1.ops
    )
    path = tmp_path / "snap.json"
    update_snapshot(path, "apple-m1-pro", [replace(v1, ops=ops)], RECORDED)
    drift = compare_placement(load_snapshot(path).models["mtl"], v1)
    assert drift.joined_neural_engine == (MovedOp("mul:x_7_cast_fp16", CPU, NE),)
    assert not drift.regressed


def test_a_new_op_off_the_neural_engine_is_a_regression(tmp_path, v1, v2):
    path = tmp_path / "snap.json"
    update_snapshot(path, "apple-m1-pro", [v2], RECORDED)
    drift = compare_placement(load_snapshot(path).models["mtl"], v1)
    assert drift.joined_neural_engine == (MovedOp("mul:x_7_cast_fp16", CPU, NE),)
    assert drift.left_neural_engine == ()
    assert drift.added_off_neural_engine == (("pow:x_8_cast_fp16", GPU),)  # back, on the GPU
    assert drift.regressed


def test_a_snapshot_of_another_model_version_is_refused_with_a_clear_message(snapshot_file):
    other = load_plan(PLANS / "handwritten_mtl_other_version.json")
    with pytest.raises(SnapshotMismatchError) as raised:
        compare_placement(load_snapshot(snapshot_file).models["mtl"], other, str(snapshot_file))
    message = str(raised.value)
    assert message.startswith(f"{snapshot_file}: the mtl snapshot (9 ops) and the current plan")
    assert "have only 0 ops in common" in message and "another model version" in message
    assert "faceperf coreml snapshot" in message and "\n" not in message


def test_plans_of_other_compute_units_are_not_compared(snapshot_file, v1):
    with pytest.raises(
        SnapshotMismatchError, match="planned for ALL, the current plan for CPU_AND"
    ):
        compare_placement(
            load_snapshot(snapshot_file).models["mtl"], replace(v1, compute_units="CPU_AND_NE")
        )


def test_updating_keeps_the_other_models_and_refuses_another_machine(snapshot_file, v1):
    update_snapshot(snapshot_file, "apple-m1-pro", [replace(v1, model="star")], RECORDED)
    assert sorted(load_snapshot(snapshot_file).models) == ["mtl", "star"]
    with pytest.raises(
        ComputePlanError, match="holds placements of 'apple-m1-pro', not 'apple-m3'"
    ):
        update_snapshot(snapshot_file, "apple-m3", [v1], RECORDED)


def test_a_failed_write_leaves_the_previous_snapshot_whole(snapshot_file, v2, monkeypatch):
    before = snapshot_file.read_bytes()

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        update_snapshot(snapshot_file, "apple-m1-pro", [v2], RECORDED)
    assert snapshot_file.read_bytes() == before
    assert [p.name for p in snapshot_file.parent.iterdir()] == [snapshot_file.name]


def test_snapshots_are_kept_per_machine_class():
    path = computeplan_snapshot_path("apple-m1-pro/coreml")
    assert (path.parent.name, path.name) == ("baselines", "apple-m1-pro.computeplan.json")
    assert computeplan_snapshot_path("apple-m1-pro/ort-coreml") == path


def _broken(tmp_path: Path, snapshot_file: Path, edit) -> Path:
    document = json.loads(snapshot_file.read_text())
    edit(document)
    path = tmp_path / "broken.computeplan.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d.update(schema="x"),
            "schema = 'x': expected 'faceperf.computeplan-snapshot/1'",
        ),
        (lambda d: d.update(profile=""), "profile = '': expected a machine class name"),
        (lambda d: d.update(models=[]), "models: expected an object keyed by model name"),
        (lambda d: d["models"]["mtl"].update(op_count=8), "models.mtl.op_count = 8: expected 9"),
        (
            lambda d: d["models"]["mtl"]["placement"].update({"conv:x_1_cast_fp16": "ane"}),
            "models.mtl.placement['conv:x_1_cast_fp16'] = 'ane': expected one of",
        ),
        (lambda d: d["models"]["mtl"].update(ops=[]), "models.mtl: unknown key 'ops'"),
        (lambda d: d["models"]["mtl"].pop("compute_units"), "models.mtl.compute_units = None"),
    ],
)
def test_a_malformed_snapshot_is_one_line_naming_the_field(tmp_path, snapshot_file, edit, message):
    path = _broken(tmp_path, snapshot_file, edit)
    with pytest.raises(ComputePlanError) as raised:
        load_snapshot(path)
    text = str(raised.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_truncated_or_missing_snapshot_is_a_clear_error(tmp_path, snapshot_file):
    path = tmp_path / "cut.json"
    path.write_bytes(snapshot_file.read_bytes()[:50])
    with pytest.raises(ComputePlanError, match=r"cut\.json: not valid JSON"):
        load_snapshot(path)
    with pytest.raises(ComputePlanError, match="compute-plan snapshot not found"):
        load_snapshot(tmp_path / "none.json")
