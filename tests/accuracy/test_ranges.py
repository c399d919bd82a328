"""Output ranges: every rule judges an output the cases really have, the stored references and
the unchanged artifacts keep every range, and a dropped final activation, built for real by
editing the exported graph, fails its range (through the decision the check command, the
pytest suite and the fault catalogue share) naming output, case, worst value and range."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from accuracy_runs import failing_check_line, suite_fails
from onnx import TensorProto, helper

from faceperf.accuracy.cases import SUBJECTS, Candidate
from faceperf.accuracy.compare import RANGES, Measurement, worst_by_metric
from faceperf.accuracy.faults import FAULTS, build_candidate, drop_final, evaluate_fault, metric
from faceperf.accuracy.ranges import RULES, judge_ranges
from faceperf.accuracy.references import read_reference
from faceperf.accuracy.session import judge_subject
from faceperf.accuracy.tolerances import (
    FINITE,
    VARIANTS,
    Bounds,
    TolerancesError,
    default_tolerances_path,
    load_tolerances,
)
from faceperf.verdicts import Verdict

TOLERANCES = load_tolerances()
HONEST_VARIANTS = ("optimized", "optimized_fp16")
# fault -> (the range it must fail, its subject)
RANGE_FAULTS = {
    "softmax_dropped": ("range[scores]", "retinaface"),
    "au_relu_dropped": ("range[au]", "mtl"),
}


def _ranges(measurements: tuple[Measurement, ...] | list[Measurement]) -> list[Measurement]:
    return [m for m in measurements if m.check == RANGES]


# --- the rules and their bounds ---------------------------------------------------------------


def test_every_subject_has_rules_and_every_bound_is_in_the_committed_file():
    assert set(RULES) == set(SUBJECTS)
    for rules in RULES.values():
        assert len({rule.label for rule in rules}) == len(rules)
        for rule in rules:
            for variant in VARIANTS:  # a key the file lacks raises, naming it
                bounds = rule.bounds(TOLERANCES, variant)
                assert bounds.finite_only == (rule.key is None)
    # The ranges the construction gives (tolerances.toml says why each is what it is).
    au = TOLERANCES.bounds("au", "coreml")
    assert (au.low, au.high) == (0.0, 1.01)
    assert TOLERANCES.bounds("gaze_deg", "optimized_fp16").describe() == "in [-90, 90] deg"
    assert TOLERANCES.bounds("score", "baseline").describe() == "in [0, 1.000001]"


def test_nan_and_infinities_never_pass_a_range_and_are_its_worst_values():
    au = Bounds("au", 0.0, 1.0)
    assert au.allows(0.0) and au.allows(1.0) and not au.allows(-1e-9)
    for bad in (math.nan, math.inf, -math.inf):
        assert not au.allows(bad) and not FINITE.allows(bad)
    assert FINITE.allows(1e30) and FINITE.describe() == "finite"
    values = np.array([0.5, 0.9, -0.2, 1.1, np.nan])
    # beyond a bound: the distance past it; inside: minus the distance to the nearer end
    np.testing.assert_allclose(au.severities(values), [-0.5, -0.1, 0.2, 0.1, np.inf])
    np.testing.assert_allclose(FINITE.severities(np.array([-3.0, 2.0])), [3.0, 2.0])


def test_a_range_failure_names_output_case_worst_value_and_range():
    # Two hand-made faces: one AU below 0 on the first, a NaN gaze on the second.
    face = {
        "au": np.full(8, 0.3),
        "emotion_probs": np.full(8, 0.125),
        "tensor/emotion": np.zeros(8),
        "gaze": np.array([0.1, -0.2]),
    }
    outputs = {
        "a#0": {**face, "au": np.array([0.3, -0.05, 0.4, 0.3, 0.3, 0.3, 0.3, 0.3])},
        "b#0": {**face, "gaze": np.array([np.nan, 0.0])},
    }
    found = judge_ranges("mtl", "optimized", outputs, TOLERANCES)
    failures = [m.describe() for m in found if not m.passed]
    assert failures == [
        "mtl optimized [a#0] range[au] = -0.05 (limit in [0, 1.01]): FAILS",
        "mtl optimized [b#0] range[gaze] = nan deg (limit in [-90, 90] deg): FAILS",
    ]
    worst = {m.metric: m for m in worst_by_metric(found)}
    assert worst["range[au]"].case == "a#0" and worst["range[gaze]"].case == "b#0"
    # gaze is judged in degrees, the model's radians converted; its worst is the nearest an end
    (gaze,) = [m for m in found if m.metric == "range[gaze]" and m.case == "a#0"]
    assert gaze.passed and gaze.value == pytest.approx(-np.degrees(0.2))


def test_a_case_without_detections_has_nothing_to_judge():
    empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "landmarks": np.zeros((0, 5, 2))}
    assert judge_ranges("mtcnn", "optimized", {"blank": empty}, TOLERANCES) == []


def _tolerances_with(tmp_path, ranges: str):
    text = default_tolerances_path().read_text()
    path = tmp_path / "tolerances.toml"
    path.write_text(text[: text.index("[ranges]")] + ranges)
    return path


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ("[ranges]\nau = 1.0\n", r"\[ranges\] au is 1.0, expected \[low, high\]"),
        ("[ranges]\nau = [1.0, 0.0]\n", r"\[ranges\] au is \[1.0, 0.0\], expected"),
        ("[ranges]\nau = [0.0, 'one']\n", r"\[ranges\] au is \[0.0, 'one'\], expected"),
        ("[ranges]\nau = [0.0, nan]\n", r"\[ranges\] au is \[0.0, nan\], expected"),
        ("[ranges]\nau = { optimized = [0, 1] }\n", r"\[ranges\] au has no limit for baseline"),
        ("[ranges]\nAU = [0.0, 1.0]\n", r"unknown key \[ranges\] AU"),
        ("", r"missing limit\(s\) \[ranges\] score, \[ranges\] star_landmarks"),
    ],
)
def test_malformed_ranges_are_refused_naming_file_and_key(tmp_path, ranges, message):
    path = _tolerances_with(tmp_path, ranges)
    with pytest.raises(TolerancesError, match=message) as error:
        load_tolerances(path)
    assert str(path) in str(error.value)


def test_a_range_may_differ_per_variant(tmp_path):
    committed = default_tolerances_path().read_text()
    ranges = committed[committed.index("[ranges]") :].replace(
        "au = [0.0, 1.01]",
        "au = { baseline = [0, 1], optimized = [0, 1], optimized_fp16 = [0, 1], "
        "coreml = [0, 1.1] }",
    )
    tolerances = load_tolerances(_tolerances_with(tmp_path, ranges))
    assert tolerances.bounds("au", "coreml").high == 1.1
    assert tolerances.bounds("au", "optimized").high == 1.0


# --- honest outputs keep every range ----------------------------------------------------------


@pytest.mark.parametrize("subject", SUBJECTS)
def test_the_stored_references_keep_every_range(subject):
    reference = read_reference(subject)
    found = judge_ranges(subject, "baseline", reference.outputs, TOLERANCES)
    assert [m.describe() for m in found if not m.passed] == []
    # every rule judges an output the cases really have: a misspelt output would judge nothing
    assert {m.metric for m in found} == {rule.metric for rule in RULES[subject]}


@pytest.mark.slow
@pytest.mark.parametrize("variant", HONEST_VARIANTS)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_the_unchanged_artifacts_keep_every_range(artifacts_dir, subject, variant):
    result = judge_subject(
        subject, Candidate(artifacts_dir, variant), read_reference(subject), TOLERANCES
    )
    assert result.refused is None, result.refused
    ranges = _ranges(result.measurements)
    assert {m.metric for m in ranges} == {rule.metric for rule in RULES[subject]}
    assert [m.describe() for m in ranges if not m.passed] == []


# --- a dropped final activation fails its range -----------------------------------------------


def _graph(*op_types: str) -> onnx.ModelProto:
    """x -> op_types[0] -> ... -> y, one float input and output."""
    names = ["x", *(f"t{i}" for i in range(len(op_types) - 1)), "y"]
    nodes = [
        helper.make_node(op, [names[i]], [names[i + 1]], name=f"n{i}")
        for i, op in enumerate(op_types)
    ]
    value = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("x", "y")]
    return helper.make_model(helper.make_graph(nodes, "g", value[:1], value[1:]))


def test_dropping_a_final_activation_edits_the_one_nearest_the_output():
    edited = drop_final("Relu", "y")(_graph("Relu", "Sigmoid", "Relu", "Neg"), "any")
    assert [n.op_type for n in edited.graph.node] == ["Relu", "Sigmoid", "Identity", "Neg"]
    assert list(edited.graph.node[2].input) == ["t1"]
    with pytest.raises(ValueError, match="no Softmax node feeds output 'y'"):
        drop_final("Softmax", "y")(_graph("Relu"), "any")


@pytest.mark.parametrize("name", RANGE_FAULTS)
def test_a_dropped_final_activation_fails_its_range(name, artifacts_dir, tmp_path):
    expected_metric, subject = RANGE_FAULTS[name]
    fault = FAULTS[name]
    result = evaluate_fault(
        fault, subject, artifacts_dir, tmp_path, read_reference(subject), TOLERANCES
    )
    assert result.verdict is Verdict.PASS, result.describe()
    (worst,) = [m for m in worst_by_metric(list(result.failures)) if m.metric == expected_metric]
    bounds = worst.limit
    assert isinstance(bounds, Bounds) and not bounds.low <= worst.value <= bounds.high
    assert worst.describe().startswith(f"{subject} optimized [{worst.case}] {expected_metric} = ")
    # The network's other outputs keep their ranges: the range names what was dropped.
    dropped = {m.metric for m in _ranges(result.failures)}
    assert dropped == {str(c.name) for c in fault.expected(subject)}
    # The checks against the references see it too (docs/accuracy.md, "Output ranges").
    assert metric("snr_db").fired(result)


def test_the_check_command_and_the_pytest_suite_report_a_range_failure(
    artifacts_dir, tmp_path, capsys
):
    candidate = build_candidate(FAULTS["au_relu_dropped"], "mtl", artifacts_dir, tmp_path / "c")
    line = failing_check_line(candidate.directory, "mtl", "optimized", "range[au]", capsys)
    assert line.startswith("mtl optimized [") and line.endswith("(limit in [0, 1.01]): FAILS")
    assert line in suite_fails(candidate.directory, "mtl-optimized-ranges")
