# The one entry point: a newcomer and CI run the same targets.
#   make run    set everything up, load the demo city when the database is empty, serve :8000
#   make test   set everything up, then the whole test suite on a real PostGIS
#   make bench  benchmarks at city scale, each beside its peer (var/bench/); ARGS="name …" picks some
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup db run test bench lint stop

setup:
	@bash scripts/setup.sh

db: setup
	@bash scripts/db.sh start

run: db
	@bash scripts/run.sh

test: db
	@bash scripts/test.sh

bench: db
	@bash scripts/bench.sh $(ARGS)

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

stop:
	@bash scripts/db.sh stop
