# The two commands: `make run` (try it) and `make test` (prove it). See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt | sha1sum | cut -c1-12)
PG_VERSION := $(shell ls /etc/postgresql 2>/dev/null | head -n1)

.PHONY: run test lint format bench services venv browser

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	bash bin/run-dev

services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || (pg_ctlcluster --skip-systemctl-redirect $(PG_VERSION) main start && sleep 2)
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "PostgreSQL or Redis did not come up" >&2; exit 1
	@# The suite's live gateways and workers each hold small pools; the default 100 connections run out when test
	@# runs share the server. A local cluster below 400 is raised once (it persists in its own configuration).
	@test "$$(psql -h 127.0.0.1 -U postgres -tAc 'SHOW max_connections' 2>/dev/null || echo 400)" -ge 400 || \
	  (psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET max_connections = 400" && \
	   pg_ctlcluster --skip-systemctl-redirect $(PG_VERSION) main restart && \
	   for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; exit 1)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Debian's Chromium for the dashboard's browser tests (they skip, saying why, where it cannot be installed).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "Chromium could not be installed: browser tests will be skipped"

test: $(STAMP) services browser lint
	$(VENV)/bin/pytest

bench: $(STAMP) services
	$(PY) -m bench $(BENCH)
