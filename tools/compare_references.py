"""Compare two folders of reference files key by key (docs/accuracy.md, "Tracking jitter").

    .venv/bin/python tools/compare_references.py OLD_DIR NEW_DIR

For every ``<subject>.npz`` in OLD_DIR (and ``jitter/<subject>.npz`` when both have it) it says
how many arrays the two files share, which are missing from NEW, which NEW added, and which
differ in dtype, shape or any byte (with the largest difference). The provenance entries are
compared field by field, leaving out what a rebuild always changes (``built``) and requiring
NEW's ``cases`` to keep OLD's in order. Exit 1 when anything in OLD is missing or differs:
what a rebuild meant only to add entries must not do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

VOLATILE = {"built", "cases"}


def _provenance_differences(old: dict, new: dict) -> list[str]:
    found = [
        f"provenance.{field}"
        for field in sorted(set(old) | set(new))
        if field not in VOLATILE and old.get(field) != new.get(field)
    ]
    if [case for case in new.get("cases", []) if case in old.get("cases", [])] != old.get(
        "cases", []
    ):
        found.append("provenance.cases (order or missing)")
    return found


def _array_difference(key: str, old: np.ndarray, new: np.ndarray) -> str | None:
    if old.dtype == new.dtype and old.shape == new.shape and old.tobytes() == new.tobytes():
        return None
    if old.shape == new.shape and old.dtype.kind in "fiu" and new.dtype.kind in "fiu":
        delta = np.max(np.abs(old.astype(np.float64) - new.astype(np.float64)), initial=0.0)
        return f"{key} (largest difference {delta:.3g})"
    return f"{key} ({old.dtype}{old.shape} against {new.dtype}{new.shape})"


def compare_files(old_path: Path, new_path: Path) -> tuple[list[str], int]:
    """Report lines for one pair of files, and how many problems they hold."""
    with np.load(old_path, allow_pickle=False) as old, np.load(new_path, allow_pickle=False) as new:
        old_keys, new_keys = set(old.files), set(new.files)
        missing = sorted(old_keys - new_keys)
        added = sorted(new_keys - old_keys)
        differ = []
        for key in sorted(old_keys & new_keys):
            if key == "provenance":
                differ += _provenance_differences(
                    json.loads(str(old[key])), json.loads(str(new[key]))
                )
                continue
            found = _array_difference(key, old[key], new[key])
            if found:
                differ.append(found)
        shared = len(old_keys & new_keys)
    lines = [
        f"{old_path.name} -> {new_path}: {shared} shared, {len(missing)} missing, "
        f"{len(added)} added, {len(differ)} differ"
    ]
    lines += [f"  missing {key}" for key in missing]
    lines += [f"  differs {what}" for what in differ]
    if added:
        lines.append(f"  added {', '.join(added)}")
    return lines, len(missing) + len(differ)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    problems = 0
    pairs = [(path, args.new / path.name) for path in sorted(args.old.glob("*.npz"))]
    pairs += [
        (path, args.new / "jitter" / path.name)
        for path in sorted(args.old.glob("jitter/*.npz"))
        if (args.new / "jitter" / path.name).exists()
    ]
    for old_path, new_path in pairs:
        if not new_path.exists():
            print(f"{old_path.name}: missing from {args.new}")
            problems += 1
            continue
        lines, found = compare_files(old_path, new_path)
        print("\n".join(lines))
        problems += found
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
