"""The CI workflows parse and do what the README promises: `make test` on Linux; `make perf`, the
accuracy suite, reports/ uploaded and summary.md posted to the pull request on Apple Silicon."""

from __future__ import annotations

import pytest
import yaml  # PyYAML: a dependency of coremltools (through pyaml)

from faceperf.paths import repo_root

WORKFLOWS = repo_root() / ".github" / "workflows"


def _load(name: str) -> dict:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _steps(document: dict, job: str) -> list[dict]:
    return document["jobs"][job]["steps"]


def _runs(steps: list[dict]) -> str:
    return "\n".join(step.get("run", "") for step in steps)


def _uses(steps: list[dict], action: str) -> dict:
    found = [step for step in steps if step.get("uses", "").startswith(action + "@")]
    assert len(found) == 1, f"expected one {action} step, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def linux() -> dict:
    return _load("linux.yml")


@pytest.fixture(scope="module")
def apple() -> dict:
    return _load("apple-silicon.yml")


def test_linux_runs_make_test_on_python_3_11(linux):
    job = linux["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu-")
    assert str(_uses(job["steps"], "actions/setup-python")["with"]["python-version"]) == "3.11"
    assert "make test" in _runs(job["steps"])
    assert "pull_request" in linux["on"]


def test_apple_silicon_runs_perf_and_accuracy_on_the_self_hosted_mac(apple):
    job = apple["jobs"]["perf"]
    assert job["runs-on"] == ["self-hosted", "macOS", "ARM64"]
    commands = _runs(job["steps"])
    assert "make perf" in commands and "pytest -m accuracy" in commands
    assert "pull_request" in apple["on"]
    # Never run a fork's code on the self-hosted machine.
    assert "head.repo.full_name == github.repository" in job["if"]


def test_apple_silicon_uploads_reports_and_comments_the_summary(apple):
    steps = _steps(apple, "perf")
    upload = _uses(steps, "actions/upload-artifact")
    assert upload["with"]["path"] == "reports/" and "cancelled()" in upload["if"]
    comment = _uses(steps, "actions/github-script")
    assert comment["env"]["SUMMARY"].endswith("/summary.md")
    assert "createComment" in comment["with"]["script"]
    assert "github.event_name == 'pull_request'" in comment["if"]
    assert apple["permissions"]["pull-requests"] == "write"


def test_linux_runs_the_merge_gate_on_pull_requests_against_the_merge_base(linux):
    job = linux["jobs"]["merge-gate"]
    assert job["if"] == "github.event_name == 'pull_request'"
    checkout = _uses(job["steps"], "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # the merge base must be in the clone
    commands = _runs(job["steps"])
    assert "git merge-base HEAD" in commands and "faceperf ab --reference" in commands
    comment = _uses(job["steps"], "actions/github-script")
    assert comment["env"]["AB"] == "ab.md" and "createComment" in comment["with"]["script"]
    assert job["permissions"]["pull-requests"] == "write"


def test_apple_silicon_checks_out_full_history_for_the_merge_gate(apple):
    checkout = _uses(_steps(apple, "perf"), "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0
