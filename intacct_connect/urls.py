"""URLs of intacct_connect; include them under a prefix, e.g. ``path("intacct/", include(...))``.

The callback's absolute URL must equal ``INTACCT_CONNECT["REDIRECT_URI"]`` exactly.
``<pk>/disconnect/`` shows a confirmation on GET and disconnects on POST; ``<pk>/entity/``
shows and sets the connection's default entity.
"""

from __future__ import annotations

from django.urls import URLPattern, path

from intacct_connect import views

app_name = "intacct_connect"

urlpatterns: list[URLPattern] = [
    path("", views.connections, name="connections"),
    path("connect/", views.connect, name="connect"),
    path("callback/", views.callback, name="callback"),
    path("<int:pk>/reconnect/", views.reconnect, name="reconnect"),
    path("<int:pk>/disconnect/", views.disconnect, name="disconnect"),
    path("<int:pk>/entity/", views.entity, name="entity"),
]
