#!/usr/bin/env bash
# Set everything up and run the whole test suite:
#   static checks (ruff, mypy strict), the suite on the embedded defaults (SQLite + LocMemCache),
#   the suite again against real Redis and PostgreSQL started on loopback, the oldest and newest
#   cells of the version matrix (nox), a short benchmark run, and the documentation build.
# Arguments are passed to both pytest passes (e.g. -x, -k expr).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { echo; echo "== $1  (+$((SECONDS - started))s)"; }

step "set-up: .venv, Redis, PostgreSQL, Node.js IdPs"
bash scripts/bootstrap.sh "test,lint,bench,docs"
bash scripts/install-services.sh
bash scripts/install-interop.sh
PY=.venv/bin/python

step "static checks: ruff, ruff format, mypy --strict"
$PY -m ruff check drf_oidc_jwks tests testproject bench noxfile.py
$PY -m ruff format --check drf_oidc_jwks tests testproject bench noxfile.py
$PY -m mypy

step "pass 1: embedded defaults (SQLite + LocMemCache)"
$PY -m pytest -q "$@"

step "pass 2: Redis + PostgreSQL on loopback"
$PY -m tests.services -- $PY -m pytest -q "$@"

step "version matrix: oldest and newest (the full matrix: .venv/bin/nox)"
$PY -m nox -s oldest newest

step "benchmarks, short run (numbers are reported, not asserted)"
$PY -m bench.run --quick
$PY -m bench.e2e --quick
$PY -m bench.growth --quick

step "documentation: mkdocs build --strict"
bash scripts/docs.sh

step "all green in $((SECONDS - started))s"
