"""Explain a candidate artifact folder against a reference folder, one model and variant.

Both files are found through their folder's manifest (the artifact contract), fed the model's
fixture samples as the manifest declares its input (bench/memory/peak.py's ``write_feed``:
batch 1 where the batch is free, the input's dtype), profiled in alternation and explained.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from faceperf.artifacts.layout import Variant, artifact_path
from faceperf.artifacts.manifest import manifest_path, read_manifest
from faceperf.bench.explain.diff import Explanation, explain
from faceperf.bench.explain.profile import Calls, ProfileTarget, profile_interleaved
from faceperf.errors import ArtifactError

Feeds = Mapping[str, np.ndarray]


def explain_artifacts(
    reference_dir: Path,
    candidate_dir: Path,
    model: str,
    variant: str = "optimized",
    threads: int = 1,
    calls: Calls | int | None = None,
    feeds: Feeds | None = None,
    top: int = 5,
) -> Explanation:
    """Which operations make ``candidate_dir``'s ``model``/``variant`` slower than
    ``reference_dir``'s.

    Args:
        reference_dir, candidate_dir: artifact folders (``<dir>/manifest.json``,
            ``<dir>/<model>/<variant>.onnx``).
        model, variant: the artifact to compare; an ONNX variant.
        threads: ONNX Runtime's intra-op threads (default 1, as the perf suite).
        calls: profiled calls: a ``Calls`` budget, an exact count, or None for ``Calls()``.
        feeds: the inputs of one call, for both sides; None: the fixture samples as each
            side's manifest declares its input.
        top: lines the table shows.

    Raises:
        ArtifactError: a manifest, model, variant or file is missing, or ORT cannot load it.
        InputMismatchError: ORT cannot run a file on its feeds.
        TraceError: the profiler's output is not what was expected.
    """
    parsed = _onnx_variant(variant)
    budget = Calls.exactly(calls) if isinstance(calls, int) else calls
    label = f"{model}/{parsed}"
    targets = []
    for directory in (Path(reference_dir), Path(candidate_dir)):
        path = onnx_file(directory, model, parsed)
        given = feeds if feeds is not None else sample_feeds(directory, model, parsed)
        targets.append(ProfileTarget(path, given, label))
    reference, candidate = profile_interleaved(targets, threads, budget)
    return explain(reference, candidate, top)


def onnx_file(directory: Path, model: str, variant: str) -> Path:
    """The file the manifest of ``directory`` lists for ``model``/``variant``.

    Raises:
        ArtifactError: no manifest, no such entry, or the file is missing.
    """
    manifest = read_manifest(directory)
    try:
        manifest.record(model, variant)
    except ArtifactError as err:
        raise ArtifactError(f"{manifest_path(directory)}: {err}") from None
    path = artifact_path(directory, model, variant)
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; the manifest lists {model}/{variant} as this file")
    return path


def sample_feeds(directory: Path, model: str, variant: str) -> dict[str, np.ndarray]:
    """The fixture samples as ``directory``'s manifest declares ``model``'s input."""
    # Reused rather than copied: the memory bench already writes exactly this input (batch 1
    # where the batch is free, cast to the declared dtype), through a .npy file for its child.
    from faceperf.bench.memory.peak import write_feed

    info = read_manifest(directory).record(model, variant).inputs[0]
    with tempfile.TemporaryDirectory(prefix="faceperf-explain-feed-") as folder:
        try:
            path = write_feed(directory, model, variant, Path(folder))
        except KeyError as err:  # sample_batch knows no such model
            raise ArtifactError(f"{manifest_path(directory)}: {err.args[0]}") from None
        return {info.name: np.load(path)}


def _onnx_variant(variant: str) -> Variant:
    try:
        parsed = Variant.parse(str(variant))
    except ValueError as err:
        raise ArtifactError(str(err)) from None
    if not parsed.is_onnx:
        raise ArtifactError(f"variant {parsed}: expected an ONNX variant (explain profiles ORT)")
    return parsed
