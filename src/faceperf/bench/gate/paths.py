"""Where a profile's committed baseline and the budgets file live."""

from __future__ import annotations

import re
from pathlib import Path

from faceperf.paths import repo_root


def baselines_dir() -> Path:
    return repo_root() / "baselines"


def budgets_path() -> Path:
    return baselines_dir() / "budgets.toml"


def baseline_path(profile: str) -> Path:
    """``baselines/<profile>.json`` with the profile's "/" made file-safe."""
    return baselines_dir() / (re.sub(r"[^A-Za-z0-9._-]+", "__", profile) + ".json")
