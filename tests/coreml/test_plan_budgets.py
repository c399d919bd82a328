"""[[computeplan]] entries of budgets.toml: Neural Engine coverage floors and partition ceilings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from faceperf.bench.budgets import load_budgets
from faceperf.bench.errors import BudgetsError
from faceperf.bench.gate.paths import budgets_path
from faceperf.coreml.plan_budgets import load_plan_budgets

ENTRY = """
[[computeplan]]
profile = "apple-*"
model = "star"
min_ane_coverage = 0.9965
max_partitions = 5
reason = "published: 99.7 % of 659 ops"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_committed_floors_start_from_the_published_figures():
    budgets = load_plan_budgets(budgets_path())
    star = budgets.for_model("apple-m1-pro/coreml", "star")
    assert (star.min_ane_coverage, star.max_partitions) == (0.9965, 5)
    assert "99.7 % of 659 ops" in star.reason
    mtl = budgets.for_model("apple-m2/ort-cpu", "mtl")
    assert (mtl.min_ane_coverage, mtl.max_partitions) == (0.7815, None)
    assert budgets.for_model("apple-silicon/coreml", "retinaface").min_ane_coverage == 0.8125
    assert budgets.for_model("apple-m1-pro/coreml", "mtcnn_pnet") is None
    assert budgets.for_model("linux-x86_64-avx512-2core/ort-cpu", "star") is None


def test_the_latency_budget_parser_accepts_computeplan_entries(tmp_path):
    path = _write(tmp_path, ENTRY)
    assert load_budgets(path).budgets == ()
    assert load_plan_budgets(path).budgets[0].model == "star"


def test_the_most_specific_pattern_wins_and_a_tie_is_an_error(tmp_path):
    path = _write(
        tmp_path,
        ENTRY
        + """
[[computeplan]]
profile = "apple-m1*"
model = "star"
min_ane_coverage = 0.99
reason = "the M1's older Neural Engine"

[[computeplan]]
profile = "*m1-pro/c*"
model = "star"
min_ane_coverage = 0.98
reason = "as many literal characters as apple-m1*: a tie where both match"
""",
    )
    budgets = load_plan_budgets(path)
    assert budgets.for_model("apple-m1/coreml", "star").min_ane_coverage == 0.99
    assert budgets.for_model("apple-m3/coreml", "star").min_ane_coverage == 0.9965
    with pytest.raises(BudgetsError, match="both match 'apple-m1-pro/coreml' equally specifically"):
        budgets.for_model("apple-m1-pro/coreml", "star")


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (("min_ane_coverage = 0.9965", "min_ane_coverage = 99.7"), "expected a fraction in (0, 1]"),
        (("min_ane_coverage = 0.9965", "min_ane_coverage = true"), "min_ane_coverage = True"),
        (("max_partitions = 5", "max_partitions = 0"), "max_partitions = 0: expected a whole"),
        (("max_partitions = 5", "max_partitions = 2.5"), "max_partitions = 2.5"),
        (('reason = "published: 99.7 % of 659 ops"', ""), "missing 'reason' (why this"),
        (('model = "star"', ""), "[[computeplan]] #1: missing 'model'"),
        (("max_partitions = 5", "max_partition = 5"), "unknown key 'max_partition'"),
        (
            ("min_ane_coverage = 0.9965\nmax_partitions = 5", ""),
            "give min_ane_coverage, max_partitions or both",
        ),
    ],
)
def test_an_invalid_entry_names_the_file_and_the_entry(tmp_path, replace, message):
    path = _write(tmp_path, ENTRY.replace(*replace))
    with pytest.raises(BudgetsError) as raised:
        load_plan_budgets(path)
    text = str(raised.value)
    assert text.startswith(f"{path}: [[computeplan]] #1") and message in text
    assert "\n" not in text


def test_a_second_entry_for_the_same_profile_and_model_is_an_error(tmp_path):
    path = _write(tmp_path, ENTRY + ENTRY)
    with pytest.raises(BudgetsError, match=r"#2 \('star'\): a second entry for profile 'apple-\*'"):
        load_plan_budgets(path)


def test_computeplan_must_be_an_array_of_tables(tmp_path):
    path = _write(tmp_path, "[computeplan]\nmodel = 'star'\n")
    with pytest.raises(BudgetsError, match="'computeplan' must be an array of tables"):
        load_plan_budgets(path)


def test_a_broken_rest_of_the_file_is_reported_by_the_budgets_parser(tmp_path):
    path = _write(tmp_path, ENTRY + "\n[defaults]\nregression_threshold = 2\n")
    with pytest.raises(BudgetsError, match="regression_threshold = 2"):
        load_plan_budgets(path)
