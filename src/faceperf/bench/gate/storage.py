"""Benchmark runs on disk: pytest-benchmark JSON with raw samples and the faceperf profile.

A baseline is the file pytest-benchmark writes with ``--benchmark-json`` (or ``--benchmark-save``
with ``--benchmark-save-data``), unchanged, so ``pytest-benchmark compare`` still reads it. faceperf
needs two things on top of pytest-benchmark's own fields:

- ``benchmarks[i].stats.data``: the raw per-round durations in seconds, because the gate tests
  distributions (Mann-Whitney U), not one summary statistic;
- ``machine_info.faceperf = {"profile": ..., "runtime_versions": {...}, "cpu": {...}}``: the
  hardware profile, runtime versions and CPU (vendor and model) the run was measured with,
  written by faceperf's pytest plugin through ``pytest_benchmark_update_machine_info`` (see
  :func:`faceperf_machine_info`), because runs of different profiles, runtimes or CPUs must
  never be compared. Files recorded before faceperf stored the CPU still name it in
  pytest-benchmark's own ``machine_info.cpu`` (py-cpuinfo's ``vendor_id_raw`` / ``brand_raw``),
  which is read instead.

Everything else in the document (commit info, pytest-benchmark's summary stats, options) is kept
in the file but not read.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from faceperf.bench.errors import BaselineError
from faceperf.bench.hardware import CpuIdentity
from faceperf.fileio import atomic_write_json

FACEPERF_KEY = "faceperf"  # the key under machine_info that faceperf owns
CPU_KEY = "cpu"  # under machine_info.faceperf: {"vendor": ..., "model": ...}
# Under a latency benchmark's extra_info: the artifact's peak memory (bench/memory/peak.py's
# record) and its bytes on disk, so that every committed baseline carries them.
MEMORY_KEY = "memory"
SIZE_KEY = "size_bytes"
SIZE_SUFFIX = ":size"  # the baseline gate's row of an artifact's size: "<fullname>:size"

V = TypeVar("V")


@dataclass(frozen=True)
class BenchmarkSamples:
    """The raw samples of one benchmark.

    Args:
        name: pytest-benchmark's ``fullname`` (``path::test[params]``), unique within a run.
        samples_s: one duration per round, in seconds (pytest-benchmark divides each round by
            its iterations, so these are per-call times).
        extra_info: what the test recorded in ``benchmark.extra_info`` (model, variant, ...).
    """

    name: str
    samples_s: tuple[float, ...]
    extra_info: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"benchmark name {self.name!r}: expected a non-empty string")
        samples = tuple(self.samples_s)
        if not samples:
            raise ValueError(f"benchmark {self.name}: no samples")
        for value in samples:
            # bool is an int to Python, but `true` in a sample list is corruption, not a time.
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"benchmark {self.name}: sample {value!r} is not a number")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"benchmark {self.name}: sample {value!r} is not a positive duration in seconds"
                )
        if not isinstance(self.extra_info, Mapping):
            raise ValueError(f"benchmark {self.name}: extra_info must be a mapping")
        object.__setattr__(self, "samples_s", tuple(float(value) for value in samples))
        # A read-only copy: a record must not change because its source dict did.
        object.__setattr__(self, "extra_info", MappingProxyType(dict(self.extra_info)))

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)


@dataclass(frozen=True)
class BenchmarkRun:
    """One perf run: what was measured, where, and with which runtimes.

    Args:
        profile: the hardware profile name, e.g. ``linux-x86_64-avx512/ort-cpu``.
        runtime_versions: runtime package → version (``onnxruntime`` → ``1.31.1``).
        machine_info: pytest-benchmark's ``machine_info`` as recorded (kept for reports).
        benchmarks: benchmark name → its samples; each key equals its value's ``name``. May be
            empty: an empty run loads, and the gate decides what that means.
        cpu: the CPU the run was measured on; None when the file does not say (the gate then
            cannot check it and says so).
    """

    profile: str
    runtime_versions: Mapping[str, str]
    machine_info: Mapping[str, object]
    benchmarks: Mapping[str, BenchmarkSamples]
    cpu: CpuIdentity | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.profile, str) or not self.profile:
            raise ValueError(f"profile {self.profile!r}: expected a non-empty string")
        if not isinstance(self.runtime_versions, Mapping):
            raise ValueError("runtime_versions must be a mapping of package name to version")
        for package, version in self.runtime_versions.items():
            if not isinstance(package, str) or not isinstance(version, str):
                raise ValueError(
                    f"runtime version {package!r}: {version!r}: expected strings for both"
                )
        if not isinstance(self.machine_info, Mapping):
            raise ValueError("machine_info must be a mapping")
        if self.cpu is not None and not isinstance(self.cpu, CpuIdentity):
            raise ValueError(f"cpu {self.cpu!r}: expected a CpuIdentity or None")
        for key, samples in self.benchmarks.items():
            if not isinstance(samples, BenchmarkSamples) or samples.name != key:
                raise ValueError(f"benchmarks[{key!r}] must be the BenchmarkSamples named {key!r}")
        object.__setattr__(self, "runtime_versions", MappingProxyType(dict(self.runtime_versions)))
        object.__setattr__(self, "machine_info", MappingProxyType(dict(self.machine_info)))
        object.__setattr__(self, "benchmarks", MappingProxyType(dict(self.benchmarks)))

    @classmethod
    def of(
        cls,
        profile: str,
        runtime_versions: Mapping[str, str],
        benchmarks: Iterable[BenchmarkSamples],
        machine_info: Mapping[str, object] | None = None,
        cpu: CpuIdentity | None = None,
    ) -> BenchmarkRun:
        """Build a run from a list of samples (names must be unique).

        Args:
            profile: the hardware profile name.
            runtime_versions: runtime package → version.
            benchmarks: the benchmarks' samples.
            machine_info: pytest-benchmark's machine_info; by default only the faceperf section
                (with ``cpu`` in it). Kept as given: ``cpu`` is not read from it here (that is
                :func:`parse_run`'s job).
            cpu: the CPU the run was measured on, if known.
        """
        by_name: dict[str, BenchmarkSamples] = {}
        for samples in benchmarks:
            if samples.name in by_name:
                raise ValueError(f"benchmark {samples.name} appears twice")
            by_name[samples.name] = samples
        if machine_info is None:
            machine_info = {FACEPERF_KEY: faceperf_machine_info(profile, runtime_versions, cpu)}
        return cls(profile, runtime_versions, machine_info, by_name, cpu)


def faceperf_machine_info(
    profile: str, runtime_versions: Mapping[str, str], cpu: CpuIdentity | None = None
) -> dict[str, object]:
    """The section faceperf's pytest plugin stores as ``machine_info["faceperf"]``.

    One definition of the layout that :func:`parse_run` reads back.

    Args:
        profile: the hardware profile name.
        runtime_versions: runtime package → version.
        cpu: the CPU measured on; left out when unknown, so that pytest-benchmark's own record
            (py-cpuinfo may know more than faceperf's probe) is read instead.
    """
    section: dict[str, object] = {"profile": profile, "runtime_versions": dict(runtime_versions)}
    if cpu is not None:
        section[CPU_KEY] = cpu.to_json()
    return section


def short_name(fullname: str) -> str:
    """The test part of a benchmark's fullname: ``test_x[p]`` of ``perf_tests/f.py::test_x[p]``."""
    return fullname.rsplit("::", 1)[-1]


def find_by_benchmark_name(table: Mapping[str, V], fullname: str) -> V | None:
    """Look a benchmark up in a table keyed by full or short name, or by a ``*`` pattern.

    Reviewed files (budgets, accepted regressions) name benchmarks the way pytest-benchmark's
    table shows them, ``test_x[params]``; runs store the fullname with its path. Both must work.
    A key with ``*`` (any run of characters; nothing else is special, so the brackets of
    parametrised names stay literal) matches short names; an exact name beats any pattern and
    the longest matching pattern wins.

    Args:
        table: benchmark name or pattern → value.
        fullname: the benchmark's fullname, as in :attr:`BenchmarkSamples.name`.
    """
    if fullname in table:
        return table[fullname]
    short = short_name(fullname)
    if short in table:
        return table[short]
    matching = [key for key in table if "*" in key and _pattern(key).fullmatch(short)]
    return table[max(matching, key=len)] if matching else None


def _pattern(key: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in key.split("*")))


def parse_run(document: object, source: str) -> BenchmarkRun:
    """Read a pytest-benchmark JSON document (already decoded) into a :class:`BenchmarkRun`.

    Args:
        document: the decoded JSON.
        source: the file name (or another label) that error messages start with.

    Raises:
        BaselineError: the document is not a pytest-benchmark run with raw samples and a
            faceperf profile, or its faceperf CPU record is malformed.
    """
    if not isinstance(document, Mapping):
        raise BaselineError(f"{source}: expected a pytest-benchmark JSON object at the top level")
    profile, runtime_versions = _faceperf_section(document.get("machine_info"), source)
    cpu = _cpu(document["machine_info"], source)
    entries = document.get("benchmarks")
    if not isinstance(entries, list):
        raise BaselineError(f"{source}: no 'benchmarks' list; not a pytest-benchmark JSON file")
    samples = [_parse_benchmark(entry, index, source) for index, entry in enumerate(entries)]
    try:
        return BenchmarkRun.of(profile, runtime_versions, samples, document["machine_info"], cpu)
    except ValueError as exc:
        raise BaselineError(f"{source}: {exc}") from None


def load_run(path: str | os.PathLike[str]) -> BenchmarkRun:
    """Load a baseline or results file.

    Args:
        path: a pytest-benchmark JSON file recorded with raw samples by faceperf's plugin.

    Raises:
        BaselineError: missing, unreadable, invalid or truncated JSON, or wrong structure.
    """
    path = Path(path)
    return parse_run(load_document(path), str(path))


def load_document(path: str | os.PathLike[str]) -> object:
    """The JSON document of a baseline or results file, not yet checked (see ``parse_run``).

    Raises:
        BaselineError: missing, unreadable, invalid or truncated JSON.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read ({_reason(exc)})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "the file may be truncated"
        ) from None


def save_run_json(path: str | os.PathLike[str], document: Mapping[str, object]) -> None:
    """Write a run document atomically, after checking it would load back.

    The document is written to a temporary file beside ``path``, synced and renamed over it, so
    a crash or a kill leaves either the old file or the new one, never half of one.

    Args:
        path: where to write (its folder is created).
        document: a pytest-benchmark JSON document with raw samples and the faceperf section.

    Raises:
        BaselineError: the document is not a valid run (nothing is written), or writing failed
            (the previous file is left as it was).
    """
    path = Path(path)
    parse_run(document, str(path))  # never commit a baseline that load_run would refuse
    try:
        atomic_write_json(path, document)
    except (OSError, TypeError, ValueError) as exc:
        # TypeError / ValueError: json cannot serialise a value (a numpy scalar, a cycle).
        raise BaselineError(f"{path}: could not write the run ({_reason(exc)})") from None


def _faceperf_section(machine_info: object, source: str) -> tuple[str, dict[str, str]]:
    if not isinstance(machine_info, Mapping):
        raise BaselineError(f"{source}: no 'machine_info' object; not a pytest-benchmark JSON file")
    section = machine_info.get(FACEPERF_KEY)
    profile = section.get("profile") if isinstance(section, Mapping) else None
    if not isinstance(profile, str) or not profile:
        raise BaselineError(
            f"{source}: no faceperf profile (machine_info.{FACEPERF_KEY}.profile); "
            "record runs with faceperf's pytest plugin loaded"
        )
    versions = section.get("runtime_versions")
    if not isinstance(versions, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in versions.items()
    ):
        raise BaselineError(
            f"{source}: machine_info.{FACEPERF_KEY}.runtime_versions must map package names to "
            f"version strings, got {versions!r}"
        )
    return profile, dict(versions)


def _cpu(machine_info: Mapping[str, object], source: str) -> CpuIdentity | None:
    """faceperf's CPU record, else pytest-benchmark's (py-cpuinfo), else None (unknown).

    faceperf's record is its own format, so a malformed one is an error; pytest-benchmark's
    is read leniently (py-cpuinfo leaves out what it could not find), and a field missing
    there only makes the CPU unknown.
    """
    section = machine_info[FACEPERF_KEY]
    assert isinstance(section, Mapping)  # _faceperf_section checked it
    if section.get(CPU_KEY) is not None:
        record = section[CPU_KEY]
        try:
            return CpuIdentity.from_json(dict(record) if isinstance(record, Mapping) else record)
        except ValueError as err:
            raise BaselineError(
                f"{source}: machine_info.{FACEPERF_KEY}.{CPU_KEY} must be "
                f'{{"vendor": "...", "model": "...", "family": N, ...}} ({err}), got {record!r}'
            ) from None
    cpuinfo = machine_info.get("cpu")
    if not isinstance(cpuinfo, Mapping):
        return None
    vendor, model = cpuinfo.get("vendor_id_raw"), cpuinfo.get("brand_raw")
    if not isinstance(model, str) or not model.strip():
        return None
    if not isinstance(vendor, str) or not vendor.strip():
        # py-cpuinfo finds no vendor on Apple Silicon (no machdep.cpu.vendor); faceperf's probe
        # calls it Apple, and the two must agree for an old baseline to compare with a new run.
        vendor = "Apple" if model.startswith("Apple ") else None
    if vendor is None:
        return None
    # py-cpuinfo records CPUID's numbers and the flags too: what tells two "AMD EPYC"s apart.
    numbers = [_int_or_none(cpuinfo.get(key)) for key in ("family", "model", "stepping")]
    flags = cpuinfo.get("flags")
    isa = frozenset(f for f in flags if isinstance(f, str)) if isinstance(flags, list) else ()
    return CpuIdentity(vendor, model, *numbers, frozenset(isa))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse_benchmark(entry: object, index: int, source: str) -> BenchmarkSamples:
    if not isinstance(entry, Mapping):
        raise BaselineError(f"{source}: benchmarks[{index}] is not an object")
    name = entry.get("fullname")
    if not isinstance(name, str) or not name:
        raise BaselineError(f"{source}: benchmarks[{index}] has no 'fullname'")
    stats = entry.get("stats")
    data = stats.get("data") if isinstance(stats, Mapping) else None
    if data is None:
        raise BaselineError(
            f"{source}: benchmark {name} has no raw samples (stats.data); "
            "record with --benchmark-json or --benchmark-save-data"
        )
    if not isinstance(data, list):
        raise BaselineError(f"{source}: benchmark {name}: stats.data must be a list of seconds")
    extra_info = entry.get("extra_info", {})
    if not isinstance(extra_info, Mapping):
        raise BaselineError(f"{source}: benchmark {name}: extra_info must be an object")
    try:
        return BenchmarkSamples(name, tuple(data), extra_info)
    except ValueError as exc:
        raise BaselineError(f"{source}: {exc}") from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
