"""bench/memory/peak.py and child.py: the phases, the record, and the fresh child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_time import FakeTime
from memory_folders import ballasted_pair

from faceperf.bench.memory.child import measure_phases
from faceperf.bench.memory.meters import LINUX_HWM, MemoryMeasurementError, Reading
from faceperf.bench.memory.peak import (
    MTCNN,
    PIPELINE,
    MemoryPeaks,
    MemoryRequest,
    measure_models,
    measure_peaks,
    measure_trace,
)

MB = 10**6


class FakeMeter:
    """Hands out scripted readings: each ``start`` returns the next floor, each ``stop`` the
    next reading, and records the order of calls."""

    method = "fake"

    def __init__(self, starts, stops) -> None:
        self.starts, self.stops = iter(starts), iter(stops)
        self.log: list[str] = []

    def start(self) -> int:
        self.log.append("start")
        return next(self.starts)

    def stop(self) -> Reading:
        self.log.append("stop")
        return next(self.stops)


def test_phases_are_floor_then_load_then_steady():
    fake = FakeTime()
    meter = FakeMeter([100, 150], [Reading(180, 150), Reading(210, 160)])
    step = fake.workload("call", [0.25] * 4)

    def load():
        meter.log.append("load")
        fake.now += 2.0
        return lambda: (meter.log.append("call"), step())

    phases = measure_phases(meter, load, calls=4, clock=fake.clock)
    assert meter.log == ["start", "load", "stop", "start", *["call"] * 4, "stop"]
    assert phases.floor == 100
    assert phases.load == Reading(180, 150) and phases.steady == Reading(210, 160)
    assert phases.load_s == pytest.approx(2.0) and phases.steady_s == pytest.approx(1.0)


def _record(**changes) -> MemoryPeaks:
    fields = dict(
        subject="star",
        variant="optimized",
        backend="ort-cpu",
        threads=None,
        calls=5,
        method="fake",
        floor_bytes=50 * MB,
        load_peak_bytes=220 * MB,
        after_load_bytes=218 * MB,
        steady_peak_bytes=300 * MB,
        after_steady_bytes=297 * MB,
        load_s=0.25,
        steady_s=3.0,
    )
    return MemoryPeaks(**{**fields, **changes})


def test_each_phase_is_stated_above_the_floor_and_absolute():
    record = _record()
    assert record.phase("load").above_floor_bytes == 170 * MB
    assert record.phase("steady").above_floor_bytes == 250 * MB
    assert record.phase("steady").peak_bytes == 300 * MB
    assert set(record.phases()) == {"load", "steady"}
    assert record.peak_bytes == 300 * MB
    with pytest.raises(KeyError, match="first"):
        record.phase("first")


def test_the_record_round_trips_through_json():
    record = _record()
    doc = json.loads(json.dumps(record.to_json()))
    assert doc["steady_above_floor_bytes"] == 250 * MB
    assert MemoryPeaks.from_json(doc) == record


def test_a_record_of_another_schema_is_refused():
    doc = {**_record().to_json(), "schema_version": 99}
    with pytest.raises(MemoryMeasurementError, match="schema_version 99, expected 1"):
        MemoryPeaks.from_json(doc)


def test_a_request_is_checked_where_it_is_made(tmp_path):
    with pytest.raises(ValueError, match="calls 0"):
        MemoryRequest(tmp_path, "star", "optimized", calls=0)
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        MemoryRequest(tmp_path, "star", "fast")
    request = MemoryRequest(tmp_path, "star", "optimized", feed=tmp_path / "f.npy")
    assert MemoryRequest.from_json(json.loads(json.dumps(request.to_json()))) == request


def _completed(returncode: int, stdout: str = "", stderr: str = ""):
    def run(command, **_):
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)

    return run


def test_a_failing_child_is_one_line_with_its_last_error(tmp_path):
    request = MemoryRequest(tmp_path, "star", "optimized")
    run = _completed(1, stderr="Traceback ...\nArtifactError: star/optimized.onnx: missing\n")
    with pytest.raises(MemoryMeasurementError, match="star/optimized failed: ArtifactError"):
        measure_peaks(request, run=run)


def test_a_child_that_prints_no_record_is_refused(tmp_path):
    request = MemoryRequest(tmp_path, "star", "optimized")
    with pytest.raises(MemoryMeasurementError, match="printed no record"):
        measure_peaks(request, run=_completed(0, stdout="hello\n"))
    with pytest.raises(ValueError, match="measure_trace"):
        measure_peaks(MemoryRequest(tmp_path, "star", "optimized", sample_every=2))
    with pytest.raises(ValueError, match="sample_every > 0"):
        measure_trace(request)


def test_the_child_imports_no_torch():
    # torch would add about 200 MB to every model's floor; the parent writes the feed instead.
    code = "import sys, faceperf.bench.memory.child; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


# --- real children -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onet_folders(artifacts_dir, tmp_path_factory):
    return ballasted_pair(artifacts_dir, tmp_path_factory.mktemp("onet"), "mtcnn_onet", 100)


def test_a_child_measures_a_model(onet_folders):
    plain, _ = onet_folders
    (record,) = measure_models(plain, ["mtcnn_onet"], ["optimized"], calls=3, pipeline_frames=0)
    assert (record.subject, record.variant, record.calls) == ("mtcnn_onet", "optimized", 3)
    if sys.platform.startswith("linux"):
        assert record.method == LINUX_HWM
    assert 0 < record.floor_bytes <= record.load_peak_bytes
    assert record.after_load_bytes <= record.steady_peak_bytes
    assert record.load_s > 0 and record.steady_s > 0


def test_a_hundred_megabyte_intermediate_shows_in_the_steady_peak(onet_folders):
    plain, ballooned = onet_folders
    records = [
        measure_models(folder, ["mtcnn_onet"], ["optimized"], calls=3, pipeline_frames=0)[0]
        for folder in (plain, ballooned)
    ]
    added = [r.phase("steady").above_floor_bytes for r in records]
    assert added[1] - added[0] > 90 * MB, added
    # Loading does not run the graph: the balloon is not there yet.
    loads = [r.phase("load").above_floor_bytes for r in records]
    assert abs(loads[1] - loads[0]) < 10 * MB, loads


def test_the_pipeline_is_skipped_when_its_models_are_missing(onet_folders):
    plain, _ = onet_folders
    records = measure_models(plain, [], ["optimized"], pipeline_frames=2)
    assert all(r.subject != PIPELINE for r in records)


def test_the_mtcnn_cascade_is_measured_as_one_subject(artifacts_dir):
    records = measure_models(artifacts_dir, [], ["optimized"], pipeline_frames=0, mtcnn_frames=2)
    (record,) = records
    assert (record.subject, record.calls) == (MTCNN, 2)
    # Detection allocates what loading does not: the pyramid and every stage's batches.
    assert record.phase("steady").above_floor_bytes > record.phase("load").above_floor_bytes


def test_the_child_sees_the_folder_and_feed_through_paths_of_one_length(tmp_path):
    seen = []

    def run(command, **_):
        request = json.loads(command[-1])
        seen.append((request["directory"], request["feed"]))
        assert Path(request["directory"]).is_dir()  # the alias is live while the child runs
        return subprocess.CompletedProcess(
            command, 1, "", f"ArtifactError: {request['directory']}/x\n"
        )

    short, long = tmp_path / "a", tmp_path / ("a-much-longer-folder-name" * 3)
    for folder in (short, long):
        folder.mkdir()
        (folder / "in.npy").write_bytes(b"")
        request = MemoryRequest(folder, "star", "optimized", feed=folder / "in.npy")
        # a failure still names the folder the user gave, not the alias
        with pytest.raises(MemoryMeasurementError, match=f"ArtifactError: {folder}/x$"):
            measure_peaks(request, run=run)
    (first, first_feed), (second, second_feed) = seen
    assert len(first) == len(second) and len(first_feed) == len(second_feed)
    assert first != str(short) and Path(first).name == "a"
