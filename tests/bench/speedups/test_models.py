"""`faceperf bench speedups`: the measurement on a fake clock, the table, the matmul rate, and
the command end to end on the smallest real model."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_time import FakeTime

from faceperf.bench.speedups import models as model_speedups
from faceperf.bench.speedups.flops import count_flops
from faceperf.bench.speedups.matmul_peak import MatmulPeak, measure_matmul_peak, time_matmul
from faceperf.bench.speedups.models import (
    ModelCalls,
    SpeedupsReport,
    measure_model,
    open_eager_runner,
    open_model_calls,
    torch_threads,
)
from faceperf.bench.speedups.render import speedups_table
from faceperf.cli import main
from faceperf.errors import ArtifactError
from faceperf.weights.provenance import WeightSource


def _wobble(ms: float) -> Iterable[float]:
    # Deterministic +-2 % around ms, forever; its median over any 3k values is ms.
    return itertools.cycle([ms * 0.98e-3, ms * 1e-3, ms * 1.02e-3])


def _calls(time: FakeTime, flops: int = 34_681_536_512) -> ModelCalls:
    return ModelCalls(
        model="star",
        weights="surrogate(seed=0)",
        input_shape=(1, 3, 256, 256),
        flops=flops,
        baseline=time.workload("baseline", _wobble(200.0)),
        optimized=time.workload("optimized", _wobble(100.0)),
        eager=time.workload("eager", _wobble(400.0)),
    )


def test_two_interleaved_pairs_each_with_its_own_interval():
    time = FakeTime()
    result = measure_model(_calls(time), rounds=6, warmup=1, clock=time.clock)
    pair_one, pair_two = time.calls[:14], time.calls[14:]
    assert pair_one[:2] == ["baseline", "optimized"]  # the warm-up, then ABBA rounds
    assert pair_one[2:6] == ["baseline", "optimized", "optimized", "baseline"]
    assert set(pair_two) == {"eager", "optimized"} and len(pair_two) == 14
    assert result.over_baseline.point == pytest.approx(2.0)
    assert result.over_eager.point == pytest.approx(4.0)
    assert result.over_baseline.low <= 2.0 <= result.over_baseline.high
    assert (result.baseline_ms, result.optimized_ms, result.eager_ms) == pytest.approx(
        (200.0, 100.0, 400.0)
    )
    assert result.gflops == pytest.approx(34.681536512 / 0.1)  # GFLOP per call / s per call


def test_a_bootstrap_needs_two_rounds():
    time = FakeTime()
    with pytest.raises(ValueError, match="at least 2"):
        measure_model(_calls(time), rounds=1, clock=time.clock)


def _report() -> SpeedupsReport:
    time = FakeTime()
    star = measure_model(_calls(time), rounds=6, warmup=0, clock=time.clock)
    rnet = measure_model(
        ModelCalls(
            "mtcnn_rnet",
            "packaged",
            (1, 3, 24, 24),
            3_061_536,
            time.workload("baseline", _wobble(0.09)),
            time.workload("optimized", _wobble(0.08)),
            time.workload("eager", _wobble(0.5)),
        ),
        rounds=6,
        warmup=0,
        clock=time.clock,
    )
    peaks = (
        MatmulPeak(2048, 1, (0.2, 0.172, 0.18), "scipy-openblas 0.3.31"),
        MatmulPeak(2048, 2, (0.1, 0.09), "scipy-openblas 0.3.31"),
    )
    return SpeedupsReport(
        profile="linux-x86_64-avx512-2core/ort-cpu",
        backend="ort-cpu",
        threads=1,
        rounds=6,
        warmup=0,
        versions={"onnxruntime": "1.31.1", "torch": "2.13.0+cpu"},
        models=(star, rnet),
        peaks=peaks,
    )


def test_the_table_puts_speedups_gflops_peak_and_published_figures_side_by_side():
    text = speedups_table(_report())
    lines = text.splitlines()
    assert lines[0].startswith("faceperf bench speedups on linux-x86_64-avx512-2core/ort-cpu")
    star = next(line for line in lines if line.startswith("star "))
    assert "2.00x [" in star and "4.00x [" in star
    peak_1 = 2 * 2048**3 / 0.18 / 1e9
    assert f"{34.681536512 / 0.1:.3g}" in star  # GFLOP/s
    assert f"{100 * (34.681536512 / 0.1) / peak_1:.0f} %" in star  # of the 1-thread peak
    assert "163.2 ms -> 70.5 ms (2.31x)" in star  # MODELS.md's STAR figure
    rnet = next(line for line in lines if line.startswith("mtcnn_rnet"))
    assert "detector 0.195 FPS -> 34.26 FPS" in rnet
    assert f"1 BLAS thread(s): {peak_1:.0f} GFLOP/s" in text
    assert "2 BLAS thread(s):" in text
    assert "MODELS.md" in text
    # Columns line up: every data row is as wide as the header's dashes, or shorter.
    header, dashes = lines[3], lines[4]
    assert set(dashes) <= {"-", " "} and len(header) <= len(dashes)


def test_json_holds_every_sample_and_the_published_figure():
    document = json.loads(json.dumps(_report().to_json()))
    star = document["models"][0]
    assert star["model"] == "star" and len(star["samples_s"]["eager"]) == 6
    assert star["speedup_over_baseline"]["point"] == pytest.approx(2.0)
    assert star["published_apple_silicon"]["speedup"] == 2.31
    assert star["percent_of_matmul_peak"] == pytest.approx(
        100 * (34.681536512 / 0.1) / (2 * 2048**3 / 0.18 / 1e9)
    )
    assert [p["threads"] for p in document["matmul_peaks"]] == [1, 2]


def test_no_peak_at_the_thread_count_leaves_the_share_blank():
    report = _report()
    report = SpeedupsReport(**{**report.__dict__, "threads": 4})
    assert report.peak_for(4) is None
    assert report.to_json()["models"][0]["percent_of_matmul_peak"] is None


# -- the matmul rate ----------------------------------------------------------------------------


def test_matmul_rate_is_two_n_cubed_over_the_median():
    peak = MatmulPeak(1000, 1, (0.03, 0.02, 0.025), "x")
    assert peak.flops == 2_000_000_000
    assert peak.gflops == pytest.approx(80.0)
    with pytest.raises(ValueError, match="positive durations"):
        MatmulPeak(1000, 1, (), "x")


def test_time_matmul_times_only_the_products():
    ticks = itertools.count(0.0, 0.5)
    seconds = time_matmul(8, repeats=3, warmup=2, clock=lambda: next(ticks))
    assert seconds == (0.5, 0.5, 0.5)  # two clock reads per timed product, none for warm-ups
    assert next(ticks) == 3.0


def test_the_child_process_measures_with_the_thread_count_it_was_given():
    peak = measure_matmul_peak(threads=1, size=64, repeats=2)
    assert (peak.size, peak.threads, len(peak.seconds)) == (64, 1, 2)
    assert peak.gflops > 0 and peak.blas


def test_torch_threads_are_restored():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# -- real artifacts: the smallest model ---------------------------------------------------------


def test_open_model_calls_runs_the_three_sides_on_one_input(artifacts_dir):
    calls = open_model_calls(artifacts_dir, "mtcnn_rnet", "ort-cpu", threads=1)
    assert calls.weights == "packaged" and calls.input_shape == (1, 3, 24, 24)
    optimized = artifacts_dir / "mtcnn_rnet" / "optimized.onnx"
    assert calls.flops == count_flops(optimized, {"image": (1, 3, 24, 24)}).flops
    outputs = [calls.baseline(), calls.optimized(), calls.eager()]
    for output in outputs[1:]:
        np.testing.assert_allclose(output["prob"], outputs[0]["prob"], atol=1e-4)


def test_eager_weights_must_be_the_checkpoint_the_artifacts_came_from(
    artifacts_dir, tmp_path, monkeypatch
):
    shutil.copy(artifacts_dir / "manifest.json", tmp_path / "manifest.json")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["models"]["retinaface"]["weights"] = {"kind": "real", "file": "r.pth", "sha256": "a1"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    other = SimpleNamespace(source=WeightSource("real", {"file": "r.pth", "sha256": "b2"}))
    monkeypatch.setattr(model_speedups, "resolve_weights", lambda *a, **k: other)
    with pytest.raises(ArtifactError, match=r"sha256 a1, but weights/r\.pth is another file now"):
        open_eager_runner(tmp_path, "retinaface")


def test_the_command_end_to_end_on_the_smallest_model(artifacts_dir, capsys):
    common = ["bench", "speedups", "--models", "mtcnn_rnet", "--artifacts", str(artifacts_dir)]
    quick = ["--rounds", "4", "--warmup", "1", "--matmul-size", "64", "--matmul-repeats", "1"]
    assert main([*common, *quick, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (rnet,) = document["models"]
    assert rnet["model"] == "mtcnn_rnet" and rnet["weights"] == "packaged"
    assert document["threads"] == 1 and len(rnet["samples_s"]["baseline"]) == 4
    assert {p["threads"] for p in document["matmul_peaks"]} >= {1}
    assert main([*common, *quick]) == 0
    text = capsys.readouterr().out
    assert "mtcnn_rnet" in text and "GFLOP/s" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--rounds", "1"], "expected an integer >= 2"),
        (["--threads", "0"], "expected an integer >= 1"),
        (["--models", "star,nope"], "unknown model(s) 'nope'"),
    ],
)
def test_bad_options_are_usage_errors(argv, expected, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["bench", "speedups", *argv])
    assert caught.value.code == 2
    assert expected in capsys.readouterr().err


def test_a_missing_artifact_folder_is_a_one_line_error(tmp_path: Path, capsys):
    argv = ["bench", "speedups", "--models", "mtcnn_rnet", "--artifacts", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("faceperf: error: ") and "\n" not in err
