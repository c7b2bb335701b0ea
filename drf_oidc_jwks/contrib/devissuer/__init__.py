"""A development issuer for local work: ``INSTALLED_APPS += ["drf_oidc_jwks.contrib.devissuer"]``.

Your own project signs tokens (``manage.py mint_token``) with a locally stored RSA key and serves
that key's discovery document and JWKS, so the API runs with no identity provider at all. It refuses
to start with ``DEBUG = False`` or an issuer URL that is not on a loopback host. See docs/adopting.md.
"""
