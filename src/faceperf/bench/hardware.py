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

# Backends and the runtime package whose version decides comparability.
RUNTIMES = {
    "ort-cpu": "onnxruntime",
    "ort-coreml": "onnxruntime",
    "ort-cuda": "onnxruntime",
    "coreml": "coremltools",
    "torch": "torch",
}


@dataclass(frozen=True)
class SystemFacts:
    """What the probe read off the machine (injected in tests)."""

    os: str  # platform.system(): "Linux", "Darwin"
    machine: str  # "x86_64", "arm64", "aarch64"
    cpu_brand: str
    cores: int
    cpu_flags: frozenset[str] = field(default_factory=frozenset)


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
            "cores": self.facts.cores,
            "backend": self.backend,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
        }


def probe_system() -> SystemFacts:
    """Read the facts of this machine."""
    system, machine = platform.system(), platform.machine()
    brand, flags = platform.processor() or machine, frozenset()
    if system == "Linux" and Path("/proc/cpuinfo").exists():
        brand, flags = _linux_cpu(Path("/proc/cpuinfo").read_text(errors="replace"))
    elif system == "Darwin":
        brand = _sysctl("machdep.cpu.brand_string") or brand
    return SystemFacts(system, machine, brand, os.cpu_count() or 1, flags)


def _linux_cpu(cpuinfo: str) -> tuple[str, frozenset[str]]:
    brand = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", cpuinfo, re.M)
    return (
        brand.group(1).strip() if brand else "unknown",
        frozenset(flags.group(1).split()) if flags else frozenset(),
    )


def _sysctl(key: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def detect_profile(
    backend: str = "ort-cpu", facts: SystemFacts | None = None, forced: str | None = None
) -> HardwareProfile:
    """The profile of this machine for ``backend``.

    Args:
        backend: the runtime backend measurements run on.
        facts: the machine's facts (probed when omitted).
        forced: a profile name to use instead of the detected one (``--perf-profile``).
    """
    facts = facts or probe_system()
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
