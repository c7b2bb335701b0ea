"""The DPoP test kit lives in :mod:`drf_oidc_jwks.testing` (``DPoPKey``, ``TestIssuer.dpop_key()``); kept importable."""

from __future__ import annotations

from .testing import OMIT, DPoPKey

__all__ = ["OMIT", "DPoPKey"]
