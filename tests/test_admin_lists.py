"""Admin lists: the connection columns, tenant labels (one adapter call per page), event rows
named by company, plurals, no raw primary keys, natural key order."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from intacct_connect.adapter import DefaultIntacctAdapter
from intacct_connect.models import ConnectionEvent, ConnectionStatus, EventKind, JobRun
from tests import factories

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:intacct_connect_connection_changelist"


def column_classes(html: str) -> list[str]:
    return re.findall(r'<th scope="col" class="[^"]*column-([\w]+)', html)


def test_connection_list_columns(admin_client: Client) -> None:
    factories.connection(company="ACME")
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert column_classes(html) == [
        "status_badge",
        "company",
        "tenant",
        "health",
        "token_time_left",
        "last_error",
    ]
    # environment and grant type remain filters
    assert "?environment__exact=sandbox" in html
    assert "?grant_type__exact=client_credentials" in html


def test_company_column_and_truncated_last_error(admin_client: Client) -> None:
    conn = factories.connection(company="ACME", entity="WEST")
    conn.company_name = "Acme Corporation"
    long_message = "The refresh token was rejected by Intacct " + "x" * 100
    conn.record_error("invalid_grant", long_message)
    conn.save()
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "ACME|WEST" in html
    assert "Acme Corporation" in html
    full = f"invalid_grant: {long_message}"
    assert f'title="{full}"' in html
    shown = re.search(r'<td class="field-last_error"><span title="[^"]*">([^<]*)</span>', html)
    assert shown is not None
    assert len(shown.group(1)) <= 60
    assert shown.group(1).startswith("invalid_grant: The refresh")


def test_tenant_labels_in_list_and_change_page(
    admin_client: Client, django_user_model: Any
) -> None:
    jane = django_user_model.objects.create_user("jane", first_name="Jane", last_name="Doe")
    bob = django_user_model.objects.create_user("bob")
    a = factories.connection(company="AAA", tenant=f"user:{jane.pk}")
    factories.connection(company="BBB", tenant=f"user:{bob.pk}")
    factories.connection(company="CCC", tenant="team:7")
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert f'<span title="user:{jane.pk}">Jane Doe</span>' in html
    assert f'<span title="user:{bob.pk}">bob</span>' in html
    assert '<span title="team:7">team:7</span>' in html
    change = admin_client.get(
        reverse("admin:intacct_connect_connection_change", args=[a.pk])
    ).content.decode()
    assert f"Jane Doe (user:{jane.pk})" in change


def test_connection_list_query_count_constant_with_many_user_tenants(
    admin_client: Client, django_user_model: Any
) -> None:
    def count() -> int:
        with CaptureQueriesContext(db_connection) as ctx:
            assert admin_client.get(reverse(CHANGELIST)).status_code == 200
        return len(ctx.captured_queries)

    first = django_user_model.objects.create_user("u0")
    factories.connection(company="C0", tenant=f"user:{first.pk}")
    few = count()
    for i in range(1, 15):
        user = django_user_model.objects.create_user(f"u{i}")
        factories.connection(company=f"C{i}", user=f"u{i}", tenant=f"user:{user.pk}")
    assert count() == few


def test_adapter_labels_tenants_in_one_query(django_user_model: Any) -> None:
    jane = django_user_model.objects.create_user("jane", first_name="Jane", last_name="Doe")
    bob = django_user_model.objects.create_user("bob")
    keys = [f"user:{jane.pk}", f"user:{bob.pk}", "user:999999", "user:abc", "team:1", "user:"]
    with CaptureQueriesContext(db_connection) as ctx:
        labels = DefaultIntacctAdapter().get_tenant_labels(keys)
    assert len(ctx.captured_queries) == 1
    assert labels == {
        f"user:{jane.pk}": "Jane Doe",
        f"user:{bob.pk}": "bob",
        "user:999999": "user:999999",
        "user:abc": "user:abc",
        "team:1": "team:1",
        "user:": "user:",
    }
    with CaptureQueriesContext(db_connection) as ctx:
        assert DefaultIntacctAdapter().get_tenant_labels(["team:1"]) == {"team:1": "team:1"}
    assert len(ctx.captured_queries) == 0


def test_tenant_labels_come_from_the_sites_adapter(admin_client: Client, settings: Any) -> None:
    settings.INTACCT_CONNECT = {
        **getattr(settings, "INTACCT_CONNECT", {}),
        "ADAPTER": "tests.test_admin_lists.TeamAdapter",
    }
    factories.connection(company="AAA", tenant="team:7")
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert '<span title="team:7">Team number 7</span>' in html


class TeamAdapter(DefaultIntacctAdapter):
    def get_tenant_labels(self, tenant_keys: Any) -> dict[str, str]:
        return {key: f"Team number {key.split(':')[1]}" for key in tenant_keys}


def test_event_rows_name_the_company_not_the_current_status(admin_client: Client) -> None:
    conn = factories.connection(company="ACME", entity="EAST", status=ConnectionStatus.REVOKED)
    ConnectionEvent.log(conn, EventKind.REFRESHED, "refreshed fine")
    html = admin_client.get(reverse("admin:intacct_connect_connectionevent_changelist"))
    text = html.content.decode()
    assert str(conn) not in text  # "ACME|EAST (alice, Revoked)"
    assert "ACME|EAST" in text
    assert "Token refreshed" in text
    row = re.search(r'<td class="field-company">(.*?)</td>', text)
    assert row is not None
    assert "Revoked" not in row.group(1)


def test_change_page_shows_the_granted_scope(admin_client: Client) -> None:
    conn = factories.connection()
    html = admin_client.get(
        reverse("admin:intacct_connect_connection_change", args=[conn.pk])
    ).content.decode()
    assert "granted scope" in html.lower()
    block = re.search(r"field-granted_scope.*?</div>\s*</div>", html, re.S)
    assert block is not None
    assert "offline_access" in block.group(0)


def test_job_run_list_has_no_raw_pk_column_and_links_the_job(admin_client: Client) -> None:
    conn = factories.connection(company="RUN-CO")
    run = JobRun.objects.create(job="count_job", connection=conn)
    html = admin_client.get(reverse("admin:intacct_connect_jobrun_changelist")).content.decode()
    assert "column-pk" not in html
    assert "column-job" in html
    url = reverse("admin:intacct_connect_jobrun_change", args=[run.pk])
    assert re.search(rf'<th class="field-job"><a href="{re.escape(url)}[^"]*">count_job</a>', html)
    assert "RUN-CO" in html


def test_stored_record_keys_sort_naturally(admin_client: Client) -> None:
    from intacct_connect.models import StoredRecord

    conn = factories.connection()
    for key in ("10", "2", "1", "b", "a"):
        StoredRecord.objects.create(connection=conn, object="vendor", key=key)
    html = admin_client.get(
        reverse("admin:intacct_connect_storedrecord_changelist")
    ).content.decode()
    keys = re.findall(r'<td class="field-key">([^<]*)</td>', html)
    assert keys == ["1", "2", "a", "b", "10"]


def test_every_admin_page_renders(admin_client: Client) -> None:
    """Each list, change, history and delete page of the app answers 200 (or 403 where
    the screen is read-only), for the browser suite to drive."""
    from django.contrib import admin

    from intacct_connect.models import (
        ApiCallLog,
        Schedule,
        StoredRecord,
        Token,
        Watermark,
    )

    conn = factories.connection(company="PAGE-CO")
    ConnectionEvent.log(conn, EventKind.CONNECTED, "hello")
    run = JobRun.objects.create(job="count_job", connection=conn, error_code="e")
    ApiCallLog.objects.create(connection=conn, method="GET", path="/x", status=500)
    Schedule.objects.create(name="s", job="count_job", connection=conn, interval_seconds=300)
    StoredRecord.objects.create(connection=conn, object="o", key="1", run=run)
    Watermark.objects.create(connection=conn, name="w", value="v")
    models: list[type[Any]] = [
        ConnectionEvent,
        JobRun,
        ApiCallLog,
        Schedule,
        StoredRecord,
        Watermark,
        Token,
    ]
    for model in [type(conn), *models]:
        name = model._meta.model_name
        obj = model.objects.get()
        assert admin.site.is_registered(model), name
        for view, args, allowed in (
            ("changelist", [], {200}),
            ("change", [obj.pk], {200}),
            ("history", [obj.pk], {200}),
            ("delete", [obj.pk], {200, 403}),
        ):
            response = admin_client.get(reverse(f"admin:intacct_connect_{name}_{view}", args=args))
            assert response.status_code in allowed, (name, view, response.status_code)
