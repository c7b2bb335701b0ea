"""Every key of the table, fed values of every JSON-ish type: refused cleanly by both doors, or built exactly.

For each key (and each per-issuer key also inside an ``ISSUERS`` entry), hypothesis draws None, booleans,
integers (huge ones too), floats (NaN and infinities included), strings, lists and dicts, nested. Each
value must either be refused by first use (``get_settings`` raises ImproperlyConfigured) and by the system
checks with the same error ids, or be accepted by both and build to exactly what was given (a list
becomes a tuple or a frozenset, one string a one-item tuple; never a coerced number or boolean). Any other
exception fails the test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from drf_oidc_jwks.claim_paths import CLAIM_ATTRIBUTES, resolve_claim_paths
from drf_oidc_jwks.conf import TABLE, Settings, get_settings

BASE = {"ISSUER": "https://a.test", "AUDIENCE": "x"}
EXAMPLES = 60

# Strings and numbers the parsers look for, so accepted values are drawn often enough to be checked too.
WORDS = ["default", "https://a.test", "http://127.0.0.1:1", "RS256", "HS256", "bearer", "generic", "auth0", "no"]
WORDS += ["", "roles", "email", "scope", "realm_access.roles", *CLAIM_ATTRIBUTES[:4]]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, 2**31, 2**63, -1, 0, 301]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
JSON_ISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

CASES = [(k.name, "top") for k in TABLE] + [(k.name, "entry") for k in TABLE if k.scope == "issuer"]
KEYS = {k.name: k for k in TABLE}


def raw_with(name: str, placement: str, value: Any) -> dict[str, Any]:
    if placement == "entry":
        return {"ISSUERS": [{**BASE, name: value}]}
    return {**BASE, name: value}


def error_ids(text: str) -> set[str]:
    return set(re.findall(r"drf_oidc_jwks\.E\d{3}", text))


def built_value(built: Settings, name: str) -> Any:
    key = KEYS[name]
    return getattr(built.issuers[0] if key.scope == "issuer" else built, key.attr)


def exactly(given: Any, built: Any) -> bool:
    """Say whether ``built`` is ``given`` without coercion (containers may become tuples or frozensets)."""
    if given is None or isinstance(given, bool):
        return built is given
    if isinstance(given, (int, float)):
        return type(built) is type(given) and built == given
    if isinstance(given, str):
        return type(built) is str and built == given or built in ((given,), frozenset({given}))
    if isinstance(given, list):
        return built == tuple(given) or (isinstance(built, frozenset) and built == frozenset(given))
    if not isinstance(given, dict) or not isinstance(built, Mapping) or set(built) != set(given):
        return False
    # Values compared the same way: a list inside a dict may become a tuple too (SCOPE_HIERARCHY).
    return dict(built) == given or all(exactly(value, built[k]) for k, value in given.items())


def check_built_exactly(name: str, value: Any, built: Settings) -> None:
    if name == "ISSUERS":
        assert len(built.issuers) == (1 if value is None else len(value))
    elif name == "CLAIMS":
        assert dict(built.issuers[0].claims) == resolve_claim_paths("generic", value)
    else:
        assert exactly(value, built_value(built, name)), (name, value, built_value(built, name))


@pytest.mark.parametrize(("name", "placement"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_ISH)
@example(value=None)
@example(value=True)
@example(value=0)
@example(value=-1)
@example(value=10**400)
@example(value=1.5)
@example(value=math.nan)
@example(value=math.inf)
@example(value=-math.inf)
@example(value="")
@example(value="no")
@example(value=[])
@example(value=[1, "a"])
@example(value={})
@example(value={"a": [None]})
def test_every_key_is_refused_by_both_doors_or_built_exactly_as_given(name: str, placement: str, value: Any) -> None:
    with override_settings(DRF_OIDC_JWKS=raw_with(name, placement, value)):
        try:
            built: Settings | None = get_settings()
            refusal: set[str] = set()
        except ImproperlyConfigured as exc:
            built, refusal = None, error_ids(str(exc))
            assert refusal, str(exc)
        messages = run_checks(tags=["drf_oidc_jwks"])
        checked = {m.id for m in messages if m.id.startswith("drf_oidc_jwks.") and m.is_serious()}
        assert checked == refusal, (name, value)
        if built is not None:
            check_built_exactly(name, value, built)
