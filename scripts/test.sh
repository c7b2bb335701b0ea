#!/usr/bin/env bash
# Set everything up and run the whole test suite: first on the embedded defaults (SQLite, LocMemCache),
# then again against real Redis and PostgreSQL servers that the suite starts on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
[ -f scripts/install-services.sh ] && bash scripts/install-services.sh
[ -f scripts/install-interop.sh ] && bash scripts/install-interop.sh

echo "== pass 1: embedded defaults (SQLite + LocMemCache)"
.venv/bin/python -m pytest -q "$@"

if [ -f tests/services.py ]; then
    echo "== pass 2: Redis + PostgreSQL on loopback"
    .venv/bin/python -m tests.services -- .venv/bin/python -m pytest -q "$@"
fi
