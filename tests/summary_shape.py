"""The shape every perf summary must have, whichever gates ran (bench/report/render.py), as one
check the report tests share: the verdict line first; outside the one <details> block only rows
whose verdict decides something; inside it only rows whose verdict does not; no sentence (a piece
of advice, a rule, a remark) twice."""

from __future__ import annotations

import re
from collections import Counter

from faceperf.verdicts import Verdict

# Longest first, so that "not gated" is not read as some shorter word.
_WORDS = sorted(Verdict, key=lambda v: len(v.value), reverse=True)
_MARKER = re.compile("^[⁰¹²³⁴⁵⁶⁷⁸⁹]+ ")
_VERDICT_LINE = re.compile(r"\*\*faceperf [^*]+: (PASS|FAIL|nothing compared)\*\*( — .+)?")


def check_summary_shape(text: str) -> None:
    """Fail, saying where, unless ``text`` has the shape of a perf summary."""
    lines = text.splitlines()
    assert _VERDICT_LINE.fullmatch(lines[0]), f"the first line is not the verdict line: {lines[0]}"
    assert not any(_VERDICT_LINE.fullmatch(line) for line in lines[1:]), "two verdict lines"
    assert text.count("<details>") <= 1 and text.count("<details>") == text.count("</details>")
    inside = False
    columns: list[str] = []
    for number, line in enumerate(lines, 1):
        if line.startswith("<details>"):
            inside = True
        elif line == "</details>":
            inside = False
        elif line.startswith("| ") and not columns:
            columns = _cells(line)
        elif line.startswith("|") and set(line) <= set("|-: "):
            continue  # the rule under a header
        elif line.startswith("| "):
            verdict = _verdict(_cells(line), columns)
            decides = verdict is not None and verdict.decides
            where = f"line {number} ({'inside' if inside else 'outside'} <details>): {line}"
            assert decides != inside, where
        else:
            columns = []
    # Prose: the verdict line, headings, notes (without their bullet and number).
    prose = [_MARKER.sub("", line.removeprefix("- ")) for line in lines if line[:1] != "|"]
    sentences = [
        part.strip()
        for line in prose
        for part in re.split(r"(?<=[.;])\s+", line)
        if len(part.strip()) > 20
    ]
    twice = [sentence for sentence, n in Counter(sentences).items() if n > 1]
    assert not twice, f"said more than once: {twice}"


def _cells(line: str) -> list[str]:
    # An escaped pipe (\|) is inside a cell.
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def _verdict(cells: list[str], columns: list[str]) -> Verdict | None:
    """The verdict of a table row; None in a table without a verdict column (measured only)."""
    if "verdict" not in columns:
        return None
    cell = cells[columns.index("verdict")].replace("**", "")
    found = next((v for v in _WORDS if cell.startswith(v.value)), None)
    assert found is not None, f"no verdict in {cell!r}"
    return found
