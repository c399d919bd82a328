"""Recording where Core ML places every op of an artifact folder's packages, as the machine's
compute-plan snapshot (``baselines/<machine>.computeplan.json``, see ``drift``).

Needs Core ML compute plans (macOS 14.4+). Shared by ``faceperf coreml snapshot`` and
``faceperf baseline update``: the placement snapshot belongs with the baseline.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from faceperf.artifacts.layout import MANIFEST_NAME
from faceperf.bench.hardware import detect_profile
from faceperf.coreml.drift import computeplan_snapshot_path, update_snapshot
from faceperf.coreml.packages import mlpackages
from faceperf.coreml.plan_macos import load_compute_plan
from faceperf.errors import ArtifactError


@dataclass(frozen=True)
class RecordedPlacements:
    """What a snapshot update wrote.

    Args:
        path: the snapshot file.
        machine: the machine class the placements are recorded for.
        models: the models whose placement was (re)recorded.
    """

    path: Path
    machine: str
    models: tuple[str, ...]

    def describe(self) -> str:
        """One line for the user."""
        return f"placement of {', '.join(self.models)} on {self.machine} written to {self.path}"


def snapshot_placements(
    directory: Path, perf_profile: str | None = None, out: Path | None = None
) -> RecordedPlacements:
    """Record the Core ML placement of every package in ``directory`` in the snapshot of this
    machine's profile (other models' entries are kept).

    Args:
        directory: an artifact folder.
        perf_profile: a profile name to use instead of the detected one.
        out: the snapshot file (default: the profile's, under baselines/).

    Raises:
        ArtifactError: ``directory`` is not an artifact folder, or has no Core ML package.
        BackendUnavailableError: compute plans are unavailable here (not macOS 14.4+).
        ComputePlanError: the snapshot at ``out`` holds another machine's placements.
    """
    if not (directory / MANIFEST_NAME).is_file():
        raise ArtifactError(f"{directory}: no {MANIFEST_NAME}; expected an artifact folder")
    plans = [load_compute_plan(path) for path in mlpackages(directory)]
    profile = detect_profile("coreml", forced=perf_profile).name
    machine = profile.split("/", 1)[0]
    target = out or computeplan_snapshot_path(profile)
    recorded = {"macos": platform.mac_ver()[0], "coremltools": metadata.version("coremltools")}
    update_snapshot(target, machine, plans, recorded)
    return RecordedPlacements(target, machine, tuple(plan.model for plan in plans))
