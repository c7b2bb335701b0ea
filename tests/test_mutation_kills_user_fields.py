"""user_fields: claims fitted to every kind of user field, the candidate usernames, the per-Claims memo.

Written against surviving mutants of drf_oidc_jwks/user_fields.py (docs/security.md, "Mutation testing").
The fields of a custom user model are stood in for by models of this project (``AUTH_USER_MODEL`` swapped,
as Django's own tests do): mapping claims onto fields reads the model's fields and writes nothing.
"""

from __future__ import annotations

import gc
import hashlib
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import models

from drf_oidc_jwks.claims import Claims
from drf_oidc_jwks.user_fields import ClaimsMemo, usernames

User = get_user_model()
ISS = "https://issuer.example"


def candidates(payload: dict[str, Any], values: dict[str, Any] | None = None, field: Any = None) -> list[str]:
    return list(usernames(Claims({"iss": ISS, **payload}), values or {}, field or User._meta.get_field("username")))


def digest(sub: Any) -> str:
    return hashlib.sha256(f"{ISS}\x00{sub}".encode()).hexdigest()[:10]


@pytest.mark.parametrize(
    ("payload", "values", "base"),
    [
        ({"sub": "s", "preferred_username": "pat", "email": "p@x.test"}, {"username": "mapped"}, "mapped"),
        ({"sub": "s", "preferred_username": "pat", "email": "p@x.test"}, {}, "pat"),
        ({"sub": "s", "email": "p@x.test"}, {}, "p@x.test"),
        ({"email": "p@x.test"}, {}, "p@x.test"),
        ({"sub": "s"}, {}, "s"),
        ({}, {}, "user"),
        ({"sub": "s", "preferred_username": "p\x00at"}, {}, "pat"),
    ],
)
def test_the_preferred_username_is_the_mapped_one_then_the_claims_and_never_holds_nul(
    payload: dict[str, Any], values: dict[str, Any], base: str
) -> None:
    names = candidates(payload, values)
    assert names[0] == base
    assert names[1] == f"{base}.{digest(payload.get('sub'))}"
    assert len(names) == 5
    for name in names[2:]:
        head, _, tail = name.rpartition(".")
        assert head == base and len(tail) == 12 and int(tail, 16) >= 0


@pytest.mark.parametrize("max_length", [150, 30, None])
def test_every_candidate_username_fits_the_field_when_the_preferred_one_is_too_long(max_length: int | None) -> None:
    field = models.CharField(max_length=max_length) if max_length else models.TextField()
    field.set_attributes_from_name("username")
    limit = max_length or 150
    names = candidates({"sub": "s", "preferred_username": "u" * 400}, field=field)
    assert names[0] == "u" * limit
    assert names[1] == "u" * (limit - 11) + "." + digest("s")
    assert len(names) == 5 and len(set(names)) == 5
    assert [len(n) for n in names] == [limit] * 5
    assert all(n.startswith("u" * (limit - 13) + ".") for n in names[2:])


def test_a_claims_object_memoised_for_two_owners_is_forgotten_with_it() -> None:
    memo = ClaimsMemo()
    claims = Claims({"sub": "s"})
    assert memo.get(claims, "one", lambda: "a") == "a"
    assert memo.get(claims, "two", lambda: "b") == "b"  # the entry now belongs to the second owner
    assert memo.get(claims, "two", lambda: "c") == "b"
    del claims
    gc.collect()
    assert len(memo) == 0


# -- fitting claim values to fields (a custom user model's kinds of field) --------------------------


def mapped(settings: Any, oidc_settings: Any, model: str, fields: dict[str, Any], payload: dict[str, Any]) -> Any:
    from drf_oidc_jwks.conf import get_settings
    from drf_oidc_jwks.users import mapped_values

    settings.AUTH_USER_MODEL = model
    oidc_settings(USER_FIELDS=fields)
    return mapped_values(Claims({"sub": "s", **payload}), get_settings())


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        (True, True),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        (False, False),
        ("false", False),
        ("yes", False),
        (1, False),
        (None, False),
        ({"a": 1}, False),
    ],
)
def test_a_boolean_field_is_true_only_for_true_or_the_string_true(
    settings: Any, oidc_settings: Any, claim: Any, expected: bool
) -> None:
    assert mapped(settings, oidc_settings, "api.Task", {"done": "flag"}, {"flag": claim}) == {"done": expected}


@pytest.mark.parametrize(
    ("payload", "title", "object_id"),
    [
        ({"roles": ["b", "a"], "v": ["x", 3, "y"]}, "a b", "x y"),
        ({"roles": [], "v": 42}, "", "42"),
        ({"v": True}, "", None),
        ({"v": {"k": "v"}}, "", None),
        ({"v": None}, "", None),
        ({"v": "a\x00b"}, "", "ab"),
    ],
)
def test_text_fields_take_strings_joined_lists_and_numbers_and_otherwise_empty_or_null(
    settings: Any, oidc_settings: Any, payload: dict[str, Any], title: str, object_id: Any
) -> None:
    # title: CharField, not null (empty string); object_id: TextField, null=True (None).
    values = mapped(settings, oidc_settings, "admin.LogEntry", {"object_repr": "roles", "object_id": "v"}, payload)
    assert values == {"object_repr": title, "object_id": object_id}


def test_other_fields_convert_the_claim_or_fall_back_to_the_default_or_null(settings: Any, oidc_settings: Any) -> None:
    import datetime

    fields = {"action_flag": "flag", "content_type": "ctype", "action_time": "when"}
    good = mapped(
        settings, oidc_settings, "admin.LogEntry", fields, {"flag": "7", "ctype": 3, "when": "2024-01-02T03:04:05Z"}
    )
    assert good["action_flag"] == 7 and good["content_type"] == 3
    assert good["action_time"] == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    for odd in ({"flag": 7, "ctype": None, "when": None}, {"flag": 7, "ctype": ["x"], "when": "not a time"}):
        values = mapped(settings, oidc_settings, "admin.LogEntry", fields, odd)
        assert values["action_flag"] == 7
        assert values["content_type"] is None  # null=True: nothing
        assert isinstance(values["action_time"], datetime.datetime)  # not null: the field's default (now)


@pytest.mark.parametrize("name", ["id", "groups", "user_permissions", "oidc_identities"])
def test_a_field_claims_cannot_write_is_a_configuration_error_naming_it(name: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from drf_oidc_jwks.user_fields import user_field

    with pytest.raises(ImproperlyConfigured, match=repr(name)):
        user_field(User, name)
    assert user_field(User, "first_name").name == "first_name"


def test_a_field_that_is_not_a_column_is_a_configuration_error() -> None:
    from django.contrib.contenttypes.fields import GenericForeignKey
    from django.core.exceptions import ImproperlyConfigured
    from django.test.utils import isolate_apps

    from drf_oidc_jwks.user_fields import user_field

    with isolate_apps("testproject.api"):

        class Member(models.Model):
            content_type = models.ForeignKey("contenttypes.ContentType", on_delete=models.CASCADE)
            object_id = models.PositiveIntegerField()
            target = GenericForeignKey("content_type", "object_id")

            class Meta:
                app_label = "api"

        with pytest.raises(ImproperlyConfigured, match="'target' cannot be written"):
            user_field(Member, "target")
        assert user_field(Member, "object_id").name == "object_id"


def test_user_fields_may_name_the_subject_attribute(oidc_settings: Any) -> None:
    from drf_oidc_jwks.users import mapped_values

    oidc_settings(USER_FIELDS={"last_name": "subject", "first_name": "sub"})
    assert mapped_values(Claims({"sub": "s-42", "iss": ISS})) == {"last_name": "s-42", "first_name": "s-42"}


def test_a_role_as_long_as_a_group_name_may_be_becomes_a_group_and_a_longer_one_does_not(
    oidc_settings: Any, issuer: Any, api: Any
) -> None:
    from django.contrib.auth.models import Group

    oidc_settings(SYNC_GROUPS=True)
    fits, too_long = "g" * 150, "h" * 151
    token = issuer.token(sub="grouped", roles=[fits, too_long, "short"])
    assert api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert sorted(User.objects.get().groups.values_list("name", flat=True)) == [fits, "short"]
    assert not Group.objects.filter(name__startswith="h").exists()


def test_the_fingerprint_is_the_hash_of_the_sorted_values_and_groups_and_stable_across_releases() -> None:
    import datetime
    import json

    from drf_oidc_jwks.user_fields import fingerprint_of

    when = datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)
    values = {"last_name": "L", "first_name": "F", "when": when}
    expected = '{"fields": {"first_name": "F", "last_name": "L", "when": "2024-01-02 00:00:00+00:00"}, "groups": ["a"]}'
    # A stored fingerprint that changed its format would rewrite every user once after an upgrade.
    assert fingerprint_of(values, ["a"]) == hashlib.sha256(expected.encode()).hexdigest()
    assert fingerprint_of(dict(reversed(values.items())), ["a"]) == fingerprint_of(values, ["a"])
    assert (
        fingerprint_of(values, None)
        == hashlib.sha256(
            json.dumps({"fields": values, "groups": None}, sort_keys=True, default=str).encode()
        ).hexdigest()
    )
    assert fingerprint_of(values, None) != fingerprint_of(values, [])
