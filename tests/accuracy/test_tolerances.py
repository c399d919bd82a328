"""The tolerances file: the committed one loads; every kind of malformed file is refused with
the file and key named."""

from __future__ import annotations

import pytest

from faceperf.accuracy.tolerances import (
    VARIANTS,
    TolerancesError,
    default_tolerances_path,
    load_tolerances,
)


def test_the_committed_file_has_a_limit_for_every_metric_and_variant():
    tolerances = load_tolerances()
    star = tolerances.limit("snr_db", "star", "optimized_fp16")
    assert star.lower and star.bound == 45.0
    nme = tolerances.limit("landmarks", "nme_max_pct", "optimized")
    assert not nme.lower and nme.allows(0.01) and not nme.allows(0.06)
    # A number given once applies to every variant.
    assert {tolerances.value("detection", "agreement", v) for v in VARIANTS} == {1.0}


def test_nan_never_passes_a_limit():
    limit = load_tolerances().limit("multitask", "gaze_max_deg", "optimized")
    assert not limit.allows(float("nan"))


def _write(tmp_path, text: str):
    path = tmp_path / "tolerances.toml"
    path.write_text(default_tolerances_path().read_text() + text)
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("\n[landmark]\nnme_max_pct = 1\n", "unknown section [landmark]"),
        ("\n[extra]\n", "unknown section [extra]"),
        ("\n[snr_db.x]\n", "unknown key [snr_db] x"),
    ],
)
def test_unknown_sections_and_keys_are_refused(tmp_path, extra, message):
    with pytest.raises(TolerancesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_tolerances(_write(tmp_path, extra))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[snr_db]\nstar = 'high'\n", r"\[snr_db\] star is 'high', expected a finite number"),
        ("[snr_db]\nstar = -3\n", r"\[snr_db\] star is -3, expected a number >= 0"),
        ("[snr_db]\nstar = { optimized = 1 }\n", r"\[snr_db\] star has no limit for baseline"),
        (
            "[snr_db]\nstar = { baseline = 1, optimized = 1, optimized_fp16 = 1, coreml = 1, "
            "fp8 = 1 }\n",
            "unknown variant",
        ),
        ("[snr_db]\nstar = true\n", "expected a finite number"),
        ("[snr_db\n", "not valid TOML"),
        ("", "missing limit"),
    ],
)
def test_malformed_values_are_refused_naming_file_and_key(tmp_path, body, message):
    path = tmp_path / "tolerances.toml"
    path.write_text(body)
    with pytest.raises(TolerancesError, match=message) as error:
        load_tolerances(path)
    assert str(path) in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TolerancesError, match="tolerances file not found"):
        load_tolerances(tmp_path / "nope.toml")
