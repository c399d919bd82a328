"""The accuracy suite's limits, read from one reviewed TOML file (accuracy_tests/tolerances.toml).

Every limit is a number for all variants, or a table with one number per variant
(``{ optimized = 80, optimized_fp16 = 40, coreml = 30 }``). Unknown sections or keys, missing
limits and values of the wrong type are errors naming the file and the key: a typo must not
silently loosen a limit.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

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
}


@dataclass(frozen=True)
class Tolerances:
    """Every limit, by ``(section, key, variant)``."""

    path: Path
    values: dict[tuple[str, str, str], float]

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
    for section, table in document.items():
        if section not in _SCHEMA:
            raise TolerancesError(
                f"{path}: unknown section [{section}]; expected {', '.join(_SCHEMA)}"
            )
        if not isinstance(table, dict):
            raise TolerancesError(f"{path}: [{section}] must be a table")
        for key, raw in table.items():
            if key not in _SCHEMA[section]:
                raise TolerancesError(
                    f"{path}: unknown key [{section}] {key}; expected {', '.join(_SCHEMA[section])}"
                )
            for variant, number in _per_variant(path, f"[{section}] {key}", raw).items():
                values[section, key, variant] = number
    missing = [
        f"[{section}] {key}"
        for section, keys in _SCHEMA.items()
        for key in keys
        if not any((section, key, v) in values for v in VARIANTS)
    ]
    if missing:
        raise TolerancesError(f"{path}: missing limit(s) {', '.join(missing)}")
    return Tolerances(path, values)


def _per_variant(path: Path, where: str, raw: object) -> dict[str, float]:
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
        return {v: _number(path, f"{where}.{v}", raw[v]) for v in VARIANTS}
    number = _number(path, where, raw)
    return dict.fromkeys(VARIANTS, number)


def _number(path: Path, where: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise TolerancesError(f"{path}: {where} is {raw!r}, expected a finite number")
    if raw < 0:
        raise TolerancesError(f"{path}: {where} is {raw!r}, expected a number >= 0")
    return float(raw)
