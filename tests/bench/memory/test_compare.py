"""Two artifacts' memory compared phase by phase, and both sides measured in parallel children
(the children stood in for: what is tested here is the judging and the pairing)."""

from __future__ import annotations

import threading

import pytest

from faceperf.bench.memory.compare import (
    MIB,
    MemoryThreshold,
    compare_peaks,
    measure_pairs,
    memory_verdict,
)
from faceperf.bench.memory.meters import MemoryMeasurementError
from faceperf.bench.memory.peak import MemoryPeaks, MemoryRequest
from faceperf.verdicts import Verdict

FLOOR = 50 * MIB


def _peaks(load_mib: float, steady_mib: float, subject: str = "star") -> MemoryPeaks:
    return MemoryPeaks(
        subject=subject,
        variant="optimized",
        backend="ort-cpu",
        threads=1,
        calls=2,
        method="fake",
        floor_bytes=FLOOR,
        load_peak_bytes=FLOOR + int(load_mib * MIB),
        after_load_bytes=FLOOR + int(load_mib * MIB),
        steady_peak_bytes=FLOOR + int(steady_mib * MIB),
        after_steady_bytes=FLOOR + int(steady_mib * MIB),
        load_s=0.1,
        steady_s=0.2,
    )


@pytest.mark.parametrize(
    ("reference_mib", "candidate_mib", "expected"),
    [
        (200, 201.9, Verdict.SAME),  # +0.95 %: within 1 % (and 2 MiB)
        (400, 405, Verdict.LARGER),  # +1.25 %, 5 MiB
        (400, 395, Verdict.SMALLER),
        (10, 11.9, Verdict.SAME),  # +19 % of a small figure, but under 2 MiB
        (10, 12.5, Verdict.LARGER),
    ],
)
def test_a_phase_is_larger_beyond_both_the_fraction_and_the_fixed_floor(
    reference_mib, candidate_mib, expected
):
    verdict = memory_verdict(int(reference_mib * MIB), int(candidate_mib * MIB), MemoryThreshold())
    assert verdict is expected


@pytest.mark.parametrize(("relative", "min_mib"), [(1.0, 2.0), (-0.1, 2.0), (0.03, -1.0)])
def test_a_threshold_out_of_range_is_refused(relative, min_mib):
    with pytest.raises(ValueError, match="memory"):
        MemoryThreshold(relative, min_mib)


def test_one_larger_phase_makes_the_subject_larger_and_names_the_phase():
    change = compare_peaks(
        "star-optimized:memory", _peaks(167, 245), _peaks(167, 346), MemoryThreshold()
    )
    assert change.verdict is Verdict.LARGER
    assert [c.verdict for c in change.phases] == [Verdict.SAME, Verdict.LARGER]
    assert change.worst.phase == "steady"
    assert change.worst.delta_bytes == 101 * MIB
    text = change.describe()
    assert text.startswith("larger in steady:"), text
    assert "+245.0 -> +346.0 MiB (+101.0 MiB, x1.412)" in text


def test_larger_wins_over_smaller_and_the_json_keeps_both_records():
    change = compare_peaks("m", _peaks(100, 100), _peaks(80, 120), MemoryThreshold())
    assert change.verdict is Verdict.LARGER
    doc = change.to_json()
    assert doc["verdict"] == "larger" and doc["threshold"] == {"relative": 0.01, "min_mib": 2.0}
    assert doc["reference"]["load_above_floor_bytes"] == 100 * MIB
    assert doc["candidate"]["steady_above_floor_bytes"] == 120 * MIB
    assert compare_peaks("m", _peaks(100, 100), _peaks(80, 100), MemoryThreshold()).verdict is (
        Verdict.SMALLER
    )


def _request(directory: str, subject: str = "face_mirror") -> MemoryRequest:
    return MemoryRequest(directory, subject, "optimized", calls=1)


def test_pairs_are_measured_side_by_side_and_returned_in_order():
    # Two children at a time: the first two measurements meet at a barrier, which only two
    # concurrent calls can pass (a sequential run would wait there until the timeout).
    meeting = threading.Barrier(2, timeout=30)
    calls = []

    def measure(request: MemoryRequest) -> MemoryPeaks:
        calls.append(request)
        if len(calls) <= 2:
            meeting.wait()
        size = 10 if request.directory.name == "ref" else 20
        return _peaks(size, size, subject=request.subject)

    pairs = [(_request("ref", s), _request("cand", s)) for s in ("face_mirror", "mtcnn")]
    measured = measure_pairs(pairs, workers=2, measure=measure)
    assert [(r.subject, c.subject) for r, c in measured] == [
        ("face_mirror", "face_mirror"),
        ("mtcnn", "mtcnn"),
    ]
    assert all(r.load_peak_bytes < c.load_peak_bytes for r, c in measured)
    assert len(calls) == 4


def test_a_failing_child_fails_the_measurement():
    def measure(request: MemoryRequest) -> MemoryPeaks:
        if request.directory.name == "cand":
            raise MemoryMeasurementError("memory of face_mirror/optimized failed: boom")
        return _peaks(1, 1)

    with pytest.raises(MemoryMeasurementError, match="boom"):
        measure_pairs([(_request("ref"), _request("cand"))], measure=measure)
    with pytest.raises(ValueError, match="workers 0"):
        measure_pairs([], workers=0)
