"""The merge gate's reference: an artifact folder as given, or the artifacts a git revision's
code and weights define (built once, then cached by that build's fingerprint)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from faceperf.artifacts.revision import build_at_revision, looks_like_git_ref
from faceperf.errors import ArtifactError
from faceperf.paths import repo_root

MAIN_BRANCHES = ("origin/main", "main")


def resolve_reference(
    text: str, repo: Path | None = None, say: Callable[[str], None] | None = None
) -> Path:
    """The artifact folder ``text`` names: a folder as it is, or a revision's cached build.

    Raises:
        ArtifactError: neither an existing folder nor a revision of ``repo``.
        RevisionError: the revision predates the artifact layout or fails to build.
    """
    repo = repo or repo_root()
    path = Path(text)
    if path.is_dir():
        return path
    if not looks_like_git_ref(text, repo):
        raise ArtifactError(
            f"reference {text!r} is neither an artifact folder nor a git revision of {repo}"
        )
    if say is not None:
        say(f"faceperf ab: reference {text}: using its cached artifacts or building them")
    built = build_at_revision(text, repo=repo)
    if say is not None:
        how = "cached" if built.cached else "built"
        say(f"faceperf ab: reference {text} ({built.commit[:10]}): {how} in {built.directory}")
    return built.directory


def merge_base(repo: Path | None = None) -> tuple[str | None, str]:
    """The revision ``make perf`` gates against: the merge base of HEAD with the main branch.

    Returns ``(sha, why)``: the merge base and what it is, or ``(None, why not)`` when there is
    nothing to compare with (no git, no main branch, or HEAD is the merge base with a clean
    working tree: the candidate would be the reference itself).
    """
    repo = repo or repo_root()
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None:
        return None, f"{repo} is not a git checkout with a commit"
    for branch in MAIN_BRANCHES:
        if _git(repo, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}") is None:
            continue
        base = _git(repo, "merge-base", "HEAD", branch)
        if base is None:
            return None, f"HEAD and {branch} share no history"
        if base == head and not _dirty(repo):
            return None, f"HEAD is {branch}'s merge base and the tree is clean: nothing to compare"
        return base, f"merge base of HEAD and {branch} ({base[:10]})"
    return None, f"no main branch ({' or '.join(MAIN_BRANCHES)}) in {repo}"


def _dirty(repo: Path) -> bool:
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return bool(status)


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
