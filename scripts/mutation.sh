#!/usr/bin/env bash
# Mutation testing of the security-critical modules with mutmut (pip install -e '.[mutation]').
# Not part of .ci/run: run it before a release and after any change to a module listed below
# (docs/security.md, "Mutation testing").
#   bash scripts/mutation.sh                  every module below
#   bash scripts/mutation.sh tokens keys      only these
# Environment: MUTATION_BUDGET (total seconds, default 10800: every module fits on 2 idle cores), MUTATION_JOBS (mutmut workers, default 2), MUTATION_OUT
# (the output directory, default var/mutation: give two runs at once their own),
# PY (the interpreter, default .venv/bin/python), MUTATION_KEEP=1 (keep each module's scratch copy and print its
# path, to re-run chosen mutants there with `mutmut run <name>...` after copying changed tests into its mutants/). Each module runs in its own scratch copy of the tree
# (mutmut rewrites the copy, never the worktree) against only the test files mapped to it below; mutmut
# then runs, for each mutant, only the tests that executed the mutated function. Figures are printed per
# module; the surviving mutants' diffs go to var/mutation/survivors.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PY=${PY:-$root/.venv/bin/python}
budget=${MUTATION_BUDGET:-10800}
jobs=${MUTATION_JOBS:-2}

# module -> the test files that own its checks (the suite's other files add minutes, not kills).
declare -A TESTS=(
  # the verifier
  [tokens]="tests/test_tokens.py tests/test_attacks.py tests/test_authentication.py tests/test_keys.py tests/test_token_memo.py tests/test_providers.py"
  [tokens_jws]="tests/test_tokens_jws.py tests/test_tokens.py tests/test_attacks.py"
  [claim_values]="tests/test_tokens.py tests/test_claims.py tests/test_attacks.py tests/test_claim_values_paths.py"
  [audience]="tests/test_tokens.py tests/test_providers.py tests/test_attacks.py"
  # key parsing and the JWKS client
  [keys]="tests/test_keys.py tests/test_attacks.py tests/test_tokens.py"
  [jwks]="tests/test_jwks.py tests/test_fetching.py"
  [jwks_refresh]="tests/test_jwks.py tests/test_operations.py tests/test_mutation_kills_jwks.py::test_the_unknown_kid_refetch_shares_one_http_timeout_between_waiting_for_the_lock_and_fetching"
  [jwks_source]="tests/test_jwks.py tests/test_fetching.py tests/test_operations.py tests/test_signals.py"
  [keystore]="tests/test_jwks.py tests/test_operations.py tests/test_mutation_kills_jwks_source.py"
  [fetching]="tests/test_fetching.py tests/test_jwks.py tests/test_operations.py"
  # permissions, tenancy
  [claims]="tests/test_claims.py tests/test_permissions.py"
  [permissions]="tests/test_permissions.py tests/test_scopes.py tests/test_step_up.py"
  [scopes]="tests/test_scopes.py tests/test_permissions.py"
  [tenancy]="tests/test_tenancy.py tests/test_issuers.py"
  # user sync
  [users]="tests/test_users.py tests/test_user_state.py"
  [user_state]="tests/test_user_state.py tests/test_users.py"
  [user_fields]="tests/test_users.py"
  [user_refresh]="tests/test_user_state.py tests/test_users.py"
  # DPoP
  [dpop]="tests/test_dpop.py tests/test_dpop_keys.py"
  [dpop_keys]="tests/test_dpop_keys.py tests/test_dpop.py"
  [dpop_auth]="tests/test_dpop_auth.py tests/test_dpop.py"
  [dpop_urls]="tests/test_dpop.py tests/test_dpop_auth.py"
  [dpop_store]="tests/test_dpop_store.py"
  # opaque tokens, revocation
  [introspection]="tests/test_introspection.py"
  [opaque]="tests/test_opaque_authentication.py tests/test_introspection.py"
  [revocation]="tests/test_revocation.py tests/test_backchannel.py"
  [backchannel]="tests/test_backchannel.py"
)
# Each module's tests also include tests/test_mutation_kills_<module>.py when it exists (the tests written
# to kill that module's survivors).
ORDER="tokens tokens_jws claim_values audience keys jwks jwks_refresh jwks_source keystore fetching claims
permissions scopes tenancy users user_state user_fields user_refresh dpop dpop_keys dpop_auth dpop_urls dpop_store
introspection opaque revocation backchannel"
modules=${*:-$ORDER}

out=${MUTATION_OUT:-$root/var/mutation}
rm -rf "$out"; mkdir -p "$out"
: >"$out/survivors.txt"
deadline=$((SECONDS + budget))
printf '%-14s %6s %6s %8s %7s %7s %6s\n' module made killed survived timeout other secs | tee "$out/summary.txt"
for m in $modules; do
  [[ -n ${TESTS[$m]:-} ]] || { echo "unknown module: $m" >&2; exit 2; }
  left=$((deadline - SECONDS))
  if ((left <= 30)); then echo "$m: skipped, the budget is spent" | tee -a "$out/summary.txt"; continue; fi
  tests=${TESTS[$m]}
  [[ -f tests/test_mutation_kills_$m.py ]] && tests="$tests tests/test_mutation_kills_$m.py"
  scratch=$(mktemp -d)
  cp -r drf_oidc_jwks tests testproject docs mkdocs.yml manage.py pyproject.toml "$scratch/"
  # Narrow the shared [tool.mutmut] settings of pyproject.toml to this module and its tests.
  "$PY" - "$scratch/pyproject.toml" "$m" $tests <<'PYEOF'
import json, re, sys
path, module, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path).read()
text = re.sub(r"(?m)^only_mutate = .*$", "only_mutate = " + json.dumps([f"drf_oidc_jwks/{module}.py"]), text)
text = re.sub(r"(?m)^pytest_add_cli_args_test_selection = .*$",
              "pytest_add_cli_args_test_selection = " + json.dumps(tests), text)
open(path, "w").write(text)
PYEOF
  started=$SECONDS
  (cd "$scratch" && timeout "$left" "$PY" -m mutmut run --max-children "$jobs" >"$out/$m.log" 2>&1) || true
  (cd "$scratch" && "$PY" -m mutmut results --all true 2>/dev/null) >"$out/$m.results" || true
  if grep -q -e 'failed to collect stats' -e 'Failed to run clean test' "$out/$m.log"; then
    echo "$m: the unmutated tests fail in the scratch copy, see var/mutation/$m.log" | tee -a "$out/summary.txt"
    rm -rf "$scratch"; continue
  fi
  made=$(grep -c ': ' "$out/$m.results" || true)
  killed=$(grep -c ': killed$' "$out/$m.results" || true)
  survived=$(grep -c ': survived$' "$out/$m.results" || true)
  timeout_=$(grep -c ': timeout$' "$out/$m.results" || true)
  other=$((made - killed - survived - timeout_))
  printf '%-14s %6s %6s %8s %7s %7s %6s\n' "$m" "$made" "$killed" "$survived" "$timeout_" "$other" \
    $((SECONDS - started)) | tee -a "$out/summary.txt"
  for name in $(grep ': survived$' "$out/$m.results" | sed 's/: survived$//'); do
    (cd "$scratch" && "$PY" -m mutmut show "$name" 2>/dev/null) >>"$out/survivors.txt" || true
    echo >>"$out/survivors.txt"
  done
  if [[ ${MUTATION_KEEP:-0} == 1 ]]; then echo "$m: scratch copy kept in $scratch"; else rm -rf "$scratch"; fi
done
echo "survivors: var/mutation/survivors.txt  (timeout counts as killed; other = not checked or no test covers it)"
