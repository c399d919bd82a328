"""Profile detection from injected machine facts."""

import dataclasses

import pytest

from faceperf.bench.hardware import (
    CpuIdentity,
    SystemFacts,
    _linux_cpu,
    _linux_vendor,
    detect_profile,
    linux_cpu_numbers,
)

EPYC = SystemFacts(
    "Linux", "x86_64", "AMD EPYC", 2, frozenset({"sse2", "avx2", "avx512f"}), "AuthenticAMD"
)
M1_PRO = SystemFacts("Darwin", "arm64", "Apple M1 Pro", 10, cpu_vendor="Apple")


def test_linux_profile_names_arch_widest_isa_and_cores():
    profile = detect_profile("ort-cpu", EPYC)
    assert profile.name == "linux-x86_64-avx512-2core/ort-cpu"
    assert profile.runtime == "onnxruntime"
    assert any("avx512" in reason for reason in profile.reasons)


def test_avx2_only_machine_is_another_profile():
    facts = SystemFacts("Linux", "x86_64", "Intel Xeon", 8, frozenset({"avx2"}))
    assert detect_profile("ort-cpu", facts).name == "linux-x86_64-avx2-8core/ort-cpu"


@pytest.mark.parametrize(
    ("backend", "name"),
    [
        ("coreml", "apple-m1-pro/coreml"),
        ("ort-coreml", "apple-m1-pro/ort-coreml"),
    ],
)
def test_apple_silicon_profile_names_the_chip(backend, name):
    assert detect_profile(backend, M1_PRO).name == name


def test_forced_profile_wins_and_says_what_was_detected():
    profile = detect_profile("ort-cpu", EPYC, forced="ci-runner/ort-cpu")
    assert profile.name == "ci-runner/ort-cpu"
    assert "detected linux-x86_64-avx512-2core/ort-cpu" in profile.reasons[-1]


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        detect_profile("tensorrt", EPYC)


def test_cpuinfo_parsing_reads_brand_and_flags():
    brand, flags = _linux_cpu("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2\n")
    assert brand == "AMD EPYC 9R14" and flags == {"fpu", "avx2"}


def test_cpuinfo_parsing_reads_cpuid_numbers_not_the_model_name():
    cpuinfo = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
        "model name\t: AMD EPYC\nstepping\t: 1\n"
    )
    assert linux_cpu_numbers(cpuinfo) == (25, 17, 1)
    assert linux_cpu_numbers("processor\t: 0\nCPU implementer\t: 0x41\n") == (None, None, None)


def test_cpuinfo_parsing_reads_the_vendor_where_there_is_one():
    assert _linux_vendor("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\n") == (
        "GenuineIntel"
    )
    # aarch64 names an implementer code, not a vendor.
    assert _linux_vendor("processor\t: 0\nCPU implementer\t: 0x41\n") is None


def test_the_cpu_is_known_only_with_both_vendor_and_model():
    assert EPYC.cpu == CpuIdentity("AuthenticAMD", "AMD EPYC", isa=EPYC.cpu_flags)
    assert M1_PRO.cpu == CpuIdentity("Apple", "Apple M1 Pro")
    assert dataclasses.replace(EPYC, cpu_vendor=None).cpu is None
    assert dataclasses.replace(EPYC, cpu_brand="unknown").cpu is None  # no model name


def test_cpu_identity_is_validated_and_normalised():
    assert CpuIdentity(" AuthenticAMD ", "AMD  EPYC\t9R14") == CpuIdentity(
        "AuthenticAMD", "AMD EPYC 9R14"
    )
    assert str(CpuIdentity("AuthenticAMD", "AMD EPYC")) == "'AMD EPYC' (AuthenticAMD)"
    with pytest.raises(ValueError, match="CPU model ' ': expected a non-empty string"):
        CpuIdentity("AuthenticAMD", " ")
    with pytest.raises(ValueError, match="CPU vendor None"):
        CpuIdentity(None, "AMD EPYC")  # type: ignore[arg-type]


def test_profile_json_and_text_name_the_cpu_vendor():
    profile = detect_profile("ort-cpu", EPYC)
    assert profile.to_json()["cpu_vendor"] == "AuthenticAMD"
    assert profile.to_json()["cpu_brand"] == "AMD EPYC"
    assert EPYC.describe_cpu() == "'AMD EPYC' (AuthenticAMD)"
    unknown = dataclasses.replace(EPYC, cpu_vendor=None)
    assert unknown.describe_cpu() == (
        "'AMD EPYC' (vendor unknown): not recorded, so the gate cannot check it"
    )


def test_faceperf_profile_prints_the_cpu(capsys):
    from faceperf.cli import main

    assert main(["profile"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  CPU: ")
