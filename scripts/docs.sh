#!/usr/bin/env bash
# Build the documentation site with every warning an error (mkdocs build --strict): broken links, missing
# pages, missing snippets and docstring problems fail the build.
#
#   bash scripts/docs.sh               build into a throw-away directory (what CI runs)
#   bash scripts/docs.sh --keep DIR    build into DIR and keep it (open DIR/index.html, works offline)
#   bash scripts/docs.sh serve [ADDR]  build, then serve with live reload on ADDR (default 127.0.0.1:8001)
#
# Installs the "docs" extra into .venv first, and Mermaid (docs/flow.md's diagram) into docs/javascripts/
# from the npm registry with `npm pack`, checked against the pinned SHA-256: the site loads it from itself,
# never from a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."

MERMAID_VERSION=11.17.2
MERMAID_SHA256=581ed7d74bd9048d0e3a91363927d72ef22942d7722546b27f7cc29e35390eb8
MERMAID_JS=docs/javascripts/mermaid.min.js

mode=build keep="" addr=127.0.0.1:8001
case "${1:-}" in
    "") ;;
    --keep) keep="${2:?--keep needs a directory}" ;;
    serve) mode=serve; addr="${2:-$addr}" ;;
    *) sed -n '5,8p' "$0" >&2; exit 2 ;;
esac

bash scripts/bootstrap.sh docs

if ! echo "$MERMAID_SHA256  $MERMAID_JS" | sha256sum --check --status 2>/dev/null; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm is missing; installing it with apt-get" >&2
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack "mermaid@$MERMAID_VERSION" --silent >/dev/null && tar xzf "mermaid-$MERMAID_VERSION.tgz" package/dist/mermaid.min.js)
    echo "$MERMAID_SHA256  $tmp/package/dist/mermaid.min.js" | sha256sum --check --status \
        || { rm -rf "$tmp"; echo "docs: mermaid $MERMAID_VERSION does not match its pinned SHA-256" >&2; exit 1; }
    mv "$tmp/package/dist/mermaid.min.js" "$MERMAID_JS"
    rm -rf "$tmp"
fi

export NO_MKDOCS_2_WARNING=1
if [ "$mode" = serve ]; then
    exec .venv/bin/python -m mkdocs serve --strict --dev-addr "$addr"
fi
if [ -n "$keep" ]; then
    out="$keep"
else
    out="$(mktemp -d)/site"
    trap 'rm -rf "$(dirname "$out")"' EXIT
fi
# Not --quiet: it would also silence the warnings that --strict counts.
.venv/bin/python -m mkdocs build --strict --site-dir "$out"
echo "docs: mkdocs build --strict passed ($(find "$out" -name index.html | wc -l) pages)${keep:+, kept in $out}"
