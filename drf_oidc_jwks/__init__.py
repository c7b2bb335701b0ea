"""drf-oidc-jwks: verify OpenID Connect / OAuth 2 bearer JWTs in Django REST Framework."""

__version__ = "0.1.0"
