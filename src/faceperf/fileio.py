"""Writing files so that a crash or a kill never leaves half of one on disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is for everyone
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: Path, document: object) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2, sort_keys=False) + "\n").encode())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder (an mlpackage) as its sorted relative paths and contents."""
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(item.read_bytes()).digest())
        return digest.hexdigest()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def replace_tree(staging: Path, target: Path) -> None:
    """Put the finished folder ``staging`` at ``target``, replacing what was there.

    Two renames: the old folder moves aside, the new one moves in, the old one is deleted. A
    crash between them leaves the previous folder beside the target, never a half-built one.
    """
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700
    aside = None
    if target.exists():
        aside = target.with_name(f".{target.name}.old-{os.getpid()}")
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(target, aside)
    os.replace(staging, target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def read_json(path: Path, what: str, error: type[Exception]) -> object:
    """The decoded JSON document at ``path``; ``error`` with a one-line message naming the
    file when it is missing, unreadable or not JSON.

    Args:
        path: the file.
        what: what the file is, for the message ("compute plan file").
        error: the exception type the caller's users expect.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc})") from None
