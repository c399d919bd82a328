# `make perf` is the main job; `make test` runs the whole test suite. Both bootstrap .venv with the
# pinned versions from pyproject.toml and (re)build the default artifacts when missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.faceperf-installed
ARTIFACTS := weights/build

# On Linux, torch==2.13.0 comes from PyTorch's CPU wheel index, as the Linux CI workflow does:
# PyPI's Linux wheel of the same version pulls CUDA libraries (several GB) faceperf never uses.
# The index is added only when it answers: pip retries an unreachable index five times for
# every package (minutes), and a machine without it (a mirror, a wheel cache) keeps its own.
CPU_TORCH_INDEX := https://download.pytorch.org/whl/cpu
ifeq ($(shell uname -s),Linux)
TORCH_INDEX ?= $(shell curl -sfI --max-time 5 $(CPU_TORCH_INDEX)/torch/ >/dev/null 2>&1 \
	&& echo --extra-index-url $(CPU_TORCH_INDEX))
endif

.PHONY: test perf nightly artifacts install lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_INDEX) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

artifacts: $(STAMP)
	$(PY) -m faceperf artifacts build --if-stale --out $(ARTIFACTS)

# The perf tests run too, once each and untimed (--benchmark-disable): CI proves they work
# without timing noise deciding a landing. The suite is spread over the cores (pytest-xdist),
# one test file per worker at a time (--dist loadfile): a file's module-scoped fixtures (small
# builds, fault candidates, loaded models) are built once, in the worker that runs the file.
# One OpenMP thread per worker: the workers already fill the cores, and PyTorch's threads
# spinning on a core the other worker holds cost 14 % more CPU (2-core VM, 2026-12-06).
TEST_WORKERS ?= auto
test: artifacts
	OMP_NUM_THREADS=1 $(PY) -m pytest --benchmark-disable -n $(TEST_WORKERS) --dist loadfile

# The merge gate's reference: the merge base of HEAD with origin/main (else main), built from
# that revision and cached; the plugin says why it skips the gate when there is none.
PERF_REFERENCE ?= merge-base

perf: artifacts
	$(PY) -m pytest -m perf --perf-reference=$(PERF_REFERENCE)

# The long runs, a nightly job's: every model 2000 calls, the MTCNN cascade and the Face Mirror
# pipeline 1000 frames each, resident memory sampled (about 45 min on a 2-core VM), and the
# pipeline 5 minutes without pause, frame rate and memory per window (sustained).
nightly: artifacts
	$(PY) -m pytest -m "nightly or sustained"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests accuracy_tests perf_tests conftest.py

clean:
	rm -rf $(ARTIFACTS) reports
