"""Settings of the demo project, also the base settings of the test suite.

Everything comes from the environment (or a ``.env`` file, see ``.env.example``)
through django-environ; the defaults run the embedded set-up: SQLite, LocMemCache,
and the development issuer served by this project itself.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-demo-key-change-me")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_oidc_jwks",
    "testproject.api",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from this project: no CDN
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Sends the DPoP-Nonce the authentication class hands out (OIDC_DPOP_NONCE=true).
    "drf_oidc_jwks.middleware.DPoPNonceMiddleware",
]

ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "testproject.wsgi.application"

VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite and the dev issuer's key live here; a fresh clone has none
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Persistent connections, as a production deployment has them (a new PostgreSQL connection costs milliseconds).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = ":memory:"
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://drf-oidc-jwks")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["drf_oidc_jwks.authentication.JWKSAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "drf_oidc_jwks.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# /api/schema/ and Swagger UI at /api/docs/ (drf-spectacular), every asset from drf-spectacular-sidecar.
SPECTACULAR_SETTINGS = {
    "TITLE": "drf-oidc-jwks demo API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would load an image from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": True},
    # HasAuthLevel (step-up) in each operation: x-step-up and a sentence of description (docs/openapi.md).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "drf_oidc_jwks.openapi.postprocess_step_up",
    ],
}
if env("OIDC_SWAGGER_CLIENT_ID", default=""):
    # With OIDC_OPENAPI_SCHEME=openIdConnect: the public client Swagger UI logs in with (PKCE).
    SPECTACULAR_SETTINGS["SWAGGER_UI_OAUTH2_CONFIG"] = {
        "clientId": env("OIDC_SWAGGER_CLIENT_ID"),
        "usePkceWithAuthorizationCodeGrant": True,
    }

# The development issuer (drf_oidc_jwks.contrib.devissuer): this project signs its own tokens
# (``manage.py mint_token``) and serves their public key, so the demo needs no external identity provider.
# The app refuses to start with DEBUG off, so it is only installed in development.
DEV_ISSUER_ENABLED = env.bool("DEV_ISSUER_ENABLED", default=DEBUG)
if DEV_ISSUER_ENABLED:
    INSTALLED_APPS.append("drf_oidc_jwks.contrib.devissuer")
DEV_ISSUER_KEY_FILE = VAR_DIR / "dev_issuer_key.pem"
DEV_ISSUER_URL = env("DEV_ISSUER_URL", default="http://127.0.0.1:8000/dev-issuer")
API_AUDIENCE = env("API_AUDIENCE", default="http://127.0.0.1:8000/api")

DRF_OIDC_JWKS = {
    "ISSUER": env("OIDC_ISSUER", default=DEV_ISSUER_URL),
    "AUDIENCE": env("OIDC_AUDIENCE", default=API_AUDIENCE),
    "ALGORITHMS": env.list("OIDC_ALGORITHMS", default=["RS256"]),
    "PROVIDER": env("OIDC_PROVIDER", default="better-auth"),
    "SYNC_USERS": env.bool("OIDC_SYNC_USERS", default=True),
    # The development issuer has no login page, so the demo's Swagger UI takes a pasted token.
    "OPENAPI_SCHEME": env("OIDC_OPENAPI_SCHEME", default="bearer"),
}
# DPoP (docs/dpop.md): OIDC_DPOP=required|off, OIDC_DPOP_NONCE=true; unset means the library defaults.
if env("OIDC_DPOP", default=""):
    DRF_OIDC_JWKS["DPOP"] = env("OIDC_DPOP")
if env.bool("OIDC_DPOP_NONCE", default=False):
    DRF_OIDC_JWKS["DPOP_NONCE"] = True
if env("OIDC_JWKS_URL", default=""):
    DRF_OIDC_JWKS["JWKS_URL"] = env("OIDC_JWKS_URL")
# Numeric knobs for load tests and benchmarks (OIDC_JWKS_CACHE_TTL=2 ...); unset means the library default.
for _key in ("JWKS_CACHE_TTL", "JWKS_REFRESH_COOLDOWN", "TOKEN_CACHE_TTL", "HTTP_TIMEOUT", "LEEWAY"):
    if env(f"OIDC_{_key}", default=""):
        DRF_OIDC_JWKS[_key] = env.float(f"OIDC_{_key}")
# Revocation (docs/revocation.md): the client id(s) the IdP's logout tokens name, comma-separated.
if env("OIDC_BACKCHANNEL_LOGOUT_AUDIENCE", default=""):
    DRF_OIDC_JWKS["BACKCHANNEL_LOGOUT_AUDIENCE"] = env.list("OIDC_BACKCHANNEL_LOGOUT_AUDIENCE")
for _key in ("REVOCATION_POLL", "REVOCATION_TTL"):
    if env(f"OIDC_{_key}", default=""):
        DRF_OIDC_JWKS[_key] = env.float(f"OIDC_{_key}")

# Operations: Prometheus metrics at /metrics (drf_oidc_jwks.contrib.prometheus; tests/test_prometheus_gunicorn.py).
PROMETHEUS_METRICS = env.bool("PROMETHEUS_METRICS", default=False)
if PROMETHEUS_METRICS:
    INSTALLED_APPS.append("drf_oidc_jwks.contrib.prometheus")

if env.bool("SERVED_BY_HEADER", default=False):
    # Load tests check which worker process answered.
    MIDDLEWARE.append("testproject.api.middleware.served_by")
if env.bool("DB_QUERIES_HEADER", default=False):
    MIDDLEWARE.insert(0, "testproject.api.middleware.query_count")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"drf_oidc_jwks": {"handlers": ["console"], "level": env("OIDC_LOG_LEVEL", default="INFO")}},
}
