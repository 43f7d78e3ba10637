"""``{% intacct_incidents %}`` (intacct_connect.templatetags.intacct_connect_admin): the
incident banner renders for staff who may view connections, and nothing otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from intacct_connect import incidents
from intacct_connect.apps import ADMIN_INDEX_TEMPLATE
from intacct_connect.exceptions import InvalidClient

pytestmark = pytest.mark.django_db

TAG = Template("{% load intacct_connect_admin %}{% intacct_incidents %}")


def render(user: Any | None) -> str:
    context: dict[str, Any] = {}
    if user is not None:
        request = RequestFactory().get("/admin/")
        request.user = user
        context["request"] = request
    return TAG.render(Context(context)).strip()


def test_the_banner_shows_only_with_an_incident_and_the_permission(
    django_user_model: Any,
) -> None:
    root = django_user_model.objects.create_superuser("root", password="pw")
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    assert render(root) == ""  # no incident
    incidents.record_credentials_rejected(InvalidClient(code="invalid_client"))
    html = render(root)
    assert 'class="messagelist intacct-incidents"' in html
    assert "invalid_client" in html
    assert render(staff) == ""  # no view_connection permission
    assert render(AnonymousUser()) == ""
    assert render(None) == ""  # a template rendered without a request


def test_the_default_admin_site_uses_the_apps_index_template() -> None:
    from django.contrib import admin

    assert admin.site.index_template == ADMIN_INDEX_TEMPLATE
