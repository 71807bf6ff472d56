# moodtune — the commands. `make demo` runs the whole system locally; `make test` runs the tests.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools
CHECKOV_VENV := .venv-checkov
STAMP := $(VENV)/.installed

.PHONY: setup tools checkov lambda-venvs demo test lint unit bench fuzz loadtest deploy demo-model data-check clean

setup: $(STAMP)

# The project venv: runtime + train (torch CPU wheel) + dev tools. TORCH_INDEX=<url> picks the index
# that serves a CPU build of torch where pip's default would be a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(BIN)/pip install -q -e ".[train,dev]"
	touch $(STAMP)

# SAM CLI lives in its own venv: its pins would move boto3 and friends in the project venv.
SAM := SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam
tools: $(TOOLS)/.installed
$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q "aws-sam-cli==1.170.0"
	touch $@

# checkov (the template's security scan) in a venv of its own too: it pins an older boto3.
CHECKOV := $(CHECKOV_VENV)/bin/checkov
checkov: $(CHECKOV_VENV)/.installed
$(CHECKOV_VENV)/.installed:
	test -x $(CHECKOV_VENV)/bin/python || $(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q "checkov==3.3.30"
	touch $@

# The whole system on this machine (ports: MOTO_PORT=5000, MOODTUNE_PORT=3000). Ctrl-C stops it.
demo: setup
	$(BIN)/python -m infra.local.stack

# Python style, the template (cfn-lint and SAM's own validation: no warnings allowed; checkov's security
# checks: no failed check, every skip carries its reason in the resource's Metadata), the Dockerfile.
lint: setup tools checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region ap-northeast-2
	$(CHECKOV) --config-file .checkov.yaml --quiet
	$(BIN)/hadolint functions/recommend/Dockerfile

# The Lambda runtime's Python with only each function's dependencies; tests/integration/test_events.py
# runs the laid-out handlers on them. PY312: pyenv's 3.12 where there is one, else python3.12 on PATH.
PY312 ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12)),python3.12)
LAMBDA := .venv-lambda
lambda-venvs: $(LAMBDA)/image/.installed $(LAMBDA)/layer/.installed
$(LAMBDA)/image/.installed: functions/recommend/requirements.txt
	test -x $(LAMBDA)/image/bin/python || $(PY312) -m venv $(LAMBDA)/image
	$(LAMBDA)/image/bin/pip install -q -r $<
	touch $@
$(LAMBDA)/layer/.installed: layers/shared/requirements.txt
	test -x $(LAMBDA)/layer/bin/python || $(PY312) -m venv $(LAMBDA)/layer
	$(LAMBDA)/layer/bin/pip install -q -r $<
	touch $@

test: setup tools lambda-venvs lint
	$(BIN)/python -m pytest

unit: setup
	$(BIN)/python -m pytest tests/unit

bench: setup
	$(BIN)/python -m bench

# schemathesis against a local stack of its own, from the served /v1/openapi.json: every check, every
# phase (the stateful one follows recommend -> feedback and recommend -> song links), seeded. `make test`
# runs a smaller one (tests/integration/test_fuzz.py). FUZZ_EXAMPLES, FUZZ_SEED pick the size and seed.
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= 15
fuzz: setup
	$(BIN)/python -m infra.local.fuzz --max-examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED)

# A bounded load test on loopback against a local stack of its own (infra/local/loadtest.py):
# LOAD_CLIENTS concurrent clients for LOAD_SECONDS, recommendations and feedback interleaved, then every
# answer checked against FeedbackTable and a table of throughput and p50/p99 per route.
LOAD_CLIENTS ?= 4
LOAD_SECONDS ?= 30
loadtest: setup
	$(BIN)/python -m infra.local.loadtest --clients $(LOAD_CLIENTS) --seconds $(LOAD_SECONDS)

demo-model: setup
	$(BIN)/python -m model_export.demo

data-check: setup
	$(BIN)/python -m model_export.corpus_quality data/demo/emotions.tsv --mixed data/demo/mixed.tsv

# Needs Docker (the images) and AWS credentials. STAGE=dev|prod picks a samconfig.toml section
# (default: [default]). BUNDLE=models/<dir> (required: no silent models/demo) is the bundle
# RecommendFunction serves; INGEST_BUNDLE=models/<dir> the one IngestFunction scores with (default:
# BUNDLE); PREVIOUS_VERSION=<model_version> names the replaced version on the dashboard. sam build
# (the bundles are Docker build arguments) and sam deploy get the same overrides: the environment's own
# list plus ModelDir, IngestModelDir and CurrentModelVersion (infra/model_switch.py overrides). The model
# switch (docs/ingestion.md): `make deploy BUNDLE=<old> INGEST_BUNDLE=<new>`, re-score, gate, then
# `make deploy BUNDLE=<new> PREVIOUS_VERSION=<old version>`. The first deploy to an account:
# `.venv-tools/bin/sam deploy --guided`.
DEPLOY_ENV = $(or $(STAGE),default)
ifneq ($(filter deploy,$(MAKECMDGOALS)),)
ifeq ($(BUNDLE),)
$(error BUNDLE=models/<dir> is required: the bundle RecommendFunction serves, e.g. make deploy BUNDLE=models/demo (docs/operations.md, "Deploying"))
endif
endif
deploy: setup tools
	overrides="$$($(BIN)/python -m infra.model_switch overrides --config-env $(DEPLOY_ENV) --bundle $(BUNDLE) $(if $(INGEST_BUNDLE),--ingest-bundle $(INGEST_BUNDLE),) $(if $(PREVIOUS_VERSION),--previous $(PREVIOUS_VERSION),))" && \
	  $(SAM) build --config-env $(DEPLOY_ENV) --parameter-overrides "$$overrides" && \
	  $(SAM) deploy --config-env $(DEPLOY_ENV) --parameter-overrides "$$overrides"
	$(BIN)/python -m infra.deploy_web --config-env $(DEPLOY_ENV)

clean:
	rm -rf $(VENV) $(TOOLS) $(CHECKOV_VENV) $(LAMBDA) .aws-sam .pytest_cache .ruff_cache
