# The course in two commands: `make course` and `make test` (see README.md).
# Both create .venv and install everything on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ganlib-installed
DEV_STAMP := $(VENV)/.ganlib-dev-installed
# torch and torchvision must come as a matching pair from the package index. A CPU-only
# torch wheel from elsewhere plus index torchvision fails at import with
# "operator torchvision::nms does not exist". Keep in sync with environment.yml.
TORCH_PAIR := torch==2.15.0 torchvision==0.29.2

# Offline copies of small datasets (MNIST test split, SR sets) when they sit beside the repo.
SHARED_DATASETS := $(abspath ../shared/datasets)
ifneq ($(wildcard $(SHARED_DATASETS)),)
export GANLIB_DATA_MIRROR ?= $(SHARED_DATASETS)
endif

ARGS ?=

.PHONY: setup course test student lint format lab clean-venv

# What a student needs: ganlib, JupyterLab, papermill (make course). `make test` adds the dev tools.
setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PAIR)
	$(PY) -m pip install --quiet -e ".[lab]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ganlib)" >/dev/null
	@touch $(STAMP)
	@echo "ganlib environment ready in $(VENV)"

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(DEV_STAMP)

course: $(STAMP)
	$(PY) -m ganlib course $(ARGS)

test: $(DEV_STAMP)
	$(PY) -m ruff check conftest.py ganlib tests notebooks scripts benchmarks
	$(PY) -m ruff format --check conftest.py ganlib tests notebooks scripts benchmarks
	$(PY) -m pytest $(ARGS)

# Student versions of the notebooks (nbgrader: solutions stubbed, hidden tests removed) in student/.
# STUDENT_REPOSITORY=owner/name points their Colab badges and install cells at the public copy.
student: $(DEV_STAMP)
	$(PY) -m ganlib student $(if $(STUDENT_REPOSITORY),--repository $(STUDENT_REPOSITORY))

lint: $(DEV_STAMP)
	$(PY) -m ruff check conftest.py ganlib tests notebooks scripts benchmarks

format: $(DEV_STAMP)
	$(PY) -m ruff check --fix conftest.py ganlib tests notebooks scripts benchmarks
	$(PY) -m ruff format conftest.py ganlib tests notebooks scripts benchmarks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
