"""intacct_connect.admin.deletion: what deleting connections cascades to, counted per
relation without loading the rows (the delete pages themselves: test_admin_permissions)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection as db_connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

import intacct_connect.admin  # noqa: F401  (registers the ModelAdmins)
from intacct_connect.admin.deletion import cascade_summary
from intacct_connect.models import ApiCallLog, Connection, ConnectionEvent, EventKind
from tests import factories

pytestmark = pytest.mark.django_db


def _request(user: Any) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_each_connection_is_listed_with_its_cascaded_rows(admin_user: AbstractBaseUser) -> None:
    a = factories.connection(company="A-CO")
    b = factories.connection(company="B-CO", with_token=False)
    for _ in range(3):
        ConnectionEvent.log(a, EventKind.HEALTH_CHECK, "ok")
    ApiCallLog.objects.create(connection=b, method="GET", path="/x", status=200)
    model_admin = admin.site.get_model_admin(Connection)
    objs = Connection.objects.filter(pk__in=[a.pk, b.pk]).order_by("pk")
    with CaptureQueriesContext(db_connection) as queries:
        deleted, counts, perms_needed, protected = cascade_summary(
            model_admin, objs, _request(admin_user)
        )
    assert perms_needed == set()
    assert protected == []
    assert counts["Intacct connections"] == 2
    assert counts["connection events"] == 3
    assert counts["API calls"] == 1
    assert counts["tokens"] == 1
    assert "job runs" not in counts  # relations without rows are not listed
    assert 'href="/admin/intacct_connect/connection/' in deleted[0]
    assert sorted(deleted[1]) == ["1 token", "3 connection events"]
    assert deleted[3] == ["1 API call"]
    # one query for the connections, one per relation: the rows are counted, not loaded
    relations = sum(1 for q in queries.captured_queries if "COUNT(" in q["sql"].upper())
    assert relations == len(queries.captured_queries) - 1


def test_without_view_permission_the_objects_are_not_linked(
    django_user_model: Any,
) -> None:
    conn = factories.connection()
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    model_admin = admin.site.get_model_admin(Connection)
    deleted, counts, _, _ = cascade_summary(model_admin, [conn], _request(user))
    assert "href" not in deleted[0]
    assert deleted[0].startswith("Intacct connection: ")
    assert counts["Intacct connections"] == 1
