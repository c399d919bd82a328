"""Storing a profile's baseline: perf runs pooled into one file, validated before anything is
replaced, with what changed since the previous baseline.

Used by ``faceperf baseline update``; the perf runs are the pytest perf suite, run here in
subprocesses so that each is one clean process like a CI job.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from faceperf.bench.errors import BaselineError
from faceperf.bench.gate.pooling import pool_runs
from faceperf.bench.gate.storage import (
    BenchmarkRun,
    load_document,
    load_run,
    parse_run,
    save_run_json,
)
from faceperf.errors import FaceperfError
from faceperf.paths import repo_root
from faceperf.runtime.backends import BackendChoice, backend_name

Say = Callable[[str], None]


@dataclass(frozen=True)
class StoredBaseline:
    """A baseline just written.

    Args:
        path: the baseline file.
        run: the pooled run it holds.
        runs: how many perf runs were pooled.
        previous: the baseline it replaced; None when there was none, or it was unreadable.
    """

    path: Path
    run: BenchmarkRun
    runs: int
    previous: BenchmarkRun | None

    @property
    def added(self) -> tuple[str, ...]:
        """Benchmarks not in the previous baseline, by name (none without one)."""
        if self.previous is None:
            return ()
        return tuple(sorted(set(self.run.benchmarks) - set(self.previous.benchmarks)))

    @property
    def removed(self) -> tuple[str, ...]:
        """Benchmarks of the previous baseline this one lacks, by name (none without one)."""
        if self.previous is None:
            return ()
        return tuple(sorted(set(self.previous.benchmarks) - set(self.run.benchmarks)))


def perf_suite_runs(
    runs: int, backend: str | BackendChoice, perf_profile: str | None, say: Say
) -> list[Path]:
    """Run the perf suite ``runs`` times, each in its own process, without the gate.

    Args:
        runs: how many runs (at least 1).
        backend: the backend the suite measures.
        perf_profile: a forced profile name, or None for the detected one.
        say: receives one line per run (the command), before it starts.

    Returns:
        The results.json file of each run.

    Raises:
        FaceperfError: a run crashed or wrote no results.
    """
    folder = Path(tempfile.mkdtemp(prefix="faceperf-baseline-"))
    sources = []
    for index in range(runs):
        source = folder / f"results{index}.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "perf",
            "-q",
            "--perf-no-gate",
            f"--perf-backend={backend_name(backend)}",
            f"--benchmark-json={source}",
        ]
        if perf_profile:
            command.append(f"--perf-profile={perf_profile}")
        say(f"run {index + 1} of {runs}: {' '.join(command)}")
        finished = subprocess.run(command, cwd=repo_root())
        # Exit 1 is a failed test (a budget, a speedup floor): the timings are still good.
        if finished.returncode not in (0, 1, 5) or not source.exists():
            raise FaceperfError(
                f"the perf run failed (exit {finished.returncode}); baseline left unchanged"
            )
        sources.append(source)
    return sources


def store_baseline(
    sources: Sequence[Path], profile: str, target: Path, allow_mismatch: bool, warn: Say
) -> StoredBaseline:
    """Pool the runs in ``sources`` and write them atomically as ``profile``'s baseline.

    Every source is validated before the file is replaced.

    Args:
        sources: results.json files of perf runs.
        profile: the profile the baseline is for.
        target: the baseline file.
        allow_mismatch: store runs measured on another profile.
        warn: told when the previous baseline is unreadable (it is replaced all the same).

    Raises:
        FaceperfError: a source is unreadable, of another profile (without
            ``allow_mismatch``), empty, or the runs cannot be pooled.
    """
    documents = []
    for source in sources:
        document = load_document(source)
        run = parse_run(document, str(source))
        if run.profile != profile and not allow_mismatch:
            raise FaceperfError(
                f"{source} was measured on {run.profile}, not {profile}; "
                "pass --allow-mismatch to store it anyway"
            )
        if not run.benchmarks:
            # An empty baseline would make the gate pass everything as "added".
            raise FaceperfError(f"{source} measured no benchmarks; baseline left unchanged")
        documents.append(document)
    document = pool_runs(documents, [str(s) for s in sources])
    pooled = parse_run(document, str(target))
    previous = _previous_baseline(target, warn)
    save_run_json(target, document)
    return StoredBaseline(target, pooled, len(sources), previous)


def _previous_baseline(target: Path, warn: Say) -> BenchmarkRun | None:
    """The baseline about to be replaced, or None when there is none or it is unreadable."""
    if not target.exists():
        return None
    try:
        return load_run(target)
    except BaselineError as err:
        # Replacing a broken baseline is what an update is for; say so and go on.
        warn(f"the previous baseline is unreadable and is replaced ({err})")
        return None
