from __future__ import annotations

from django.urls import URLPattern, path

from intacct_connect import views

app_name = "intacct_connect"

urlpatterns: list[URLPattern] = [
    path("", views.connections, name="connections"),
]
