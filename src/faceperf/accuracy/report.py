"""The accuracy report folder: pictures of what a check judged, for the reviewer of a candidate.

``write_accuracy_report`` writes, into a new folder, one picture per case worth looking at
(pictures.py), a contact sheet of them, the jitter clips' tracks, and ``summary.md``: the
verdict, a table of subjects and variants with their worst measurement, and links to every
file. A case is worth looking at when it fails (a failing ``all`` measurement, such as the mean
NME, points at its worst case), and a passing subject and variant shows its worst case by its
task metric (``TASK_METRICS``), so a reviewer also sees what "passing" looks like. Everything
is drawn from the results and references the check already holds: no model runs here.

The folder is assembled beside its final place and renamed into it, so an interrupted write
leaves no half-written report; an existing folder is refused.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from faceperf.accuracy.compare import ALL_CASES, JITTER, RANGES, TENSORS, Measurement
from faceperf.accuracy.pictures import (
    Caption,
    CaseFrames,
    Overlay,
    case_picture,
    clip_picture,
    contact_sheet,
    farthest_frame,
    plot_tracks,
    write_png,
)
from faceperf.accuracy.references import JITTER_SUBJECTS, REFERENCE_VARIANT, ReferenceSet
from faceperf.accuracy.session import SubjectCheck, SubjectResult
from faceperf.accuracy.tolerances import Bounds, ParityLimit
from faceperf.errors import FaceperfError
from faceperf.fileio import atomic_write_bytes
from faceperf.verdicts import Verdict, combine

SUMMARY, CONTACT_SHEET = "summary.md", "contact_sheet.png"
# The metric whose worst case a passing subject shows: what a reviewer would look at first.
TASK_METRICS = {
    "star": ("nme_pct",),
    "retinaface": ("min_iou",),
    "mtcnn": ("min_iou",),
    "mtl": ("gaze_deg", "au_max_abs"),
}
MAX_CAPTION_LINES = 6


class AccuracyReportError(FaceperfError):
    """The report folder cannot be written where asked."""


@dataclass(frozen=True)
class Pick:
    """One case to draw: the measurements its caption shows (failing ones first) and whether
    it is there because it fails (else: the passing subject's worst case)."""

    subject: str
    variant: str
    case: str
    shown: tuple[Measurement, ...]
    failing: bool

    @property
    def is_clip(self) -> bool:
        return any(m.check == JITTER for m in self.shown)


@dataclass(frozen=True)
class Picture:
    """A picture in the folder: its file name and the line summary.md gives it."""

    file: str
    subject: str
    variant: str
    text: str


def margin(measurement: Measurement) -> float:
    """How far beyond its limit a measurement lies, relative to the limit (> 0: it fails), so
    that different metrics compare: a ceiling of 0.5 % exceeded by 0.1 is as bad as a floor of
    45 dB missed by 9 dB. Parity limits are relative already; a range by its width."""
    limit, value = measurement.limit, measurement.value
    severity = limit.severity(value)
    if isinstance(limit, ParityLimit) or math.isinf(severity) or math.isnan(severity):
        return severity if not math.isnan(severity) else math.inf
    if isinstance(limit, Bounds):
        width = limit.high - limit.low
        return severity / width if math.isfinite(width) and width > 0 else severity
    return severity / abs(limit.bound) if limit.bound else severity


def _by_margin(measurement: Measurement) -> float:
    return -margin(measurement)  # worst first


def _worst(measurements: Sequence[Measurement]) -> Measurement | None:
    return max(measurements, key=margin, default=None)


def picks(result: SubjectResult) -> list[Pick]:
    """The cases of ``result`` worth a picture: every failing case, else its worst case."""
    if result.skipped is not None or result.refused is not None:
        return []
    per_case = [m for m in result.measurements if m.case != ALL_CASES]
    failing: dict[str, list[Measurement]] = {}
    for m in result.failures:
        case = m.case
        if case == ALL_CASES:  # a mean or a rate over every case: show its worst case
            worst = _worst([c for c in per_case if c.check == m.check])
            if worst is None:
                continue
            case = worst.case
        failing.setdefault(case, []).append(m)
    if failing:
        return [
            Pick(result.subject, result.variant, case, tuple(sorted(shown, key=_by_margin)), True)
            for case, shown in failing.items()
        ]
    # only a case of the subject's own outputs: another check's cases (the bins') are not kept
    drawable = [m for m in per_case if m.case in result.outputs]
    worst = _worst(_task_measurements(result.subject, drawable))
    if worst is None:
        return []
    return [Pick(result.subject, result.variant, worst.case, (worst,), False)]


def _task_measurements(subject: str, per_case: list[Measurement]) -> list[Measurement]:
    """The subject's task metric, else (detections not judged: a surrogate detector) its
    tensors, else anything but ranges and jitter (their worst is rarely a picture)."""
    for wanted in (
        lambda m: m.metric in TASK_METRICS.get(subject, ()),
        lambda m: m.check == TENSORS,
        lambda m: m.check not in (RANGES, JITTER),
    ):
        found = [m for m in per_case if wanted(m)]
        if found:
            return found
    return []


def headline(result: SubjectResult) -> Measurement | None:
    """The one measurement summary.md shows for a subject and variant: its worst failure, else
    its worst case by the task metric."""
    if result.failures:
        return _worst(result.failures)
    chosen = picks(result)
    return chosen[0].shown[0] if chosen else None


def _caption(pick: Pick, extra: str = "") -> Caption:
    lines = [_measured(m) for m in pick.shown[:MAX_CAPTION_LINES]]
    hidden = len(pick.shown) - MAX_CAPTION_LINES
    if hidden > 0:
        lines.append(f"... and {hidden} more failing measurements (summary.md)")
    if extra:
        lines.append(extra)
    verdict = "FAIL" if pick.failing else "pass (its worst case)"
    return Caption(
        f"{pick.subject} {pick.variant} [{pick.case}]: {verdict}",
        not pick.failing,
        (f"reference ({REFERENCE_VARIANT})", f"candidate ({pick.variant})"),
        tuple(lines),
    )


def _measured(m: Measurement) -> str:
    over = " over all cases" if m.case == ALL_CASES else ""
    verdict = "ok" if m.passed else "FAILS"
    return f"{m.metric}{over} = {m.value:.4g}{m.limit.unit} (limit {m.limit.describe()}): {verdict}"


def _draw(
    pick: Pick, result: SubjectResult, reference: ReferenceSet, frames: CaseFrames
) -> Overlay | None:
    """The pick's picture, or None when neither side's answers for its case were kept (a
    check whose cases are not the subject's own outputs or jitter clips)."""
    if pick.is_clip and reference.jitter is not None and pick.case in result.jitter_outputs:
        ref = reference.jitter.outputs[pick.case]
        cand = result.jitter_outputs[pick.case]
        t = farthest_frame(pick.subject, pick.case, ref, cand)
        caption = _caption(pick, f"frame {t} of the clip: where the two sides lie farthest apart")
        return clip_picture(pick.subject, pick.case, t, ref, cand, caption)
    if pick.case not in reference.outputs or pick.case not in result.outputs:
        return None
    ref_arrays = reference.outputs[pick.case]
    cand_arrays = result.outputs[pick.case]
    return case_picture(pick.subject, pick.case, ref_arrays, cand_arrays, _caption(pick), frames)


def _file_name(index: int, pick: Pick) -> str:
    case = re.sub(r"[^A-Za-z0-9_.-]+", "_", pick.case.replace("@", "-at-").replace("#", "_"))
    return f"{index:02d}-{pick.subject}-{pick.variant}-{case}.png"


@dataclass(frozen=True)
class WrittenAccuracyReport:
    """What ``write_accuracy_report`` wrote: the folder, its pictures and plots (file names)."""

    directory: Path
    pictures: tuple[Picture, ...]
    tracks: tuple[str, ...]

    @property
    def summary(self) -> Path:
        return self.directory / SUMMARY


def write_accuracy_report(
    directory: Path,
    checks: Sequence[SubjectCheck],
    references: Mapping[str, ReferenceSet],
    candidate: Path,
) -> WrittenAccuracyReport:
    """Write the report folder ``directory`` (which must not exist) for ``checks``.

    Args:
        directory: the new folder.
        checks: what was judged, in the order to report it.
        references: the reference of every subject with outputs in ``checks``.
        candidate: the candidate folder the checks judged (named in summary.md).

    Raises:
        AccuracyReportError: ``directory`` exists, or a judged subject has no reference.
    """
    directory = Path(directory)
    refuse_existing(directory)
    missing = sorted({c.accuracy.subject for c in checks if c.accuracy.outputs} - set(references))
    if missing:
        raise AccuracyReportError(
            f"no reference given for {', '.join(missing)}; expected one per judged subject"
        )
    staging = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        written = _write(staging, checks, references, candidate)
        try:
            # rename, not replace: it will not put the report over a folder made meanwhile
            os.rename(staging, directory)
        except OSError as err:
            raise AccuracyReportError(
                f"report folder {directory}: cannot move the finished report into place ({err})"
            ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return WrittenAccuracyReport(directory, written[0], written[1])


def refuse_existing(directory: Path) -> None:
    """AccuracyReportError when ``directory`` exists: a report never overwrites another."""
    if Path(directory).exists():
        raise AccuracyReportError(
            f"report folder {directory} already exists; expected a new folder"
        )


def _write(
    folder: Path,
    checks: Sequence[SubjectCheck],
    references: Mapping[str, ReferenceSet],
    candidate: Path,
) -> tuple[tuple[Picture, ...], tuple[str, ...]]:
    frames = CaseFrames()
    pictures, images, undrawn = [], [], []
    for check in checks:
        result = check.accuracy
        for pick in picks(result):
            overlay = _draw(pick, result, references[result.subject], frames)
            if overlay is None:
                undrawn.append(pick)
                continue
            name = _file_name(len(pictures) + 1, pick)
            write_png(folder / name, overlay.image)
            images.append(overlay.image)
            text = f"[{pick.case}] {_measured(pick.shown[0])}"
            pictures.append(Picture(name, pick.subject, pick.variant, text))
    if images:
        write_png(folder / CONTACT_SHEET, contact_sheet(images))
    tracks = _write_tracks(folder, checks, references)
    summary = summary_markdown(checks, pictures, tracks, candidate, undrawn)
    atomic_write_bytes(folder / SUMMARY, summary.encode())
    return tuple(pictures), tuple(tracks)


def track_file(subject: str) -> str:
    return f"jitter-{subject}.png"


def _write_tracks(
    folder: Path, checks: Sequence[SubjectCheck], references: Mapping[str, ReferenceSet]
) -> list[str]:
    written = []
    for subject in JITTER_SUBJECTS:
        shaken = {
            c.accuracy.variant: c.accuracy.jitter_outputs
            for c in checks
            if c.accuracy.subject == subject and c.accuracy.jitter_outputs
        }
        reference = references.get(subject)
        if not shaken or reference is None or reference.jitter is None:
            continue
        plot_tracks(folder / track_file(subject), subject, reference.jitter.outputs, shaken)
        written.append(track_file(subject))
    return written


def verdict_line(checks: Sequence[SubjectCheck]) -> str:
    """``**fail**: 1 of 4 subject/variant checks fail: star optimized_fp16; 0 skipped``."""
    verdict = combine([c.verdict for c in checks]) if checks else Verdict.SKIPPED
    failing = [f"{c.accuracy.subject} {c.accuracy.variant}" for c in checks if c.verdict.blocks()]
    skipped = sum(c.verdict is Verdict.SKIPPED for c in checks)
    return (
        f"**{verdict}**: {len(failing)} of {len(checks)} subject/variant checks fail"
        + (f": {', '.join(failing)}" if failing else "")
        + f"; {skipped} skipped"
    )


def summary_markdown(
    checks: Sequence[SubjectCheck],
    pictures: Sequence[Picture],
    tracks: Sequence[str],
    candidate: Path,
    undrawn: Sequence[Pick] = (),
) -> str:
    """summary.md: the verdict, one row per subject and variant, links to every picture, and
    the failing cases there is no picture of."""
    lines = [
        f"# faceperf accuracy: {candidate}",
        "",
        verdict_line(checks),
        "",
        f"Reference ({REFERENCE_VARIANT}, fixtures/references) in sky blue, drawn under the "
        "candidate in orange: a blue rim around an orange dot is agreement. Limits: "
        "accuracy_tests/tolerances.toml.",
        "",
        "| subject | variant | verdict | worst measurement | pictures |",
        "|---|---|---|---|---|",
    ]
    for check in checks:
        result = check.accuracy
        own = [p for p in pictures if (p.subject, p.variant) == (result.subject, result.variant)]
        lines.append(
            f"| {result.subject} | {result.variant} | {check.verdict} | "
            f"{_cell(_worst_text(check))} | {_pictures_cell(own)} |"
        )
    lines.append("")
    if pictures:
        lines += [f"[![contact sheet]({CONTACT_SHEET})]({CONTACT_SHEET})", "", "## Pictures", ""]
        lines += [f"- [{p.file}]({p.file}): {p.subject} {p.variant} {p.text}" for p in pictures]
    else:
        lines.append("No case to draw: nothing was judged against the references.")
    if undrawn:
        lines += ["", "## Failing without a picture", ""]
        lines += [
            f"- {p.subject} {p.variant} [{p.case}] {_measured(m)}" for p in undrawn for m in p.shown
        ]
    if tracks:
        lines += ["", "## Jitter tracks", ""]
        lines += [
            f"- [{name}]({name}): positions of a few points per frame of each jitter clip, "
            "true motion removed, reference against each variant"
            for name in tracks
        ]
    return "\n".join(lines) + "\n"


def _worst_text(check: SubjectCheck) -> str:
    result = check.accuracy
    if result.skipped is not None:
        return f"skipped: {result.skipped}"
    if result.refused is not None:
        return f"the candidate does not run: {result.refused}"
    conformance = [
        f"conformance {c.model}/{c.variant}: {f.check}: {f.message}"
        for c in check.conformance
        for f in c.findings
    ]
    worst = headline(result)
    where = "" if worst is None or worst.case == ALL_CASES else f"[{worst.case}] "
    measured = f"{where}{_measured(worst)}" if worst else ""
    return "; ".join([*conformance[:1], *([measured] if measured else [])]) or "-"


def _pictures_cell(own: Sequence[Picture]) -> str:
    if not own:
        return "-"
    more = f" and {len(own) - 1} more" if len(own) > 1 else ""
    return f"[{own[0].file}]({own[0].file}){more}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
