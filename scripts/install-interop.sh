#!/usr/bin/env bash
# Install the identity providers the interop tests run (Better Auth, oidc-provider) into interop/node_modules,
# exactly as pinned by interop/package-lock.json. Installs Node.js and npm with apt-get only when missing.
# Does nothing when node_modules already matches the lockfile.
set -euo pipefail
cd "$(dirname "$0")/../interop"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node or npm is missing; installing them with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi

stamp="node_modules/.drf-oidc-jwks-lock.sha256"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "installing interop identity providers (npm ci)" >&2
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
