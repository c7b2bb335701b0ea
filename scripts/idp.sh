#!/usr/bin/env bash
# Run one of the real identity providers of interop/ by hand, on 127.0.0.1, and get tokens from it.
#
#   bash scripts/idp.sh start [oidc-provider|better-auth] [--port N] [--audience URL]
#   bash scripts/idp.sh token [--scope "reports:read"]     # prints one access token
#   bash scripts/idp.sh status                              # prints the issuer, client and settings again
#   bash scripts/idp.sh stop
#
# start prints the issuer, the client id and secret (oidc-provider), the DRF_OIDC_JWKS settings and a
# ready curl line for the token endpoint. Defaults: oidc-provider, port 9000, audience
# http://127.0.0.1:8000/api (the demo's API_AUDIENCE). OP_CLIENT_ID / OP_CLIENT_SECRET choose the
# oidc-provider client (a random secret otherwise). State lives in $IDP_STATE_DIR (default var/idp).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${IDP_STATE_DIR:-$ROOT/var/idp}"
READY_TIMEOUT=30

die() { echo "idp.sh: $*" >&2; exit 1; }
json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(v===undefined){console.error(s);process.exit(1)}console.log(v)})' "$1"; }
running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }
load() { running || die "no identity provider is running: bash scripts/idp.sh start"; . "$STATE/env"; }

settings_line() {
    if [ "$IDP" = oidc-provider ]; then
        echo "DRF_OIDC_JWKS = {\"ISSUER\": \"$ISSUER\", \"AUDIENCE\": \"$AUDIENCE\", \"ALGORITHMS\": [\"RS256\", \"ES256\"]}"
    else
        echo "DRF_OIDC_JWKS = {\"ISSUER\": \"$ISSUER\", \"JWKS_URL\": \"$ISSUER/api/auth/jwks\", \"AUDIENCE\": \"$AUDIENCE\", \"ALGORITHMS\": [\"EdDSA\"], \"PROVIDER\": \"better-auth\"}"
    fi
}

status() {
    load
    echo "$IDP running on $ISSUER (pid $(cat "$STATE/pid"); log $STATE/idp.log; stop: bash scripts/idp.sh stop)"
    echo "  issuer:        $ISSUER"
    if [ "$IDP" = oidc-provider ]; then
        echo "  client id:     $CLIENT_ID"
        echo "  client secret: $CLIENT_SECRET"
        echo "  token URL:     $ISSUER/token"
    fi
    echo "  audience:      $AUDIENCE"
    echo "  settings:      $(settings_line)"
    echo "A token (bash scripts/idp.sh token does the same):"
    if [ "$IDP" = oidc-provider ]; then
        echo "  curl -s -u '$CLIENT_ID:$CLIENT_SECRET' -d grant_type=client_credentials -d 'resource=$AUDIENCE' -d 'scope=reports:read' $ISSUER/token"
    else
        echo "  curl -s -c jar -H 'Origin: $ISSUER' -H 'Content-Type: application/json' -d '{\"email\":\"ada@example.com\",\"password\":\"correct-horse-9\",\"name\":\"Ada\"}' $ISSUER/api/auth/sign-up/email && curl -s -b jar $ISSUER/api/auth/token"
    fi
}

start() {
    local idp=oidc-provider port=9000 audience="http://127.0.0.1:8000/api"
    while [ $# -gt 0 ]; do
        case "$1" in
            oidc-provider|better-auth) idp="$1" ;;
            --port) port="$2"; shift ;;
            --audience) audience="$2"; shift ;;
            *) die "start: unknown argument $1 (oidc-provider|better-auth, --port N, --audience URL)" ;;
        esac
        shift
    done
    running && die "already running ($(. "$STATE/env"; echo "$IDP on $ISSUER")): bash scripts/idp.sh stop first"
    bash "$ROOT/scripts/install-interop.sh"
    mkdir -p "$STATE"
    rm -f "$STATE/env" "$STATE/pid" "$STATE/jar"
    local client_id="${OP_CLIENT_ID:-reporting-service}"
    local secret="${OP_CLIENT_SECRET:-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')}"
    local script=oidc-provider-server.mjs
    [ "$idp" = better-auth ] && script=better-auth-server.mjs
    : > "$STATE/idp.log"
    : > "$STATE/stdout"
    (
        cd "$ROOT/interop"
        OP_CLIENT_ID="$client_id" OP_CLIENT_SECRET="$secret" API_AUDIENCE="$audience" \
            exec setsid node "$script" "$port" > "$STATE/stdout" 2>> "$STATE/idp.log" < /dev/null
    ) &
    local pid=$!
    echo "$pid" > "$STATE/pid"
    local issuer="" waited=0
    while [ -z "$issuer" ]; do
        issuer="$(sed -n 's/^READY //p' "$STATE/stdout" | head -1 || true)"
        [ -n "$issuer" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$STATE/idp.log" >&2; rm -f "$STATE/pid"; die "$idp exited before it was ready"; }
        [ "$waited" -ge $((READY_TIMEOUT * 10)) ] && { kill "$pid"; rm -f "$STATE/pid"; die "$idp was not ready within ${READY_TIMEOUT}s"; }
        sleep 0.1
        waited=$((waited + 1))
    done
    {
        echo "IDP=$idp"
        echo "ISSUER=$issuer"
        echo "AUDIENCE='$audience'"
        echo "CLIENT_ID='$client_id'"
        echo "CLIENT_SECRET='$secret'"
    } > "$STATE/env"
    chmod 600 "$STATE/env"
    status
}

token() {
    local scope="reports:read"
    while [ $# -gt 0 ]; do
        case "$1" in
            --scope) scope="$2"; shift ;;
            *) die "token: unknown argument $1 (--scope \"a b\")" ;;
        esac
        shift
    done
    load
    if [ "$IDP" = oidc-provider ]; then
        curl -sS --fail-with-body -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
            --data-urlencode "resource=$AUDIENCE" --data-urlencode "scope=$scope" "$ISSUER/token" | json_field access_token
    else
        # A fresh user each time: sign-up signs in, and the JWT plugin's /api/auth/token turns the session into a JWT.
        local email="user-$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')@example.com"
        curl -sS --fail-with-body -o /dev/null -c "$STATE/jar" -H "Origin: $ISSUER" -H 'Content-Type: application/json' \
            -d "{\"email\":\"$email\",\"password\":\"correct-horse-9\",\"name\":\"Ada\"}" "$ISSUER/api/auth/sign-up/email"
        curl -sS --fail-with-body -b "$STATE/jar" "$ISSUER/api/auth/token" | json_field token
    fi
}

stop() {
    if ! running; then
        rm -f "$STATE/pid"
        echo "no identity provider is running"
        return 0
    fi
    local pid
    pid="$(cat "$STATE/pid")"
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$STATE/pid" "$STATE/env" "$STATE/jar"
    echo "stopped (pid $pid)"
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
    start) start "$@" ;;
    token) token "$@" ;;
    status) status ;;
    stop) stop ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
