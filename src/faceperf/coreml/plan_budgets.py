"""Neural Engine placement floors per model, read from ``baselines/budgets.toml``.

Layout (beside the latency budgets; ``faceperf.bench.budgets`` checks the rest of the file)::

    [[computeplan]]
    profile = "apple-*"                 # fnmatch pattern over profile names
    model = "star"
    min_ane_coverage = 0.9965           # share of compute ops preferring the Neural Engine
    max_partitions = 5                  # optional: runs of one device along the program
    reason = "optimisation report: 99.7 % of 659 ops on the ANE"

As for budgets, the most specific matching pattern wins and a tie is an error.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from faceperf.bench.budgets import EntryRules, load_budgets, parse_entries, pattern_specificity
from faceperf.bench.errors import BudgetsError

_KEYS = ("profile", "model", "min_ane_coverage", "max_partitions", "reason")


@dataclass(frozen=True)
class PlanBudget:
    """The least Neural Engine coverage, and optionally the most partitions, of one model.

    Args:
        profile: fnmatch pattern over profile names, e.g. ``apple-*``.
        model: the model, e.g. ``star``.
        reason: where the numbers come from; shown when a gate fails.
        min_ane_coverage: share (0..1] of compute ops whose preferred device is the ANE.
        max_partitions: the most runs of one device along the program, or None (not gated).
    """

    profile: str
    model: str
    reason: str
    min_ane_coverage: float | None = None
    max_partitions: int | None = None

    def __post_init__(self) -> None:
        for key in ("profile", "model", "reason"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key} = {value!r}: expected a non-empty string")
        if self.min_ane_coverage is None and self.max_partitions is None:
            raise ValueError("give min_ane_coverage, max_partitions or both")
        coverage = self.min_ane_coverage
        if coverage is not None:
            if not _is_number(coverage) or not 0 < coverage <= 1:
                raise ValueError(
                    f"min_ane_coverage = {coverage!r}: expected a fraction in (0, 1], "
                    "e.g. 0.997 for 99.7 %"
                )
            object.__setattr__(self, "min_ane_coverage", float(coverage))
        ceiling = self.max_partitions
        if ceiling is not None and (
            isinstance(ceiling, bool) or not isinstance(ceiling, int) or ceiling < 1
        ):
            raise ValueError(f"max_partitions = {ceiling!r}: expected a whole number >= 1")

    def matches(self, profile: str, model: str) -> bool:
        return model == self.model and fnmatchcase(profile, self.profile)


@dataclass(frozen=True)
class PlanBudgets:
    """Every ``[[computeplan]]`` entry of a budgets file."""

    source: str
    budgets: tuple[PlanBudget, ...] = ()

    def for_model(self, profile: str, model: str) -> PlanBudget | None:
        """The placement budget of ``model`` on ``profile``, or None when the file sets none.

        Raises:
            BudgetsError: two matching patterns are equally specific.
        """
        ranked = sorted(
            (b for b in self.budgets if b.matches(profile, model)),
            key=lambda b: pattern_specificity(b.profile),
            reverse=True,
        )
        if len(ranked) > 1 and pattern_specificity(ranked[0].profile) == pattern_specificity(
            ranked[1].profile
        ):
            raise BudgetsError(
                f"{self.source}: computeplan budgets of {model!r} with profiles "
                f"{ranked[0].profile!r} and {ranked[1].profile!r} both match {profile!r} "
                "equally specifically; make one pattern more specific"
            )
        return ranked[0] if ranked else None


def load_plan_budgets(path: str | os.PathLike[str]) -> PlanBudgets:
    """Read the ``[[computeplan]]`` entries of a budgets file (the whole file is checked).

    Raises:
        BudgetsError: the file is missing or invalid, or an entry has an unknown, missing or
            invalid key; the message names the file and the entry.
    """
    path = Path(path)
    load_budgets(path)  # the rest of the file must be valid too, with its own messages
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    return PlanBudgets(str(path), _entries(document.get("computeplan", []), str(path)))


def _entries(entries: object, source: str) -> tuple[PlanBudget, ...]:
    return parse_entries(
        entries,
        source,
        EntryRules("computeplan", "entry", _KEYS, ("profile", "model", "reason")),
        PlanBudget,
        identity=lambda b: f"profile {b.profile!r} and model {b.model!r}",
        label=lambda e: f"{e['model']!r}" if isinstance(e.get("model"), str) else "",
    )


def _is_number(value: object) -> bool:
    # TOML booleans are Python bools, which are ints: `min_ane_coverage = true` is a mistake.
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
