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


# The ISA extensions ONNX Runtime's and the BLAS's kernels are picked by (MLAS dispatches on
# AVX2/FMA, AVX-512 and its VNNI/BF16/FP16 parts, AMX; on Arm on dot-product, i8mm, BF16, SVE):
# two CPUs that differ in one of these run different kernels. Spelled without underscores, as
# py-cpuinfo spells some of them (``avx512vnni``) and /proc/cpuinfo others (``avx512_vnni``).
KERNEL_ISA = frozenset(
    {
        "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
        "avx512vnni", "avx512bf16", "avx512fp16", "avxvnni", "amxtile", "amxbf16", "amxint8",
        "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2",
    }
)  # fmt: skip


def kernel_isa(flags: frozenset[str] | set[str] | list[str]) -> frozenset[str]:
    """The flags among ``flags`` that select kernels (KERNEL_ISA), spelled without underscores."""
    return frozenset(f.lower().replace("_", "") for f in flags) & KERNEL_ISA


@dataclass(frozen=True)
class CpuIdentity:
    """Which CPU a run was measured on: what tells two CPUs apart when the name does not.

    A virtual machine names an AMD EPYC of family 25 and one of family 26 both "AMD EPYC", and
    the second runs STAR twice as fast: the brand string alone lets a baseline from another CPU
    through. So the identity is the vendor and brand, the family / model / stepping numbers
    (x86 CPUID as /proc/cpuinfo and py-cpuinfo give them), and the ISA extensions that pick
    kernels. On a Mac the brand is the chip (``Apple M1 Pro``). Whitespace in names is
    collapsed, so two sources spelling the same name differently still agree.

    Args:
        vendor: ``AuthenticAMD``, ``GenuineIntel`` (/proc/cpuinfo ``vendor_id``), ``Apple``.
        model: the brand string, e.g. ``AMD EPYC 9R14`` or ``Apple M1 Pro``.
        family: CPUID family (None when the OS does not say: Arm, macOS).
        model_number: CPUID model.
        stepping: CPUID stepping.
        isa: the kernel-selecting ISA flags (see KERNEL_ISA); empty when unknown.
    """

    vendor: str
    model: str
    family: int | None = None
    model_number: int | None = None
    stepping: int | None = None
    isa: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for what in ("vendor", "model"):
            value = getattr(self, what)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"CPU {what} {value!r}: expected a non-empty string")
            object.__setattr__(self, what, " ".join(value.split()))
        for what in ("family", "model_number", "stepping"):
            value = getattr(self, what)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"CPU {what} {value!r}: expected an integer or None")
        if isinstance(self.isa, str) or not all(isinstance(f, str) for f in self.isa):
            raise ValueError(f"CPU isa {self.isa!r}: expected a set of flag names")
        object.__setattr__(self, "isa", kernel_isa(self.isa))

    @property
    def numbers(self) -> str | None:
        """``family 25 model 17 stepping 1``, or None when none is known."""
        parts = [
            f"{label} {value}"
            for label, value in (
                ("family", self.family),
                ("model", self.model_number),
                ("stepping", self.stepping),
            )
            if value is not None
        ]
        return " ".join(parts) or None

    def __str__(self) -> str:
        detail = ", ".join(filter(None, [self.vendor, self.numbers]))
        return f"{self.model!r} ({detail})"

    def differences(self, other: CpuIdentity) -> list[str]:
        """How ``other`` differs from this CPU, each as ``what: this vs other``; a field only
        one side knows is no difference (older records carry only vendor and brand)."""
        found = [
            f"{label}: {mine!r} vs {theirs!r}"
            for label, mine, theirs in (
                ("vendor", self.vendor, other.vendor),
                ("brand", self.model, other.model),
                ("family", self.family, other.family),
                ("model", self.model_number, other.model_number),
                ("stepping", self.stepping, other.stepping),
            )
            if mine is not None and theirs is not None and mine != theirs
        ]
        if self.isa and other.isa and self.isa != other.isa:
            only_mine, only_theirs = sorted(self.isa - other.isa), sorted(other.isa - self.isa)
            found.append(
                "kernel ISA: "
                + "; ".join(
                    filter(
                        None,
                        [
                            only_mine and f"only the first has {', '.join(only_mine)}",
                            only_theirs and f"only the second has {', '.join(only_theirs)}",
                        ],
                    )
                )
            )
        return found

    def same_as(self, other: CpuIdentity | None) -> bool:
        """True when ``other`` is this CPU as far as both records tell (None never is)."""
        return other is not None and not self.differences(other)

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {"vendor": self.vendor, "model": self.model}
        for key in ("family", "model_number", "stepping"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        if self.isa:
            record["isa"] = sorted(self.isa)
        return record

    @classmethod
    def from_json(cls, record: object) -> CpuIdentity:
        """The identity :meth:`to_json` wrote.

        Raises:
            ValueError: not an object, or a field of the wrong type.
        """
        if not isinstance(record, dict):
            raise ValueError(f"CPU record {record!r}: expected an object")
        unknown = set(record) - {"vendor", "model", "family", "model_number", "stepping", "isa"}
        if unknown:
            raise ValueError(f"CPU record has unknown keys {sorted(unknown)}")
        isa = record.get("isa", [])
        if not isinstance(isa, list):
            raise ValueError(f"CPU isa {isa!r}: expected a list of flag names")
        return cls(
            record.get("vendor"),  # type: ignore[arg-type]  # checked in __post_init__
            record.get("model"),  # type: ignore[arg-type]
            record.get("family"),  # type: ignore[arg-type]
            record.get("model_number"),  # type: ignore[arg-type]
            record.get("stepping"),  # type: ignore[arg-type]
            frozenset(isa),
        )


@dataclass(frozen=True)
class SystemFacts:
    """What the probe read off the machine (injected in tests)."""

    os: str  # platform.system(): "Linux", "Darwin"
    machine: str  # "x86_64", "arm64", "aarch64"
    cpu_brand: str
    cores: int
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    cpu_vendor: str | None = None  # None: the OS did not say (aarch64 Linux, Windows)
    cpu_numbers: tuple[int | None, int | None, int | None] = (None, None, None)
    # ^ CPUID (family, model, stepping); None where the OS does not say (Arm, macOS)

    @property
    def cpu(self) -> CpuIdentity | None:
        """The CPU's identity, or None when the probe could not read both vendor and model."""
        if not self.cpu_vendor or not self.cpu_brand or self.cpu_brand == UNKNOWN_CPU:
            return None
        return CpuIdentity(self.cpu_vendor, self.cpu_brand, *self.cpu_numbers, self.cpu_flags)

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
            "cpu": self.facts.cpu.to_json() if self.facts.cpu else None,
            "cores": self.facts.cores,
            "backend": self.backend,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
        }


def probe_system() -> SystemFacts:
    """Read the facts of this machine."""
    system, machine = platform.system(), platform.machine()
    brand, flags, vendor = platform.processor() or machine, frozenset(), None
    numbers: tuple[int | None, int | None, int | None] = (None, None, None)
    if system == "Linux" and Path("/proc/cpuinfo").exists():
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        (brand, flags), vendor = _linux_cpu(cpuinfo), _linux_vendor(cpuinfo)
        numbers = linux_cpu_numbers(cpuinfo)
    elif system == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
        brand = model or brand
        # Intel Macs name their vendor (GenuineIntel); Apple Silicon has no such key.
        vendor = _sysctl("machdep.cpu.vendor") or ("Apple" if model else None)
    return SystemFacts(system, machine, brand, os.cpu_count() or 1, flags, vendor, numbers)


def linux_cpu_numbers(cpuinfo: str) -> tuple[int | None, int | None, int | None]:
    """x86's CPUID family, model and stepping from /proc/cpuinfo's first processor (None each
    where absent, as on Arm)."""

    def number(key: str) -> int | None:
        found = re.search(rf"^{key}\s*:\s*(\d+)\s*$", cpuinfo, re.M)
        return int(found.group(1)) if found else None

    return number("cpu family"), number("model"), number("stepping")


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
