"""Hardware profiles: which class of machine and runtime a measurement belongs to.

A result is only ever compared with budgets and baselines of its own profile. The profile is
detected from the OS, CPU brand, core count, ISA features, accelerator and runtime (and can be
forced), and the detection says why it chose what it chose.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from faceperf.runtime.backends import BackendChoice, backend_name

# Backends and the runtime package whose version decides comparability.
RUNTIMES = {
    "ort-cpu": "onnxruntime",
    "ort-coreml": "onnxruntime",
    "ort-cuda": "onnxruntime",
    "coreml": "coremltools",
    "torch": "torch",
}
UNKNOWN_CPU = "unknown"  # the brand when /proc/cpuinfo has no model name


@dataclass(frozen=True)
class CpuIdentity:
    """Which CPU a run was measured on: its vendor and model, as the OS names them.

    The profile name is coarser than this (an AMD EPYC and an Intel Xeon with AVX-512 and two
    cores share one), yet the CPU moves timings by more than the gate's threshold, so runs of
    different CPUs must not be compared. Whitespace is collapsed so that two sources spelling
    the same name differently (py-cpuinfo and faceperf's probe) still agree.

    Args:
        vendor: ``AuthenticAMD``, ``GenuineIntel`` (/proc/cpuinfo ``vendor_id``), ``Apple``.
        model: the brand string, e.g. ``AMD EPYC 9R14`` or ``Apple M1 Pro``.
    """

    vendor: str
    model: str

    def __post_init__(self) -> None:
        for what in ("vendor", "model"):
            value = getattr(self, what)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"CPU {what} {value!r}: expected a non-empty string")
            object.__setattr__(self, what, " ".join(value.split()))

    def __str__(self) -> str:
        return f"{self.model!r} ({self.vendor})"


@dataclass(frozen=True)
class SystemFacts:
    """What the probe read off the machine (injected in tests)."""

    os: str  # platform.system(): "Linux", "Darwin"
    machine: str  # "x86_64", "arm64", "aarch64"
    cpu_brand: str
    cores: int
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    cpu_vendor: str | None = None  # None: the OS did not say (aarch64 Linux, Windows)

    @property
    def cpu(self) -> CpuIdentity | None:
        """The CPU's identity, or None when the probe could not read both vendor and model."""
        if not self.cpu_vendor or not self.cpu_brand or self.cpu_brand == UNKNOWN_CPU:
            return None
        return CpuIdentity(self.cpu_vendor, self.cpu_brand)

    def describe_cpu(self) -> str:
        """The CPU as ``faceperf profile`` shows it, saying when the gate cannot check it."""
        if self.cpu is not None:
            return str(self.cpu)
        vendor = self.cpu_vendor or "vendor unknown"
        return f"{self.cpu_brand!r} ({vendor}): not recorded, so the gate cannot check it"


@dataclass(frozen=True)
class HardwareProfile:
    """A named class of machine + runtime, with the facts and reasons behind the name."""

    name: str
    facts: SystemFacts
    backend: str
    runtime: str
    runtime_version: str
    reasons: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "os": self.facts.os,
            "machine": self.facts.machine,
            "cpu_brand": self.facts.cpu_brand,
            "cpu_vendor": self.facts.cpu_vendor,
            "cores": self.facts.cores,
            "backend": self.backend,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
        }


def probe_system() -> SystemFacts:
    """Read the facts of this machine."""
    system, machine = platform.system(), platform.machine()
    brand, flags, vendor = platform.processor() or machine, frozenset(), None
    if system == "Linux" and Path("/proc/cpuinfo").exists():
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        (brand, flags), vendor = _linux_cpu(cpuinfo), _linux_vendor(cpuinfo)
    elif system == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
        brand = model or brand
        # Intel Macs name their vendor (GenuineIntel); Apple Silicon has no such key.
        vendor = _sysctl("machdep.cpu.vendor") or ("Apple" if model else None)
    return SystemFacts(system, machine, brand, os.cpu_count() or 1, flags, vendor)


def _linux_cpu(cpuinfo: str) -> tuple[str, frozenset[str]]:
    brand = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, re.M)
    return (
        brand.group(1).strip() if brand else UNKNOWN_CPU,
        frozenset(flags.group(1).split()) if flags else frozenset(),
    )


def _linux_vendor(cpuinfo: str) -> str | None:
    """x86's ``vendor_id`` (what py-cpuinfo records as ``vendor_id_raw``); None on ARM."""
    vendor = re.search(r"^vendor_id\s*:\s*(\S.*)$", cpuinfo, re.M)
    return vendor.group(1).strip() if vendor else None


def _sysctl(key: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def detect_profile(
    backend: str | BackendChoice = "ort-cpu",
    facts: SystemFacts | None = None,
    forced: str | None = None,
) -> HardwareProfile:
    """The profile of this machine for ``backend``.

    Args:
        backend: the runtime backend measurements run on (a name or a parsed choice).
        facts: the machine's facts (probed when omitted).
        forced: a profile name to use instead of the detected one (``--perf-profile``).
    """
    facts = facts or probe_system()
    backend = backend_name(backend)
    base = backend.partition(":")[0]  # coreml:CPU_ONLY runs on coremltools like coreml
    if base not in RUNTIMES:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(RUNTIMES)}")
    runtime = RUNTIMES[base]
    version = metadata.version(runtime)
    machine_class, reasons = _machine_class(facts)
    reasons.append(f"backend {backend} runs on {runtime} {version}")
    name = f"{machine_class}/{backend}"
    if forced:
        reasons.append(f"forced with --perf-profile (detected {name})")
        name = forced
    return HardwareProfile(name, facts, backend, runtime, version, tuple(reasons))


def _machine_class(facts: SystemFacts) -> tuple[str, list[str]]:
    if facts.os == "Darwin" and facts.machine == "arm64":
        chip = re.sub(r"[^a-z0-9]+", "-", facts.cpu_brand.lower()).strip("-")
        if chip.startswith("apple-m"):
            return chip, [f"macOS on {facts.cpu_brand} (Apple Silicon, Neural Engine present)"]
        return "apple-silicon", [f"macOS on arm64 ({facts.cpu_brand})"]
    arch = "x86_64" if facts.machine in {"x86_64", "AMD64"} else facts.machine
    isa = _best_isa(facts.cpu_flags, arch)
    reasons = [
        f"{facts.os} on {arch}, CPU {facts.cpu_brand!r}, {facts.cores} cores",
        f"widest vector ISA: {isa or 'baseline'}",
    ]
    # The core count is part of the class: a baseline from a 2-core runner says nothing about a
    # 32-core one, in either direction.
    parts = [facts.os.lower(), arch] + ([isa] if isa else []) + [f"{facts.cores}core"]
    return "-".join(parts), reasons


def _best_isa(flags: frozenset[str], arch: str) -> str | None:
    if arch == "x86_64":
        if "avx512f" in flags:
            return "avx512"
        if "avx2" in flags:
            return "avx2"
        return None
    if "asimd" in flags or "neon" in flags or arch in {"arm64", "aarch64"}:
        return "neon"
    return None


# The packages whose versions decide what a measurement means, recorded with every result.
RUNTIME_PACKAGES = ("onnxruntime", "coremltools", "torch", "numpy")


def runtime_versions() -> dict[str, str]:
    """The installed version of each of RUNTIME_PACKAGES ("not installed" when absent)."""
    versions = {}
    for name in RUNTIME_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
