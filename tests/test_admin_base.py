from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory

from intacct_connect.admin.base import ReadOnlyModelAdmin
from intacct_connect.models import ConnectionEvent


@pytest.mark.django_db
def test_read_only_admin_refuses_add_and_change_even_for_superusers() -> None:
    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    model_admin = ReadOnlyModelAdmin(ConnectionEvent, admin.site)
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_change_permission(request, ConnectionEvent())
