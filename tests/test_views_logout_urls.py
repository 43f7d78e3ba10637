"""The test site's URLs plus Django's auth views (a ``logout`` URL), for the header tests."""

from __future__ import annotations

from django.urls import include, path

from tests.urls import urlpatterns as site_urlpatterns

urlpatterns = [*site_urlpatterns, path("accounts/", include("django.contrib.auth.urls"))]
