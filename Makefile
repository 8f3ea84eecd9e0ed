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

.PHONY: run test test-unit test-integration test-e2e typecheck bench chaos install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/taskjournal dev

test: typecheck
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

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py $(BENCH_ARGS)

chaos: $(STAMP)
	$(PY) bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .taskjournal .pytest_cache .hypothesis
