# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench chaos install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/taskjournal dev

test: $(STAMP)
	TASKJOURNAL_TEST_DATABASE_URL=$${TASKJOURNAL_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/taskjournal_test} $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

chaos: $(STAMP)
	$(PY) bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .taskjournal .pytest_cache .hypothesis
