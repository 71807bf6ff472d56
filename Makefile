# moodtune — the commands. `make demo` runs the whole system locally; `make test` runs the tests.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools
STAMP := $(VENV)/.installed

.PHONY: setup tools demo test lint unit bench deploy demo-model data-check clean

setup: $(STAMP)

# The project venv: runtime + train (torch CPU wheel from this machine's disk) + dev tools.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[train,dev]"
	touch $(STAMP)

# SAM CLI lives in its own venv: its pins would move boto3 and friends in the project venv.
tools: $(TOOLS)/.installed
$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q aws-sam-cli
	touch $@

demo: setup
	$(BIN)/python -m infra.local.stack

lint: setup tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --region ap-northeast-2
	$(BIN)/hadolint functions/recommend/Dockerfile

test: setup tools lint
	$(BIN)/python -m pytest

unit: setup
	$(BIN)/python -m pytest tests/unit

bench: setup
	$(BIN)/python -m bench

demo-model: setup
	$(BIN)/python -m model_export.demo

data-check: setup
	$(BIN)/python -m model_export.corpus_quality data/demo/emotions.tsv

deploy: tools
	$(TOOLS)/bin/sam build
	$(TOOLS)/bin/sam deploy $(if $(ENV),--config-env $(ENV),)

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache
