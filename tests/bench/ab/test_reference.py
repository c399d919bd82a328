"""Where the merge gate's reference comes from: a folder as given, a git revision's cached
build, and for `make perf` the merge base with the main branch, or the reason there is none."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from faceperf.bench.ab.reference import merge_base, resolve_reference
from faceperf.errors import ArtifactError


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.txt").write_text("one\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_a_folder_is_taken_as_it_is(tmp_path):
    assert resolve_reference(str(tmp_path), repo=tmp_path) == tmp_path


def test_neither_a_folder_nor_a_revision_is_one_line(repo):
    with pytest.raises(ArtifactError, match="'nope' is neither an artifact folder nor a git"):
        resolve_reference("nope", repo=repo)


def test_no_git_checkout_means_no_merge_base(tmp_path):
    base, why = merge_base(tmp_path)
    assert base is None and "not a git checkout" in why


def test_head_on_main_with_a_clean_tree_has_nothing_to_compare(repo):
    base, why = merge_base(repo)
    assert base is None and "nothing to compare" in why


def test_head_on_main_with_local_changes_compares_with_head(repo):
    (repo / "a.txt").write_text("changed\n")
    base, why = merge_base(repo)
    assert base == _git(repo, "rev-parse", "HEAD") and "merge base of HEAD and main" in why


def test_a_branch_is_compared_with_where_it_left_main(repo):
    fork = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "feature")
    (repo / "a.txt").write_text("two\n")
    _git(repo, "commit", "-q", "-am", "two")
    _git(repo, "checkout", "-q", "main")
    (repo / "b.txt").write_text("main moved on\n")
    _git(repo, "add", "b.txt")
    _git(repo, "commit", "-q", "-m", "main moved")
    _git(repo, "checkout", "-q", "feature")
    assert merge_base(repo) == (fork, f"merge base of HEAD and main ({fork[:10]})")


def test_no_main_branch_says_so(repo):
    _git(repo, "branch", "-m", "main", "trunk")
    base, why = merge_base(repo)
    assert base is None and "no main branch (origin/main or main)" in why
