"""A baseline pooled from several perf runs of the same profile.

One run is one draw of the machine's state: on a shared runner a whole run can be 20 % slow,
and a baseline taken from it makes every later run look fast (or, from a fast run, slow). The
samples of several runs together describe the machine's usual state, so the gate measures a
later run against the middle of what this machine does, not against one extreme.

Only runs of one profile, runtime and CPU pool: samples of an AMD EPYC and an Intel Xeon
together describe neither machine, and the gate could no longer tell which CPU the baseline
belongs to.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Mapping, Sequence

from faceperf.bench.errors import BaselineError
from faceperf.bench.gate.canary import CANARY_KEY
from faceperf.bench.gate.storage import CPU_KEY, FACEPERF_KEY, BenchmarkRun, parse_run


def pool_runs(documents: Sequence[Mapping[str, object]], sources: Sequence[str]) -> dict:
    """One pytest-benchmark document with, per benchmark, the raw samples (and canary pulses)
    of every run that measured it; summary statistics recomputed so that
    ``pytest-benchmark compare`` reads the pooled numbers.

    The pooled document is the first run's, so it keeps that run's machine info; the CPU all
    runs were measured on is also written to faceperf's own field (``machine_info.faceperf.cpu``)
    when only pytest-benchmark's record named it.

    Args:
        documents: decoded pytest-benchmark JSON runs of one profile, runtime versions and CPU.
        sources: their file names, for messages.

    Raises:
        BaselineError: no runs, or runs of different profiles, runtime versions or CPUs (or a
            run that records its CPU with one that does not, since they cannot be told apart).
    """
    if not documents:
        raise BaselineError("no runs to pool")
    runs = [parse_run(doc, src) for doc, src in zip(documents, sources, strict=True)]
    first = runs[0]
    for run, source in zip(runs[1:], sources[1:], strict=True):
        if (run.profile, dict(run.runtime_versions)) != (
            first.profile,
            dict(first.runtime_versions),
        ):
            raise BaselineError(
                f"{source} was measured on {run.profile} with {dict(run.runtime_versions)}, "
                f"{sources[0]} on {first.profile} with {dict(first.runtime_versions)}: "
                "only runs of one profile and runtime pool"
            )
        _check_same_cpu(first, sources[0], run, source)
    pooled = copy.deepcopy(dict(documents[0]))
    if first.cpu is not None:
        faceperf = pooled["machine_info"][FACEPERF_KEY]
        faceperf[CPU_KEY] = first.cpu.to_json()
    others = [{entry["fullname"]: entry for entry in doc["benchmarks"]} for doc in documents[1:]]
    for entry in pooled["benchmarks"]:
        extra = [other[entry["fullname"]] for other in others if entry["fullname"] in other]
        data = list(entry["stats"]["data"])
        pulses = entry.get("extra_info", {}).get(CANARY_KEY)
        for more in extra:
            data += more["stats"]["data"]
            more_pulses = more.get("extra_info", {}).get(CANARY_KEY)
            pulses = pulses + more_pulses if pulses is not None and more_pulses else None
        entry["stats"] = _stats(data, entry["stats"].get("iterations", 1))
        if pulses is not None and len(pulses) == len(data):
            entry["extra_info"][CANARY_KEY] = pulses
        else:
            entry.get("extra_info", {}).pop(CANARY_KEY, None)
        entry.setdefault("extra_info", {})["pooled_runs"] = 1 + len(extra)
    return pooled


def _check_same_cpu(first: BenchmarkRun, first_source: str, run: BenchmarkRun, source: str) -> None:
    same = (run.cpu is None and first.cpu is None) or (
        first.cpu is not None and first.cpu.same_as(run.cpu)
    )
    if not same:
        raise BaselineError(
            f"{source} was measured on {_cpu_text(run)}, {first_source} on {_cpu_text(first)}: "
            "only runs of one CPU pool"
        )


def _cpu_text(run: BenchmarkRun) -> str:
    return "a CPU it does not record" if run.cpu is None else f"CPU {run.cpu}"


def _stats(data: list[float], iterations: int) -> dict:
    """pytest-benchmark's summary fields for ``data`` (its own definitions)."""
    ordered = sorted(data)
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    iqr = q3 - q1
    mean = statistics.fmean(ordered)
    stddev = statistics.stdev(ordered) if len(ordered) > 1 else 0.0
    low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    inside = [x for x in ordered if low <= x <= high]
    iqr_outliers = len(ordered) - len(inside)
    stddev_outliers = sum(1 for x in ordered if abs(x - mean) > stddev)
    return {
        "min": ordered[0],
        "max": ordered[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": len(ordered),
        "median": statistics.median(ordered),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": inside[0] if inside else ordered[0],
        "hd15iqr": inside[-1] if inside else ordered[-1],
        "ops": 1.0 / mean if mean else 0.0,
        "total": sum(ordered),
        "data": data,
        "iterations": iterations,
    }
