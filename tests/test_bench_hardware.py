"""Profile detection from injected machine facts."""

import pytest

from faceperf.bench.hardware import SystemFacts, _linux_cpu, detect_profile

EPYC = SystemFacts("Linux", "x86_64", "AMD EPYC", 2, frozenset({"sse2", "avx2", "avx512f"}))
M1_PRO = SystemFacts("Darwin", "arm64", "Apple M1 Pro", 10)


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
