"""How this platform's memory is read: the figure now, and the peak over a phase.

- Linux: the resident set. ``VmHWM`` in ``/proc/self/status`` is the kernel's own high-water
  mark, exact whatever happens between two reads, and writing ``5`` to ``/proc/self/clear_refs``
  resets it to the current ``VmRSS``, so each phase gets its own peak.
- macOS: the physical footprint (``proc_pid_rusage``), not RSS: RSS there counts the pages of
  mapped weight files, which the system can drop and reread, while the footprint is what the
  kernel charges the process for (Core ML's compiled model included) and kills it over.
  ``ri_lifetime_max_phys_footprint`` cannot be reset, so a phase's peak is the lifetime maximum
  when it rose during the phase and otherwise the highest footprint a thread sampled.
- Anywhere else, or where the reset is refused (a kernel without it, a locked-down container):
  psutil's RSS sampled by a thread, which can miss a spike shorter than its interval.

Every meter says which of these it is (``method``), and every record carries that name.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from faceperf.errors import FaceperfError

Reader = Callable[[], int]  # bytes of memory now

LINUX_HWM = "linux VmHWM (reset through /proc/self/clear_refs)"
MACOS_FOOTPRINT = "macOS phys_footprint (proc_pid_rusage)"
PSUTIL_SAMPLED = "psutil RSS sampled every {interval_ms:g} ms"

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATM = Path("/proc/self/statm")


class MemoryMeasurementError(FaceperfError):
    """Memory cannot be read on this platform, or a measuring child failed."""


@dataclass(frozen=True)
class Reading:
    """A phase's memory: its peak and the figure when it ended, in bytes."""

    peak: int
    current: int


class PeakMeter(Protocol):
    """Measures one phase at a time: ``start`` resets the peak and returns the figure now,
    ``stop`` returns the phase's peak and the figure at its end."""

    method: str

    def start(self) -> int: ...

    def stop(self) -> Reading: ...


# --- Linux --------------------------------------------------------------------------------------


def _status_kib(field: str, text: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if found is None:
        raise MemoryMeasurementError(f"{_STATUS}: no {field} line")
    return int(found.group(1))


def linux_resident_bytes() -> int:
    """The resident set now, from ``/proc/self/statm`` (one read, no parsing of status)."""
    pages = int(_STATM.read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class LinuxHighWaterMark:
    """The kernel's resident high-water mark, reset at the start of each phase.

    Raises:
        OSError: on construction, when the reset is refused (the caller falls back).
    """

    method = LINUX_HWM

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        _CLEAR_REFS.write_text("5")

    def start(self) -> int:
        self._reset()
        return _status_kib("VmRSS", _STATUS.read_text()) * 1024

    def stop(self) -> Reading:
        text = _STATUS.read_text()
        return Reading(_status_kib("VmHWM", text) * 1024, _status_kib("VmRSS", text) * 1024)


# --- macOS --------------------------------------------------------------------------------------


class _RusageInfoV4(ctypes.Structure):
    # <sys/resource.h> struct rusage_info_v4, field for field: the offsets must match.
    _fields_ = [
        ("ri_uuid", ctypes.c_uint8 * 16),
        *(
            (name, ctypes.c_uint64)
            for name in [
                "ri_user_time",
                "ri_system_time",
                "ri_pkg_idle_wkups",
                "ri_interrupt_wkups",
                "ri_pageins",
                "ri_wired_size",
                "ri_resident_size",
                "ri_phys_footprint",
                "ri_proc_start_abstime",
                "ri_proc_exit_abstime",
                "ri_child_user_time",
                "ri_child_system_time",
                "ri_child_pkg_idle_wkups",
                "ri_child_interrupt_wkups",
                "ri_child_pageins",
                "ri_child_elapsed_abstime",
                "ri_diskio_bytesread",
                "ri_diskio_byteswritten",
                "ri_cpu_time_qos_default",
                "ri_cpu_time_qos_maintenance",
                "ri_cpu_time_qos_background",
                "ri_cpu_time_qos_utility",
                "ri_cpu_time_qos_legacy",
                "ri_cpu_time_qos_user_initiated",
                "ri_cpu_time_qos_user_interactive",
                "ri_billed_system_time",
                "ri_serviced_system_time",
                "ri_logical_writes",
                "ri_lifetime_max_phys_footprint",
                "ri_instructions",
                "ri_cycles",
                "ri_billed_energy",
                "ri_serviced_energy",
                "ri_interval_max_phys_footprint",
                "ri_runnable_time",
            ]
        ),
    ]


_RUSAGE_INFO_V4 = 4


def macos_rusage() -> _RusageInfoV4:
    """This process's ``rusage_info_v4``.

    Raises:
        MemoryMeasurementError: not macOS, or libproc refused.
    """
    if sys.platform != "darwin":
        raise MemoryMeasurementError(f"proc_pid_rusage needs macOS, this is {sys.platform}")
    libproc = ctypes.CDLL("/usr/lib/libproc.dylib", use_errno=True)
    info = _RusageInfoV4()
    status = libproc.proc_pid_rusage(os.getpid(), _RUSAGE_INFO_V4, ctypes.byref(info))
    if status != 0:
        raise MemoryMeasurementError(f"proc_pid_rusage failed: {os.strerror(ctypes.get_errno())}")
    return info


def macos_footprint_bytes() -> int:
    """The physical footprint now (what Activity Monitor calls Memory)."""
    return int(macos_rusage().ri_phys_footprint)


class MacFootprint:
    """The physical footprint's peak over a phase: the lifetime maximum when the phase raised
    it (exact), else the highest footprint sampled during the phase."""

    method = MACOS_FOOTPRINT

    def __init__(self, interval_s: float = 0.001) -> None:
        self._sampler = SampledPeak(macos_footprint_bytes, interval_s, self.method)
        self._lifetime_at_start = 0

    def start(self) -> int:
        self._lifetime_at_start = int(macos_rusage().ri_lifetime_max_phys_footprint)
        return self._sampler.start()

    def stop(self) -> Reading:
        sampled = self._sampler.stop()
        lifetime = int(macos_rusage().ri_lifetime_max_phys_footprint)
        peak = lifetime if lifetime > self._lifetime_at_start else sampled.peak
        return Reading(max(peak, sampled.current), sampled.current)


# --- anywhere -----------------------------------------------------------------------------------


def psutil_resident_bytes() -> int:
    import psutil  # only the fallbacks need it

    return int(psutil.Process().memory_info().rss)


class SampledPeak:
    """The highest figure ``reader`` gave while a thread polled it every ``interval_s``.

    Args:
        reader: bytes of memory now.
        interval_s: time between two reads; a spike shorter than it can be missed.
        method: how the record names this meter.
    """

    def __init__(self, reader: Reader, interval_s: float = 0.001, method: str | None = None):
        if not interval_s > 0:
            raise ValueError(f"interval_s {interval_s}: expected a positive number of seconds")
        self.method = method or PSUTIL_SAMPLED.format(interval_ms=interval_s * 1e3)
        self._reader = reader
        self._interval_s = interval_s
        self._peak = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        if self._thread is not None:
            raise RuntimeError("SampledPeak.start called twice without stop")
        now = self._reader()
        self._peak = now
        self._done.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return now

    def _poll(self) -> None:
        while not self._done.wait(self._interval_s):
            self._peak = max(self._peak, self._reader())

    def stop(self) -> Reading:
        if self._thread is None:
            raise RuntimeError("SampledPeak.stop called before start")
        self._done.set()
        self._thread.join()
        self._thread = None
        now = self._reader()
        return Reading(max(self._peak, now), now)


def peak_meter() -> PeakMeter:
    """The most exact meter this platform allows (see the module's docstring)."""
    if sys.platform == "darwin":
        return MacFootprint()
    if sys.platform.startswith("linux"):
        try:
            return LinuxHighWaterMark()
        except OSError:
            pass  # the reset is refused: sample instead, and the record says so
    return SampledPeak(psutil_resident_bytes)


def resident_reader() -> Reader:
    """This platform's figure for "memory now", the same one ``peak_meter`` peaks: the
    resident set on Linux, the physical footprint on macOS, psutil's RSS elsewhere."""
    if sys.platform == "darwin":
        return macos_footprint_bytes
    if sys.platform.startswith("linux") and _STATM.exists():
        return linux_resident_bytes
    return psutil_resident_bytes


def reader_name() -> str:
    """What ``resident_reader`` reads, for the records."""
    if sys.platform == "darwin":
        return "macOS phys_footprint"
    if sys.platform.startswith("linux") and _STATM.exists():
        return "linux resident set (/proc/self/statm)"
    return "psutil RSS"
