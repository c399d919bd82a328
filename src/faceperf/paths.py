"""Where the repository's data lives (fixtures, weights, baselines), overridable for tests."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout faceperf runs from: ``$FACEPERF_ROOT`` or the folder above ``src/``."""
    env = os.environ.get("FACEPERF_ROOT")
    return Path(env) if env else Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    return repo_root() / "fixtures"


def weights_dir() -> Path:
    return repo_root() / "weights"


def default_artifacts_dir() -> Path:
    return weights_dir() / "build"


def cache_dir() -> Path:
    """Downloaded packages and fitted surrogates: ``$FACEPERF_CACHE`` or ``weights/.cache``."""
    env = os.environ.get("FACEPERF_CACHE")
    return Path(env) if env else weights_dir() / ".cache"
