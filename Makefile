# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# The tests, one target per layer (README "Tests"):
#   test-unit         seconds; no PostgreSQL, RabbitMQ or server process (their URLs point at a closed port)
#   test-integration  the journal, relay and bus against the real PostgreSQL and RabbitMQ
#   test-e2e          the real `taskjournal dev` process driven with the official client
#   test              the type check, then all of them and tests/chaos in one run (what .ci/run calls)
#   typecheck         mypy over shared/ and services/, seen as the taskjournal namespace (ADR 0009)
TEST_DATABASE_URL := $${TASKJOURNAL_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/taskjournal_test}
PYTEST := TASKJOURNAL_TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -q
NO_INFRASTRUCTURE := TASKJOURNAL_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:1/unreachable \
	TASKJOURNAL_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:1/

.PHONY: run test test-unit test-integration test-e2e test-blackbox blackbox-venv typecheck bench bench-history bench-resolvers bench-web bench-fleet chaos install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# A real worker for tests/blackbox (scriptworker from PyPI), apart from the
# project's dependencies: its own virtualenv, rebuilt when the pin changes.
BLACKBOX_VENV := .venv-blackbox
BLACKBOX_STAMP := $(BLACKBOX_VENV)/.installed-stamp
$(BLACKBOX_STAMP): tests/blackbox/scriptworker-requirements.txt
	test -x $(BLACKBOX_VENV)/bin/python || python3 -m venv $(BLACKBOX_VENV)
	$(BLACKBOX_VENV)/bin/python -m pip install -q -r tests/blackbox/scriptworker-requirements.txt
	touch $(BLACKBOX_STAMP)

blackbox-venv: $(BLACKBOX_STAMP)

run: $(STAMP)
	$(VENV)/bin/taskjournal dev

test: typecheck blackbox-venv
	$(PYTEST) $(PYTEST_ARGS)

# mypy cannot follow the editable install's import hook, so it reads the
# namespace through links: .typecheck/taskjournal/{shared,services}.
typecheck: $(STAMP)
	mkdir -p .typecheck/taskjournal
	ln -sfn ../../shared .typecheck/taskjournal/shared
	ln -sfn ../../services .typecheck/taskjournal/services
	cd .typecheck && ../$(PY) -m mypy --config-file ../pyproject.toml -p taskjournal.shared -p taskjournal.services

test-unit: $(STAMP)
	$(NO_INFRASTRUCTURE) $(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PYTEST) tests/integration $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(PYTEST) tests/e2e $(PYTEST_ARGS)

test-blackbox: $(STAMP) blackbox-venv
	$(PYTEST) tests/blackbox $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py $(BENCH_ARGS)

bench-history: $(STAMP)  # history p99s and audit throughput (bench/history.py --help)
	$(PY) bench/history.py $(BENCH_ARGS)

# claim-resolver scale-out: one backlog of expired claims, 1 vs 3 processes (bench/resolvers.py)
bench-resolvers: $(STAMP)
	$(PY) bench/resolvers.py $(BENCH_ARGS)

# the web view's task group page of a 10,000-task group (bench/webview.py; WEB_BENCH_ARGS passes options)
bench-web: $(STAMP)
	$(PY) bench/webview.py $(WEB_BENCH_ARGS)

bench-fleet: $(STAMP)
	$(PY) bench/fleet.py $(BENCH_FLEET_ARGS)

chaos: $(STAMP)
	$(PY) bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) $(BLACKBOX_VENV) .taskjournal .pytest_cache .hypothesis
