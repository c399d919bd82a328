"""Finding the Core ML packages to plan, lint or snapshot: one .mlpackage, or every one of an
artifact folder."""

from __future__ import annotations

from pathlib import Path

from faceperf.artifacts.layout import MANIFEST_NAME
from faceperf.errors import ArtifactError


def mlpackages(target: Path) -> list[Path]:
    """The ``<model>/coreml.mlpackage`` files of an artifact folder, or ``[target]`` itself.

    Raises:
        ArtifactError: ``target`` is an artifact folder without any Core ML package.
    """
    if (target / MANIFEST_NAME).is_file():
        found = sorted(target.glob("*/coreml.mlpackage"))
        if not found:
            raise ArtifactError(f"{target}: no <model>/coreml.mlpackage in this artifact folder")
        return found
    return [target]
