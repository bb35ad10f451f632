# The one entry point: a newcomer and CI run the same targets.
#   make run    set everything up, load the demo city when the database is empty, serve :8000
#   make test   set everything up, then the whole test suite on a real PostGIS
#   make test-fast  the inner loop: the suite without the heavy tests (browser, stack, load, faults)
#   make bench  benchmarks at city scale, each beside its peer (var/bench/); ARGS="name …" picks some
#   make drill          the production stack under var/stack, the primary killed under load
#   make restore-drill  the stack backed up, written on, restored to a point in time and verified
#   make stack / make stack-down   the production stack under var/stack, for a single-machine trial
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup db run test test-fast bench lint stop drill restore-drill stack stack-down

setup:
	@bash scripts/setup.sh

db: setup
	@bash scripts/db.sh start

run: db
	@bash scripts/run.sh

test: db
	@bash scripts/test.sh

test-fast: db
	@bash scripts/test.sh -m "not heavy"

bench: db
	@bash scripts/bench.sh $(ARGS)

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && node_modules/.bin/eslint mapserver/static/mapserver

stop:
	@bash scripts/db.sh stop

drill: setup
	@.venv/bin/python -m scripts.stack drill $(ARGS)

restore-drill: setup
	@.venv/bin/python -m scripts.stack restore-drill $(ARGS)

stack: setup
	@.venv/bin/python -m scripts.stack up $(ARGS)

stack-down:
	@.venv/bin/python -m scripts.stack down $(ARGS)
