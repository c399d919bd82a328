"""Baselines pooled from several runs: every sample kept, statistics recomputed, one profile."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from faceperf.bench.errors import BaselineError
from faceperf.bench.gate.canary import CANARY_KEY
from faceperf.bench.gate.pooling import pool_runs
from faceperf.bench.gate.storage import parse_run
from faceperf.bench.hardware import CpuIdentity
from faceperf.cli import main

NAME = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[star-optimized]"
OTHER = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[mtl-optimized]"
EPYC = {"vendor_id_raw": "AuthenticAMD", "brand_raw": "AMD EPYC"}  # pytest-benchmark's record
XEON = {"vendor": "GenuineIntel", "model": "Intel(R) Xeon(R) Platinum 8481C"}  # faceperf's


def _document(seed: int, median_s: float = 0.2, profile: str = "p/ort-cpu", names=(NAME,)):
    rng = np.random.default_rng(seed)
    benchmarks = []
    for name in names:
        data = (median_s * np.exp(rng.normal(0, 0.02, 20))).tolist()
        benchmarks.append(
            {
                "group": "g",
                "name": name.split("::")[-1],
                "fullname": name,
                "extra_info": {CANARY_KEY: [0.004] * 20},
                "stats": {"rounds": 20, "iterations": 1, "data": data, "median": 0.0},
            }
        )
    return {
        "machine_info": {
            "faceperf": {"profile": profile, "runtime_versions": {"onnxruntime": "1"}}
        },
        "benchmarks": benchmarks,
    }


def test_pooling_keeps_every_sample_and_pulse_and_recomputes_the_summary():
    docs = [_document(1, 0.20), _document(2, 0.22), _document(3, 0.24)]
    pooled = pool_runs(docs, ["a", "b", "c"])
    (entry,) = pooled["benchmarks"]
    data = [x for d in docs for x in d["benchmarks"][0]["stats"]["data"]]
    assert entry["stats"]["data"] == data
    assert entry["stats"]["rounds"] == 60
    assert entry["stats"]["median"] == pytest.approx(statistics.median(data))
    assert len(entry["extra_info"][CANARY_KEY]) == 60
    assert entry["extra_info"]["pooled_runs"] == 3
    assert len(parse_run(pooled, "pooled").benchmarks[NAME].samples_s) == 60
    assert docs[0]["benchmarks"][0]["stats"]["rounds"] == 20  # the inputs are not changed


def test_a_benchmark_missing_from_a_run_pools_what_there_is():
    pooled = pool_runs([_document(1, names=(NAME, OTHER)), _document(2)], ["a", "b"])
    rounds = {e["fullname"]: e["stats"]["rounds"] for e in pooled["benchmarks"]}
    assert rounds == {NAME: 40, OTHER: 20}


def test_runs_of_different_profiles_do_not_pool():
    with pytest.raises(BaselineError, match="only runs of one profile and runtime pool"):
        pool_runs([_document(1), _document(2, profile="q/ort-cpu")], ["a", "b"])


def _on(document: dict, faceperf_cpu: dict | None = None, cpuinfo: dict | None = None) -> dict:
    if faceperf_cpu is not None:
        document["machine_info"]["faceperf"]["cpu"] = faceperf_cpu
    if cpuinfo is not None:
        document["machine_info"]["cpu"] = cpuinfo
    return document


def test_runs_of_different_cpus_do_not_pool_and_the_message_names_both():
    with pytest.raises(BaselineError) as caught:
        pool_runs([_on(_document(1), cpuinfo=EPYC), _on(_document(2), XEON)], ["a", "b"])
    assert str(caught.value) == (
        "b was measured on CPU 'Intel(R) Xeon(R) Platinum 8481C' (GenuineIntel), "
        "a on CPU 'AMD EPYC' (AuthenticAMD): only runs of one CPU pool"
    )


def test_a_run_without_a_cpu_does_not_pool_with_one_that_has_it():
    # Nothing says the unrecorded run was measured on the same CPU.
    with pytest.raises(BaselineError, match="a on a CPU it does not record: only runs of one CPU"):
        pool_runs([_document(1), _on(_document(2), XEON)], ["a", "b"])


def test_the_pooled_baseline_keeps_the_cpu_in_faceperfs_own_record():
    # The same CPU, once in pytest-benchmark's record (an older file), once in faceperf's.
    same = {"vendor": "AuthenticAMD", "model": "AMD EPYC"}
    docs = [_on(_document(1), cpuinfo=EPYC), _on(_document(2), same, cpuinfo=EPYC)]
    pooled = pool_runs(docs, ["a", "b"])
    assert pooled["machine_info"]["faceperf"]["cpu"] == same
    assert pooled["machine_info"]["cpu"] == EPYC  # pytest-benchmark's record is kept as it was
    assert parse_run(pooled, "pooled").cpu == CpuIdentity("AuthenticAMD", "AMD EPYC")
    assert "cpu" not in docs[0]["machine_info"]["faceperf"]  # the inputs are not changed


def test_runs_without_a_cpu_pool_into_a_baseline_without_one():
    pooled = pool_runs([_document(1), _document(2)], ["a", "b"])
    assert "cpu" not in pooled["machine_info"]["faceperf"]
    assert parse_run(pooled, "pooled").cpu is None


def test_baseline_update_pools_the_given_results(tmp_path, capsys):
    paths = []
    for seed in range(3):
        path = tmp_path / f"r{seed}.json"
        path.write_text(json.dumps(_document(seed)))
        paths.append(str(path))
    out = tmp_path / "baseline.json"
    argv = ["baseline", "update", "--perf-profile", "p/ort-cpu", "--out", str(out), "--results"]
    assert main([*argv, *paths]) == 0
    assert "pooled from 3 run(s)" in capsys.readouterr().out
    stored = json.loads(out.read_text())
    assert stored["benchmarks"][0]["stats"]["rounds"] == 60


def test_baseline_update_refuses_results_of_two_cpus_in_one_line(tmp_path, capsys):
    paths = []
    for seed, cpu in ((0, EPYC), (1, {"vendor_id_raw": "GenuineIntel", "brand_raw": "Xeon"})):
        path = tmp_path / f"r{seed}.json"
        path.write_text(json.dumps(_on(_document(seed), cpuinfo=cpu)))
        paths.append(str(path))
    out = tmp_path / "baseline.json"
    argv = ["baseline", "update", "--perf-profile", "p/ort-cpu", "--out", str(out), "--results"]
    assert main([*argv, *paths]) == 2
    err = capsys.readouterr().err.strip()
    assert "'Xeon' (GenuineIntel)" in err and "'AMD EPYC' (AuthenticAMD)" in err
    assert "\n" not in err
    assert not out.exists()
