"""Building the artifacts another git revision defines: resolution, refusals, the cache, cleanup.

Most tests drive a throwaway repository whose ``faceperf`` is a stand-in that writes a fake
manifest in milliseconds (and records how it was run); one slow test builds HEAD for real.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceperf.artifacts import revision
from faceperf.artifacts.manifest import read_manifest
from faceperf.artifacts.revision import (
    CHECKPOINT_FILES,
    RevisionBuild,
    build_at_revision,
    cache_key,
    looks_like_git_ref,
    pins_differ,
    resolve_commit,
)
from faceperf.cli import main
from faceperf.errors import FaceperfError, RevisionError
from faceperf.paths import repo_root

_SRC = Path(revision.__file__).resolve().parents[1]  # this checkout's src/faceperf

# The stand-in revision's `python -m faceperf artifacts build`: a valid, empty manifest whose
# "tools" say which code ran, where, with which arguments and environment.
_FAKE_MAIN = """\
import json, os, sys
from pathlib import Path

import faceperf, faceperf.paths

args = sys.argv[1:]
out = Path(args[args.index("--out") + 1])
out.mkdir(parents=True)
(out / "m").mkdir()
(out / "m" / "baseline.onnx").write_bytes(b"not really onnx")
tools = {
    "argv": args,
    "faceperf": faceperf.__file__,
    "repo_root": str(faceperf.paths.repo_root()),
    "cwd": os.getcwd(),
    "FACEPERF_ROOT": os.environ.get("FACEPERF_ROOT"),
    "FACEPERF_CACHE": os.environ.get("FACEPERF_CACHE"),
}
(out / "manifest.json").write_text(json.dumps({"schema_version": 1, "tools": tools, "models": {}}))
"""


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=faceperf tests", "-c", "user.email=tests@example.invalid"]
    command += ["-c", "commit.gpgsign=false", "-C", str(repo), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _commit(repo: Path, files: dict[str, str], message: str = "commit") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD").strip()


def _init(repo: Path) -> Path:
    repo.mkdir()
    _git(repo, "init", "-q")
    return repo


@pytest.fixture
def fake_repo(tmp_path: Path) -> Path:
    """A repository with the artifact layout whose build is the fast stand-in above."""
    repo = _init(tmp_path / "repo")
    _commit(
        repo,
        {
            "pyproject.toml": (repo_root() / "pyproject.toml").read_text(),
            "src/faceperf/__init__.py": "",
            "src/faceperf/__main__.py": _FAKE_MAIN,
            "src/faceperf/paths.py": (_SRC / "paths.py").read_text(),
            "src/faceperf/artifacts/__init__.py": "",
            "src/faceperf/artifacts/build.py": "# stand-in\n",
            "src/faceperf/artifacts/manifest.py": "# stand-in\n",
            "weights/README.md": "committed weights go here\n",
        },
    )
    return repo


def _worktrees(repo: Path) -> str:
    return _git(repo, "worktree", "list", "--porcelain")


def _commands_run(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every command the revision module runs from now on (still run for real)."""
    commands: list[list[str]] = []
    real_run = revision._run

    def recording(command, **kwargs):
        commands.append(list(command))
        return real_run(command, **kwargs)

    monkeypatch.setattr(revision, "_run", recording)
    return commands


def _assert_only_a_few_git_calls(commands: list[list[str]]) -> None:
    """A cache hit is judged by what it runs, not by a stopwatch (a busy machine can take a
    second over anything): git to resolve the revision and read its inputs, and nothing else:
    no worktree, no interpreter, no build."""
    assert commands and {command[0] for command in commands} == {"git"}, commands
    assert not any("worktree" in command for command in commands), commands
    assert len(commands) <= 3, commands


def _fake_python(tmp_path: Path, build_body: str) -> str:
    """An interpreter that is the real one for ``-c`` (version query, import probe) and runs
    ``build_body`` (sh) instead of the build."""
    script = tmp_path / "fake-python"
    script.write_text(
        f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec {sys.executable} "$@"; fi\n{build_body}\n'
    )
    script.chmod(0o755)
    return str(script)


# --- resolving -------------------------------------------------------------------------------


def test_an_unknown_ref_is_a_revision_error_naming_it_and_the_repo(fake_repo):
    with pytest.raises(RevisionError, match=r"unknown git ref 'no-such-ref' in .*repo"):
        resolve_commit("no-such-ref", fake_repo)
    with pytest.raises(RevisionError, match="unknown git ref"):
        resolve_commit("--output=x", fake_repo)  # never an option


def test_a_ref_resolves_to_the_full_sha(fake_repo):
    sha = _git(fake_repo, "rev-parse", "HEAD").strip()
    assert resolve_commit("HEAD", fake_repo) == sha
    assert resolve_commit(sha[:8], fake_repo) == sha


def test_an_unknown_ref_through_the_cli_is_one_line_and_exit_2(capsys):
    assert main(["artifacts", "build", "--at", "no-such-ref-xyz"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("faceperf: error: ") and "'no-such-ref-xyz'" in err


def test_a_folder_that_is_not_a_git_repository_is_a_revision_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # in case tmp is in a repo
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RevisionError, match=r"'HEAD' in .*plain: .*not a git repository"):
        resolve_commit("HEAD", plain)
    with pytest.raises(RevisionError):
        build_at_revision("HEAD", repo=plain, cache_root=tmp_path / "cache")
    assert issubclass(RevisionError, FaceperfError)  # so the CLI turns it into exit 2


def test_a_revision_before_the_artifact_layout_is_refused(tmp_path):
    repo = _init(tmp_path / "old")
    sha = _commit(repo, {"README.md": "before artifacts existed\n", "src/faceperf/x.py": ""})
    with pytest.raises(RevisionError) as raised:
        build_at_revision("HEAD", repo=repo, cache_root=tmp_path / "cache")
    message = str(raised.value)
    assert f"revision HEAD ({sha[:10]}) predates the artifact layout" in message
    assert "src/faceperf/artifacts/build.py" in message and "pick a newer base" in message
    assert not (tmp_path / "cache").exists()


def test_looks_like_git_ref(fake_repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert looks_like_git_ref("HEAD", fake_repo)
    assert not looks_like_git_ref("no-such-ref", fake_repo)
    (tmp_path / "HEAD").mkdir()  # an existing folder wins over a ref of the same name
    assert not looks_like_git_ref("HEAD", fake_repo)
    assert not looks_like_git_ref(str(fake_repo), fake_repo)
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert not looks_like_git_ref("main", plain)


# --- pins ------------------------------------------------------------------------------------

_PINS = """\
[project]
name = "x"
dependencies = [
    "torch==2.13.0",
    "numpy==2.4.5",
    "opencv-python-headless==5.0.0.93",
    "ml_dtypes==0.6.0",
    "pywin32==306; sys_platform == 'win32'",
]
"""
_INSTALLED = {
    "torch": "2.13.0+cpu",
    "numpy": "2.4.5",
    "opencv_python_headless": "5.0.0.93",
    "ML-Dtypes": "0.6.0",
}


def test_pins_that_match_need_no_venv():
    # torch's local build (+cpu) meets a plain pin; names match in any spelling; a marker
    # for another platform does not apply.
    assert pins_differ(_PINS, _INSTALLED) == []


def test_a_different_pin_is_one_human_line():
    assert pins_differ(_PINS, {**_INSTALLED, "numpy": "2.4.6"}) == [
        "numpy 2.4.5 pinned, 2.4.6 installed"
    ]


def test_a_missing_package_and_a_different_local_build_differ():
    installed = {k: v for k, v in _INSTALLED.items() if k != "ML-Dtypes"}
    assert pins_differ(_PINS, installed) == ["ml_dtypes 0.6.0 pinned, not installed"]
    local = _PINS.replace("torch==2.13.0", "torch==2.13.0+cu130")
    assert pins_differ(local, _INSTALLED) == ["torch 2.13.0+cu130 pinned, 2.13.0+cpu installed"]


def test_a_range_is_checked_as_a_range():
    text = '[project]\ndependencies = ["numpy>=3", "scipy"]\n'
    assert pins_differ(text, {"numpy": "2.4.6", "scipy": "1.17.1"}) == [
        "numpy >=3 required, 2.4.6 installed"
    ]
    assert pins_differ("[project]\nname = 'x'\n", {}) == []


def test_a_broken_pyproject_is_a_revision_error():
    with pytest.raises(RevisionError, match="not valid TOML"):
        pins_differ("[project\n", {})
    with pytest.raises(RevisionError, match="bad dependency"):
        pins_differ('[project]\ndependencies = ["numpy=="]\n', {})


def test_pins_that_differ_choose_a_venv_named_after_them(fake_repo, tmp_path):
    text = (fake_repo / "pyproject.toml").read_text().replace('"numpy==2.4.6"', '"numpy==2.4.5"')
    _commit(fake_repo, {"pyproject.toml": text})
    sha = resolve_commit("HEAD", fake_repo)
    chosen = revision._choose_interpreter("HEAD", sha, fake_repo, tmp_path, None)
    assert chosen.python is None and chosen.versions["numpy"] == "2.4.5"
    assert chosen.venv is not None and chosen.venv.parent == tmp_path
    assert chosen.venv.name.startswith("venv-") and "numpy==2.4.5" in chosen.requirements
    same = revision._choose_interpreter(
        "HEAD~1", resolve_commit("HEAD~1", fake_repo), fake_repo, tmp_path, None
    )
    assert same.python == sys.executable and same.venv is None


def test_the_venv_is_made_once_and_a_failed_one_is_not_kept(tmp_path, monkeypatch):
    # No real venv: the commands are recorded and "succeed" or fail on demand.
    commands: list[list[str]] = []
    fail_on = {"pip": False}

    def fake_run(command, **_kwargs):
        commands.append(list(command))
        if command[1:3] == ["-m", "venv"]:
            (Path(command[3]) / "bin").mkdir(parents=True)
        failed = fail_on["pip"] and "pip" in command
        stderr = "ERROR: No matching distribution found for numpy==2.4.5\n" if failed else ""
        return subprocess.CompletedProcess(command, 1 if failed else 0, "", stderr)

    monkeypatch.setattr(revision, "_run", fake_run)
    wanted = revision._Interpreter(None, {}, tmp_path / "venv-0123", ("numpy==2.4.5",))
    said: list[str] = []
    fail_on["pip"] = True
    with pytest.raises(RevisionError, match=r"No matching distribution found for numpy==2\.4\.5"):
        revision._ensure_venv(wanted, tmp_path / "tree", said.append)
    assert not wanted.venv.exists()

    fail_on["pip"] = False
    commands.clear()
    python = revision._ensure_venv(wanted, tmp_path / "tree", said.append)
    assert python == str(tmp_path / "venv-0123" / "bin" / "python")
    assert [c[1:3] for c in commands] == [["-m", "venv"], ["-m", "pip"]]
    assert commands[1][-1] == str(tmp_path / "tree")  # the revision's own project and pins
    commands.clear()
    assert revision._ensure_venv(wanted, tmp_path / "tree", said.append) == python
    assert commands == []  # reused
    assert len(said) == 2 and "venv-0123" in said[0]


# --- the cache key ---------------------------------------------------------------------------


def test_the_cache_key_ignores_model_order_and_sees_every_input():
    objects = {"src": "a" * 40, "fixtures/surrogates": "b" * 40, "weights": None}
    versions = {"torch": "2.13.0", "python": "3.11.9"}
    key = cache_key(objects, ["star", "mtcnn_rnet"], versions, [])
    assert key == cache_key(objects, ["mtcnn_rnet", "star", "star"], versions, [])
    others = [
        cache_key({**objects, "src": "c" * 40}, ["star", "mtcnn_rnet"], versions, []),
        cache_key(objects, ["star"], versions, []),
        cache_key(objects, None, versions, []),
        cache_key(objects, ["star", "mtcnn_rnet"], {**versions, "torch": "2.14.0"}, []),
        cache_key(
            objects,
            ["star", "mtcnn_rnet"],
            versions,
            [{"file": "MTL_backbone.pth", "size": 1, "sha256": "0" * 64}],
        ),
    ]
    assert len({key, *others}) == 6


def test_the_checkpoint_files_are_the_registrys():
    from faceperf.models.registry import WeightOrigin, default_registry

    expected = {
        spec.checkpoint.filename
        for spec in default_registry()
        if spec.origin is WeightOrigin.USER_CHECKPOINT and spec.checkpoint is not None
    }
    assert set(CHECKPOINT_FILES) == expected


# --- building (with the stand-in revision) ---------------------------------------------------


def test_the_worktree_environment_imports_the_revisions_faceperf(fake_repo, tmp_path):
    # The precondition that makes this meaningful: this interpreter's faceperf is the editable
    # install of this checkout, which a careless environment would pick up instead.
    plain = subprocess.run(
        [sys.executable, "-c", "import faceperf; print(faceperf.__file__)"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(plain.stdout.strip()).resolve() == (_SRC / "__init__.py").resolve()

    sha = resolve_commit("HEAD", fake_repo)
    with revision._worktree(fake_repo, sha) as tree:
        env = revision._revision_env(tree, tmp_path / "cache")
        revision._check_imports_from(tree, sys.executable, env)  # raises when it is not
        probe = subprocess.run(
            [sys.executable, "-c", revision._PROBE],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        module, root = (Path(line).resolve() for line in probe.stdout.splitlines())
        assert module == (tree / "src" / "faceperf" / "__init__.py").resolve()
        assert root == tree.resolve()
        assert "FACEPERF_ROOT" not in env
        without = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        with pytest.raises(RevisionError, match="does not import faceperf from the worktree"):
            revision._check_imports_from(tree, sys.executable, without)
    assert not tree.exists()


def test_a_build_runs_the_revisions_code_once_then_comes_from_the_cache(
    fake_repo, tmp_path, monkeypatch
):
    monkeypatch.setenv("FACEPERF_ROOT", str(tmp_path / "elsewhere"))  # must not reach the build
    monkeypatch.delenv("FACEPERF_CACHE", raising=False)
    cache = tmp_path / "cache"
    before = _worktrees(fake_repo)
    lines: list[str] = []
    first = build_at_revision(
        "HEAD", repo=fake_repo, models=["star", "mtl"], cache_root=cache, progress=lines.append
    )
    sha = resolve_commit("HEAD", fake_repo)
    assert first.commit == sha and first.ref == "HEAD" and not first.cached
    assert first.directory.parent == cache and len(first.directory.name) == 16
    assert len(lines) == 1 and sha[:10] in lines[0]
    tools = read_manifest(first.directory).tools
    worktree = Path(tools["cwd"])
    assert Path(tools["faceperf"]) == worktree / "src" / "faceperf" / "__init__.py"
    assert Path(tools["repo_root"]) == worktree
    assert tools["FACEPERF_ROOT"] is None
    assert tools["FACEPERF_CACHE"] == str(fake_repo / "weights" / ".cache")
    assert tools["argv"][tools["argv"].index("--weights-dir") + 1] == str(fake_repo / "weights")
    assert tools["argv"][-2:] == ["--models", "star,mtl"]
    assert not worktree.exists() and _worktrees(fake_repo) == before
    assert [p.name for p in cache.iterdir()] == [first.directory.name]  # no staging left

    commands = _commands_run(monkeypatch)
    second = build_at_revision("HEAD", repo=fake_repo, models=["mtl", "star"], cache_root=cache)
    assert second == RevisionBuild("HEAD", sha, first.directory, cached=True)
    _assert_only_a_few_git_calls(commands)
    assert build_at_revision(sha, repo=fake_repo, models=["mtl", "star"], cache_root=cache).cached

    other = build_at_revision("HEAD", repo=fake_repo, models=["star"], cache_root=cache)
    assert not other.cached and other.directory != first.directory


def test_a_real_checkpoint_dropped_into_weights_makes_a_new_entry(fake_repo, tmp_path):
    cache = tmp_path / "cache"
    first = build_at_revision("HEAD", repo=fake_repo, cache_root=cache)
    (fake_repo / "weights" / "MTL_backbone.pth").write_bytes(b"real weights")
    second = build_at_revision("HEAD", repo=fake_repo, cache_root=cache)
    assert not second.cached and second.directory != first.directory
    assert build_at_revision("HEAD", repo=fake_repo, cache_root=cache).cached


def test_a_new_commit_is_a_new_entry(fake_repo, tmp_path):
    cache = tmp_path / "cache"
    first = build_at_revision("HEAD", repo=fake_repo, cache_root=cache)
    _commit(fake_repo, {"src/faceperf/models.py": "# changed\n"})
    second = build_at_revision("HEAD", repo=fake_repo, cache_root=cache)
    assert not second.cached and second.directory != first.directory
    assert build_at_revision("HEAD~1", repo=fake_repo, cache_root=cache).directory == (
        first.directory
    )


def test_out_gets_a_hard_linked_copy(fake_repo, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "base" / "artifacts"
    built = build_at_revision("HEAD", repo=fake_repo, out=out, cache_root=cache)
    assert built.directory == out and not built.cached
    entry = next(p for p in cache.iterdir() if not p.name.startswith("."))
    assert (out / "m" / "baseline.onnx").stat().st_ino == (
        entry / "m" / "baseline.onnx"
    ).stat().st_ino
    assert read_manifest(out) == read_manifest(entry)
    (out / "stale.txt").write_text("from the previous artifacts")
    again = build_at_revision("HEAD", repo=fake_repo, out=out, cache_root=cache)
    assert again.cached and again.directory == out and not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["artifacts"]  # no staging left


def test_out_that_is_someone_elses_folder_is_refused(fake_repo, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(RevisionError, match="not empty and not an artifact folder"):
        build_at_revision("HEAD", repo=fake_repo, out=out, cache_root=tmp_path / "cache")
    assert (out / "holiday.jpg").exists()
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_a_failing_build_names_its_last_error_and_leaves_nothing(fake_repo, tmp_path):
    cache = tmp_path / "cache"
    before = _worktrees(fake_repo)
    python = _fake_python(
        tmp_path,
        'mkdir -p "$6" && echo "{" > "$6/manifest.json"\n'
        'echo "Traceback (most recent call last):" >&2\n'
        'echo "RuntimeError: exporter exploded" >&2\n'
        "exit 1",
    )
    with pytest.raises(RevisionError) as raised:
        build_at_revision("HEAD", repo=fake_repo, cache_root=cache, python=python)
    message = str(raised.value)
    assert "\n" not in message
    assert "failed: RuntimeError: exporter exploded; reproduce: git -C" in message
    assert f"{python} -m faceperf artifacts build --out" in message
    assert _worktrees(fake_repo) == before
    assert list(cache.iterdir()) == []


def test_a_build_that_writes_no_manifest_is_a_failure(fake_repo, tmp_path):
    python = _fake_python(tmp_path, "exit 0")
    with pytest.raises(RevisionError, match=r"wrote no readable manifest\.json"):
        build_at_revision("HEAD", repo=fake_repo, cache_root=tmp_path / "cache", python=python)
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.fixture
def ctrl_c_interrupts():
    """SIGINT raises KeyboardInterrupt for the test's duration, as in an interactive shell.

    Python installs that handler only when it starts with SIGINT at its default: started in the
    background (``make test &``, nohup, a CI runner) it inherits SIGINT ignored, and a Ctrl-C
    test would wait for an interrupt that never comes. The previous handler is put back after.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    # None: the handler was not installed from Python; SIG_DFL is then what was in force.
    signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


def test_ctrl_c_during_the_build_leaves_no_worktree_and_no_entry(
    fake_repo, tmp_path, ctrl_c_interrupts
):
    cache = tmp_path / "cache"
    before = _worktrees(fake_repo)
    # Half-write the output, then Ctrl-C this (the parent) process as a terminal would.
    python = _fake_python(
        tmp_path, 'mkdir -p "$6/m" && echo partial > "$6/m/x"\nkill -INT $PPID\nexec sleep 30'
    )
    with pytest.raises(KeyboardInterrupt):
        build_at_revision("HEAD", repo=fake_repo, cache_root=cache, python=python)
    assert _worktrees(fake_repo) == before
    assert list(cache.iterdir()) == []


def test_the_ctrl_c_test_passes_in_a_run_started_with_sigint_ignored():
    # `make test &`, nohup and some CI runners start Python with SIGINT ignored; the test above
    # must not depend on how its run was started.
    test = test_ctrl_c_during_the_build_leaves_no_worktree_and_no_entry.__name__
    node = f"{Path(__file__).resolve()}::{test}"
    # The test needs none of the repository's plugins (conftest.py) nor hypothesis,
    # pytest-benchmark or xdist: without them the run starts in half the time.
    plugins = ["--noconftest", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:xdist"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, node],
        cwd=repo_root(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_staging_left_by_a_killed_builder_is_removed_but_a_live_ones_is_not(fake_repo, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    abandoned = cache / f".0123456789abcdef.building-{dead.pid}-x1"
    live = cache / f".0123456789abcdef.building-{os.getpid()}-x2"
    for folder in (abandoned, live):
        folder.mkdir()
    build_at_revision("HEAD", repo=fake_repo, cache_root=cache)
    assert not abandoned.exists() and live.exists()


def test_a_concurrent_builder_that_finished_first_is_kept(fake_repo, tmp_path):
    built = build_at_revision("HEAD", repo=fake_repo, cache_root=tmp_path / "cache").directory
    theirs = read_manifest(built)
    mine = tmp_path / "mine"
    shutil.copytree(built, mine)
    revision._publish(mine, built)
    assert read_manifest(built) == theirs and mine.exists()  # the caller removes its staging
    broken = tmp_path / "cache" / "broken"
    broken.mkdir()
    (broken / "junk").write_text("not an entry")
    revision._publish(mine, broken)
    assert read_manifest(broken) == theirs and not (broken / "junk").exists()


# --- the command -----------------------------------------------------------------------------


def test_the_cli_prints_one_line_built_then_cached(fake_repo, monkeypatch, capsys):
    monkeypatch.setenv("FACEPERF_ROOT", str(fake_repo))  # the CLI's repo and cache
    sha = resolve_commit("HEAD", fake_repo)
    assert main(["artifacts", "build", "--at", "HEAD"]) == 0
    out = capsys.readouterr().out.splitlines()
    entry = fake_repo / "weights" / "revisions"
    pattern = rf"artifacts of HEAD \({sha[:10]}\) in {re.escape(str(entry))}/\w{{16}} "
    assert len(out) == 1 and re.fullmatch(pattern + r"\(built in \d+ s\)", out[0])
    assert main(["artifacts", "build", "--at", "HEAD", "--models", "mtcnn_rnet"]) == 0
    assert main(["artifacts", "build", "--at", "HEAD"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(pattern + r"\(cached\)", out[-1])


@pytest.mark.parametrize(
    "extra",
    [["--if-stale"], ["--weights", "auto"], ["--seed", "0"], ["--weights-dir", "w"]],
)
def test_working_tree_options_with_at_are_a_usage_error(extra, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["artifacts", "build", "--at", "HEAD", *extra])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"--at cannot be combined with {extra[0]}" in err
    assert "working tree's build only" in err


def test_without_at_the_working_tree_build_keeps_its_defaults(tmp_path, monkeypatch):
    # --weights and --seed default to None so that --at can tell them apart from the defaults;
    # the working tree's build must still get auto and 0.
    from types import SimpleNamespace

    from faceperf.artifacts import build
    from faceperf.weights.provenance import WeightSource
    from faceperf.weights.sources import WeightPolicy

    requests = []

    def fake_build(request, progress=False):
        requests.append(request)
        weights = WeightSource("packaged", {"package": "p", "version": "1"})
        return SimpleNamespace(models={n: SimpleNamespace(weights=weights) for n in request.models})

    monkeypatch.setattr(build, "build_artifacts", fake_build)
    out = str(tmp_path / "out")
    assert main(["artifacts", "build", "--models", "mtcnn_rnet", "--out", out]) == 0
    assert main(["artifacts", "build", "--models", "mtcnn_rnet", "--out", out, "--seed", "3"]) == 0
    assert [(r.policy, r.seed) for r in requests] == [
        (WeightPolicy.AUTO, 0),
        (WeightPolicy.AUTO, 3),
    ]


# --- the real thing --------------------------------------------------------------------------


@pytest.mark.slow
def test_building_head_for_real_then_from_the_cache(tmp_path, monkeypatch):
    repo = repo_root()
    try:
        sha = resolve_commit("HEAD", repo)
    except RevisionError as err:
        pytest.skip(f"{repo} is not a git checkout ({err})")
    pyproject = _git(repo, "show", f"{sha}:pyproject.toml")
    differ = pins_differ(pyproject, revision.installed_versions())
    if differ:
        pytest.skip(f"HEAD's pins differ from this venv ({differ[0]}); it would need a venv")
    before = _worktrees(repo)
    start = time.monotonic()  # printed, never judged
    built = build_at_revision("HEAD", repo=repo, models=["mtcnn_rnet"], cache_root=tmp_path)
    took = time.monotonic() - start
    assert not built.cached and built.commit == sha
    manifest = read_manifest(built.directory)
    assert list(manifest.models) == ["mtcnn_rnet"]
    assert set(manifest.models["mtcnn_rnet"].variants) == {
        "baseline",
        "optimized",
        "optimized_fp16",
        "coreml",
    }
    assert _worktrees(repo) == before

    commands = _commands_run(monkeypatch)
    again = build_at_revision("HEAD", repo=repo, models=["mtcnn_rnet"], cache_root=tmp_path)
    assert again.cached and again.directory == built.directory
    _assert_only_a_few_git_calls(commands)
    print(f"first build of HEAD (mtcnn_rnet) took {took:.1f} s")
