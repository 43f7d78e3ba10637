"""The operator's admin in a real Chromium: sign-in, every changelist and change page of the
app, every custom action with its confirmation, the change page's action buttons, deleting a
connection, the client-credentials add view, and what a view-only staff user may not do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.urls import reverse
from django.utils import timezone

from intacct_connect import jobs
from intacct_connect.models import (
    ApiCallLog,
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    JobRun,
    JobRunStatus,
    Schedule,
    StoredRecord,
    Watermark,
)
from tests.browser.conftest import Guard, Site, sign_in
from tests.job_factories import emulator_connection, make_schedule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tenant_user(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_user(  # type: ignore[no-any-return]
        "alice", password="alice-pw", first_name="Alice", last_name="Archer"
    )


@pytest.fixture
def operator(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_superuser(  # type: ignore[no-any-return]
        "root", password="root-pw"
    )


@pytest.fixture
def noop_job() -> Any:
    def noop(client: Any, ctx: jobs.JobContext) -> int:
        return 0

    jobs.register("browser_noop", description="does nothing (browser tests)")(noop)
    yield "browser_noop"
    jobs.unregister("browser_noop")


@pytest.fixture
def books(site: Site, tenant_user: AbstractBaseUser, noop_job: str) -> dict[str, Any]:
    """One row of every model the app's admin shows, around a real emulator connection."""
    conn = emulator_connection(site.emulator, tenant=f"user:{tenant_user.pk}")
    Connection.objects.filter(pk=conn.pk).update(company_name="Demo Company")
    ConnectionEvent.log(conn, EventKind.CONNECTED, "Authorised by Intacct user admin.")
    now = timezone.now()
    ApiCallLog.objects.create(
        connection=conn,
        method="GET",
        path="/objects/accounts-payable/vendor",
        status=200,
        duration_ms=12,
        retries=0,
        request_id="req-1",
    )
    schedule = make_schedule(noop_job, connection=conn, due=False)
    run = JobRun.objects.create(
        job=noop_job,
        connection=conn,
        schedule=schedule,
        status=JobRunStatus.SUCCEEDED,
        queued_at=now - timedelta(minutes=2),
        started_at=now - timedelta(minutes=2),
        finished_at=now - timedelta(minutes=1),
        records_processed=3,
    )
    for key in ("10", "2", "1"):
        StoredRecord.objects.create(
            connection=conn, object="accounts-payable/vendor", key=key, data={"id": key}, run=run
        )
    Watermark.objects.create(connection=conn, name="vendor", value=now.isoformat())
    return {"connection": conn, "schedule": schedule, "run": run}


def app_model_admins() -> list[tuple[type[Any], Any]]:
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label == "intacct_connect"
    ]


def admin_url(model: type[Any], view: str, *args: Any) -> str:
    return reverse(f"admin:intacct_connect_{model._meta.model_name}_{view}", args=args)


def test_every_changelist_and_change_page_renders(
    open_page: Any, site: Site, operator: AbstractBaseUser, books: dict[str, Any]
) -> None:
    guard = open_page()
    sign_in(guard, site, "root", "root-pw", path="/admin/login/")
    guard.shot("admin-index")
    visited = 0
    for model, _ in app_model_admins():
        guard.goto(site.path(admin_url(model, "changelist")))
        assert guard.page.locator("#result_list, .paginator").count(), model
        first = model._default_manager.order_by("pk").first()
        if first is None:
            continue
        guard.goto(site.path(admin_url(model, "change", first.pk)))
        assert "Traceback" not in guard.page.content()
        visited += 1
    assert visited >= 8

    conn = books["connection"]
    guard.goto(site.path(admin_url(Connection, "changelist")))
    guard.shot("admin-connections")
    assert "Alice Archer" in guard.page.inner_text("#result_list")
    guard.goto(site.path(admin_url(Connection, "change", conn.pk)))
    guard.shot("admin-connection-change")
    guard.goto(site.path(admin_url(JobRun, "changelist")))
    guard.shot("admin-job-runs")


def run_action(guard: Guard, pks: list[int], action: str, *, confirm: bool) -> None:
    """On the current changelist: tick ``pks``, choose ``action``, press Go, and (when the
    action asks) confirm on its confirmation page."""
    page = guard.page
    for pk in pks:
        page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", action)
    guard.submit(page.locator("button[name=index], input[name=index]").first, f"action {action}")
    yes = (
        page.locator("form [type=submit]")
        .filter(has_text="Yes")
        .or_(page.locator("input[type=submit][value^='Yes']"))
    )
    if confirm:
        assert yes.count() == 1, f"{action} showed no confirmation page"
        guard.shot(f"admin-confirm-{action.replace('_', '-')}")
        guard.submit(yes.first, f"confirm {action}")
    else:
        assert yes.count() == 0, f"{action} asked for a confirmation"


def messages_text(guard: Guard) -> str:
    return str(guard.page.locator("ul.messagelist").inner_text())


def test_connection_actions_with_confirmation(
    open_page: Any, site: Site, operator: AbstractBaseUser, books: dict[str, Any]
) -> None:
    conn = books["connection"]
    guard = open_page()
    sign_in(guard, site, "root", "root-pw", path="/admin/login/")
    changelist = site.path(admin_url(Connection, "changelist"))

    guard.goto(changelist)
    before = site.emulator.token_requests("refresh_token")
    run_action(guard, [conn.pk], "refresh_tokens_now", confirm=False)
    assert "1 connection refreshed" in messages_text(guard)
    assert site.emulator.token_requests("refresh_token") == before + 1

    run_action(guard, [conn.pk], "test_connection", confirm=False)
    assert "1 connection answered the test call" in messages_text(guard)

    run_action(guard, [conn.pk], "mark_needs_reauth", confirm=True)
    assert "1 connection marked as needing re-authorisation" in messages_text(guard)
    assert Connection.objects.get(pk=conn.pk).status == ConnectionStatus.NEEDS_REAUTH

    run_action(guard, [conn.pk], "disconnect_and_revoke", confirm=True)
    assert "disconnected" in messages_text(guard)
    assert Connection.objects.get(pk=conn.pk).status == ConnectionStatus.REVOKED


def test_change_page_buttons_and_delete(
    open_page: Any, site: Site, operator: AbstractBaseUser, books: dict[str, Any]
) -> None:
    conn = books["connection"]
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "root", "root-pw", path="/admin/login/")
    change = site.path(admin_url(Connection, "change", conn.pk))
    guard.goto(change)

    before = site.emulator.token_requests("refresh_token")
    guard.submit(page.get_by_role("button", name="Refresh tokens now"), "refresh button")
    assert page.url == change
    assert "refreshed" in messages_text(guard)
    assert site.emulator.token_requests("refresh_token") == before + 1

    guard.submit(page.get_by_role("button", name="Test connection"), "test button")
    assert "answered the test call" in messages_text(guard)

    # The destructive buttons confirm first; "No, take me back" changes nothing.
    guard.submit(page.get_by_role("button", name="Mark as needing re-authorisation"), "mark")
    assert Connection.objects.get(pk=conn.pk).status == ConnectionStatus.ACTIVE
    guard.submit(page.get_by_role("link", name="No, take me back"), "back from confirmation")
    assert page.url == change
    assert Connection.objects.get(pk=conn.pk).status == ConnectionStatus.ACTIVE
    guard.submit(page.get_by_role("button", name="Mark as needing re-authorisation"), "mark")
    guard.submit(
        page.locator("form [type=submit]")
        .filter(has_text="Yes")
        .or_(page.locator("input[type=submit][value^='Yes']"))
        .first,
        "confirm mark",
    )
    assert page.url == change
    assert Connection.objects.get(pk=conn.pk).status == ConnectionStatus.NEEDS_REAUTH

    # Delete: one clear step that revokes at Intacct first, then removes the history too.
    # Django's delete link (a role="button" link from Django 6.1).
    guard.submit(page.locator("a.deletelink"), "delete link")
    assert "permission" not in page.inner_text("#content").lower()
    guard.shot("admin-connection-delete")
    guard.submit(page.locator("input[type=submit][value^='Yes']"), "confirm delete")
    assert not Connection.objects.filter(pk=conn.pk).exists()
    assert not ConnectionEvent.objects.filter(connection_id=conn.pk).exists()
    assert [g["status"] for g in site.emulator.grants("DEMO-CO")] == ["revoked"]


def test_schedule_and_run_actions(
    open_page: Any, site: Site, operator: AbstractBaseUser, books: dict[str, Any]
) -> None:
    schedule, run = books["schedule"], books["run"]
    guard = open_page()
    sign_in(guard, site, "root", "root-pw", path="/admin/login/")
    guard.goto(site.path(admin_url(Schedule, "changelist")))
    guard.shot("admin-schedules")

    run_action(guard, [schedule.pk], "pause", confirm=False)
    assert not Schedule.objects.get(pk=schedule.pk).enabled
    run_action(guard, [schedule.pk], "resume", confirm=False)
    assert Schedule.objects.get(pk=schedule.pk).enabled

    runs_before = JobRun.objects.count()
    run_action(guard, [schedule.pk], "run_now", confirm=True)
    assert "Queued 1 run" in messages_text(guard)
    assert JobRun.objects.count() == runs_before + 1

    guard.goto(site.path(admin_url(JobRun, "changelist")))
    run_action(guard, [run.pk], "run_again", confirm=True)
    assert "Queued 1 run" in messages_text(guard)
    assert JobRun.objects.count() == runs_before + 2


def test_client_credentials_add_view(
    open_page: Any, site: Site, operator: AbstractBaseUser
) -> None:
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "root", "root-pw", path="/admin/login/")
    guard.goto(site.path(admin_url(Connection, "add")))
    guard.shot("admin-add-client-credentials")
    # A malformed user is refused on the form, with nothing created.
    page.fill("input[name=tenant_key]", "user:1")
    page.fill("input[name=username]", "no-company-part")
    guard.submit(page.locator("input[type=submit]"), "bad client-credentials user")
    assert page.locator(".errorlist, .errornote").count()
    assert not Connection.objects.exists()

    # A Web Services user the company authorised: connected, then its change page.
    page.fill("input[name=tenant_key]", "team:7")
    page.fill("input[name=username]", "admin@DEMO-CO|WEST")
    guard.submit(page.locator("input[type=submit]"), "client-credentials connect")
    conn = Connection.objects.get()
    assert (conn.company_id, conn.entity_id, conn.grant_type) == (
        "DEMO-CO",
        "WEST",
        "client_credentials",
    )
    assert page.url == site.path(admin_url(Connection, "change", conn.pk))
    assert "Connected" in messages_text(guard)
    assert site.emulator.token_requests("client_credentials") == 1


FORGE_ACTION = """({url, action, pk}) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = url;
  const fields = {action, _selected_action: pk, post: "yes", index: "0",
    csrfmiddlewaretoken: document.cookie.match(/csrftoken=([^;]+)/)?.[1] ?? ""};
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def test_view_only_staff_cannot_change_anything(
    open_page: Any, site: Site, django_user_model: Any, books: dict[str, Any]
) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="viewer-pw", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="intacct_connect", codename__startswith="view_"
        )
    )
    conn, schedule = books["connection"], books["schedule"]
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "viewer", "viewer-pw", path="/admin/login/")
    for model in (Connection, Schedule, JobRun):
        guard.goto(site.path(admin_url(model, "changelist")))
        # Django hides the action bar when no action is allowed.
        options = page.locator("select[name=action] option").all_inner_texts()
        assert [o for o in options if o.strip("-")] == [], (model, options)
    guard.goto(site.path(admin_url(Connection, "change", conn.pk)))
    assert page.get_by_role("button", name="Refresh tokens now").count() == 0
    assert page.locator("a.deletelink").count() == 0

    # Posting the action anyway (a form the browser submits itself) changes nothing.
    guard.allow(403, r"/admin/")
    for model, action, pk in (
        (Connection, "disconnect_and_revoke", conn.pk),
        (Schedule, "pause", schedule.pk),
    ):
        changelist = site.path(admin_url(model, "changelist"))
        guard.goto(changelist)
        with page.expect_navigation():
            page.evaluate(FORGE_ACTION, {"url": changelist, "action": action, "pk": str(pk)})
        guard.check(f"forged {action}")
    assert Connection.objects.get(pk=conn.pk).status == ConnectionStatus.ACTIVE
    assert Schedule.objects.get(pk=schedule.pk).enabled


def test_the_admin_index_shows_an_open_credentials_incident(
    open_page: Any, site: Site, operator: AbstractBaseUser
) -> None:
    """Intacct rejected the site's client credentials: the first page an operator sees
    after signing in says so, once, without the secret."""
    from intacct_connect import incidents
    from intacct_connect.conf import app_settings
    from intacct_connect.exceptions import InvalidClient

    incidents.record_credentials_rejected(InvalidClient(code="invalid_client"))
    guard = open_page()
    sign_in(guard, site, "root", "root-pw", path="/admin/login/")
    guard.goto(site.path(reverse("admin:index")))
    banner = guard.page.locator("ul.messagelist.intacct-incidents li.error")
    assert banner.count() == 1
    text = banner.inner_text()
    assert "Intacct rejects this site's client ID or secret (invalid_client" in text
    assert app_settings.CLIENT_SECRET not in guard.page.content()
    guard.shot("admin-index-incident")
