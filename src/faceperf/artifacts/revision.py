"""Building the artifact set another git revision defines, so a pull request's artifacts can be
measured against its base's.

The revision's own code does the build (``python -m faceperf artifacts build`` run in a
throwaway ``git worktree``): exporting with today's code would measure today's exporter twice.
Results are cached under a key of everything that decides their bytes, so asking for the base
again costs a few git calls. Uncommitted changes belong to no revision and are never built.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from faceperf import paths
from faceperf.artifacts.manifest import read_manifest
from faceperf.errors import ArtifactError, RevisionError
from faceperf.fileio import replace_tree, sha256_path

# Without these the revision cannot be built the way this module drives it.
LAYOUT_FILES = ("src/faceperf/artifacts/build.py", "src/faceperf/artifacts/manifest.py")
# The revision's inputs to a build, by git object id: code, calibration, committed weights, pins.
KEY_PATHS = ("src", "fixtures/surrogates", "weights", "pyproject.toml")
# Packages whose versions decide the artifacts' bytes (the build records the same ones).
TOOLS = ("torch", "onnx", "onnxruntime", "coremltools", "numpy")
# Real checkpoints a user drops into weights/: they replace surrogates at every revision.
CHECKPOINT_FILES = ("Landmark_98.pkl", "MTL_backbone.pth", "Alignment_RetinaFace.pth")
# Bump when the way an entry is built changes, so old cache entries are not taken for new ones.
_KEY_FORMAT = 1
_BUILDING = ".building-"
# Environment variables that would point git at another repository than ``repo``.
_GIT_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
)
_PROBE = (
    "import faceperf, faceperf.paths; print(faceperf.__file__); print(faceperf.paths.repo_root())"
)
_VERSIONS_SCRIPT = (
    "import json, platform\n"
    "from importlib import metadata\n"
    "def v(n):\n"
    "    try:\n"
    "        return metadata.version(n)\n"
    "    except metadata.PackageNotFoundError:\n"
    "        return None\n"
    "print(json.dumps({**{n: v(n) for n in %r}, 'python': platform.python_version()}))\n"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RevisionBuild:
    """The artifacts of one revision, and whether they had to be built."""

    ref: str  # as the user gave it
    commit: str  # full sha
    directory: Path  # the artifact folder (manifest.json + <model>/<variant>.onnx|.mlpackage)
    cached: bool  # True when it came from the cache without building


@dataclass(frozen=True)
class _Interpreter:
    """Which Python runs the revision's build: ``python``, or a venv still to be made."""

    python: str | None
    versions: dict[str, str | None]
    venv: Path | None = None
    requirements: tuple[str, ...] = ()


def resolve_commit(ref: str, repo: Path) -> str:
    """The full sha ``ref`` names in ``repo``: cache keys and worktrees need the immutable id,
    not a branch name that moves."""
    if not ref or ref.startswith("-"):  # never let a ref be read as a git option
        raise RevisionError(f"unknown git ref {ref!r} in {repo}")
    proc = _git(repo, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], ref)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    reason = _last_line(proc.stderr)
    if reason:  # --quiet silences unknown refs, so anything said is about the repository
        raise RevisionError(f"cannot resolve git ref {ref!r} in {repo}: {reason}")
    raise RevisionError(f"unknown git ref {ref!r} in {repo}")


def looks_like_git_ref(text: str, repo: Path) -> bool:
    """Whether a command-line argument means a revision rather than an artifact folder: an
    existing folder always wins, so a folder named like a branch keeps working."""
    if Path(text).is_dir():
        return False
    try:
        resolve_commit(text, repo)
    except RevisionError:
        return False
    return True


def pins_differ(pyproject_text: str, installed: Mapping[str, str]) -> list[str]:
    """How the revision's ``[project] dependencies`` disagree with the installed packages, one
    human line each; empty when the running interpreter can build the revision as it is.

    A pin without a local version accepts any local build of it (``torch==2.13.0`` is met by
    ``2.13.0+cpu``), as pip would. Requirements whose environment marker does not apply here are
    ignored.

    Args:
        pyproject_text: the revision's pyproject.toml.
        installed: distribution name -> version (any spelling of the name).
    """
    try:
        document = tomllib.loads(pyproject_text)
    except tomllib.TOMLDecodeError as err:
        raise RevisionError(f"pyproject.toml is not valid TOML ({err})") from None
    have = {canonicalize_name(name): version for name, version in installed.items()}
    lines = []
    for text in document.get("project", {}).get("dependencies", []):
        try:
            requirement = Requirement(text)
        except InvalidRequirement as err:
            raise RevisionError(f"pyproject.toml: bad dependency {text!r} ({err})") from None
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = have.get(canonicalize_name(requirement.name))
        wanted = _describe(requirement)
        if version is None:
            lines.append(f"{requirement.name} {wanted}, not installed")
        elif not _satisfies(requirement, version):
            lines.append(f"{requirement.name} {wanted}, {version} installed")
    return lines


def _describe(requirement: Requirement) -> str:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator == "==":
        return f"{specs[0].version} pinned"
    return f"{requirement.specifier or 'any version'} required"


def _satisfies(requirement: Requirement, version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return requirement.specifier.contains(version, prereleases=True)


def installed_versions() -> dict[str, str]:
    """Every distribution the running interpreter sees, by name."""
    return {
        dist.metadata["Name"]: dist.version
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }


def checkpoint_identity(weights: Path) -> list[dict]:
    """The real checkpoints in ``weights``: every revision's build would use them instead of
    surrogates, so they are part of what its artifacts are.

    (``weights_identity`` answers this per model of *this* checkout's registry and needs torch;
    a cache hit should need neither.)
    """
    found = []
    for name in CHECKPOINT_FILES:
        path = weights / name
        if path.is_file():
            stat = path.stat()
            found.append({"file": name, "size": stat.st_size, "sha256": _file_digest(path, stat)})
    return found


_DIGESTS: dict[tuple, str] = {}


def _file_digest(path: Path, stat: os.stat_result) -> str:
    # Checkpoints are hundreds of MB; hash each one once per process unless it changes.
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_path(path)
    return _DIGESTS[key]


def cache_key(
    objects: Mapping[str, str | None],
    models: Sequence[str] | None,
    versions: Mapping[str, str | None],
    checkpoints: Sequence[Mapping],
) -> str:
    """sha256 of everything that decides a revision's artifacts.

    Args:
        objects: git object id of each of KEY_PATHS at the revision (None when absent).
        models: the requested models (order and repeats do not matter), None for all.
        versions: TOOLS and "python" of the interpreter that builds.
        checkpoints: ``checkpoint_identity`` of the weights folder the build reads.
    """
    document = {
        "format": _KEY_FORMAT,
        "objects": dict(objects),
        "models": sorted(set(models)) if models else "all",
        "versions": dict(versions),
        "checkpoints": [dict(c) for c in checkpoints],
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def build_at_revision(
    ref: str,
    repo: Path | None = None,
    out: Path | None = None,
    models: Sequence[str] | None = None,
    cache_root: Path | None = None,
    python: str | None = None,
    *,
    progress: Progress | None = None,
) -> RevisionBuild:
    """The artifacts that the code and committed weights at ``ref`` define, built by that
    revision's own code (or taken from the cache).

    Real checkpoints and the package cache come from ``repo``'s ``weights/`` folder, as they are
    not committed at any revision.

    Args:
        ref: any git revision (branch, tag, sha, ``HEAD~3``).
        repo: the checkout whose history and weights/ folder are used (default: this one).
        out: also place the artifacts here (hard links where possible) and report this folder.
        models: models to build (default: every model the revision knows).
        cache_root: where built revisions are kept (default: weights/revisions).
        python: interpreter to build with; by default this one, or a venv made from the
            revision's pins when they differ from what is installed here.
        progress: called with one line before each slow step.
    """
    say = progress or (lambda _line: None)
    repo = Path(repo) if repo is not None else paths.repo_root()
    cache_root = Path(cache_root) if cache_root is not None else paths.weights_dir() / "revisions"
    commit = resolve_commit(ref, repo)
    objects = _revision_objects(ref, commit, repo)
    if out is not None:
        _check_out(Path(out))
    interpreter = _choose_interpreter(ref, commit, repo, cache_root, python)
    weights = repo / "weights"
    key = cache_key(objects, models, interpreter.versions, checkpoint_identity(weights))
    entry = cache_root / key[:16]
    if _is_artifact_folder(entry):
        return _deliver(RevisionBuild(ref, commit, entry, cached=True), out)
    say(f"building the artifacts of {ref} ({commit[:10]}) with its own code in a git worktree")
    with _worktree(repo, commit) as tree:
        executable = interpreter.python or _ensure_venv(interpreter, tree, say)
        env = _revision_env(tree, _package_cache(repo))
        _check_imports_from(tree, executable, env)
        _build_into(entry, tree, executable, env, ref, commit, repo, models)
    return _deliver(RevisionBuild(ref, commit, entry, cached=False), out)


def _revision_objects(ref: str, commit: str, repo: Path) -> dict[str, str | None]:
    """The object ids of KEY_PATHS at ``commit``, after checking it has the artifact layout;
    one git call, so a cache hit stays fast."""
    names = [*LAYOUT_FILES, *KEY_PATHS]
    request = "".join(f"{commit}:{name}\n" for name in names)
    proc = _git(repo, ["cat-file", "--batch-check"], ref, stdin=request)
    answers = proc.stdout.splitlines()
    if proc.returncode != 0 or len(answers) != len(names):
        reason = _last_line(proc.stderr) or f"exit code {proc.returncode}"
        raise RevisionError(f"cannot read revision {ref} ({commit[:10]}) in {repo}: {reason}")
    ids = {
        name: None if answer.endswith(" missing") else answer.split()[0]
        for name, answer in zip(names, answers, strict=True)
    }
    for name in LAYOUT_FILES:
        if ids[name] is None:
            raise RevisionError(
                f"revision {ref} ({commit[:10]}) predates the artifact layout "
                f"(no {name}); pick a newer base"
            )
    return {name: ids[name] for name in KEY_PATHS}


def _choose_interpreter(
    ref: str, commit: str, repo: Path, cache_root: Path, python: str | None
) -> _Interpreter:
    if python is not None:
        return _Interpreter(os.fspath(python), _ask_versions(os.fspath(python)))
    proc = _git(repo, ["cat-file", "blob", f"{commit}:pyproject.toml"], ref)
    if proc.returncode != 0:
        raise RevisionError(f"revision {ref} ({commit[:10]}) has no pyproject.toml in {repo}")
    if not pins_differ(proc.stdout, installed_versions()):
        return _Interpreter(sys.executable, _local_versions())
    requirements = tuple(sorted(_pinned_requirements(proc.stdout)))
    python_version = platform.python_version()
    digest = hashlib.sha256(json.dumps([python_version, requirements]).encode()).hexdigest()
    pinned = {}
    for text in requirements:
        requirement = Requirement(text)
        specs = list(requirement.specifier)
        exact = specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None
        pinned[canonicalize_name(requirement.name)] = exact or str(requirement.specifier)
    versions = {name: pinned.get(name) for name in TOOLS}
    versions["python"] = python_version
    return _Interpreter(None, versions, cache_root / f"venv-{digest[:16]}", requirements)


def _pinned_requirements(pyproject_text: str) -> list[str]:
    return list(tomllib.loads(pyproject_text).get("project", {}).get("dependencies", []))


def _local_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def _ask_versions(python: str) -> dict[str, str | None]:
    """The TOOLS versions of another interpreter: they are what its build records."""
    try:
        proc = _run([python, "-c", _VERSIONS_SCRIPT % (TOOLS,)])
    except OSError as err:
        raise RevisionError(f"cannot run {python} ({err.strerror or err})") from None
    try:
        versions = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        reason = _last_line(proc.stderr) or f"exit code {proc.returncode}"
        raise RevisionError(f"cannot ask {python} for its package versions: {reason}") from None
    return versions


def _ensure_venv(interpreter: _Interpreter, tree: Path, say: Progress) -> str:
    """A venv with the revision's pins, made once and shared by every revision with the same
    pins. A ready-marker written last tells a finished venv from an interrupted one."""
    assert interpreter.venv is not None
    venv = interpreter.venv
    python = venv / "bin" / "python"
    ready = venv / ".faceperf-ready"
    if ready.is_file():
        return str(python)
    import fcntl  # POSIX only, like Core ML's platforms; imported here so hits never need it

    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second builder waits, then finds it ready
        if ready.is_file():
            return str(python)
        shutil.rmtree(venv, ignore_errors=True)
        say(f"the revision's pins differ from this venv's; making {venv} (once)")
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--no-input", str(tree)],
        ]
        try:
            for command in steps:
                proc = _run(command)
                if proc.returncode != 0:
                    reason = _last_line(proc.stderr) or f"exit code {proc.returncode}"
                    raise RevisionError(
                        f"making the venv for the revision's pins failed ({reason}); "
                        f"reproduce: {shlex.join(command)}"
                    )
            ready.write_text(json.dumps(list(interpreter.requirements)) + "\n")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
    return str(python)


@contextmanager
def _worktree(repo: Path, commit: str) -> Iterator[Path]:
    """A detached checkout of ``commit`` that is gone afterwards, whatever happens inside."""
    holder = Path(tempfile.mkdtemp(prefix=f"faceperf-{commit[:10]}-"))
    tree = holder / "tree"
    try:
        proc = _git(repo, ["worktree", "add", "--detach", str(tree), commit], commit)
        if proc.returncode != 0:
            reason = _last_line(proc.stderr) or f"exit code {proc.returncode}"
            raise RevisionError(f"cannot check out {commit[:10]} of {repo}: {reason}")
        yield tree
    finally:
        _git(repo, ["worktree", "remove", "--force", str(tree)], commit)
        shutil.rmtree(holder, ignore_errors=True)
        _git(repo, ["worktree", "prune"], commit)


def _package_cache(repo: Path) -> Path:
    # The worktree's own weights/.cache dies with it: share this checkout's (the facenet wheel
    # is pinned by sha256, so any revision may read it) and nothing is downloaded twice.
    env = os.environ.get("FACEPERF_CACHE")
    return Path(env) if env else repo / "weights" / ".cache"


def _revision_env(tree: Path, package_cache: Path) -> dict[str, str]:
    """The environment in which ``import faceperf`` is the worktree's code.

    PYTHONPATH entries precede site-packages, so they win over this checkout's editable install
    (a path entry in a .pth file); FACEPERF_ROOT would point the revision at this checkout.
    """
    env = {k: v for k, v in os.environ.items() if k != "FACEPERF_ROOT"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["FACEPERF_CACHE"] = str(package_cache)
    return env


def _check_imports_from(tree: Path, python: str, env: Mapping[str, str]) -> None:
    """Refuse to build when ``import faceperf`` would not be the revision's code: the result
    would silently be this checkout's artifacts under the revision's name."""
    try:
        proc = _run([python, "-c", _PROBE], cwd=tree, env=env)
    except OSError as err:
        raise RevisionError(f"cannot run {python} ({err.strerror or err})") from None
    lines = proc.stdout.splitlines()
    expected = (tree / "src" / "faceperf" / "__init__.py").resolve(), tree.resolve()
    found = tuple(Path(line).resolve() for line in lines[-2:])
    if proc.returncode != 0 or found != expected:
        said = _last_line(proc.stderr) or " / ".join(lines) or f"exit code {proc.returncode}"
        raise RevisionError(
            f"{python} does not import faceperf from the worktree {tree} ({said}); "
            "the revision's code would not be the code that builds"
        )


def _build_command(
    python: str, out: Path, weights: Path, models: Sequence[str] | None
) -> list[str]:
    command = [python, "-m", "faceperf", "artifacts", "build", "--out", str(out)]
    command += ["--weights-dir", str(weights)]
    if models:
        command += ["--models", ",".join(models)]
    return command


def _build_into(
    entry: Path,
    tree: Path,
    python: str,
    env: Mapping[str, str],
    ref: str,
    commit: str,
    repo: Path,
    models: Sequence[str] | None,
) -> None:
    """Run the revision's build into a staging folder beside ``entry`` and rename it into place
    only when it succeeded, so the cache never holds half an entry."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(entry.parent, _BUILDING)
    staging = Path(
        tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}{_BUILDING}{os.getpid()}-")
    )
    try:
        target = staging / "build"
        command = _build_command(python, target, repo / "weights", models)
        try:
            proc = _run(command, cwd=tree, env=env)
        except OSError as err:
            raise RevisionError(f"cannot run {python} ({err.strerror or err})") from None
        if proc.returncode != 0 or not _is_artifact_folder(target):
            reason = (
                _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit code {proc.returncode}"
            )
            if proc.returncode == 0:
                reason = f"it wrote no readable manifest.json ({reason})"
            raise RevisionError(
                f"building the artifacts of {ref} ({commit[:10]}) failed: {reason}; "
                f"reproduce: {_reproduction(repo, commit, python, env, models)}"
            )
        _publish(target, entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _reproduction(
    repo: Path, commit: str, python: str, env: Mapping[str, str], models: Sequence[str] | None
) -> str:
    where = Path(tempfile.gettempdir()) / f"faceperf-{commit[:10]}"
    out = where.with_name(where.name + "-artifacts")
    command = _build_command(python, out, repo / "weights", models)
    return " && ".join(
        [
            shlex.join(["git", "-C", str(repo), "worktree", "add", "--detach", str(where), commit]),
            shlex.join(["cd", str(where)]),
            shlex.join(
                [
                    "env",
                    "-u",
                    "FACEPERF_ROOT",
                    f"PYTHONPATH={where / 'src'}",
                    f"FACEPERF_CACHE={env['FACEPERF_CACHE']}",
                    *command,
                ]
            ),
        ]
    )


def _publish(built: Path, entry: Path) -> None:
    try:
        os.replace(built, entry)  # one rename: atomic, and it fails on a non-empty entry
    except OSError:
        if _is_artifact_folder(entry):
            return  # a concurrent builder of the same inputs finished first: keep theirs
        replace_tree(built, entry)  # whatever is there is not a finished entry


def _remove_abandoned(folder: Path, marker: str) -> None:
    """Delete staging folders whose builder is dead (killed outright, so it could not clean up);
    a live builder's, possibly in another process, is left alone."""
    for leftover in folder.glob(f".*{marker}*"):
        try:
            pid = int(leftover.name.rsplit(marker, 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if not _alive(pid):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_artifact_folder(directory: Path) -> bool:
    try:
        read_manifest(directory)
    except (ArtifactError, OSError):
        return False
    return True


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not artifacts: ``--out`` pointed at the wrong place
    must not delete someone's files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise RevisionError(f"{out} is a file; --out must be an artifact folder or a new path")
    if any(out.iterdir()) and not _is_artifact_folder(out):
        raise RevisionError(
            f"{out} is not empty and not an artifact folder (no readable manifest.json); "
            "pick an empty or new folder"
        )


def _deliver(build: RevisionBuild, out: Path | None) -> RevisionBuild:
    """``build`` as it is, or copied to ``out`` (hard links, so a copy costs no space) through a
    staging sibling and a rename."""
    if out is None:
        return build
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    marker = ".revision-"
    _remove_abandoned(out.parent, marker)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}{marker}{os.getpid()}-"))
    try:
        shutil.copytree(build.directory, staging, copy_function=_link_or_copy, dirs_exist_ok=True)
        replace_tree(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RevisionBuild(build.ref, build.commit, out, build.cached)


def _link_or_copy(source: str, destination: str) -> str:
    try:
        os.link(source, destination)
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(source, destination)
    return destination


def _git(
    repo: Path, args: Sequence[str], ref: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REPO_ENV}
    try:
        return _run(["git", "-C", str(repo), *args], env=env, stdin=stdin)
    except OSError as err:
        raise RevisionError(
            f"cannot resolve git ref {ref!r} in {repo}: git cannot run ({err.strerror or err})"
        ) from None


def _run(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with output captured, except that an interrupt kills *and reaps* the
    child before it propagates: ``run`` leaves it unreaped, and the worktree and staging folder
    it writes into are deleted next."""
    with subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(stdin)
        except BaseException:
            process.kill()
            process.wait()
            raise
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
