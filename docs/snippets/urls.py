from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in for the tenant pages: /accounts/login/, /accounts/logout/, ...
    path("accounts/", include("django.contrib.auth.urls")),
    # The tenant pages; the callback is /intacct/callback/.
    path("intacct/", include("intacct_connect.urls")),
]
