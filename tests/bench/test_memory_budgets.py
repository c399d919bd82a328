"""budgets.toml's memory: the merge gate's memory threshold ([ab.memory]) and the memory
budgets ([[memory_budget]]): parsing, every key checked, which entry applies, and judging."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from faceperf.bench.budgets import load_budgets
from faceperf.bench.errors import BudgetsError
from faceperf.bench.memory.compare import MIB, MemoryThreshold
from faceperf.bench.memory.peak import MemoryPeaks

EXAMPLE = """
[ab.memory]
threshold = 0.04
min_mib = 3
[ab.memory.thresholds]
"pipeline" = 0.1
"star-*" = 0.05

[[memory_budget]]
profile = "apple-*"
subject = "face_mirror"
max_peak_mib = 2048
reason = "checklist: < 2 GB per process"

[[memory_budget]]
profile = "*/ort-cpu"
subject = "star"
max_added_mib = 200
reason = "measured 155 MiB"

[[memory_budget]]
profile = "*/ort-cpu"
subject = "star"
variant = "optimized_fp16"
max_added_mib = 210
reason = "measured 159 MiB"
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "budgets.toml"
    path.write_text(textwrap.dedent(text))
    return load_budgets(path)


def test_the_memory_threshold_has_a_default_and_per_benchmark_fractions(tmp_path):
    budgets = _load(tmp_path, EXAMPLE)
    assert budgets.ab_memory_threshold_for("mtl-optimized") == MemoryThreshold(0.04, 3.0)
    assert budgets.ab_memory_threshold_for("pipeline") == MemoryThreshold(0.1, 3.0)
    assert budgets.ab_memory_threshold_for("star-optimized_fp16") == MemoryThreshold(0.05, 3.0)
    assert _load(tmp_path, "").ab_memory_threshold_for("pipeline") == MemoryThreshold()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[ab.memory]\nthreshold = 1.5\n", "[ab.memory] threshold = 1.5: expected a fraction"),
        ("[ab.memory]\nmin_mib = -2\n", "[ab.memory] min_mib = -2: expected 0 or more MiB"),
        ("[ab.memory]\nmargin = 2\n", "[ab.memory]: unknown key 'margin'"),
        ("[ab.memory.thresholds]\npipeline = 0\n", "[ab.memory.thresholds] 'pipeline' = 0"),
        (
            '[[memory_budget]]\nprofile = "*"\nsubject = "star"\nreason = "r"\n',
            "give exactly one of max_peak_mib, max_added_mib (got 0)",
        ),
        (
            '[[memory_budget]]\nprofile = "*"\nsubject = "star"\nmax_peak_mib = 1\n'
            "max_added_mib = 1\nreason = 'r'\n",
            "(got 2)",
        ),
        (
            '[[memory_budget]]\nprofile = "*"\nsubject = "star"\nmax_peak_mib = 0\nreason = "r"\n',
            "max_peak_mib = 0: expected a positive number of MiB",
        ),
        (
            '[[memory_budget]]\nprofile = "*"\nsubject = "star"\nmax_peak_mib = 10\n',
            "missing 'reason'",
        ),
        (
            '[[memory_budget]]\nprofile = "*"\nsubject = "star"\nmax_mib = 10\nreason = "r"\n',
            "unknown key 'max_mib'",
        ),
    ],
)
def test_a_bad_memory_entry_is_one_line_naming_the_file_and_entry(tmp_path, text, needle):
    with pytest.raises(BudgetsError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert needle in message and str(tmp_path / "budgets.toml") in message
    assert "\n" not in message


def test_the_most_specific_entry_applies_variant_patterns_included(tmp_path):
    budgets = _load(tmp_path, EXAMPLE)
    profile = "linux-x86_64-avx512-2core/ort-cpu"
    assert budgets.memory_budget_for(profile, "star", "optimized").max_added_mib == 200
    assert budgets.memory_budget_for(profile, "star", "optimized_fp16").max_added_mib == 210
    assert budgets.memory_budget_for(profile, "mtl", "optimized") is None
    apple = budgets.memory_budget_for("apple-m2/coreml", "face_mirror", "coreml")
    assert apple.describe() == "peak ≤ 2048 MiB"


def _peaks(floor_mib: int, load_mib: int, steady_mib: int) -> MemoryPeaks:
    return MemoryPeaks(
        "face_mirror", "optimized", "ort-cpu", 1, 4, "fake", floor_mib * MIB,
        (floor_mib + load_mib) * MIB, (floor_mib + load_mib) * MIB,
        (floor_mib + steady_mib) * MIB, (floor_mib + steady_mib) * MIB, 0.5, 4.0,
    )  # fmt: skip


def test_a_peak_budget_counts_the_floor_and_an_added_budget_the_larger_phase(tmp_path):
    budgets = _load(tmp_path, EXAMPLE)
    process = budgets.memory_budget_for("apple-m2/coreml", "face_mirror", "coreml")
    assert process.allows(_peaks(250, 190, 1798))  # 2048 MiB exactly
    assert not process.allows(_peaks(251, 190, 1798))
    star = budgets.memory_budget_for("x/ort-cpu", "star", "optimized")
    assert star.measured_mib(_peaks(250, 201, 150)) == 201  # load decides here
    assert not star.allows(_peaks(250, 201, 150))
    assert star.allows(_peaks(900, 120, 200))
    assert star.describe() == "≤ 200 MiB above the floor"


def test_the_committed_budgets_file_parses_with_memory_entries():
    budgets = load_budgets(Path(__file__).parents[2] / "baselines" / "budgets.toml")
    assert budgets.memory_budgets, "baselines/budgets.toml has no [[memory_budget]]"
    assert all(b.reason.strip() for b in budgets.memory_budgets)
