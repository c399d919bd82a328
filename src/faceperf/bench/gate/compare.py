"""The regression gate: a current run against the committed baseline of the same profile.

A benchmark regresses only when the slowdown is both practically large and statistically
significant:

- large: the median got slower by more than the benchmark's threshold (default 10 %);
- significant: a one-sided Mann-Whitney U test on the raw samples says the current durations
  tend to be larger than the baseline's with p < alpha (default 0.01).

Either alone is not enough. Significance alone flags a 1 % change measured with thousands of
rounds; size alone flags the noise of a machine that was busy for three rounds. Mann-Whitney
compares whole distributions by rank, so one outlier round cannot make or hide a regression, and
it assumes nothing about the shape of timing noise (skewed, heavy-tailed).

A benchmark with too few samples can never be called `slower`: it is marked unstable and
the report says to increase rounds. With the default alpha = 0.01 this is also what the test
itself implies: with 4 rounds per side the smallest one-sided p-value is 1/70 ≈ 0.014.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from scipy.stats import mannwhitneyu

from faceperf.bench.errors import ProfileMismatchError
from faceperf.bench.gate.canary import CANARY_KEY, canary_ratios
from faceperf.bench.gate.storage import (
    SIZE_KEY,
    SIZE_SUFFIX,
    BenchmarkRun,
    BenchmarkSamples,
    find_by_benchmark_name,
)
from faceperf.bench.memory.size import GROWTH_TOLERANCE, size_verdict
from faceperf.verdicts import EXIT_OK, Verdict, exit_code

ALLOW_MISMATCH_OPTION = "--allow-mismatch"
SUGGEST_MORE_ROUNDS = "increase rounds"
SUGGEST_QUIET_MACHINE = "close other programs / pin the CPU (fixed frequency, taskset)"


@dataclass(frozen=True)
class GatePolicy:
    """How strict the gate is.

    Args:
        default_threshold: relative change of the median that counts as large (0.10 = 10 %).
        thresholds: benchmark name (full or short, see ``find_by_benchmark_name``) → threshold.
        alpha: significance level of the one-sided Mann-Whitney U test.
        allow_mismatch: compare runs of different profiles, runtime versions or CPUs anyway.
        accepted: benchmark name → why its regression is accepted (reviewed, e.g. in the PR).
        not_gated: benchmark name or pattern → why it is reported but never judged.
        min_samples: fewer samples than this on either side → unstable, never ``slower``.
        max_spread: interquartile range over median at or above this → unstable.
    """

    default_threshold: float = 0.10
    thresholds: Mapping[str, float] = field(default_factory=dict)
    alpha: float = 0.01
    allow_mismatch: bool = False
    # How the user who ran the comparison spells allow_mismatch: the CLI's flag, or pytest's.
    mismatch_flag: str = ALLOW_MISMATCH_OPTION
    accepted: Mapping[str, str] = field(default_factory=dict)
    not_gated: Mapping[str, str] = field(default_factory=dict)
    min_samples: int = 5
    max_spread: float = 0.10

    def __post_init__(self) -> None:
        _check_fraction("default_threshold", self.default_threshold)
        for name, threshold in self.thresholds.items():
            _check_fraction(f"threshold of {name}", threshold)
        _check_fraction("alpha", self.alpha)
        _check_fraction("max_spread", self.max_spread)
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int):
            raise ValueError(f"min_samples {self.min_samples!r}: expected an integer")
        if self.min_samples < 2:
            raise ValueError(f"min_samples {self.min_samples}: a rank test needs at least 2")
        for name, reason in self.accepted.items():
            if not isinstance(reason, str) or not reason.strip():
                raise ValueError(f"accepted regression of {name}: a reason is required")
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))
        object.__setattr__(self, "accepted", MappingProxyType(dict(self.accepted)))
        object.__setattr__(self, "not_gated", MappingProxyType(dict(self.not_gated)))

    def threshold_for(self, name: str) -> float:
        """The regression threshold of a benchmark (its override, else the default)."""
        override = find_by_benchmark_name(self.thresholds, name)
        return self.default_threshold if override is None else override

    def accepted_reason(self, name: str) -> str | None:
        return find_by_benchmark_name(self.accepted, name)


@dataclass(frozen=True)
class GateRow:
    """The gate's finding for one benchmark.

    Args:
        name: the benchmark's fullname.
        verdict: ``slower`` / ``same`` / ``faster``; ``accepted`` (slower, and a reviewer
            accepted it with a reason), ``not gated`` (measured and shown, never judged:
            budgets.toml says why), ``added`` (only in the current run), ``removed`` (only in
            the baseline).
        threshold: the relative change that counted as large for this benchmark.
        baseline_median_s, current_median_s: medians in seconds (None on the side it is absent).
        change: current median / baseline median − 1 (None for added / removed); of the
            round / canary ratios when both runs recorded a canary (bench/canary.py).
        p_value: one-sided Mann-Whitney U p-value in the direction of the change (None for
            added / removed).
        n_baseline, n_current: sample counts.
        warnings: why the result may not be trustworthy, each with what to do about it.
        note: a reviewer's reason for an accepted regression, or another remark.
    """

    name: str
    verdict: Verdict
    threshold: float
    baseline_median_s: float | None = None
    current_median_s: float | None = None
    change: float | None = None
    p_value: float | None = None
    n_baseline: int = 0
    n_current: int = 0
    warnings: tuple[str, ...] = ()
    note: str = ""

    @property
    def unstable(self) -> bool:
        return bool(self.warnings)


@dataclass(frozen=True)
class GateReport:
    """All rows of one comparison and what they mean for the merge.

    Args:
        rows: one per benchmark in either run, sorted by name.
        profile: the current run's profile.
        baseline_profile: the baseline's profile (differs only when mismatches were allowed).
        policy: the policy the rows were decided with.
        mismatches: profile / runtime / CPU differences that were allowed with allow_mismatch.
        problems: run-level failures that are not a single benchmark's (nothing measured).
        notices: run-level remarks that do not fail the gate (an empty baseline, a CPU that
            could not be checked).
    """

    rows: tuple[GateRow, ...]
    profile: str
    baseline_profile: str
    policy: GatePolicy
    mismatches: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()

    @property
    def failing(self) -> tuple[GateRow, ...]:
        """The rows that fail the gate (``slower``, not accepted)."""
        return tuple(row for row in self.rows if row.verdict.blocks())

    @property
    def unstable(self) -> tuple[GateRow, ...]:
        return tuple(row for row in self.rows if row.unstable)

    def verdicts(self) -> tuple[Verdict, ...]:
        """Every verdict of the comparison: one per row, and a ``fail`` per run-level problem
        (a run that measured nothing fails, whatever the baseline holds)."""
        return tuple(row.verdict for row in self.rows) + (Verdict.FAIL,) * len(self.problems)

    @property
    def passed(self) -> bool:
        return exit_code(self.verdicts()) == EXIT_OK

    def summary(self) -> str:
        """One line: pass or fail, and why."""
        verdicts = [row.verdict for row in self.rows]
        parts = [f"{verdicts.count(v)} {v.value}" for v in Verdict if verdicts.count(v)]
        status = "PASS" if self.passed else "FAIL"
        detail = "; ".join([*self.problems, *([", ".join(parts)] if parts else [])])
        detail = detail or "no benchmarks"
        return f"faceperf gate on {self.profile}: {status} ({detail})"


def compare_runs(baseline: BenchmarkRun, current: BenchmarkRun, policy: GatePolicy) -> GateReport:
    """Compare every benchmark of two runs of the same profile.

    An empty current run fails the gate (a ``fail`` verdict), whatever the baseline holds: a
    perf job that measured nothing must not pass silently. An empty baseline is reported as a
    notice and every current benchmark is ``added`` (a new profile's first run has to pass).

    Args:
        baseline: the committed baseline.
        current: the run under review.
        policy: thresholds, significance level and accepted regressions.

    Raises:
        ProfileMismatchError: the profiles, runtime versions or CPUs differ and
            ``policy.allow_mismatch`` is false.
    """
    mismatches = _mismatches(baseline, current)
    if mismatches and not policy.allow_mismatch:
        raise ProfileMismatchError(
            f"refusing to compare: {'; '.join(mismatches)}; pass {policy.mismatch_flag} to "
            "compare anyway"
        )
    names = sorted(set(baseline.benchmarks) | set(current.benchmarks))
    rows = tuple(
        _row(name, baseline.benchmarks.get(name), current.benchmarks.get(name), policy)
        for name in names
    ) + _size_rows(baseline, current, policy)
    problems, notices = [], []
    if not current.benchmarks:
        problems.append("the current run measured no benchmarks")
    if not baseline.benchmarks:
        notices.append("the baseline has no benchmarks: nothing was compared")
    unchecked = _cpu_unchecked(baseline, current)
    if unchecked is not None:
        notices.append(unchecked)
    return GateReport(
        rows=rows,
        profile=current.profile,
        baseline_profile=baseline.profile,
        policy=policy,
        mismatches=tuple(f"allowed mismatch: {text}" for text in mismatches),
        problems=tuple(problems),
        notices=tuple(notices),
    )


def _size_rows(
    baseline: BenchmarkRun, current: BenchmarkRun, policy: GatePolicy
) -> tuple[GateRow, ...]:
    """One row per benchmark whose records in both runs carry its artifact's bytes on disk
    (extra_info): ``larger`` beyond 1 % growth, unless a reviewer accepted ``<name>:size``."""
    rows = []
    for name in sorted(set(baseline.benchmarks) & set(current.benchmarks)):
        before = baseline.benchmarks[name].extra_info.get(SIZE_KEY)
        after = current.benchmarks[name].extra_info.get(SIZE_KEY)
        if not (_is_byte_count(before) and _is_byte_count(after)):
            continue
        row_name = f"{name}{SIZE_SUFFIX}"
        verdict = size_verdict(before, after)
        note = f"{before / 1e6:.2f} MB -> {after / 1e6:.2f} MB on disk"
        reason = policy.accepted_reason(row_name)
        if reason is not None and verdict is Verdict.LARGER:
            verdict, note = Verdict.ACCEPTED, f"{note}; {reason}"
        rows.append(
            GateRow(
                name=row_name,
                verdict=verdict,
                threshold=GROWTH_TOLERANCE,
                change=after / before - 1.0,
                note=note,
            )
        )
    return tuple(rows)


def _is_byte_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def sample_warnings(samples: BenchmarkSamples, policy: GatePolicy) -> tuple[str, ...]:
    """Why one run's samples of a benchmark cannot be trusted, each with what to do about it.

    For checks that look at one run only (budgets); the gate words its rows with both runs.

    Args:
        samples: one benchmark's samples in one run.
        policy: gives the minimum sample count and the maximum spread.
    """
    n = len(samples.samples_s)
    if n < policy.min_samples:
        return (_too_few(f"only {n} samples", policy),)
    spread = _spread_warning(samples, policy)
    return () if spread is None else (spread,)


def _row_warnings(
    base: BenchmarkSamples, cur: BenchmarkSamples, policy: GatePolicy
) -> tuple[str, ...]:
    n_base, n_cur = len(base.samples_s), len(cur.samples_s)
    if min(n_base, n_cur) < policy.min_samples:
        # One message for the pair: the rule is about the comparison, not about one side.
        return (_too_few(f"only {n_base} baseline / {n_cur} current samples", policy),)
    found = []
    for side, samples in (("baseline", base), ("current", cur)):
        spread = _spread_warning(samples, policy)
        if spread is not None:
            found.append(SampleWarning(f"{side}: {spread.fact}", spread.advice))
    return tuple(found)


class SampleWarning(str):
    """Why a benchmark's samples cannot be trusted: the whole sentence, as printed, which also
    keeps its two parts apart (``fact``, what is particular to these samples, and ``advice``,
    what to do about it), so that a report can say each piece of advice once."""

    fact: str
    advice: tuple[str, ...]

    def __new__(cls, fact: str, advice: tuple[str, ...]) -> SampleWarning:
        warning = super().__new__(cls, f"{fact}; {', or '.join(advice)}")
        warning.fact, warning.advice = fact, advice
        return warning


def _too_few(counted: str, policy: GatePolicy) -> SampleWarning:
    return SampleWarning(
        f"{counted} (need {policy.min_samples}): too few to tell a change from noise, so never "
        "`slower`",
        (SUGGEST_MORE_ROUNDS,),
    )


def _spread_warning(samples: BenchmarkSamples, policy: GatePolicy) -> SampleWarning | None:
    # IQR over median: pytest-benchmark's table shows both, and unlike stdev / mean one slow
    # round (a page fault, a context switch) cannot inflate it.
    q1, q3 = np.percentile(samples.samples_s, [25, 75])
    spread = (q3 - q1) / samples.median_s
    if spread < policy.max_spread:
        return None
    return SampleWarning(
        f"noisy: interquartile range is {spread:.0%} of the median (≥ {policy.max_spread:.0%})",
        (SUGGEST_QUIET_MACHINE, SUGGEST_MORE_ROUNDS),
    )


def _row(
    name: str,
    base: BenchmarkSamples | None,
    cur: BenchmarkSamples | None,
    policy: GatePolicy,
) -> GateRow:
    threshold = policy.threshold_for(name)
    if base is None or cur is None:
        present = cur if base is None else base
        assert present is not None  # the name came from one of the two runs
        return GateRow(
            name=name,
            verdict=Verdict.ADDED if base is None else Verdict.REMOVED,
            threshold=threshold,
            baseline_median_s=None if base is None else base.median_s,
            current_median_s=None if cur is None else cur.median_s,
            n_baseline=0 if base is None else len(base.samples_s),
            n_current=0 if cur is None else len(cur.samples_s),
        )
    warnings = _row_warnings(base, cur, policy)
    enough = min(len(base.samples_s), len(cur.samples_s)) >= policy.min_samples
    before, after = base.samples_s, cur.samples_s
    machine = ""
    base_ratios = canary_ratios(base.samples_s, base.extra_info.get(CANARY_KEY))
    cur_ratios = canary_ratios(cur.samples_s, cur.extra_info.get(CANARY_KEY))
    if base_ratios and cur_ratios:
        # Judge round / canary: what the machine did between the runs cancels out.
        before, after = base_ratios, cur_ratios
        drift = float(
            np.median(cur.extra_info[CANARY_KEY]) / np.median(base.extra_info[CANARY_KEY])
        )
        raw = cur.median_s / base.median_s - 1.0
        machine = f"judged against the canary (machine {drift - 1.0:+.0%}, raw {raw:+.1%})"
    change = float(np.median(after) / np.median(before)) - 1.0
    # Test in the direction the medians moved; the other direction's p-value is not informative.
    alternative = "greater" if change >= 0 else "less"
    p_value = _mann_whitney(after, before, alternative)
    significant = enough and p_value < policy.alpha
    verdict = Verdict.SAME
    if significant and change > threshold:
        verdict = Verdict.SLOWER
    elif significant and change < -threshold:
        verdict = Verdict.FASTER
    note = ""
    reason = policy.accepted_reason(name)
    ungated = find_by_benchmark_name(policy.not_gated, name)
    if ungated is not None:
        verdict, note = Verdict.NOT_GATED, ungated
        machine = ""
    elif reason is not None:
        if verdict is Verdict.SLOWER:
            verdict, note = Verdict.ACCEPTED, reason
        else:
            # Keep the stale entry visible so it gets removed before it hides a future regression.
            note = f"listed as accepted but did not regress ({reason})"
    note = "; ".join(part for part in (note, machine) if part)
    return GateRow(
        name=name,
        verdict=verdict,
        threshold=threshold,
        baseline_median_s=base.median_s,
        current_median_s=cur.median_s,
        change=change,
        p_value=p_value,
        n_baseline=len(base.samples_s),
        n_current=len(cur.samples_s),
        warnings=warnings,
        note=note,
    )


def _mann_whitney(
    current: tuple[float, ...], baseline: tuple[float, ...], alternative: str
) -> float:
    p_value = float(mannwhitneyu(current, baseline, alternative=alternative).pvalue)
    # NaN only when no test is possible (degenerate input): that is no evidence of a change.
    return 1.0 if math.isnan(p_value) else p_value


def _mismatches(baseline: BenchmarkRun, current: BenchmarkRun) -> list[str]:
    found = []
    if baseline.profile != current.profile:
        found.append(
            f"baseline profile {baseline.profile!r} differs from current profile "
            f"{current.profile!r}"
        )
    for package in sorted(set(baseline.runtime_versions) | set(current.runtime_versions)):
        old = baseline.runtime_versions.get(package, "absent")
        new = current.runtime_versions.get(package, "absent")
        if old != new:
            found.append(f"{package} {old} in the baseline but {new} in the current run")
    # The profile name does not tell an AMD EPYC from an Intel Xeon of the same ISA and core
    # count, and the two differ by more than any threshold: check the CPU itself (as pyperf
    # checks cpu_model_name before comparing).
    if baseline.cpu is not None and current.cpu is not None:
        differences = baseline.cpu.differences(current.cpu)
        if differences:
            found.append(
                f"baseline recorded on CPU {baseline.cpu}, this run on {current.cpu} "
                f"({'; '.join(differences)})"
            )
    return found


def _cpu_unchecked(baseline: BenchmarkRun, current: BenchmarkRun) -> str | None:
    """The notice when a side does not record its CPU: not refused (baselines recorded before
    faceperf stored the CPU, machines whose OS does not name it), but the reader must know the
    timings may come from different CPUs."""
    if baseline.cpu is not None and current.cpu is not None:
        return None
    if baseline.cpu is None and current.cpu is None:
        return "the CPU could not be checked: neither the baseline nor this run records it"
    if baseline.cpu is None:
        return (
            f"the CPU could not be checked: the baseline does not record it (this run: "
            f"{current.cpu}); `faceperf baseline update` records it"
        )
    return f"the CPU could not be checked: this run does not record it (baseline: {baseline.cpu})"


def _check_fraction(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{what} {value!r}: expected a number between 0 and 1 (exclusive)")
