#!/usr/bin/env bash
# Build the documentation site with every warning an error (mkdocs build --strict), into a throw-away
# directory: broken links, missing pages and docstring problems fail the build.
# Usage: bash scripts/docs.sh            (installs the "docs" extra into .venv first)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh docs
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Not --quiet: it would also silence the warnings that --strict counts.
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --site-dir "$out/site"
echo "docs: mkdocs build --strict passed ($(find "$out/site" -name index.html | wc -l) pages)"
