"""Budgets and regression thresholds, read from the one reviewed file ``baselines/budgets.toml``.

Layout::

    [defaults]
    regression_threshold = 0.10          # relative slowdown of the median the gate calls large

    [thresholds]                         # per-benchmark overrides (full or short benchmark name)
    "test_steady_state_latency_ort_cpu[mtcnn_rnet-optimized]" = 0.25

    [[budget]]
    profile = "apple-*/coreml"           # fnmatch pattern over profile names (case-sensitive)
    benchmark = "star latency"           # the name a perf test looks its budget up by
    max_ms = 100.0                       # or min_fps, min_efficiency, max_units: exactly one
    reason = "product budget: STAR < 100 ms on Apple Silicon"

    [ab]                                 # the merge gate (faceperf ab): candidate vs reference
    default_threshold = 0.05
    load_threshold = 0.15                # every session-creation benchmark (<name>-load)
    [ab.thresholds]                      # benchmark name or * pattern (longest match wins)
    "star-*" = 0.03
    [ab.memory]                          # each phase's peak above the floor, vs the reference
    threshold = 0.01                     # larger beyond this fraction of the reference ...
    min_mib = 2.0                        # ... and never within this many MiB
    [ab.memory.thresholds]               # benchmark name or * pattern: its own fraction
    "pipeline" = 0.15

    [[memory_budget]]
    profile = "apple-*"
    subject = "face_mirror"              # a model, mtcnn, or face_mirror (the whole process)
    variant = "*"                        # fnmatch pattern over variants (default *)
    max_peak_mib = 2048                  # the process's peak; or max_added_mib: above its floor
    reason = "checklist: memory usage < 2 GB per process"

    [[speedup_floor]]
    profile = "linux-x86_64*/ort-cpu"
    model = "star"
    measure = "cold_load"                # or "steady_state"
    floor = 1.3                          # the interval's lower bound must be above this
    reason = "measured 2.0-2.3x (offline optimisation skips work at session load)"

Every section is optional; every key is checked, so a typo fails loudly instead of silently
turning a budget off.

When several budgets of a benchmark match a profile, the most specific pattern wins: a pattern
without wildcards beats any pattern with one, then the pattern with more literal characters (not
counting ``*``, ``?`` and ``[...]``) wins. So ``apple-m1-pro/coreml`` beats ``apple-*/coreml``,
which beats ``*/coreml``, which beats ``*``. Two matching patterns of equal specificity are an
error, since which one applies would be an accident of file order. Speedup floors of a model and
measure are chosen the same way.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from faceperf.bench.ab.modes import AB_MODES
from faceperf.bench.calibration import CalibratedTiming
from faceperf.bench.errors import BudgetsError
from faceperf.bench.gate.storage import find_by_benchmark_name
from faceperf.bench.memory.compare import MIB, MemoryThreshold

if TYPE_CHECKING:
    from faceperf.bench.memory.peak import MemoryPeaks

_E = TypeVar("_E")

DEFAULT_REGRESSION_THRESHOLD = 0.10

# [[computeplan]] entries (Core ML placement floors) are checked by faceperf.coreml.plan_budgets.
_TOP_KEYS = (
    "defaults",
    "thresholds",
    "not_gated",
    "ab",
    "budget",
    "memory_budget",
    "speedup_floor",
    "computeplan",
)
_AB_KEYS = ("default_threshold", "load_threshold", "thresholds", "memory", "default_mode", "modes")
_AB_MEMORY_KEYS = ("threshold", "min_mib", "thresholds")
MEMORY_LIMIT_KEYS = ("max_peak_mib", "max_added_mib")
_MEMORY_BUDGET_KEYS = ("profile", "subject", "variant", *MEMORY_LIMIT_KEYS, "reason")
DEFAULT_AB_THRESHOLD = 0.05
DEFAULT_AB_LOAD_THRESHOLD = 0.15
_DEFAULTS_KEYS = ("regression_threshold",)
_FLOOR_KEYS = ("profile", "model", "measure", "floor", "reason")
STEADY_STATE, COLD_LOAD = "steady_state", "cold_load"
SPEEDUP_MEASURES = (STEADY_STATE, COLD_LOAD)


# A budget states one of these limits. The first two are absolute (the product's requirements
# on its own hardware); the last two are relative to the machine, measured in the same run
# (bench/calibration.py), so they hold on any CPU.
LIMIT_KEYS = ("max_ms", "min_fps", "min_efficiency", "max_units")
_BUDGET_KEYS = ("profile", "benchmark", *LIMIT_KEYS, "reason")


@dataclass(frozen=True)
class Budget:
    """A latency, frame-rate or efficiency budget of one benchmark on the profiles a pattern
    matches. Exactly one limit is given.

    Args:
        profile: fnmatch pattern over profile names, e.g. ``apple-*/coreml``.
        benchmark: the name perf tests look the budget up by, e.g. ``star latency``.
        reason: why this number (a product requirement, a measurement); shown when it fails.
        max_ms: the most milliseconds one call may take, or
        min_fps: the fewest calls per second a frame-at-a-time loop must sustain, or
        min_efficiency: the least achieved GFLOP/s over the calibrated GFLOP/s (a fraction), or
        max_units: the most canary calls one call (frame) may cost.
    """

    profile: str
    benchmark: str
    reason: str
    max_ms: float | None = None
    min_fps: float | None = None
    min_efficiency: float | None = None
    max_units: float | None = None

    def __post_init__(self) -> None:
        for key in ("profile", "benchmark", "reason"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key} = {value!r}: expected a non-empty string")
        given = [key for key in LIMIT_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(LIMIT_KEYS)} (got {len(given)})")
        key = given[0]
        value = getattr(self, key)
        if not _is_number(value) or not value > 0:
            raise ValueError(f"{key} = {value!r}: expected a positive number")
        if key == "min_efficiency" and not value < 1:
            raise ValueError(f"{key} = {value!r}: expected a fraction below 1")
        object.__setattr__(self, key, float(value))

    @property
    def portable(self) -> bool:
        """True when the limit is relative to the machine (needs the run's calibration)."""
        return self.min_efficiency is not None or self.max_units is not None

    @property
    def limit_ms(self) -> float | None:
        """An absolute budget as a per-call latency: max_ms, or 1000 / min_fps; None for a
        portable one."""
        if self.max_ms is not None:
            return self.max_ms
        return None if self.min_fps is None else 1000.0 / self.min_fps

    @property
    def specificity(self) -> tuple[bool, int]:
        """How specific the profile pattern is: (has no wildcard, literal characters)."""
        literals, wild = _literal_count(self.profile)
        return (not wild, literals)

    def allows(self, timing: CalibratedTiming) -> bool:
        """True when the measured timing is within the budget.

        Raises:
            BudgetsError: a portable budget, and the timing has no calibration (or no FLOP count
                for an efficiency floor): the test must time the canary and count the work.
        """
        if self.min_efficiency is not None:
            if timing.efficiency is None:
                raise BudgetsError(
                    f"budget {self.benchmark!r} ({self.describe()}) needs the canary timed beside "
                    "every round and the FLOPs of one call"
                )
            return timing.efficiency >= self.min_efficiency
        if self.max_units is not None:
            if timing.units is None:
                raise BudgetsError(
                    f"budget {self.benchmark!r} ({self.describe()}) needs the canary timed beside "
                    "every round"
                )
            return timing.units <= self.max_units
        return timing.per_call_ms <= self.limit_ms

    def describe(self) -> str:
        """The budget as people state it: ``≤ 100 ms``, ``≥ 30 FPS``, ``efficiency ≥ 0.3``,
        ``≤ 40 canary calls``."""
        if self.max_ms is not None:
            return f"≤ {self.max_ms:g} ms"
        if self.min_fps is not None:
            return f"≥ {self.min_fps:g} FPS"
        if self.min_efficiency is not None:
            return f"efficiency ≥ {self.min_efficiency:g}"
        return f"≤ {self.max_units:g} canary calls"

    def matches(self, profile: str, benchmark: str) -> bool:
        return benchmark == self.benchmark and fnmatchcase(profile, self.profile)


@dataclass(frozen=True)
class SpeedupFloor:
    """The least speedup of a model's ``optimized`` over its ``baseline`` on some profiles.

    The claim holds when the lower bound of the bootstrap interval of median(baseline) /
    median(optimized), measured interleaved, is above ``floor``: 1.3 claims "at least 1.3x
    faster", 0.9 only "not more than about 10 % slower".

    Args:
        profile: fnmatch pattern over profile names.
        model: the model, e.g. ``star``.
        measure: ``steady_state`` (one inference) or ``cold_load`` (opening the session).
        floor: the positive factor the interval's lower bound must exceed.
        reason: why this number (a measurement, a published figure); shown when it fails.
    """

    profile: str
    model: str
    measure: str
    floor: float
    reason: str

    def __post_init__(self) -> None:
        for key in ("profile", "model", "reason"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key} = {value!r}: expected a non-empty string")
        if self.measure not in SPEEDUP_MEASURES:
            raise ValueError(
                f"measure = {self.measure!r}: expected one of {', '.join(SPEEDUP_MEASURES)}"
            )
        if not _is_number(self.floor) or not self.floor > 0:
            raise ValueError(f"floor = {self.floor!r}: expected a positive number")
        object.__setattr__(self, "floor", float(self.floor))

    @property
    def specificity(self) -> tuple[bool, int]:
        """How specific the profile pattern is: (has no wildcard, literal characters)."""
        literals, wild = _literal_count(self.profile)
        return (not wild, literals)

    def matches(self, profile: str, model: str, measure: str) -> bool:
        return (model, measure) == (self.model, self.measure) and fnmatchcase(profile, self.profile)


@dataclass(frozen=True)
class MemoryBudget:
    """The most memory one subject may use on the profiles a pattern matches, in fresh-process
    measurements (bench/memory/peak.py). Exactly one limit is given.

    Args:
        profile: fnmatch pattern over profile names, e.g. ``apple-*`` or ``*/ort-cpu``.
        subject: a model, ``mtcnn`` (the cascade) or ``face_mirror`` (the whole pipeline).
        reason: why this number (a product requirement, a measurement); shown when it fails.
        variant: fnmatch pattern over variants (default every variant).
        max_peak_mib: the most the process may hold at its peak, floor included (what the
            system charges and kills for: the product's "< 2 GB per process"), or
        max_added_mib: the most either phase (load, steady) may add above the process's floor
            (what the artifact itself holds, whatever the interpreter and libraries weigh).
    """

    profile: str
    subject: str
    reason: str
    variant: str = "*"
    max_peak_mib: float | None = None
    max_added_mib: float | None = None

    def __post_init__(self) -> None:
        for key in ("profile", "subject", "variant", "reason"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key} = {value!r}: expected a non-empty string")
        given = [key for key in MEMORY_LIMIT_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(MEMORY_LIMIT_KEYS)} (got {len(given)})"
            )
        value = getattr(self, given[0])
        if not _is_number(value) or not value > 0:
            raise ValueError(f"{given[0]} = {value!r}: expected a positive number of MiB")
        object.__setattr__(self, given[0], float(value))

    @property
    def specificity(self) -> tuple[bool, int, bool, int]:
        """The profile pattern's specificity, then the variant pattern's."""
        return (*pattern_specificity(self.profile), *pattern_specificity(self.variant))

    def matches(self, profile: str, subject: str, variant: str) -> bool:
        return (
            subject == self.subject
            and fnmatchcase(profile, self.profile)
            and fnmatchcase(variant, self.variant)
        )

    def measured_mib(self, peaks: MemoryPeaks) -> float:
        """The figure this budget limits: the absolute peak, or the larger phase's addition."""
        if self.max_peak_mib is not None:
            return peaks.peak_bytes / MIB
        return max(p.above_floor_bytes for p in peaks.phases().values()) / MIB

    def allows(self, peaks: MemoryPeaks) -> bool:
        """True when the measurement is within the budget."""
        return self.measured_mib(peaks) <= self.limit_mib

    @property
    def limit_mib(self) -> float:
        return self.max_peak_mib if self.max_peak_mib is not None else self.max_added_mib

    def describe(self) -> str:
        """``peak ≤ 2048 MiB`` or ``≤ 320 MiB above the floor``."""
        if self.max_peak_mib is not None:
            return f"peak ≤ {self.max_peak_mib:g} MiB"
        return f"≤ {self.max_added_mib:g} MiB above the floor"


@dataclass(frozen=True)
class Budgets:
    """Everything ``budgets.toml`` says.

    Args:
        source: the file it was read from (named in errors).
        default_threshold: the gate's regression threshold for benchmarks without an override.
        thresholds: benchmark name (full or short) → regression threshold.
        budgets: the latency / frame-rate budgets, in file order.
        speedup_floors: the optimized-vs-baseline speedup floors, in file order.
        not_gated: benchmark name or ``*`` pattern → why the gate reports it but never judges it.
        ab_default_threshold: the merge gate's threshold for benchmarks without an override.
        ab_load_threshold: the merge gate's threshold of every session-creation benchmark.
        ab_thresholds: merge-gate benchmark name or ``*`` pattern → threshold (steady state).
        ab_memory: the merge gate's memory threshold for benchmarks without an override.
        ab_memory_thresholds: benchmark name or ``*`` pattern → its memory threshold's fraction.
        memory_budgets: the memory budgets, in file order.
        ab_default_mode: how the merge gate takes a benchmark's rounds unless ``ab_modes`` says
            otherwise: ``alternating`` (one process, ABBA) or ``duet`` (two pinned workers).
        ab_modes: benchmark name or ``*`` pattern → its mode.
    """

    source: str
    default_threshold: float = DEFAULT_REGRESSION_THRESHOLD
    thresholds: Mapping[str, float] = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()
    speedup_floors: tuple[SpeedupFloor, ...] = ()
    not_gated: Mapping[str, str] = field(default_factory=dict)
    ab_default_threshold: float = DEFAULT_AB_THRESHOLD
    ab_thresholds: Mapping[str, float] = field(default_factory=dict)
    ab_load_threshold: float = DEFAULT_AB_LOAD_THRESHOLD
    ab_memory: MemoryThreshold = field(default_factory=MemoryThreshold)
    ab_memory_thresholds: Mapping[str, float] = field(default_factory=dict)
    memory_budgets: tuple[MemoryBudget, ...] = ()
    ab_default_mode: str = AB_MODES[0]
    ab_modes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, mode in {"[ab] default_mode": self.ab_default_mode, **self.ab_modes}.items():
            if mode not in AB_MODES:
                raise ValueError(f"mode of {name}: {mode!r}; expected one of {', '.join(AB_MODES)}")
        object.__setattr__(self, "ab_modes", MappingProxyType(dict(self.ab_modes)))
        _check_threshold("default_threshold", self.default_threshold)
        _check_threshold("ab default_threshold", self.ab_default_threshold)
        _check_threshold("ab load_threshold", self.ab_load_threshold)
        for name, value in self.ab_thresholds.items():
            _check_threshold(f"[ab.thresholds] {name!r}", value)
        object.__setattr__(self, "ab_thresholds", MappingProxyType(dict(self.ab_thresholds)))
        for name, value in self.thresholds.items():
            _check_threshold(f"threshold of {name!r}", value)
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))
        object.__setattr__(self, "budgets", tuple(self.budgets))
        object.__setattr__(self, "speedup_floors", tuple(self.speedup_floors))
        object.__setattr__(self, "not_gated", MappingProxyType(dict(self.not_gated)))
        object.__setattr__(
            self, "ab_memory_thresholds", MappingProxyType(dict(self.ab_memory_thresholds))
        )
        object.__setattr__(self, "memory_budgets", tuple(self.memory_budgets))

    def threshold_for(self, benchmark_name: str) -> float:
        """The regression threshold of a benchmark: its override, else the default.

        Args:
            benchmark_name: the benchmark's fullname or short name (``test_x[params]``).
        """
        override = find_by_benchmark_name(self.thresholds, benchmark_name)
        return self.default_threshold if override is None else override

    def with_ab_threshold(self, threshold: float) -> Budgets:
        """These budgets with every merge-gate threshold replaced by ``threshold`` (what
        ``faceperf ab --threshold`` asks for: one threshold for every benchmark)."""
        return replace(
            self, ab_default_threshold=threshold, ab_load_threshold=threshold, ab_thresholds={}
        )

    def ab_threshold_for(self, name: str) -> float:
        """The merge gate's threshold of a benchmark (``star-optimized``, ``mtcnn`` ...): its
        exact name, else the longest matching ``*`` pattern, else the default."""
        override = _by_name_or_pattern(self.ab_thresholds, name)
        return self.ab_default_threshold if override is None else override

    def ab_mode_for(self, name: str) -> str:
        """How the merge gate takes a benchmark's rounds by default (``alternating`` or
        ``duet``): its exact name, else the longest matching ``*`` pattern, else the default."""
        override = _by_name_or_pattern(self.ab_modes, name)
        return self.ab_default_mode if override is None else override

    def ab_memory_threshold_for(self, name: str) -> MemoryThreshold:
        """The merge gate's memory threshold of a benchmark (``pipeline``, ``star-optimized``):
        its override's fraction (exact name, else longest ``*`` pattern), else the default."""
        override = _by_name_or_pattern(self.ab_memory_thresholds, name)
        return self.ab_memory if override is None else replace(self.ab_memory, relative=override)

    def memory_budget_for(self, profile: str, subject: str, variant: str) -> MemoryBudget | None:
        """The memory budget of ``subject``'s ``variant`` on ``profile``, or None when unset.

        Raises:
            BudgetsError: two matching entries are equally specific.
        """
        matching = [b for b in self.memory_budgets if b.matches(profile, subject, variant)]
        where = f"{self.source}: memory budgets of {subject!r} {variant}"
        return _most_specific(matching, profile, where)

    def budget_for(self, profile: str, benchmark: str) -> Budget | None:
        """The budget of ``benchmark`` on ``profile``, or None when the file sets none.

        Args:
            profile: the profile the run measures, e.g. ``apple-m1-pro/coreml``.
            benchmark: the budget name a perf test looks up, e.g. ``star latency``.

        Raises:
            BudgetsError: two matching patterns are equally specific.
        """
        matching = [budget for budget in self.budgets if budget.matches(profile, benchmark)]
        return _most_specific(matching, profile, f"{self.source}: budgets of {benchmark!r}")

    def speedup_floor_for(self, profile: str, model: str, measure: str) -> SpeedupFloor | None:
        """The speedup floor of ``model``'s ``measure`` on ``profile``, or None when unset.

        Args:
            profile: the profile the run measures.
            model: the model, e.g. ``star``.
            measure: ``steady_state`` or ``cold_load``.

        Raises:
            BudgetsError: two matching patterns are equally specific.
        """
        matching = [f for f in self.speedup_floors if f.matches(profile, model, measure)]
        where = f"{self.source}: speedup floors of {model!r} {measure}"
        return _most_specific(matching, profile, where)


def _by_name_or_pattern(table: Mapping[str, float], name: str) -> float | None:
    if name in table:
        return table[name]
    matching = [k for k in table if "*" in k and fnmatchcase(name, k)]
    return table[max(matching, key=len)] if matching else None


_Entry = TypeVar("_Entry", Budget, SpeedupFloor, MemoryBudget)


def _most_specific(matching: list[_Entry], profile: str, where: str) -> _Entry | None:
    ranked = sorted(matching, key=lambda entry: entry.specificity, reverse=True)
    if len(ranked) > 1 and ranked[0].specificity == ranked[1].specificity:
        raise BudgetsError(
            f"{where} with profiles {ranked[0].profile!r} and {ranked[1].profile!r} both match "
            f"{profile!r} equally specifically; make one pattern more specific"
        )
    return ranked[0] if ranked else None


def load_budgets(path: str | os.PathLike[str]) -> Budgets:
    """Read and check a budgets file.

    Args:
        path: the TOML file, normally ``baselines/budgets.toml``.

    Raises:
        BudgetsError: missing, unreadable, not TOML, or an unknown or invalid key or value; the
            message names the file and the offending entry.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BudgetsError(f"{path}: budgets file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetsError(
            f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise BudgetsError(f"{path}: not valid TOML ({exc})") from None
    return _parse(document, str(path))


def _parse(document: dict[str, object], source: str) -> Budgets:
    _check_keys(document, _TOP_KEYS, source, "top level")
    defaults = _table(document, "defaults", source)
    _check_keys(defaults, _DEFAULTS_KEYS, source, "[defaults]")
    default_threshold = defaults.get("regression_threshold", DEFAULT_REGRESSION_THRESHOLD)
    _wrap(_check_threshold, source, "[defaults] regression_threshold", default_threshold)
    thresholds = _table(document, "thresholds", source)
    for name, value in thresholds.items():
        _wrap(_check_threshold, source, f"[thresholds] {name!r}", value)
    not_gated = _table(document, "not_gated", source)
    for name, why in not_gated.items():
        if not isinstance(why, str) or not why.strip():
            raise BudgetsError(
                f"{source}: [not_gated] {name!r} = {why!r}: expected the reason, a non-empty string"
            )
    budgets = _budgets(document.get("budget", []), source)
    floors = _speedup_floors(document.get("speedup_floor", []), source)
    ab = _table(document, "ab", source)
    _check_keys(ab, _AB_KEYS, source, "[ab]")
    ab_default = ab.get("default_threshold", DEFAULT_AB_THRESHOLD)
    _wrap(_check_threshold, source, "[ab] default_threshold", ab_default)
    ab_load = ab.get("load_threshold", DEFAULT_AB_LOAD_THRESHOLD)
    _wrap(_check_threshold, source, "[ab] load_threshold", ab_load)
    ab_thresholds = _table(ab, "thresholds", source)
    for name, value in ab_thresholds.items():
        _wrap(_check_threshold, source, f"[ab.thresholds] {name!r}", value)
    memory, memory_thresholds = _ab_memory(_table(ab, "memory", source), source)
    modes = {"[ab] default_mode": ab.get("default_mode", AB_MODES[0])}
    modes.update({f"[ab.modes] {k!r}": v for k, v in _table(ab, "modes", source).items()})
    for where, mode in modes.items():
        if mode not in AB_MODES:
            raise BudgetsError(
                f"{source}: {where} = {mode!r}: expected one of {', '.join(map(repr, AB_MODES))}"
            )
    return Budgets(
        source,
        default_threshold,
        thresholds,
        budgets,
        floors,
        not_gated,
        ab_default_threshold=ab_default,
        ab_thresholds=ab_thresholds,
        ab_load_threshold=ab_load,
        ab_memory=memory,
        ab_memory_thresholds=memory_thresholds,
        memory_budgets=_memory_budgets(document.get("memory_budget", []), source),
        ab_default_mode=ab.get("default_mode", AB_MODES[0]),
        ab_modes=_table(ab, "modes", source),
    )


def _ab_memory(table: dict[str, object], source: str) -> tuple[MemoryThreshold, dict]:
    _check_keys(table, _AB_MEMORY_KEYS, source, "[ab.memory]")
    default = MemoryThreshold()
    relative = table.get("threshold", default.relative)
    _wrap(_check_threshold, source, "[ab.memory] threshold", relative)
    min_mib = table.get("min_mib", default.min_mib)
    if not _is_number(min_mib) or min_mib < 0:
        raise BudgetsError(f"{source}: [ab.memory] min_mib = {min_mib!r}: expected 0 or more MiB")
    thresholds = _table(table, "thresholds", source)
    for name, value in thresholds.items():
        _wrap(_check_threshold, source, f"[ab.memory.thresholds] {name!r}", value)
    return MemoryThreshold(float(relative), float(min_mib)), thresholds


def _memory_budgets(entries: object, source: str) -> tuple[MemoryBudget, ...]:
    return parse_entries(
        entries,
        source,
        EntryRules(
            "memory_budget", "memory budget", _MEMORY_BUDGET_KEYS, ("reason", "profile", "subject")
        ),
        MemoryBudget,
        identity=lambda b: (
            f"profile {b.profile!r}, subject {b.subject!r} and variant {b.variant!r}"
        ),
        label=lambda e: f"{e['subject']!r}" if isinstance(e.get("subject"), str) else "",
    )


def _budgets(entries: object, source: str) -> tuple[Budget, ...]:
    return parse_entries(
        entries,
        source,
        EntryRules("budget", "budget", _BUDGET_KEYS, ("reason", "profile", "benchmark")),
        Budget,
        identity=lambda b: f"profile {b.profile!r} and benchmark {b.benchmark!r}",
        label=lambda e: f"{e['benchmark']!r}" if isinstance(e.get("benchmark"), str) else "",
    )


def _speedup_floors(entries: object, source: str) -> tuple[SpeedupFloor, ...]:
    return parse_entries(
        entries,
        source,
        EntryRules("speedup_floor", "floor", _FLOOR_KEYS, _FLOOR_KEYS),
        SpeedupFloor,
        identity=lambda f: f"profile {f.profile!r}, model {f.model!r} and measure {f.measure!r}",
        label=lambda e: (
            f"{e['model']!r} {e.get('measure', '?')}" if isinstance(e.get("model"), str) else ""
        ),
    )


@dataclass(frozen=True)
class EntryRules:
    """How the entries of one ``[[table]]`` array are checked.

    Args:
        table: the TOML array's name (``budget``, ``speedup_floor``, ``computeplan``).
        noun: what one entry is called in messages ("a second budget for ...").
        keys: every key an entry may have.
        required: the keys it must have, checked in this order.
    """

    table: str
    noun: str
    keys: tuple[str, ...]
    required: tuple[str, ...]


def parse_entries(
    entries: object,
    source: str,
    rules: EntryRules,
    build: Callable[..., _E],
    identity: Callable[[_E], str],
    label: Callable[[dict], str],
) -> tuple[_E, ...]:
    """The entries of a ``[[table]]`` array, each built by ``build`` from its keys.

    Unknown and missing keys, values ``build`` refuses (ValueError) and two entries with the
    same ``identity`` are BudgetsErrors naming the file and the entry (``#index (label)``).
    """
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BudgetsError(
            f"{source}: {rules.table!r} must be an array of tables ([[{rules.table}]] entries)"
        )
    built: list[_E] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        named = label(entry)
        where = f"[[{rules.table}]] #{index}" + (f" ({named})" if named else "")
        _check_keys(entry, rules.keys, source, where)
        for key in rules.required:
            if key not in entry:
                why = f" (why this {rules.noun}? where do its numbers come from?)"
                raise BudgetsError(
                    f"{source}: {where}: missing {key!r}{why if key == 'reason' else ''}"
                )
        try:
            item = build(**entry)
        except ValueError as exc:
            raise BudgetsError(f"{source}: {where}: {exc}") from None
        if identity(item) in seen:
            raise BudgetsError(f"{source}: {where}: a second {rules.noun} for {identity(item)}")
        seen.add(identity(item))
        built.append(item)
    return tuple(built)


def _table(document: dict[str, object], key: str, source: str) -> dict[str, object]:
    table = document.get(key, {})
    if not isinstance(table, dict):
        raise BudgetsError(f"{source}: {key!r} must be a table ([{key}])")
    return table


def _check_keys(table: Mapping[str, object], allowed: tuple[str, ...], source: str, where: str):
    for key in table:
        if key not in allowed:
            raise BudgetsError(
                f"{source}: {where}: unknown key {key!r}; expected one of {', '.join(allowed)}"
            )


def _wrap(check, source: str, where: str, value: object) -> None:
    try:
        check(where, value)
    except ValueError as exc:
        raise BudgetsError(f"{source}: {exc}") from None


def _check_threshold(what: str, value: object) -> None:
    if not _is_number(value) or not 0 < value < 1:
        raise ValueError(f"{what} = {value!r}: expected a fraction between 0 and 1 (exclusive)")


def _is_number(value: object) -> bool:
    # TOML booleans are Python bools, which are ints; `max_ms = true` is a mistake, not 1 ms.
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def pattern_specificity(pattern: str) -> tuple[bool, int]:
    """How specific a profile pattern is: (has no wildcard, literal characters); higher wins."""
    literals, wild = _literal_count(pattern)
    return (not wild, literals)


def _literal_count(pattern: str) -> tuple[int, bool]:
    """Characters of ``pattern`` that match only themselves, and whether it has a wildcard.

    Follows fnmatch's syntax: ``*`` and ``?`` are wildcards, ``[...]`` (``[!...]``) is a class
    when it is closed, and an unclosed ``[`` is a literal.
    """
    literals, wild, i = 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char in "*?":
            wild = True
        elif char == "[":
            j = i
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":  # a leading ] is part of the class
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 1
            if j < len(pattern):
                wild, i = True, j + 1
            else:
                literals += 1
        else:
            literals += 1
    return literals, wild
