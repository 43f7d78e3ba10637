"""URLs of the example site: the tenant pages, the admin, sign-in and a favicon."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView

# A small SVG icon (a blue tile with a white "i"), so browsers do not log a 404.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#0b6bcb"/>'
    '<circle cx="16" cy="8.5" r="2.5" fill="#fff"/>'
    '<rect x="13.5" y="13" width="5" height="13" rx="1.5" fill="#fff"/>'
    "</svg>"
)


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FAVICON_SVG, content_type="image/svg+xml")


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="intacct_connect:connections"), name="home"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("intacct/", include("intacct_connect.urls")),
]
