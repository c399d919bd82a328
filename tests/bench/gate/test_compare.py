"""The regression gate on synthetic timings: seeded lognormal noise, no real time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceperf.bench.errors import ProfileMismatchError
from faceperf.bench.gate.compare import (
    GatePolicy,
    GateReport,
    compare_runs,
    sample_warnings,
)
from faceperf.bench.gate.render import gate_markdown
from faceperf.bench.gate.storage import BenchmarkRun, BenchmarkSamples
from faceperf.bench.hardware import CpuIdentity
from faceperf.verdicts import Verdict, exit_code

PROFILE = "linux-x86_64-avx512/ort-cpu"
VERSIONS = {"onnxruntime": "1.31.1"}
STAR = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[star-optimized]"
MTL = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[mtl-optimized]"
EPYC = CpuIdentity("AuthenticAMD", "AMD EPYC")
XEON = CpuIdentity("GenuineIntel", "Intel(R) Xeon(R) Platinum 8481C")


def _timings(seed: int, median_s: float, n: int = 30, noise: float = 0.04) -> tuple[float, ...]:
    """Durations around ``median_s`` with multiplicative (lognormal) noise, as timings have."""
    rng = np.random.default_rng(seed)
    return tuple(median_s * np.exp(rng.normal(0.0, noise, n)))


def _run(
    profile: str = PROFILE,
    versions: dict | None = None,
    cpu: CpuIdentity | None = EPYC,
    **samples,
) -> BenchmarkRun:
    names = {"star": STAR, "mtl": MTL}
    return BenchmarkRun.of(
        profile,
        VERSIONS if versions is None else versions,
        [BenchmarkSamples(names.get(key, key), values) for key, values in samples.items()],
        cpu=cpu,
    )


def _compare(base: tuple, cur: tuple, policy: GatePolicy | None = None) -> GateReport:
    return compare_runs(_run(star=base), _run(star=cur), policy or GatePolicy())


@pytest.mark.parametrize("noise", [0.03, 0.05])
def test_same_distribution_is_never_flagged(noise: float) -> None:
    for seed in range(50):
        report = _compare(
            _timings(2 * seed, 0.110, noise=noise), _timings(2 * seed + 1, 0.110, noise=noise)
        )
        (row,) = report.rows
        assert row.verdict is Verdict.SAME, f"seed {seed}: {row}"
        assert exit_code(report.verdicts()) == 0


def test_a_slowdown_above_the_threshold_is_flagged() -> None:
    # A true 10 % slowdown against a 5 % threshold, and a true 15 % one against the default 10 %.
    # (A true 10 % slowdown against 10 % is a coin flip by design: the observed change has to
    # exceed the threshold.)
    for seed in range(20):
        for factor, policy in ((1.10, GatePolicy(default_threshold=0.05)), (1.15, GatePolicy())):
            report = _compare(_timings(seed, 0.010), _timings(100 + seed, 0.010 * factor), policy)
            (row,) = report.rows
            assert row.verdict is Verdict.SLOWER, f"seed {seed}, x{factor}: {row}"
            assert row.p_value < 0.01
            assert report.failing == (row,)
            assert exit_code(report.verdicts()) == 1


def test_a_significant_but_small_slowdown_is_not_flagged() -> None:
    report = _compare(_timings(1, 0.010, noise=0.03), _timings(2, 0.0105, noise=0.03))
    (row,) = report.rows
    assert row.p_value < 1e-4  # clearly real...
    assert 0.03 < row.change < 0.07  # ...but under the 10 % that matters
    assert row.verdict is Verdict.SAME
    assert exit_code(report.verdicts()) == 0


def test_a_large_but_insignificant_slowdown_is_not_flagged() -> None:
    # Medians 16 % apart, but the two samples overlap so much that ranks cannot tell them apart.
    base = (1.0e-3, 1.1e-3, 1.2e-3, 1.3e-3, 1.4e-3, 1.5e-3)
    report = _compare(base, (1.05e-3, 1.15e-3, 1.35e-3, 1.55e-3, 1.65e-3, 1.8e-3))
    (row,) = report.rows
    assert row.change == pytest.approx(0.16)
    assert row.p_value > 0.1
    assert row.verdict is Verdict.SAME


def test_a_large_change_on_three_samples_is_unstable_not_a_regression() -> None:
    report = _compare(_timings(1, 0.010, n=3), _timings(2, 0.013, n=3))
    (row,) = report.rows
    assert row.change > 0.2
    assert row.verdict is Verdict.SAME
    assert row.unstable
    (warning,) = row.warnings
    assert warning.startswith("only 3 baseline / 3 current samples (need 5): too few")
    assert warning.endswith("increase rounds")
    assert exit_code(report.verdicts()) == 0
    assert report.unstable == (row,)


def test_too_few_samples_never_regress_even_when_the_test_is_significant() -> None:
    # Four rounds per side can reach p = 1/70 < 0.05; the sample-count rule still applies.
    report = _compare(
        _timings(1, 0.010, n=4), _timings(2, 0.020, n=4), GatePolicy(alpha=0.05, min_samples=5)
    )
    (row,) = report.rows
    assert row.p_value < 0.05
    assert row.verdict is Verdict.SAME
    assert row.unstable


def test_noisy_samples_are_flagged_unstable_with_advice() -> None:
    report = _compare(_timings(1, 0.010), _timings(2, 0.010, noise=0.2))
    (row,) = report.rows
    assert [w.split(":")[0] for w in row.warnings] == ["current"]
    assert "interquartile range" in row.warnings[0]
    assert "close other programs / pin the CPU" in row.warnings[0]


def test_one_run_alone_gets_the_same_advice() -> None:
    assert sample_warnings(BenchmarkSamples("x", _timings(1, 0.01)), GatePolicy()) == ()
    (few,) = sample_warnings(BenchmarkSamples("x", _timings(1, 0.01, n=2)), GatePolicy())
    assert few.startswith("only 2 samples (need 5)")
    (noisy,) = sample_warnings(BenchmarkSamples("x", _timings(1, 0.01, noise=0.3)), GatePolicy())
    assert noisy.startswith("noisy: interquartile range is ")


def test_a_significant_speedup_is_an_improvement() -> None:
    report = _compare(_timings(1, 0.010), _timings(2, 0.008))
    (row,) = report.rows
    assert row.verdict is Verdict.FASTER
    assert row.p_value < 0.01  # tested in the direction of the change
    assert exit_code(report.verdicts()) == 0


def test_per_benchmark_threshold_override() -> None:
    base = _run(star=_timings(1, 0.1), mtl=_timings(2, 0.01))
    cur = _run(star=_timings(3, 0.12), mtl=_timings(4, 0.012))
    # The override names the benchmark as budgets.toml does: without the file path.
    policy = GatePolicy(thresholds={"test_steady_state_latency_ort_cpu[star-optimized]": 0.25})
    report = compare_runs(base, cur, policy)
    verdicts = {row.name: row.verdict for row in report.rows}
    assert verdicts == {STAR: Verdict.SAME, MTL: Verdict.SLOWER}
    assert {row.name: row.threshold for row in report.rows} == {STAR: 0.25, MTL: 0.10}
    assert "threshold 25%" in gate_markdown(report)


def test_an_accepted_regression_passes_with_its_reason() -> None:
    reason = "FP16 STAR trades 20 % latency for 40 % less memory (PR #12)"
    base = _run(star=_timings(1, 0.1), mtl=_timings(2, 0.01))
    cur = _run(star=_timings(3, 0.12), mtl=_timings(4, 0.01))
    report = compare_runs(base, cur, GatePolicy(accepted={STAR: reason, MTL: "old entry"}))
    rows = {row.name: row for row in report.rows}
    assert rows[STAR].verdict is Verdict.ACCEPTED
    assert rows[STAR].note == reason
    assert rows[MTL].verdict is Verdict.SAME
    assert "listed as accepted but did not regress" in rows[MTL].note
    assert report.failing == ()
    assert exit_code(report.verdicts()) == 0
    assert reason in gate_markdown(report)


def test_added_and_removed_benchmarks_are_reported() -> None:
    base = _run(star=_timings(1, 0.1), old=_timings(2, 0.01))
    cur = _run(star=_timings(3, 0.1), new=_timings(4, 0.02))
    report = compare_runs(base, cur, GatePolicy())
    rows = {row.name: row for row in report.rows}
    assert rows["old"].verdict is Verdict.REMOVED
    assert rows["old"].current_median_s is None and rows["old"].baseline_median_s is not None
    assert rows["new"].verdict is Verdict.ADDED
    assert rows["new"].baseline_median_s is None and rows["new"].p_value is None
    assert exit_code(report.verdicts()) == 0
    assert "| `new` | — | 20.0 | — | — | added |" in gate_markdown(report)


def test_an_empty_current_run_fails() -> None:
    report = compare_runs(_run(star=_timings(1, 0.1)), _run(), GatePolicy())
    assert [row.verdict for row in report.rows] == [Verdict.REMOVED]
    assert exit_code(report.verdicts()) == 1
    assert "the current run measured no benchmarks" in report.summary()
    assert report.summary().startswith(f"faceperf gate on {PROFILE}: FAIL")


def test_nothing_against_nothing_fails_too() -> None:
    report = compare_runs(_run(), _run(), GatePolicy())
    assert report.rows == ()
    assert exit_code(report.verdicts()) == 1
    assert report.summary() == (
        f"faceperf gate on {PROFILE}: FAIL (the current run measured no benchmarks)"
    )
    assert "the baseline has no benchmarks" in gate_markdown(report)


def test_an_empty_baseline_is_reported_and_everything_is_added() -> None:
    report = compare_runs(_run(), _run(star=_timings(1, 0.1)), GatePolicy())
    assert [row.verdict for row in report.rows] == [Verdict.ADDED]
    assert exit_code(report.verdicts()) == 0
    assert report.notices == ("the baseline has no benchmarks: nothing was compared",)


def test_other_profile_is_refused_with_both_names_and_the_hint() -> None:
    with pytest.raises(ProfileMismatchError) as caught:
        compare_runs(_run("apple-m1-pro/coreml"), _run(PROFILE), GatePolicy())
    message = str(caught.value)
    assert "'apple-m1-pro/coreml'" in message and f"'{PROFILE}'" in message
    assert "--allow-mismatch" in message
    assert "\n" not in message


def test_the_hint_names_the_flag_the_user_has() -> None:
    policy = GatePolicy(mismatch_flag="--perf-allow-mismatch")  # as the pytest plugin sets it
    with pytest.raises(ProfileMismatchError, match="pass --perf-allow-mismatch to compare"):
        compare_runs(_run("apple-m1-pro/coreml"), _run(PROFILE), policy)


def test_other_runtime_versions_are_refused() -> None:
    base = _run(versions={"onnxruntime": "1.31.1", "coremltools": "9.0"})
    cur = _run(versions={"onnxruntime": "1.32.0"})
    with pytest.raises(ProfileMismatchError) as caught:
        compare_runs(base, cur, GatePolicy())
    message = str(caught.value)
    assert "coremltools 9.0 in the baseline but absent in the current run" in message
    assert "onnxruntime 1.31.1 in the baseline but 1.32.0 in the current run" in message


def test_a_mismatch_can_be_allowed_and_is_shown() -> None:
    base = _run("apple-m1-pro/coreml", star=_timings(1, 0.1))
    cur = _run(PROFILE, {"onnxruntime": "1.32.0"}, star=_timings(2, 0.1))
    report = compare_runs(base, cur, GatePolicy(allow_mismatch=True))
    assert report.baseline_profile == "apple-m1-pro/coreml"
    assert len(report.mismatches) == 2
    assert "⚠ allowed mismatch: baseline profile 'apple-m1-pro/coreml'" in gate_markdown(report)


def test_another_cpu_of_the_same_profile_is_refused_with_both_names() -> None:
    with pytest.raises(ProfileMismatchError) as caught:
        compare_runs(_run(cpu=EPYC), _run(cpu=XEON), GatePolicy())
    message = str(caught.value)
    assert (
        "baseline recorded on CPU 'AMD EPYC' (AuthenticAMD), this run on "
        "'Intel(R) Xeon(R) Platinum 8481C' (GenuineIntel)"
    ) in message
    assert "--allow-mismatch" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "other",
    [CpuIdentity("AuthenticAMD", "AMD EPYC 9R14"), CpuIdentity("HygonGenuine", "AMD EPYC")],
    ids=["model", "vendor"],
)
def test_a_cpu_differing_in_vendor_or_model_alone_is_refused(other: CpuIdentity) -> None:
    with pytest.raises(ProfileMismatchError, match="baseline recorded on CPU"):
        compare_runs(_run(cpu=EPYC), _run(cpu=other), GatePolicy())


def test_the_same_cpu_spelled_with_other_spacing_is_the_same_cpu() -> None:
    padded = CpuIdentity(" AuthenticAMD", "AMD  EPYC ")
    report = compare_runs(_run(cpu=EPYC, star=_timings(1, 0.1)), _run(cpu=padded), GatePolicy())
    assert report.mismatches == ()


def test_another_cpu_can_be_allowed_and_is_shown() -> None:
    base, cur = _run(cpu=EPYC, star=_timings(1, 0.1)), _run(cpu=XEON, star=_timings(2, 0.1))
    report = compare_runs(base, cur, GatePolicy(allow_mismatch=True))
    (mismatch,) = report.mismatches
    assert mismatch == (
        "allowed mismatch: baseline recorded on CPU 'AMD EPYC' (AuthenticAMD), this run on "
        "'Intel(R) Xeon(R) Platinum 8481C' (GenuineIntel) (vendor: 'AuthenticAMD' vs "
        "'GenuineIntel'; brand: 'AMD EPYC' vs 'Intel(R) Xeon(R) Platinum 8481C')"
    )
    assert f"⚠ {mismatch}" in gate_markdown(report)
    assert report.notices == ()
    assert exit_code(report.verdicts()) == 0


def test_the_same_cpu_passes_without_a_notice() -> None:
    report = compare_runs(_run(star=_timings(1, 0.1)), _run(star=_timings(2, 0.1)), GatePolicy())
    assert report.mismatches == () and report.notices == ()
    assert "⚠" not in gate_markdown(report)


@pytest.mark.parametrize(
    ("base_cpu", "cur_cpu", "expected"),
    [
        (
            None,
            XEON,
            "the CPU could not be checked: the baseline does not record it (this run: "
            "'Intel(R) Xeon(R) Platinum 8481C' (GenuineIntel)); `faceperf baseline update` "
            "records it",
        ),
        (
            EPYC,
            None,
            "the CPU could not be checked: this run does not record it "
            "(baseline: 'AMD EPYC' (AuthenticAMD))",
        ),
        (None, None, "the CPU could not be checked: neither the baseline nor this run records it"),
    ],
    ids=["baseline", "current", "both"],
)
def test_an_unknown_cpu_is_a_notice_not_a_refusal(
    base_cpu: CpuIdentity | None, cur_cpu: CpuIdentity | None, expected: str
) -> None:
    base = _run(cpu=base_cpu, star=_timings(1, 0.1))
    cur = _run(cpu=cur_cpu, star=_timings(2, 0.1))
    report = compare_runs(base, cur, GatePolicy())
    assert report.mismatches == ()
    assert report.notices == (expected,)
    assert exit_code(report.verdicts()) == 0
    assert f"⚠ {expected}" in gate_markdown(report)


def test_markdown_has_one_row_per_benchmark() -> None:
    piped = "f.py::test_x[a|b]"
    base = _run(star=_timings(1, 0.1), mtl=_timings(2, 0.0101), gone=_timings(3, 0.001))
    cur = _run(star=_timings(4, 0.13), mtl=_timings(5, 0.0100), **{piped: _timings(6, 0.0002)})
    text = gate_markdown(compare_runs(base, cur, GatePolicy()))
    lines = text.splitlines()
    header = "| benchmark | baseline (ms) | current (ms) | change | p-value | verdict | note |"
    assert lines.count(header) == 2  # the rows that decide; the rest, folded
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == 4
    assert all(row.count(" | ") == 6 for row in rows)  # the pipe in a name is escaped
    assert "`f.py::test_x[a\\|b]`" in text
    star = next(row for row in rows if "star" in row)
    assert star.startswith(f"| `{STAR}` | 100 | 130 | +")
    assert "| **slower** |" in star
    assert text.startswith(f"**faceperf gate on {PROFILE}: FAIL** — baseline gate: FAIL, ")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"default_threshold": 0.0},
        {"default_threshold": 1.5},
        {"thresholds": {"x": -0.1}},
        {"alpha": 1.0},
        {"min_samples": 1},
        {"accepted": {"x": " "}},
    ],
)
def test_policy_is_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        GatePolicy(**kwargs)


_HYPOTHESIS = settings(derandomize=True, database=None, max_examples=60, deadline=None)
_DURATIONS = st.lists(
    st.floats(min_value=1e-4, max_value=1.0, allow_nan=False), min_size=1, max_size=40
)


@_HYPOTHESIS
@given(base=_DURATIONS, cur=_DURATIONS, exponent=st.integers(-10, 10))
def test_verdicts_do_not_depend_on_the_unit(base: list, cur: list, exponent: int) -> None:
    # Scaling by a power of two is exact in floating point, so ranks and ratios are identical.
    scale = 2.0**exponent
    plain = _compare(tuple(base), tuple(cur))
    scaled = _compare(tuple(v * scale for v in base), tuple(v * scale for v in cur))
    assert [(r.verdict, r.change, r.p_value) for r in plain.rows] == [
        (r.verdict, r.change, r.p_value) for r in scaled.rows
    ]


@_HYPOTHESIS
@given(
    base=st.lists(st.floats(min_value=1e-4, max_value=1.0), min_size=1, max_size=4),
    cur=st.lists(st.floats(min_value=1e-4, max_value=1.0), min_size=1, max_size=40),
)
def test_fewer_than_five_samples_never_regress(base: list, cur: list) -> None:
    for first, second in ((base, cur), (cur, base)):
        (row,) = _compare(tuple(first), tuple(second), GatePolicy(alpha=0.5)).rows
        assert row.verdict is Verdict.SAME
        assert row.unstable


def _sized(size: object, seed: int) -> BenchmarkRun:
    extra = {} if size is None else {"size_bytes": size}
    return BenchmarkRun.of(
        PROFILE, VERSIONS, [BenchmarkSamples(STAR, _timings(seed, 0.2), extra)], cpu=EPYC
    )


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        (55_000_000, 55_000_000, Verdict.SAME),
        (55_000_000, 55_500_000, Verdict.SAME),  # +0.9 %
        (27_600_000, 55_000_000, Verdict.LARGER),  # an FP16 artifact stored as FP32
        (55_000_000, 27_600_000, Verdict.SMALLER),
    ],
)
def test_an_artifact_growing_beyond_one_percent_is_larger(before, after, verdict) -> None:
    report = compare_runs(_sized(before, 1), _sized(after, 2), GatePolicy())
    size = next(row for row in report.rows if row.name == f"{STAR}:size")
    assert size.verdict is verdict
    assert exit_code(report.verdicts()) == (1 if verdict is Verdict.LARGER else 0)
    assert "MB on disk" in size.note


def test_a_size_growth_can_be_accepted_and_records_without_a_size_have_no_size_row() -> None:
    policy = GatePolicy(accepted={f"{STAR}:size": "FP32 on purpose"})
    report = compare_runs(_sized(27_600_000, 1), _sized(55_000_000, 2), policy)
    size = next(row for row in report.rows if row.name.endswith(":size"))
    assert size.verdict is Verdict.ACCEPTED and "FP32 on purpose" in size.note
    assert exit_code(report.verdicts()) == 0
    report = compare_runs(_sized(None, 1), _sized(55_000_000, 2), GatePolicy())
    assert not any(row.name.endswith(":size") for row in report.rows)
