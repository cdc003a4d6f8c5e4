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

.PHONY: install lock demo test dev services-up services-down lint clean

# Every package comes at the version pinned in constraints.txt (`make lock` writes it), pip
# included. torch==2.13.0 first: here it is the CPU wheel (2.13.0+cpu); letting a dependency
# pick torch pulls CUDA.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Re-resolve every dependency to the newest versions pyproject.toml and constraints.in allow,
# and pin them in constraints.txt; then `make install` installs them.
lock: install
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --upgrade --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra dev --extra demo --output-file constraints.txt pyproject.toml constraints.in

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/idr demo --people $(PEOPLE)

# `dg check defs` loads the code location as `dagster dev` does and validates it (with the
# instance config in $(DAGSTER_HOME)).
test: install services-up $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs
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
