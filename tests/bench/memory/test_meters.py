"""bench/memory/meters.py: the platform's meters measure real allocations, phase by phase."""

from __future__ import annotations

import mmap
import sys
import threading

import pytest

from faceperf.bench.memory.meters import (
    LINUX_HWM,
    LinuxHighWaterMark,
    MacFootprint,
    SampledPeak,
    peak_meter,
    resident_reader,
)

MB = 2**20
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")
macos = pytest.mark.skipif(sys.platform != "darwin", reason="needs macOS (proc_pid_rusage)")


def _touch(megabytes: int) -> mmap.mmap:
    # Fresh anonymous pages, every one written: resident. Not a NumPy array: in a long-lived
    # test worker malloc may hand back pages it already holds (its mmap threshold grows after
    # large frees), and resident memory would not move.
    block = mmap.mmap(-1, megabytes * MB)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    return block


def _linux_meter() -> LinuxHighWaterMark:
    try:
        return LinuxHighWaterMark()
    except OSError as err:
        pytest.skip(f"/proc/self/clear_refs refused here ({err}); the sampled fallback applies")


@linux
def test_the_high_water_mark_sees_a_freed_allocation_and_resets_between_phases():
    meter = _linux_meter()
    floor = meter.start()
    block = _touch(64)
    del block
    first = meter.stop()
    assert first.peak - floor >= 60 * MB
    assert first.current - floor < 32 * MB  # freed: only the peak remembers it
    meter.start()
    second = meter.stop()
    assert second.peak - floor < 32 * MB  # the reset forgot the first phase's peak


@linux
def test_this_platform_gets_the_exact_meter():
    assert peak_meter().method == LINUX_HWM


def test_the_sampled_meter_keeps_the_highest_read():
    figures = iter([100, 100, 900, 100])
    seen_all = threading.Event()

    def reader() -> int:
        try:
            return next(figures)
        except StopIteration:
            seen_all.set()
            return 100

    meter = SampledPeak(reader, interval_s=0.0005, method="fake")
    assert meter.start() == 100
    assert seen_all.wait(10)
    assert meter.stop().peak == 900
    assert meter.method == "fake"


def test_the_sampled_meter_says_its_interval_by_default():
    assert SampledPeak(lambda: 1, interval_s=0.002).method == "psutil RSS sampled every 2 ms"
    with pytest.raises(ValueError, match="interval_s 0"):
        SampledPeak(lambda: 1, interval_s=0)


def test_the_resident_reader_sees_an_allocation():
    read = resident_reader()
    before = read()
    block = _touch(32)
    assert read() - before >= 28 * MB
    del block


@macos
def test_the_footprint_meter_sees_an_allocation():
    meter = MacFootprint()
    floor = meter.start()
    block = _touch(64)
    del block
    assert meter.stop().peak - floor >= 60 * MB
