#!/usr/bin/env bash
# Set everything up and start the demo: SQLite, LocMemCache and the built-in development issuer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh demo
PORT="${PORT:-8000}"
export DEV_ISSUER_URL="${DEV_ISSUER_URL:-http://127.0.0.1:$PORT/dev-issuer}"
export API_AUDIENCE="${API_AUDIENCE:-http://127.0.0.1:$PORT/api}"
.venv/bin/python manage.py migrate --verbosity 0
if [ -n "${OIDC_ISSUER:-}" ]; then
    # A real IdP started with scripts/idp.sh (docs/interop.md) instead of the development issuer.
    TOKEN=$(bash scripts/idp.sh token)
else
    TOKEN=$(.venv/bin/python manage.py mint_token --sub alice --role admin --tenant acme)
fi
cat <<MSG

drf-oidc-jwks demo on http://127.0.0.1:$PORT  (Ctrl-C to stop)

Try it:

  curl -s http://127.0.0.1:$PORT/api/me -H "Authorization: Bearer $TOKEN"

More tokens: .venv/bin/python manage.py mint_token --sub bob --role user --tenant globex

MSG
exec .venv/bin/python manage.py runserver "127.0.0.1:$PORT"
