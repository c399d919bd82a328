"""One merge-gate run: match the two artifact sets, measure both sides' memory and sizes, open
both sides, measure time sequentially, and write the report folder (summary.md, ab.json, ab.png)
in one piece."""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from faceperf.artifacts.manifest import Manifest, manifest_path
from faceperf.bench.ab import render
from faceperf.bench.ab.duet import DuetWorkers, duet_unavailable
from faceperf.bench.ab.footprint import footprint_names, measure_memory, size_changes
from faceperf.bench.ab.modes import ALTERNATING, AUTO, DUET
from faceperf.bench.ab.pairings import (
    COMPOSITES,
    AbRequest,
    is_load,
    pairings,
    plan,
    read_sides,
)
from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.sequential import Clock, Outcome, measure_sequential
from faceperf.bench.budgets import Budgets
from faceperf.bench.explain.coreml import explain_or_reason, per_call_ms
from faceperf.bench.explain.run import explain_artifacts
from faceperf.bench.hardware import detect_profile, runtime_versions
from faceperf.errors import FaceperfError
from faceperf.fileio import atomic_write_bytes, atomic_write_json, sha256_path
from faceperf.runtime.backends import parse_backend
from faceperf.verdicts import Verdict

# With opening the sessions, a default run (12 models x variants, mtcnn, pipeline) stays within
# four minutes on a 2-core CI VM.
DEFAULT_MAX_TIME_S = 180.0


def run_ab(
    request: AbRequest,
    budgets: Budgets,
    max_time_s: float = DEFAULT_MAX_TIME_S,
    accepted: Mapping[str, str] | None = None,
    seed: int = 0,
    clock: Clock = time.perf_counter,
    on_look: Callable[[Outcome], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> AbResult:
    """Measure the candidate against the reference and judge every benchmark.

    Args:
        request: the two artifact folders and what to run on them.
        budgets: supplies each benchmark's threshold (``[ab]`` of budgets.toml).
        max_time_s: the time budget of the measuring (seconds, > 0).
        accepted: benchmark name → a reviewer's reason to accept its slowdown.
        seed: seeds the order within rounds.
        clock: seconds; injected so tests control time.
        on_look: progress callback after every look.
        say: told what is being measured before the timing starts (progress).

    Raises:
        FaceperfError (ArtifactError ...): a folder is missing or empty, a manifest does not
            parse, an artifact fails its sha256, a requested model is in neither set.
        MemoryMeasurementError: a memory child failed (an artifact does not load or run).
        ValueError: ``max_time_s`` is not positive, ``accepted`` names an unjudged benchmark.
    """
    if not max_time_s > 0:
        raise ValueError(f"max time {max_time_s!r}: expected a positive number of seconds")
    reference, candidate = read_sides(request)
    matched = plan(request, reference, candidate)
    footprint = footprint_names(request, matched.judged) if request.memory else ()
    if accepted:
        known = (*matched.judged, *footprint)
        unknown = sorted(set(accepted) - set(known))
        if unknown:
            raise FaceperfError(
                f"--accept {', '.join(map(repr, unknown))}: not a benchmark of this run "
                f"(judged: {', '.join(known) or 'none'})"
            )
    modes, why_not_duet = choose_modes(request, budgets, matched.judged)
    in_duet = [name for name in matched.judged if modes[name] == DUET]
    # Opening both sides checks every artifact's sha256 and the backend first, so a broken
    # input is one line naming it before anything is measured.
    with DuetWorkers(request, in_duet) if in_duet else contextlib.nullcontext() as workers:
        calls = pairings(request, matched.judged, lambda name: threshold_of(budgets, name), workers)
        memory, sizes = (), ()
        if request.memory:
            # Before the timing: the children then share the machine with no timed call.
            if say is not None:
                say(f"faceperf ab: memory and size of {len(matched.judged)} benchmarks, both sides")
            sizes = size_changes(request, matched.judged)
            memory = measure_memory(request, matched.judged, budgets.ab_memory_threshold_for)
        measured = measure_sequential(calls, max_time_s, seed=seed, clock=clock, on_look=on_look)
    env = environment(request, seed, max_time_s)
    env["modes"] = modes
    if why_not_duet is not None:
        env["duet_unavailable"] = why_not_duet
    if in_duet:
        env["duet_cores"] = list(workers.cores)
    return AbResult(
        outcomes=measured.outcomes,
        added=matched.added,
        removed=matched.removed,
        accepted=accepted or {},
        timed_out=measured.timed_out,
        elapsed_s=measured.elapsed_s,
        environment=env,
        sides={
            "reference": side_fingerprint(request.reference, reference),
            "candidate": side_fingerprint(request.candidate, candidate),
        },
        memory=memory,
        sizes=sizes,
    )


def choose_modes(
    request: AbRequest, budgets: Budgets, names: Sequence[str]
) -> tuple[dict[str, str], str | None]:
    """Each benchmark's mode, and why none is a duet when one was wanted but is unavailable.

    ``request.mode`` ``auto`` takes each benchmark's mode from budgets.toml; where a duet is
    unavailable (duet.duet_unavailable) those benchmarks are measured alternating and the
    reason is returned. Session creation (``-load``) is always alternating: two sessions created
    at once compete for the memory bus more than they share noise.

    Raises:
        FaceperfError: ``duet`` was asked for explicitly and is unavailable here.
    """
    wanted = {
        name: ALTERNATING
        if is_load(name)
        else (budgets.ab_mode_for(name) if request.mode == AUTO else request.mode)
        for name in names
    }
    if DUET not in wanted.values():
        return wanted, None
    unavailable = duet_unavailable(request)
    if unavailable is None:
        return wanted, None
    if request.mode == DUET:
        raise FaceperfError(f"--mode duet: {unavailable}")
    return dict.fromkeys(names, ALTERNATING), unavailable


def explain_slower(
    request: AbRequest, result: AbResult, say: Callable[[str], None] | None = None
) -> AbResult:
    """``result`` with the operations behind each ``slower`` benchmark (bench/explain): the
    benchmark's artifact, or a composite's models whose files differ, profiled on both sides
    with ONNX Runtime's profiler (never in the timed runs: profiling adds its own cost).

    An artifact whose file is byte-identical on both sides is not profiled: nothing in it can
    explain the slowdown. A Core ML package is not profiled (ORT's profiler cannot read it):
    its compute plans are compared instead (bench/explain/coreml.py, macOS 14.4+); elsewhere
    its explanation is a note saying why there is none.
    """
    if not any(o.verdict is Verdict.SLOWER for o in result.outcomes):
        return result  # nothing to explain: no manifest to read again
    reference, candidate = read_sides(request)
    explanations = {}
    for outcome in result.outcomes:
        if outcome.verdict is not Verdict.SLOWER or is_load(outcome.name):
            continue
        if outcome.name in COMPOSITES:
            variant = str(request.gated_variant)
            models = COMPOSITES[outcome.name]
        else:
            model, variant = outcome.name.rsplit("-", 1)
            models = (model,)
        found = []
        for model in models:
            before = reference.record(model, variant).sha256
            if before == candidate.record(model, variant).sha256:
                continue
            if variant == "coreml":
                # A composite's time is its models' together: no share of it is one model's.
                alone = outcome.name not in COMPOSITES
                measured = per_call_ms(outcome.reference_s, outcome.candidate_s) if alone else None
                units = parse_backend(request.backend).compute_units
                if say is not None:
                    say(f"faceperf ab: explaining {outcome.name}: compute plans of {model}")
                found.append(
                    explain_or_reason(request.reference, request.candidate, model, measured, units)
                )
                continue
            if say is not None:
                say(f"faceperf ab: explaining {outcome.name}: profiling {model}/{variant}")
            found.append(
                explain_artifacts(
                    request.reference, request.candidate, model, variant, request.threads
                )
            )
        explanations[outcome.name] = tuple(found)
    return dataclasses.replace(result, explanations=explanations)


def threshold_of(budgets: Budgets, name: str) -> float:
    """A merge-gate benchmark's threshold from the budgets file's ``[ab]`` table."""
    return budgets.ab_load_threshold if is_load(name) else budgets.ab_threshold_for(name)


def environment(request: AbRequest, seed: int, max_time_s: float) -> dict[str, object]:
    """Where and how it was measured: enough to tell two runs' conditions apart."""
    profile = detect_profile(request.backend)
    return {
        "profile": profile.name,
        "cpu": str(profile.facts.cpu) if profile.facts.cpu else profile.facts.cpu_brand,
        "cores": profile.facts.cores,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": runtime_versions(),
        "backend": request.backend,
        "threads": request.threads,
        "memory": request.memory,
        "variants": list(request.variants),
        "seed": seed,
        "max_time_s": max_time_s,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def side_fingerprint(directory: Path, manifest: Manifest) -> dict[str, object]:
    """The artifact set: its folder, manifest hash and every artifact's recorded sha256."""
    return {
        "directory": str(directory),
        "manifest_sha256": sha256_path(manifest_path(directory)),
        "artifacts": {
            f"{model}/{variant}": record.sha256
            for model, model_record in sorted(manifest.models.items())
            for variant, record in sorted(model_record.variants.items())
        },
    }


def write_ab_report(directory: Path, result: AbResult, strict: bool = False) -> Path:
    """Write ``summary.md``, ``ab.json`` and ``ab.png`` into a new folder ``directory``.

    The folder is assembled beside its final place and renamed into it, so an interrupted
    write leaves no half-written report.
    """
    if directory.exists():
        raise FaceperfError(f"report folder {directory} already exists")
    staging = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write_ab_files(staging, result, strict)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def write_ab_files(directory: Path, result: AbResult, strict: bool = False) -> None:
    """``summary.md``, ``ab.json``, ``ab.png`` and the explanations into an existing folder,
    each atomically."""
    write_ab_data(directory, result)
    atomic_write_bytes(directory / "summary.md", render.markdown(result, strict).encode())


def write_ab_data(directory: Path, result: AbResult) -> None:
    """``ab.json`` and ``ab.png`` into an existing folder, each atomically: the merge gate's
    files in a report whose summary.md holds other gates too."""
    atomic_write_json(directory / "ab.json", result.to_json())
    render.plot(result, directory / "ab.png")
    for name, found in result.explanations.items():
        if found:
            text = "\n\n".join("\n".join(e.lines()) for e in found) + "\n"
            atomic_write_bytes(directory / render.explanation_file(name), text.encode())
