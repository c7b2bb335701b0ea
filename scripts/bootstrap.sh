#!/usr/bin/env bash
# Create .venv (once) and install the package with the given extras into it.
# Usage: bash scripts/bootstrap.sh [extras]   e.g. "test" or "demo"
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "python3 is missing; installing it with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian splits venv/ensurepip into python3-venv
        rm -rf .venv
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$PYTHON" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=".venv/.installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q -e ".[$extras]"
    touch "$stamp"
fi
