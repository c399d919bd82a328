"""budgets.toml: parsing, checking every key, and which budget applies to a profile."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceperf.bench.budgets import Budget, Budgets, load_budgets
from faceperf.bench.calibration import CalibratedTiming
from faceperf.bench.errors import BudgetsError

EXAMPLE = """
[defaults]
regression_threshold = 0.10

[thresholds]  # MTCNN R-Net runs in 0.1 ms: scheduler noise alone is 20 %
"test_steady_state_latency_ort_cpu[mtcnn_rnet-optimized]" = 0.25
"perf_tests/test_latency.py::test_cold_load_ort_cpu[star-baseline]" = 0.3

[[budget]]
profile = "apple-*/coreml"
benchmark = "star latency"
max_ms = 100.0
reason = "product budget: STAR < 100 ms on Apple Silicon"

[[budget]]
profile = "apple-m1/coreml"
benchmark = "star latency"
max_ms = 120
reason = "the M1 is allowed more (measured)"

[[budget]]
profile = "apple-*"
benchmark = "mtcnn 1080p"
min_fps = 30.0
reason = "product budget: MTCNN >= 30 FPS at 1080p"

[[budget]]
profile = "linux-x86_64-*/ort-cpu"
benchmark = "star latency"
max_ms = 130.0
reason = "measured: 111 ms on the 2-core AVX-512 runner, plus headroom"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def budgets(tmp_path: Path) -> Budgets:
    return load_budgets(_write(tmp_path, EXAMPLE))


def test_thresholds_by_full_or_short_name(budgets: Budgets) -> None:
    rnet = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[mtcnn_rnet-optimized]"
    assert budgets.threshold_for(rnet) == 0.25
    assert budgets.threshold_for("test_steady_state_latency_ort_cpu[mtcnn_rnet-optimized]") == 0.25
    assert (
        budgets.threshold_for("perf_tests/test_latency.py::test_cold_load_ort_cpu[star-baseline]")
        == 0.3
    )
    assert (
        budgets.threshold_for("other/test_latency.py::test_cold_load_ort_cpu[star-baseline]")
        == 0.10
    )
    assert budgets.threshold_for("perf_tests/test_latency.py::test_other") == 0.10


def test_budget_for_a_profile(budgets: Budgets) -> None:
    star = budgets.budget_for("apple-m1-pro/coreml", "star latency")
    assert star is not None
    assert (star.max_ms, star.min_fps, star.limit_ms) == (100.0, None, 100.0)
    assert star.reason == "product budget: STAR < 100 ms on Apple Silicon"
    assert star.describe() == "≤ 100 ms"
    assert _ms(star, 99.9) and _ms(star, 100.0) and not _ms(star, 100.1)


def test_a_frame_rate_budget_is_a_latency_limit(budgets: Budgets) -> None:
    mtcnn = budgets.budget_for("apple-m2/ort-coreml", "mtcnn 1080p")
    assert mtcnn is not None
    assert mtcnn.describe() == "≥ 30 FPS"
    assert mtcnn.limit_ms == pytest.approx(1000 / 30)
    assert _ms(mtcnn, 33.3) and not _ms(mtcnn, 34.0)


def _ms(budget: Budget, per_call_ms: float) -> bool:
    return budget.allows(CalibratedTiming((per_call_ms / 1e3,)))


def _timing(model_s: float, canary_s: float, calls: int = 1) -> CalibratedTiming:
    # Three rounds, each beside its canary; a model of 10 canary-FLOPs.
    return CalibratedTiming(
        (model_s,) * 3, (canary_s,) * 3, calls, work_flops=10_000, reference_flops=1_000
    )


def test_an_efficiency_floor_is_judged_against_the_canary_of_the_same_run() -> None:
    floor = Budget("*/ort-cpu", "star latency", "portable", min_efficiency=0.5)
    assert floor.portable and floor.limit_ms is None
    assert floor.describe() == "efficiency ≥ 0.5"
    # 10x the canary's FLOPs in 20x its time: half its rate, on a fast and on a slow machine.
    assert floor.allows(_timing(0.020, 0.001)) and floor.allows(_timing(0.200, 0.010))
    # The same machine, an artifact that wastes it: 25x the canary's time, 0.4 of its rate.
    assert not floor.allows(_timing(0.025, 0.001))


def test_a_calibration_ceiling_is_per_call() -> None:
    ceiling = Budget("*/ort-cpu", "mtcnn 1080p throughput", "portable", max_units=9.5)
    assert ceiling.describe() == "≤ 9.5 canary calls"
    assert ceiling.allows(_timing(0.036, 0.001, calls=4))  # 9 canary calls a frame
    assert not ceiling.allows(_timing(0.040, 0.001, calls=4))  # 10


def test_a_portable_budget_without_a_canary_is_an_error_not_a_pass() -> None:
    floor = Budget("*/ort-cpu", "star latency", "portable", min_efficiency=0.5)
    with pytest.raises(BudgetsError, match="needs the canary timed beside every round"):
        floor.allows(CalibratedTiming((0.1,)))


def test_no_budget_for_another_profile_or_benchmark(budgets: Budgets) -> None:
    assert budgets.budget_for("linux-aarch64/ort-cpu", "star latency") is None
    assert budgets.budget_for("apple-m1-pro/ort-coreml", "star latency") is None  # not coreml
    assert budgets.budget_for("apple-m1-pro/coreml", "mtl latency") is None
    assert budgets.budget_for("Apple-m1-pro/coreml", "star latency") is None  # case-sensitive


def test_the_most_specific_pattern_wins(budgets: Budgets) -> None:
    exact = budgets.budget_for("apple-m1/coreml", "star latency")
    assert exact is not None and exact.max_ms == 120.0  # exact name beats apple-*/coreml


def _budget(profile: str) -> Budget:
    return Budget(profile=profile, benchmark="b", max_ms=1.0, reason=profile)


@pytest.mark.parametrize(
    ("patterns", "profile", "winner"),
    [
        (
            ["*", "*/coreml", "apple-*/coreml", "apple-m1/coreml"],
            "apple-m1/coreml",
            "apple-m1/coreml",
        ),
        (["*", "*/coreml", "apple-*/coreml"], "apple-m1/coreml", "apple-*/coreml"),
        (["*", "*/coreml"], "apple-m1/coreml", "*/coreml"),
        (["*"], "apple-m1/coreml", "*"),
        # a class or a ? is a wildcard: the literal name still wins...
        (["apple-m[12]/coreml", "apple-m1/coreml"], "apple-m1/coreml", "apple-m1/coreml"),
        # ...and otherwise counts for nothing: 17 literal characters beat 12
        (["apple-m?-pro/*", "apple-*-pro/coreml"], "apple-m1-pro/coreml", "apple-*-pro/coreml"),
        # an unclosed [ is an ordinary character, as in fnmatch
        (["x[*", "x*"], "x[1", "x[*"),
    ],
)
def test_specificity(patterns: list[str], profile: str, winner: str) -> None:
    for order in (patterns, patterns[::-1]):  # file order must not matter
        budgets = Budgets("budgets.toml", budgets=tuple(_budget(p) for p in order))
        found = budgets.budget_for(profile, "b")
        assert found is not None and found.profile == winner


def test_equally_specific_patterns_are_an_error() -> None:
    budgets = Budgets(
        "budgets.toml", budgets=(_budget("apple-*/coreml"), _budget("*ple-m1/coreml"))
    )
    assert budgets.budget_for("linux/ort-cpu", "b") is None
    with pytest.raises(BudgetsError) as caught:
        budgets.budget_for("apple-m1/coreml", "b")
    message = str(caught.value)
    assert message.startswith("budgets.toml: ")
    assert "'apple-*/coreml' and '*ple-m1/coreml' both match 'apple-m1/coreml'" in message


@settings(derandomize=True, database=None, max_examples=100, deadline=None)
@given(
    # A profile is a non-blank name (Budget refuses "\r"); blank ones are not the point here.
    profile=st.text(st.characters(codec="ascii", exclude_characters="*?[]"), min_size=1).filter(
        str.strip
    ),
    cut=st.integers(0, 100),
)
def test_an_exact_profile_beats_every_pattern_it_matches(profile: str, cut: int) -> None:
    prefix = profile[: min(cut, len(profile))]
    budgets = Budgets(
        "budgets.toml", budgets=(_budget("*"), _budget(prefix + "*"), _budget(profile))
    )
    found = budgets.budget_for(profile, "b")
    assert found is not None and found.profile == profile


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    budgets = load_budgets(_write(tmp_path, "# no budgets yet\n"))
    assert budgets.default_threshold == 0.10
    assert budgets.budgets == ()
    assert budgets.budget_for("any", "star latency") is None


_GOOD_BUDGET = """
[[budget]]
profile = "apple-*"
benchmark = "star latency"
reason = "product"
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[default]\nregression_threshold = 0.1", "top level: unknown key 'default'"),
        ("[defaults]\nthreshold = 0.1", "[defaults]: unknown key 'threshold'"),
        ("[defaults]\nregression_threshold = 0", "regression_threshold = 0: expected a fraction"),
        ("[defaults]\nregression_threshold = 1.0", "regression_threshold = 1.0: expected"),
        ("[defaults]\nregression_threshold = -0.1", "regression_threshold = -0.1: expected"),
        ("[defaults]\nregression_threshold = true", "regression_threshold = True: expected"),
        ("[thresholds]\n'test_a' = 1.5", "[thresholds] 'test_a' = 1.5: expected a fraction"),
        ("[thresholds]\n'test_a' = '10%'", "[thresholds] 'test_a' = '10%': expected a fraction"),
        ("defaults = 3", "'defaults' must be a table"),
        ("[budget]\nprofile = 'x'", "'budget' must be an array of tables"),
        (_GOOD_BUDGET + "max_msec = 1.0", "#1 ('star latency'): unknown key 'max_msec'"),
        (_GOOD_BUDGET + "max_ms = 1.0\nmin_fps = 30", "give exactly one of max_ms, min_fps,"),
        (_GOOD_BUDGET + "max_ms = 1.0\nmin_efficiency = 0.5", "(got 2)"),
        (_GOOD_BUDGET, "give exactly one of max_ms, min_fps, min_efficiency, max_units (got 0)"),
        (_GOOD_BUDGET + "min_efficiency = 1.2", "min_efficiency = 1.2: expected a fraction"),
        (_GOOD_BUDGET + "max_units = 0", "max_units = 0: expected a positive number"),
        (_GOOD_BUDGET + "max_ms = -5.0", "max_ms = -5.0: expected a positive number"),
        (_GOOD_BUDGET + "min_fps = 0", "min_fps = 0: expected a positive number"),
        (_GOOD_BUDGET + "max_ms = inf", "max_ms = inf: expected a positive number"),
        (_GOOD_BUDGET + "max_ms = '100'", "max_ms = '100': expected a positive number"),
        (_GOOD_BUDGET.replace('reason = "product"', "max_ms = 1.0"), "missing 'reason'"),
        (_GOOD_BUDGET.replace('"product"', '" "') + "max_ms = 1.0", "reason = ' ': expected"),
        (_GOOD_BUDGET.replace('profile = "apple-*"', "") + "max_ms = 1.0", "missing 'profile'"),
        (
            (_GOOD_BUDGET + "max_ms = 1.0\n") * 2,
            "#2 ('star latency'): a second budget for profile 'apple-*'",
        ),
        ("[[budget]\nprofile = 'x'", "not valid TOML ("),
    ],
)
def test_malformed_file_names_file_and_entry(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BudgetsError) as caught:
        load_budgets(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "budgets.toml"
    with pytest.raises(BudgetsError, match=f"^{path}: budgets file not found$"):
        load_budgets(path)


# -- speedup floors -----------------------------------------------------------------------------

FLOORS = """
[[speedup_floor]]
profile = "linux-x86_64*/ort-cpu"
model = "star"
measure = "steady_state"
floor = 0.9
reason = "measured 1.0x: not slower"

[[speedup_floor]]
profile = "linux-x86_64-avx512-2core/ort-cpu"
model = "star"
measure = "steady_state"
floor = 0.95
reason = "this runner, measured"

[[speedup_floor]]
profile = "linux-x86_64*/ort-cpu"
model = "star"
measure = "cold_load"
floor = 1.3
reason = "measured 2.0-2.3x"
"""


def test_speedup_floor_for_a_profile_model_and_measure(tmp_path: Path) -> None:
    budgets = load_budgets(_write(tmp_path, FLOORS))
    cold = budgets.speedup_floor_for("linux-x86_64-avx2-8core/ort-cpu", "star", "cold_load")
    assert cold is not None and (cold.floor, cold.reason) == (1.3, "measured 2.0-2.3x")
    steady = budgets.speedup_floor_for("linux-x86_64-avx2-8core/ort-cpu", "star", "steady_state")
    assert steady is not None and steady.floor == 0.9
    exact = budgets.speedup_floor_for("linux-x86_64-avx512-2core/ort-cpu", "star", "steady_state")
    assert exact is not None and exact.floor == 0.95  # the exact profile wins
    assert budgets.speedup_floor_for("linux-x86_64/ort-cpu", "mtl", "cold_load") is None
    assert budgets.speedup_floor_for("apple-m1/coreml", "star", "cold_load") is None
    assert budgets.budgets == ()  # floors are not budgets


def test_equally_specific_floors_are_an_error(tmp_path: Path) -> None:
    # 20 literal characters each, both with a wildcard: neither is more specific.
    first = FLOORS.split("\n\n")[0]
    text = FLOORS + first.replace('"linux-x86_64*/ort-cpu"', '"linux-x86_64?*/ort-cpu"')
    budgets = load_budgets(_write(tmp_path, text))
    with pytest.raises(BudgetsError, match="speedup floors of 'star' steady_state with profiles"):
        budgets.speedup_floor_for("linux-x86_64-avx2/ort-cpu", "star", "steady_state")


_GOOD_FLOOR = """
[[speedup_floor]]
profile = "apple-*/coreml"
model = "mtl"
measure = "steady_state"
reason = "published 8.1x"
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_GOOD_FLOOR, "#1 ('mtl' steady_state): missing 'floor'"),
        (_GOOD_FLOOR.replace('reason = "published 8.1x"', "floor = 2.0"), "missing 'reason' (why"),
        (_GOOD_FLOOR + "floor = 0", "floor = 0: expected a positive number"),
        (_GOOD_FLOOR + "floor = -1.5", "floor = -1.5: expected a positive number"),
        (_GOOD_FLOOR + "floor = '2x'", "floor = '2x': expected a positive number"),
        (_GOOD_FLOOR + "floor = true", "floor = True: expected a positive number"),
        (_GOOD_FLOOR + "floor = nan", "floor = nan: expected a positive number"),
        (_GOOD_FLOOR + "floor = 2.0\nmin_speedup = 2.0", "unknown key 'min_speedup'"),
        (
            _GOOD_FLOOR.replace("steady_state", "warm") + "floor = 2.0",
            "measure = 'warm': expected one of steady_state, cold_load",
        ),
        (_GOOD_FLOOR.replace('"mtl"', '""') + "floor = 2.0", "model = '': expected a non-empty"),
        ((_GOOD_FLOOR + "floor = 2.0\n") * 2, "#2 ('mtl' steady_state): a second floor for"),
        ("[speedup_floor]\nmodel = 'x'", "'speedup_floor' must be an array of tables"),
    ],
)
def test_malformed_speedup_floor_names_file_and_entry(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BudgetsError) as caught:
        load_budgets(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_the_committed_budgets_file_has_a_floor_with_a_reason_for_every_onnx_model() -> None:
    from faceperf.bench.gate.paths import budgets_path
    from faceperf.models.registry import default_registry

    budgets = load_budgets(budgets_path())
    for model in default_registry().names():
        for measure in ("steady_state", "cold_load"):
            floor = budgets.speedup_floor_for("linux-x86_64-avx512-2core/ort-cpu", model, measure)
            assert floor is not None, (model, measure)
            assert floor.reason.strip()


def test_merge_gate_thresholds_by_name_pattern_default_and_load(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        [ab]
        default_threshold = 0.05
        load_threshold = 0.2
        [ab.thresholds]
        "star-*" = 0.03
        "star-optimized_fp16" = 0.04
        """,
    )
    budgets = load_budgets(path)
    assert budgets.ab_threshold_for("star-optimized") == 0.03
    assert budgets.ab_threshold_for("star-optimized_fp16") == 0.04  # exact beats a pattern
    assert budgets.ab_threshold_for("mtcnn") == 0.05
    assert budgets.ab_load_threshold == 0.2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[ab]\ndefault_threshold = 2", "[ab] default_threshold = 2"),
        ("[ab]\nload_threshold = true", "[ab] load_threshold = True"),
        ("[ab]\nthreshold = 0.05", "[ab]: unknown key 'threshold'"),
        ('[ab.thresholds]\n"star-*" = -0.1', "[ab.thresholds] 'star-*' = -0.1"),
    ],
)
def test_malformed_merge_gate_table_names_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BudgetsError) as caught:
        load_budgets(path)
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_the_committed_merge_gate_thresholds_each_come_with_their_evidence() -> None:
    from faceperf.bench.gate.paths import budgets_path

    budgets = load_budgets(budgets_path())
    text = budgets_path().read_text()
    assert 0 < budgets.ab_default_threshold < budgets.ab_load_threshold < 1
    for name in budgets.ab_thresholds:
        assert f'"{name}"' in text
    assert "A/A" in text.split("[ab]", 1)[1].split("[[budget]]", 1)[0]
