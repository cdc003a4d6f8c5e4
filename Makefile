# Two commands on a fresh machine: `make demo` (the whole job end to end) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PEOPLE ?= 10000
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# Workers must use the venv's interpreter, whatever python is first on PATH.
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export HF_HUB_OFFLINE := 1

.PHONY: install demo test dev services-up services-down lint clean

# torch==2.13.0 first: it is the CPU wheel here; letting a dependency pick torch pulls CUDA.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/idr demo --people $(PEOPLE)

test: install services-up
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

# The broker and the stream service first, so the UI opens on a running stream.
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/idr services up --only kafka --only stream
	$(BIN)/dagster dev -w workspace.yaml

services-up: install
	$(BIN)/idr services up

services-down: install
	$(BIN)/idr services down

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf data run .dagster_home
