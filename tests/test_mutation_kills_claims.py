"""Claims: pickling keeps the claim paths and the header, a frozen payload is not copied again, comparisons defer.

Written against surviving mutants of drf_oidc_jwks/claims.py (docs/security.md, "Mutation testing").
"""

from __future__ import annotations

import pickle

from drf_oidc_jwks.claims import Claims, FrozenDict, resolve_claim_paths

PAYLOAD = {"sub": "alice", "realm_access": {"roles": ["admin"]}, "roles": ["user"]}
HEADER = {"alg": "RS256", "kid": "k1"}


def test_a_pickled_claims_object_keeps_its_claim_paths_header_and_format() -> None:
    c = Claims(PAYLOAD, resolve_claim_paths("keycloak", {}), HEADER, token_format="opaque")
    assert c.roles == {"admin"}  # keycloak reads realm_access.roles, the generic preset top-level roles
    back = pickle.loads(pickle.dumps(c))
    assert back.roles == {"admin"}
    assert back.paths == c.paths
    assert back.header == HEADER and isinstance(back.header, FrozenDict)
    assert back.token_format == "opaque"


def test_an_already_frozen_payload_and_header_are_shared_not_copied_again() -> None:
    first = Claims(PAYLOAD, header=HEADER)
    again = Claims(first.raw, first.paths, first.header)
    assert again.raw is first.raw and again.header is first.header
    mutable = {"sub": "bob"}
    copied = Claims(mutable, header=dict(HEADER))
    mutable["sub"] = "mallory"
    assert copied.sub == "bob" and copied.raw is not mutable


class ClaimsOf:
    """A test matcher that recognises a Claims object by its subject (and nothing else)."""

    def __init__(self, sub: str) -> None:
        self.sub = sub

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Claims) and other.sub == self.sub

    __hash__ = None  # type: ignore[assignment]


def test_comparing_with_something_that_is_not_a_mapping_lets_it_decide() -> None:
    c = Claims(PAYLOAD)
    assert c == ClaimsOf("alice")
    assert c != ClaimsOf("bob")
    assert (c == ["sub"]) is False
