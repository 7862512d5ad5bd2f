PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint schema bench rehearsal

# A virtual environment with the package and its test tools, rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# checkov (tests/test_k8s.py) in a venv of its own: its pins (packaging<24, networkx<2.7, an exact boto3...)
# would hold back the test tools if it shared theirs.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(VENV)/checkov/.installed-$(CHECKOV_VERSION)
$(CHECKOV): | $(STAMP)
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

demo: $(STAMP)
	$(BIN)/casegraph demo

# The Redis tests start their own redis-server (and stop it); install it when missing (we run as root).
# tests/test_docker.py validates docker/compose.yaml with docker-compose (no Docker engine needed; without
# the recommended docker.io it is 16 small Python packages) and lints the Dockerfile with hadolint (pip).
# tests/test_k8s.py renders deploy/k8s with kubectl (on the machine), checks it with kubernetes-validate (pip)
# and checkov (above), and rehearses a rolling restart behind HAProxy (Debian).
test: $(STAMP) $(CHECKOV)
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	command -v docker-compose >/dev/null || (apt-get update && apt-get install -y --no-install-recommends docker-compose)
	command -v haproxy >/dev/null || (apt-get update && apt-get install -y haproxy)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

# The benchmark (bench/run.py): demo upstream and gateway as processes, load from wrk; results in bench/results/.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The rolling-restart rehearsal (bench/rolling.py): 3 gateways sharing one redis-server behind HAProxy, 60 s of
# rolling restarts under load, then 60 s with one gateway killed (REHEARSAL_ARGS=--contrast: then 60 s of
# restarts without the drain step, as recorded); results in bench/results/rolling-*.
rehearsal: $(STAMP)
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	command -v haproxy >/dev/null || (apt-get update && apt-get install -y haproxy)
	$(BIN)/python -m bench.rolling $(REHEARSAL_ARGS)

schema: $(STAMP)
	$(BIN)/casegraph export-schema
