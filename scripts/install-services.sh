#!/usr/bin/env bash
# Install the servers the second test pass starts on loopback (tests/services.py): redis-server and the
# PostgreSQL server binaries (initdb, postgres). Installs with apt-get only what is missing; silent otherwise.
# The packages' own system services are never used: the suite runs throwaway servers in temp dirs.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "installing ${missing[*]} with apt-get" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: do not start the packages' system-wide services in containers; the tests start their own.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
