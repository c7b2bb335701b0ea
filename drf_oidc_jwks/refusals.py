"""The 403 ``insufficient_scope`` and the metadata URL every challenge names, built from the settings.

Kept apart from challenges.py (the grammar, which exceptions.py uses) so that neither imports the other.
"""

from __future__ import annotations

from .challenges import metadata_url
from .conf import get_settings
from .exceptions import InsufficientScope


def resource_metadata_url() -> str | None:
    """The RFC 9728 metadata URL of ``RESOURCE``, named by every challenge; None without ``RESOURCE``."""
    resource = get_settings().resource
    if not resource:
        return None
    return metadata_url(resource)


def insufficient_scope(scopes: tuple[str, ...] | list[str], description: str | None = None) -> InsufficientScope:
    """The 403 ``insufficient_scope``: ``scope``, ``error_description`` and ``resource_metadata`` in its challenge."""
    return InsufficientScope(
        scopes, realm=get_settings().realm, detail=description, resource_metadata=resource_metadata_url()
    )
