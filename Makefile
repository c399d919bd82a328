# `make perf` is the main job; `make test` runs the whole test suite. Both bootstrap .venv with the
# pinned versions from pyproject.toml and (re)build the default artifacts when missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.faceperf-installed
ARTIFACTS := weights/build

.PHONY: test perf artifacts install lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

artifacts: $(STAMP)
	$(PY) -m faceperf artifacts build --if-stale --out $(ARTIFACTS)

# The perf tests run too, once each and untimed (--benchmark-disable): CI proves they work
# without timing noise deciding a landing.
test: artifacts
	$(PY) -m pytest --benchmark-disable

# The merge gate's reference: the merge base of HEAD with origin/main (else main), built from
# that revision and cached; the plugin says why it skips the gate when there is none.
PERF_REFERENCE ?= merge-base

perf: artifacts
	$(PY) -m pytest -m perf --perf-reference $(PERF_REFERENCE)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests accuracy_tests perf_tests conftest.py

clean:
	rm -rf $(ARTIFACTS) reports
