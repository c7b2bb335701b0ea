from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerOauthRedirectView, SpectacularSwaggerView

from testproject.api import bench_views, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health", views.HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/docs/oauth2-redirect.html", SpectacularSwaggerOauthRedirectView.as_view(), name="swagger-oauth-redirect"),
    path("api/me", views.MeView.as_view(), name="me"),
    path("api/personalized", views.PersonalizedView.as_view(), name="personalized"),
    path("api/bench/unauthenticated-me", bench_views.UnauthenticatedMeView.as_view(), name="bench-baseline"),
    path("api/", include("testproject.api.authz_urls")),
    path("", include("drf_oidc_jwks.urls")),
]

if settings.DEV_ISSUER_ENABLED:
    urlpatterns += [
        # drf_oidc_jwks.contrib.devissuer: discovery and JWKS of the key mint_token signs with.
        path("dev-issuer/", include("drf_oidc_jwks.contrib.devissuer.urls")),
    ]

if settings.PROMETHEUS_METRICS:
    urlpatterns += [path("", include("drf_oidc_jwks.contrib.prometheus.urls"))]
