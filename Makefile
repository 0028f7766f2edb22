# The two commands a newcomer needs: `make up` (quick start) and `make test` (everything CI
# runs). Both install what they need on a fresh machine: uv (into .local/tools), the locked
# Python dependencies (into .venv), a real Kafka broker and a real Postgres (deploy/local).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .local/tools/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
INFRA := deploy/local/infra.sh
CHECKED := shared services tests bench

.PHONY: help install test-tools lint typecheck infra-up infra-down test test-unit test-integration up down clean

help:
	@echo "make up         quick start: local Kafka + Postgres, schema, services"
	@echo "make down       stop everything 'make up' started"
	@echo "make test       install, lint, typecheck, start Kafka + Postgres, run every test"
	@echo "make test-unit  only the fast tests (no Kafka, no Postgres)"

.local/tools/bin/uv:
	python3 -m venv .local/tools
	.local/tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(if $(findstring .local/tools,$(UV)),.local/tools/bin/uv)
	$(UV) sync --frozen --quiet --python python3.11

# What the test suites run besides Python: promtool and Prometheus, Chromium, helm,
# kubeconform and the other deploy linters (into .local/tools; apt for the first two).
test-tools:
	bash deploy/tools/install-linters.sh

lint: install
	$(VENV)/bin/ruff check $(CHECKED)
	$(VENV)/bin/ruff format --check $(CHECKED)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture $(CHECKED) vulture_allowlist.py

typecheck: install
	$(VENV)/bin/mypy $(CHECKED)

infra-up:
	bash $(INFRA) up

infra-down:
	bash $(INFRA) down

# Real Kafka and Postgres come from KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when both are
# given, else from deploy/local/infra.sh (started or reused here).
test: lint typecheck test-tools
	@if [[ -z "$${KAFKA_BOOTSTRAP_SERVERS:-}" || -z "$${DATABASE_URL:-}" ]]; then \
		eval "$$(bash $(INFRA) up)"; \
	fi; \
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest tests/unit

up: install
	$(VENV)/bin/scrobble up

down: install
	$(VENV)/bin/scrobble down

clean: infra-down
	rm -rf .local .venv
