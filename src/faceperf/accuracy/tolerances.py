"""The accuracy suite's limits, read from one reviewed TOML file (accuracy_tests/tolerances.toml).

Every limit is a number for all variants, or a table with one number per variant
(``{ optimized = 80, optimized_fp16 = 40, coreml = 30 }``). The ``[ranges]`` section holds the
absolute ranges of the models' outputs (faceperf.accuracy.ranges) the same way, each a
``[low, high]`` pair instead of a number. The ``[jitter]`` margins are relative: each becomes a
``ParityLimit``, a ceiling of the reference's own value plus that many percent of it
(faceperf.accuracy.jitter). The ``[bins]`` limits apply to each face-size and pose bin
(faceperf.accuracy.bins). Unknown sections or keys, missing limits and values of
the wrong type are errors naming the file and the key: a typo must not silently loosen a limit.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from faceperf.artifacts.layout import VARIANTS
from faceperf.errors import FaceperfError
from faceperf.paths import repo_root


class TolerancesError(FaceperfError):
    """The tolerances file is missing, malformed, or lacks a limit."""


@dataclass(frozen=True)
class Limit:
    """One metric's limit: the value must be >= (``lower``) or <= the bound."""

    metric: str
    bound: float
    lower: bool  # True: a floor (SNR, IoU, agreement); False: a ceiling (errors, deltas)
    unit: str

    def allows(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value >= self.bound if self.lower else value <= self.bound

    def describe(self) -> str:
        return f"{'>=' if self.lower else '<='} {self.bound:g}{self.unit}"

    def severity(self, value: float) -> float:
        """How far ``value`` lies beyond the bound (> 0: it fails): the larger, the worse."""
        return self.bound - value if self.lower else value - self.bound


@dataclass(frozen=True)
class ParityLimit(Limit):
    """A ceiling set by the reference's own value: ``reference`` plus ``margin_pct`` % of it."""

    reference: float = 0.0
    margin_pct: float = 0.0

    def describe(self) -> str:
        return (
            f"<= {self.bound:.4g}{self.unit}: reference {self.reference:.4g}{self.unit} "
            f"+ {self.margin_pct:g} %"
        )

    def severity(self, value: float) -> float:
        """How far beyond the bound, relative to it: each case has a bound of its own, so the
        worst case is the nearest its own limit, not the largest value. NaN (nothing to
        measure) is the worst of all."""
        if math.isnan(value):
            return math.inf
        return (value - self.bound) / self.bound if self.bound > 0 else value - self.bound


@dataclass(frozen=True)
class Bounds:
    """A closed range ``[low, high]`` a value must lie in, NaN and infinities never; with both
    ends infinite (``FINITE``) the value need only be finite."""

    key: str
    low: float
    high: float
    unit: str = ""

    def allows(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value <= self.high

    def describe(self) -> str:
        if self.finite_only:
            return "finite"
        # 10 digits: a bound set a millionth from a round number must read as it is
        return f"in [{self.low:.10g}, {self.high:.10g}]{self.unit}"

    @property
    def finite_only(self) -> bool:
        return math.isinf(self.low) and math.isinf(self.high)

    def severities(self, values: np.ndarray) -> np.ndarray:
        """How bad each value is, the larger the worse: a value that is not finite is the
        worst (inf); one outside the range is its distance beyond it (> 0); one inside, minus
        its distance to the nearer end. For ``FINITE``, the magnitude: the worst value shown is
        the largest."""
        values = np.asarray(values, np.float64)
        with np.errstate(invalid="ignore"):
            inside = (
                np.abs(values)
                if self.finite_only
                else np.maximum(self.low - values, values - self.high)
            )
        return np.where(np.isfinite(values), inside, np.inf)

    def severity(self, value: float) -> float:
        return float(self.severities(np.asarray(value)))


FINITE = Bounds("finite", -math.inf, math.inf)


# section -> key -> (floor?, unit, keyed by subject?)
_SCHEMA: dict[str, dict[str, tuple[bool, str]]] = {
    "snr_db": {
        "retinaface": (True, " dB"),
        "star": (True, " dB"),
        "mtl": (True, " dB"),
        "mtcnn": (True, " dB"),
    },
    "detection": {
        "min_iou": (True, ""),
        "mean_iou": (True, ""),
        "agreement": (True, ""),
        "borderline_fraction": (False, ""),
    },
    "landmarks": {
        "nme_mean_pct": (False, " %"),
        "nme_max_pct": (False, " %"),
    },
    "multitask": {
        "au_mean_abs": (False, ""),
        "au_max_abs": (False, ""),
        "gaze_max_deg": (False, " deg"),
        "emotion_agreement": (True, ""),
        "emotion_margin": (False, ""),
    },
    # How much more a candidate may jitter than the reference, in % of the reference's jitter.
    "jitter": {
        "landmarks_margin_pct": (False, " %"),
        "boxes_margin_pct": (False, " %"),
    },
    # Per face-size and pose bin (faceperf.accuracy.bins), each bin's worst face against the
    # reference's answer on the same frames.
    "bins": {
        "nme_max_pct": (False, " %"),
        "au_max_abs": (False, ""),
        "gaze_max_deg": (False, " deg"),
        "emotion_agreement": (True, ""),
        "missed_max": (False, " faces"),
        "iou_drop_max": (False, ""),
    },
}
# section -> unit of the values its parity margins bound (jitter: % of a face scale)
_PARITY_UNITS = {"jitter": " %"}
RANGES_SECTION = "ranges"
# [ranges] key -> unit of its bounds. faceperf.accuracy.ranges says which output each judges.
_RANGE_UNITS: dict[str, str] = {
    "score": "",
    "star_landmarks": "",
    "au": "",
    "emotion_probs": "",
    "emotion_sum_error": "",
    "gaze_deg": " deg",
}


@dataclass(frozen=True)
class Tolerances:
    """Every limit, by ``(section, key, variant)``."""

    path: Path
    values: dict[tuple[str, str, str], float]
    ranges: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def limit(self, section: str, key: str, variant: str) -> Limit:
        if (section, key, variant) not in self.values:
            raise TolerancesError(
                f"{self.path}: no limit [{section}] {key} for variant '{variant}'"
            )
        lower, unit = _SCHEMA[section][key]
        name = "snr_db" if section == "snr_db" else key
        return Limit(name, self.values[section, key, variant], lower, unit)

    def value(self, section: str, key: str, variant: str) -> float:
        return self.limit(section, key, variant).bound

    def parity(
        self, section: str, key: str, variant: str, metric: str, reference: float
    ) -> ParityLimit:
        """The ceiling ``reference`` x (1 + margin / 100), the margin being ``[section] key``
        for ``variant``; the limit's unit is the measured value's, not the margin's."""
        margin = self.value(section, key, variant)
        bound = reference * (1.0 + margin / 100.0)
        unit = _PARITY_UNITS.get(section, "")
        return ParityLimit(metric, bound, False, unit, reference=reference, margin_pct=margin)

    def bounds(self, key: str, variant: str) -> Bounds:
        """The ``[ranges]`` bounds ``key`` sets for ``variant``."""
        if (key, variant) not in self.ranges:
            raise TolerancesError(
                f"{self.path}: no range [{RANGES_SECTION}] {key} for variant '{variant}'"
            )
        low, high = self.ranges[key, variant]
        return Bounds(key, low, high, _RANGE_UNITS[key])


def default_tolerances_path() -> Path:
    return repo_root() / "accuracy_tests" / "tolerances.toml"


def load_tolerances(path: Path | None = None) -> Tolerances:
    """Read and validate a tolerances file (default: accuracy_tests/tolerances.toml)."""
    path = path or default_tolerances_path()
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TolerancesError(f"{path}: tolerances file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise TolerancesError(f"{path}: not valid TOML ({error})") from None
    values: dict[tuple[str, str, str], float] = {}
    ranges: dict[tuple[str, str], tuple[float, float]] = {}
    sections = [*_SCHEMA, RANGES_SECTION]
    for section, table in document.items():
        if section not in sections:
            raise TolerancesError(
                f"{path}: unknown section [{section}]; expected {', '.join(sections)}"
            )
        if not isinstance(table, dict):
            raise TolerancesError(f"{path}: [{section}] must be a table")
        keys = _RANGE_UNITS if section == RANGES_SECTION else _SCHEMA[section]
        for key, raw in table.items():
            if key not in keys:
                raise TolerancesError(
                    f"{path}: unknown key [{section}] {key}; expected {', '.join(keys)}"
                )
            where = f"[{section}] {key}"
            if section == RANGES_SECTION:
                for variant, pair in _per_variant(path, where, raw, _pair).items():
                    ranges[key, variant] = pair
            else:
                for variant, number in _per_variant(path, where, raw, _number).items():
                    values[section, key, variant] = number
    missing = [
        f"[{section}] {key}"
        for section, keys in _SCHEMA.items()
        for key in keys
        if not any((section, key, v) in values for v in VARIANTS)
    ]
    missing += [
        f"[{RANGES_SECTION}] {key}" for key in _RANGE_UNITS if (key, VARIANTS[0]) not in ranges
    ]
    if missing:
        raise TolerancesError(f"{path}: missing limit(s) {', '.join(missing)}")
    return Tolerances(path, values, ranges)


_Leaf = TypeVar("_Leaf")


def _per_variant(
    path: Path, where: str, raw: object, leaf: Callable[[Path, str, object], _Leaf]
) -> dict[str, _Leaf]:
    if isinstance(raw, dict):
        unknown = [v for v in raw if v not in VARIANTS]
        if unknown:
            raise TolerancesError(
                f"{path}: {where} names unknown variant(s) {', '.join(unknown)}; expected "
                f"{', '.join(VARIANTS)}"
            )
        missing = [v for v in VARIANTS if v not in raw]
        if missing:
            raise TolerancesError(f"{path}: {where} has no limit for {', '.join(missing)}")
        return {v: leaf(path, f"{where}.{v}", raw[v]) for v in VARIANTS}
    value = leaf(path, where, raw)
    return dict.fromkeys(VARIANTS, value)


def _number(path: Path, where: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise TolerancesError(f"{path}: {where} is {raw!r}, expected a finite number")
    if raw < 0:
        raise TolerancesError(f"{path}: {where} is {raw!r}, expected a number >= 0")
    return float(raw)


def _pair(path: Path, where: str, raw: object) -> tuple[float, float]:
    expected = "expected [low, high]: two finite numbers, low <= high"
    if not isinstance(raw, list) or len(raw) != 2:
        raise TolerancesError(f"{path}: {where} is {raw!r}, {expected}")
    if any(isinstance(x, bool) or not isinstance(x, int | float) for x in raw):
        raise TolerancesError(f"{path}: {where} is {raw!r}, {expected}")
    low, high = (float(x) for x in raw)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise TolerancesError(f"{path}: {where} is {raw!r}, {expected}")
    return low, high
