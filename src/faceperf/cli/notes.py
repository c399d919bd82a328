"""Notes the commands print beside their results (on stderr, so JSON on stdout stays clean)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path


def warn_if_surrogate(directory: Path, models: Iterable[str]) -> None:
    """Say when results come from surrogate weights (meaningless as face analysis)."""
    from faceperf.artifacts.manifest import read_manifest

    fake = read_manifest(directory).surrogate_models(models)
    if fake:
        print(
            f"note: {', '.join(fake)} use SURROGATE weights (no real checkpoint in weights/): "
            "the numbers exercise the pipeline but are not real face analysis",
            file=sys.stderr,
        )
