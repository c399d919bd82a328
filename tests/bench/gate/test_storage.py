"""Baseline files: pytest-benchmark JSON with raw samples and the faceperf profile."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceperf.bench.errors import BaselineError
from faceperf.bench.gate.storage import (
    BenchmarkRun,
    BenchmarkSamples,
    faceperf_machine_info,
    find_by_benchmark_name,
    load_run,
    parse_run,
    save_run_json,
)
from faceperf.bench.hardware import CpuIdentity, probe_system
from faceperf.paths import repo_root

PROFILE = "linux-x86_64-avx512/ort-cpu"
VERSIONS = {"onnxruntime": "1.31.1", "numpy": "2.4.6"}
EPYC = CpuIdentity("AuthenticAMD", "AMD EPYC")


def _document(benchmarks: dict[str, list], profile: str = PROFILE) -> dict:
    """A pytest-benchmark JSON document as faceperf's plugin records it (trimmed stats)."""
    return {
        "machine_info": {
            "node": "runner-1",
            "faceperf": {"profile": profile, "runtime_versions": dict(VERSIONS)},
        },
        "commit_info": {"id": "0123abc", "dirty": False},
        "benchmarks": [
            {
                "group": None,
                "name": fullname.rsplit("::", 1)[-1],
                "fullname": fullname,
                "params": None,
                "param": None,
                "extra_info": {"model": "star"},
                "options": {"timer": "perf_counter"},
                "stats": {"rounds": len(data), "iterations": 1, "data": data},
            }
            for fullname, data in benchmarks.items()
        ],
        "datetime": "2026-01-01T00:00:00+00:00",
        "version": "5.3.1",
    }


def _write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


# -- a real pytest-benchmark run ----------------------------------------------------------------

_PLUGIN = """
def pytest_benchmark_update_machine_info(config, machine_info):
    # What faceperf's plugin does, reduced to the layout storage.py reads.
    machine_info["faceperf"] = {
        "profile": "test-profile/ort-cpu",
        "runtime_versions": {"onnxruntime": "1.31.1"},
    }
"""

_BENCHMARKS = """
import pytest

@pytest.mark.parametrize("variant", ["baseline", "optimized"])
def test_noop(benchmark, variant):
    benchmark.extra_info["variant"] = variant
    benchmark.pedantic(lambda: None, rounds=7, warmup_rounds=1)
"""


@pytest.fixture(scope="module")
def recorded_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JSON written by pytest-benchmark itself, so the parser is checked against the real format."""
    folder = tmp_path_factory.mktemp("recorded")
    (folder / "conftest.py").write_text(textwrap.dedent(_PLUGIN))
    (folder / "test_noop.py").write_text(textwrap.dedent(_BENCHMARKS))
    out = folder / "out.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--benchmark-json={out}"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return out


def test_reads_what_pytest_benchmark_writes(recorded_json: Path) -> None:
    run = load_run(recorded_json)
    assert run.profile == "test-profile/ort-cpu"
    assert run.runtime_versions == {"onnxruntime": "1.31.1"}
    assert sorted(run.benchmarks) == [
        "test_noop.py::test_noop[baseline]",
        "test_noop.py::test_noop[optimized]",
    ]
    samples = run.benchmarks["test_noop.py::test_noop[optimized]"]
    assert len(samples.samples_s) == 7  # the warm-up round is not a sample
    assert samples.extra_info["variant"] == "optimized"
    assert "python_version" in run.machine_info  # pytest-benchmark's own fields are kept


def test_pytest_benchmarks_cpu_record_agrees_with_faceperfs_probe(recorded_json: Path) -> None:
    # The conftest writes no faceperf CPU, so this is py-cpuinfo's record: an old baseline read
    # through it must name this machine's CPU exactly as a new run's faceperf record does, or
    # the gate would refuse a baseline of the very same machine.
    assert load_run(recorded_json).cpu == probe_system().cpu


def test_saved_baseline_still_reads_with_pytest_benchmark_compare(
    recorded_json: Path, tmp_path: Path
) -> None:
    target = tmp_path / "baselines" / "test-profile.json"
    save_run_json(target, json.loads(recorded_json.read_text()))
    assert load_run(target) == load_run(recorded_json)
    shown = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(target)],
        cwd=tmp_path,  # the command imports ./conftest.py; not this project's
        check=True,
        capture_output=True,
        text=True,
    )
    assert "test_noop[optimized]" in shown.stdout


# -- parsing ------------------------------------------------------------------------------------


def test_parses_samples_profile_and_extra_info(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.json", _document({"f.py::test_a[x]": [0.002, 0.001, 0.003]}))
    run = load_run(path)
    assert run.profile == PROFILE
    assert run.runtime_versions == VERSIONS
    samples = run.benchmarks["f.py::test_a[x]"]
    assert samples.samples_s == (0.002, 0.001, 0.003)  # order kept: rounds are a time series
    assert samples.median_s == 0.002
    assert samples.extra_info == {"model": "star"}


def test_other_keys_of_the_faceperf_section_are_kept_not_read(tmp_path: Path) -> None:
    document = _document({"f.py::test_a": [0.1]})
    document["machine_info"]["faceperf"]["hardware"] = {"cores": 2, "backend": "ort-cpu"}
    run = load_run(_write(tmp_path / "run.json", document))
    assert run.profile == PROFILE
    assert run.machine_info["faceperf"]["hardware"] == {"cores": 2, "backend": "ort-cpu"}


def _with_cpu(faceperf: object = None, pytest_benchmark: object = None) -> dict:
    document = _document({"f.py::test_a": [0.1]})
    if faceperf is not None:
        document["machine_info"]["faceperf"]["cpu"] = faceperf
    if pytest_benchmark is not None:
        document["machine_info"]["cpu"] = pytest_benchmark
    return document


def test_the_committed_old_format_baseline_names_its_cpu() -> None:
    # Recorded before faceperf stored the CPU: only pytest-benchmark's py-cpuinfo fields name it.
    path = repo_root() / "baselines" / "linux-x86_64-avx512-2core__ort-cpu.json"
    assert "cpu" not in json.loads(path.read_text())["machine_info"]["faceperf"]
    cpu = load_run(path).cpu
    assert (cpu.vendor, cpu.model, cpu.family, cpu.model_number, cpu.stepping) == (
        "AuthenticAMD",
        "AMD EPYC",
        26,
        2,
        1,
    )
    assert {"avx512f", "avx512vnni", "avx2", "fma"} <= cpu.isa


def test_two_epycs_that_share_a_brand_string_are_told_apart() -> None:
    # The issue's case: a VM calls both "AMD EPYC"; family 26 runs STAR twice as fast as 25.
    zen5 = CpuIdentity("AuthenticAMD", "AMD EPYC", 26, 2, 1, frozenset({"avx512f"}))
    zen4 = CpuIdentity("AuthenticAMD", "AMD EPYC", 25, 17, 1, frozenset({"avx512_f"}))
    assert zen5.differences(zen4) == ["family: 26 vs 25", "model: 2 vs 17"]
    assert not zen4.same_as(zen5)
    # A record with only vendor and brand (older files) is no evidence of a difference.
    assert EPYC.same_as(zen4) and zen4.same_as(EPYC)
    assert CpuIdentity.from_json(zen4.to_json()) == zen4


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (_with_cpu(), None),
        (
            _with_cpu(pytest_benchmark={"vendor_id_raw": "AuthenticAMD", "brand_raw": "AMD EPYC"}),
            EPYC,
        ),
        (
            _with_cpu(
                faceperf={"vendor": "GenuineIntel", "model": "Intel Xeon"},
                pytest_benchmark={"vendor_id_raw": "AuthenticAMD", "brand_raw": "AMD EPYC"},
            ),
            CpuIdentity("GenuineIntel", "Intel Xeon"),
        ),
        # py-cpuinfo finds no vendor on Apple Silicon; faceperf's probe calls it Apple.
        (
            _with_cpu(pytest_benchmark={"brand_raw": "Apple M1 Pro"}),
            CpuIdentity("Apple", "Apple M1 Pro"),
        ),
        (_with_cpu(pytest_benchmark={"vendor_id_raw": "AuthenticAMD"}), None),
        (_with_cpu(pytest_benchmark={"brand_raw": "ARMv8 Processor rev 1 (v8l)"}), None),
        (_with_cpu(pytest_benchmark={"vendor_id_raw": "", "brand_raw": 7}), None),
        (_with_cpu(pytest_benchmark=["not", "a", "record"]), None),
    ],
    ids=[
        "none",
        "pytest-benchmark",
        "faceperf-first",
        "apple",
        "no-model",
        "no-vendor",
        "junk",
        "list",
    ],
)
def test_cpu_is_faceperfs_record_else_pytest_benchmarks(
    tmp_path: Path, document: dict, expected: CpuIdentity | None
) -> None:
    assert load_run(_write(tmp_path / "run.json", document)).cpu == expected


@pytest.mark.parametrize(
    "record",
    [{"vendor": "AuthenticAMD"}, {"vendor": "", "model": "AMD EPYC"}, "AMD EPYC"],
)
def test_a_malformed_faceperf_cpu_record_is_one_line_naming_the_file(
    tmp_path: Path, record: object
) -> None:
    path = _write(tmp_path / "bad.json", _with_cpu(faceperf=record))
    with pytest.raises(BaselineError) as caught:
        load_run(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: machine_info.faceperf.cpu must be ")
    assert "\n" not in message


def test_the_cpu_survives_save_and_load(tmp_path: Path) -> None:
    document = _document({"f.py::test_a": [0.1]})
    document["machine_info"]["faceperf"] = faceperf_machine_info(PROFILE, VERSIONS, EPYC)
    save_run_json(tmp_path / "run.json", document)
    run = load_run(tmp_path / "run.json")
    assert run.cpu == EPYC
    assert run == BenchmarkRun.of(
        PROFILE, VERSIONS, run.benchmarks.values(), run.machine_info, EPYC
    )
    # Unknown is left out, so an older reader or pytest-benchmark's record is not contradicted.
    assert "cpu" not in faceperf_machine_info(PROFILE, VERSIONS, None)


def test_an_empty_run_loads(tmp_path: Path) -> None:
    run = load_run(_write(tmp_path / "empty.json", _document({})))
    assert run.benchmarks == {}
    assert run.profile == PROFILE


def _without_data(document: dict) -> dict:
    del document["benchmarks"][0]["stats"]["data"]  # --benchmark-save without --save-data
    return document


def _with_data(data: object) -> dict:
    document = _document({"f.py::test_a": [0.1]})
    document["benchmarks"][0]["stats"]["data"] = data
    return document


def _without_faceperf(document: dict) -> dict:
    del document["machine_info"]["faceperf"]
    return document


def _without(key: str) -> dict:
    document = _document({"f.py::test_a": [0.1]})
    del document[key]
    return document


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([1, 2], "JSON object at the top level"),
        (_without("benchmarks"), "no 'benchmarks' list"),
        (_without("machine_info"), "no 'machine_info'"),
        (_without_data(_document({"f.py::test_a": [0.1]})), "no raw samples (stats.data)"),
        (_with_data([]), "no samples"),
        (_with_data("0.1"), "stats.data must be a list"),
        (_with_data([0.1, "fast"]), "'fast' is not a number"),
        (_with_data([0.1, True]), "True is not a number"),
        (_with_data([0.1, None]), "None is not a number"),
        (_with_data([0.1, -0.2]), "not a positive duration"),
        (_without_faceperf(_document({})), "no faceperf profile"),
        (_document({}, profile=""), "no faceperf profile"),
        ({**_document({}), "benchmarks": [{"stats": {"data": [0.1]}}]}, "has no 'fullname'"),
        ({**_document({}), "benchmarks": ["f.py::test_a"]}, "benchmarks[0] is not an object"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_wrong_structure_is_one_line_naming_the_file(
    tmp_path: Path, document: object, expected: str
) -> None:
    path = _write(tmp_path / "bad.json", document)
    with pytest.raises(BaselineError) as caught:
        load_run(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_runtime_versions_must_be_strings(tmp_path: Path) -> None:
    document = _document({})
    document["machine_info"]["faceperf"]["runtime_versions"] = {"onnxruntime": 1.31}
    with pytest.raises(BaselineError, match="runtime_versions must map"):
        load_run(_write(tmp_path / "bad.json", document))


def test_a_benchmark_twice_is_refused(tmp_path: Path) -> None:
    document = _document({"f.py::test_a": [0.1]})
    document["benchmarks"] *= 2
    with pytest.raises(BaselineError, match=r"f\.py::test_a appears twice"):
        load_run(_write(tmp_path / "twice.json", document))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(BaselineError, match=f"^{path}: baseline file not found$"):
        load_run(path)


def test_truncated_file_names_file_and_position(tmp_path: Path) -> None:
    text = json.dumps(_document({"f.py::test_a": [0.1, 0.2]}), indent=2)
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(BaselineError) as caught:
        load_run(path)
    assert str(caught.value).startswith(f"{path}: not valid JSON (")
    assert "truncated" in str(caught.value)


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="cannot read"):
        load_run(tmp_path)


# -- records ------------------------------------------------------------------------------------


def test_records_are_immutable_copies() -> None:
    extra = {"model": "star"}
    versions = dict(VERSIONS)
    samples = BenchmarkSamples("f.py::test_a", (0.1, 0.2), extra)
    run = BenchmarkRun.of(PROFILE, versions, [samples])
    extra["model"] = "mtl"
    versions["onnxruntime"] = "0.0"
    assert samples.extra_info["model"] == "star"
    assert run.runtime_versions["onnxruntime"] == "1.31.1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.profile = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        run.benchmarks["f.py::test_b"] = samples  # type: ignore[index]
    with pytest.raises(TypeError):
        samples.extra_info["model"] = "mtl"  # type: ignore[index]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [((), "no samples"), ((0.1, float("nan")), "not a positive"), ((0.0,), "not a positive")],
)
def test_samples_are_validated(samples: tuple[float, ...], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        BenchmarkSamples("f.py::test_a", samples)


def test_benchmark_keys_must_match_names() -> None:
    samples = BenchmarkSamples("f.py::test_a", (0.1,))
    with pytest.raises(ValueError, match="must be the BenchmarkSamples named"):
        BenchmarkRun(PROFILE, VERSIONS, {}, {"f.py::test_b": samples})


def test_lookup_by_full_or_short_name() -> None:
    table = {"test_a[x]": 1, "perf/f.py::test_a[x]": 2, "test_b": 3}
    assert find_by_benchmark_name(table, "perf/f.py::test_a[x]") == 2  # the full name wins
    assert find_by_benchmark_name(table, "perf/g.py::test_a[x]") == 1
    assert find_by_benchmark_name(table, "perf/f.py::test_b") == 3
    assert find_by_benchmark_name(table, "perf/f.py::test_c") is None


# -- saving -------------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "base.json")


@pytest.fixture
def old_baseline(tmp_path: Path) -> Path:
    path = tmp_path / "base.json"
    save_run_json(path, _document({"f.py::test_a": [0.1, 0.2]}))
    return path


def test_save_then_load(old_baseline: Path) -> None:
    assert load_run(old_baseline).benchmarks["f.py::test_a"].samples_s == (0.1, 0.2)


def test_a_failed_rename_leaves_the_old_file(
    old_baseline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = old_baseline.read_bytes()

    def killed(*args: object) -> None:
        raise OSError(5, "Input/output error")  # the temp file is fully written at this point

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(BaselineError, match=r"could not write the run \(Input/output error\)"):
        save_run_json(old_baseline, _document({"f.py::test_a": [0.3, 0.4]}))
    assert old_baseline.read_bytes() == before
    assert _leftovers(old_baseline.parent) == []


def test_a_write_dying_midway_leaves_the_old_file(
    old_baseline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = old_baseline.read_bytes()

    def died(fd: int) -> None:
        raise KeyboardInterrupt  # like a kill between writing and syncing the temp file

    monkeypatch.setattr(os, "fsync", died)
    with pytest.raises(KeyboardInterrupt):
        save_run_json(old_baseline, _document({"f.py::test_a": [0.3, 0.4]}))
    assert old_baseline.read_bytes() == before
    assert _leftovers(old_baseline.parent) == []


def test_unserialisable_document_leaves_the_old_file(old_baseline: Path) -> None:
    before = old_baseline.read_bytes()
    document = _document({"f.py::test_a": [0.3, 0.4]})
    document["benchmarks"][0]["extra_info"]["runner"] = object()
    with pytest.raises(BaselineError, match="not JSON serializable"):
        save_run_json(old_baseline, document)
    assert old_baseline.read_bytes() == before
    assert _leftovers(old_baseline.parent) == []


def test_an_invalid_document_is_not_saved(old_baseline: Path) -> None:
    before = old_baseline.read_bytes()
    with pytest.raises(BaselineError, match="no faceperf profile"):
        save_run_json(old_baseline, _without_faceperf(_document({"f.py::test_a": [0.3]})))
    assert old_baseline.read_bytes() == before


@settings(derandomize=True, database=None, max_examples=50, deadline=None)
@given(
    st.lists(
        st.floats(min_value=1e-9, max_value=1e3, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=50,
    )
)
def test_samples_survive_a_round_trip_exactly(samples: list[float]) -> None:
    document = _document({"f.py::test_a": samples})
    run = parse_run(json.loads(json.dumps(document)), "memory")
    assert run.benchmarks["f.py::test_a"].samples_s == tuple(samples)
