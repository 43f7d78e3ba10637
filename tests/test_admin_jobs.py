"""Admin for schedules and runs: validation, run now / pause / resume, runs per connection
and per schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

import intacct_connect.admin.jobs  # noqa: F401  (registers the ModelAdmins)
import tests.celery_app  # noqa: F401
from intacct_connect.admin.jobs import connection_runs_link, runs_url
from intacct_connect.models import JobRun, Schedule
from tests import factories
from tests.helpers import Recorder

pytestmark = pytest.mark.django_db

ADD_URL = "admin:intacct_connect_schedule_add"
CHANGELIST = "admin:intacct_connect_schedule_changelist"


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Vendors nightly",
        "job": "count_job",
        "params": "{}",
        "scope": "connection",
        "connection": "",
        "tenant_key": "",
        "interval_seconds": "",
        "crontab": "0 2 * * *",
        "enabled": "on",
        "next_run_at_0": "",
        "next_run_at_1": "",
    }
    data.update(overrides)
    return data


def test_add_schedule_computes_the_next_run(admin_client: Client, count_job: Recorder) -> None:
    conn = factories.connection()
    response = admin_client.post(reverse(ADD_URL), form_data(connection=str(conn.pk)))
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = Schedule.objects.get()
    assert schedule.next_run_at is not None
    assert (schedule.next_run_at.hour, schedule.next_run_at.minute) == (2, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"crontab": "61 * * * *"}, "Invalid crontab"),
        ({"crontab": "", "interval_seconds": "30"}, "The shortest interval is 60 seconds."),
        ({"crontab": "", "interval_seconds": ""}, "Set either an interval"),
        ({"scope": "tenant"}, "Enter the tenant whose connections to run."),
        ({"params": "[1, 2]"}, "must be a JSON object"),
        (
            {"job": "query_to_storage", "params": '{"object": "x/y"}'},
            "&#x27;fields&#x27; is required",
        ),
        ({"job": "nope"}, "Select a valid choice"),
    ],
)
def test_bad_schedule_input_gets_a_precise_error(
    admin_client: Client, count_job: Recorder, overrides: dict[str, Any], message: str
) -> None:
    conn = factories.connection()
    data = form_data(connection=str(conn.pk), **overrides)
    if overrides.get("scope") == "tenant":
        data["connection"] = ""
    response = admin_client.post(reverse(ADD_URL), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Schedule.objects.exists()


def test_actions_run_now_pause_resume(
    admin_client: Client,
    count_job: Recorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    factories.connection(tenant="t", company="T1")
    factories.connection(tenant="t", company="T2")
    tenant = factories.schedule(scope="tenant", tenant="t", due=False)
    other = factories.schedule(connection=factories.connection(tenant="u"), due=False)
    url = reverse(CHANGELIST)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, {"action": "run_now", "_selected_action": [tenant.pk], "post": "yes"}, follow=True
        )
    assert "Queued 2 runs for 1 schedule." in response.content.decode()
    assert JobRun.objects.filter(schedule=tenant, status="succeeded").count() == 2
    response = admin_client.post(
        url, {"action": "pause", "_selected_action": [tenant.pk, other.pk]}, follow=True
    )
    assert "Paused 2 schedules." in response.content.decode()
    assert not Schedule.objects.filter(enabled=True).exists()
    response = admin_client.post(
        url, {"action": "resume", "_selected_action": [tenant.pk]}, follow=True
    )
    assert "Resumed 1 schedule." in response.content.decode()
    tenant.refresh_from_db()
    assert tenant.enabled
    assert tenant.next_run_at is not None


def test_runs_visible_per_connection_and_per_schedule(
    admin_client: Client, count_job: Recorder
) -> None:
    a = factories.connection(company="AAA-CO")
    b = factories.connection(company="BBB-CO")
    sa = factories.schedule(connection=a)
    sb = factories.schedule(connection=b)
    JobRun.objects.create(job="count_job", connection=a, schedule=sa, error_code="only-a")
    JobRun.objects.create(job="count_job", connection=b, schedule=sb, error_code="only-b")
    page = admin_client.get(runs_url(connection_id=a.pk)).content.decode()
    assert "only-a" in page
    assert "only-b" not in page
    page = admin_client.get(runs_url(schedule_id=sb.pk)).content.decode()
    assert "only-b" in page
    assert "only-a" not in page
    assert "1 job run" in connection_runs_link(a)
    schedule_page = admin_client.get(
        reverse("admin:intacct_connect_schedule_change", args=[sa.pk])
    ).content.decode()
    assert runs_url(schedule_id=sa.pk).replace("&", "&amp;") in schedule_page


def test_run_again_action_and_read_only_pages(
    admin_client: Client,
    count_job: Recorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    conn = factories.connection()
    run = JobRun.objects.create(job="count_job", connection=conn, status="failed")
    gone = JobRun.objects.create(job="vanished_job", connection=conn, status="failed")
    url = reverse("admin:intacct_connect_jobrun_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url,
            {"action": "run_again", "_selected_action": [run.pk, gone.pk], "post": "yes"},
            follow=True,
        )
    page = response.content.decode()
    assert "Queued 1 run." in page
    assert "1 run could not be queued" in page
    assert "vanished_job" in page
    assert JobRun.objects.filter(trigger="manual", status="succeeded").count() == 1
    token = conn.token
    for name in ("jobrun", "storedrecord", "watermark", "schedule"):
        listing = admin_client.get(reverse(f"admin:intacct_connect_{name}_changelist"))
        assert listing.status_code == 200
        assert str(token.access_token) not in listing.content.decode()
    detail = admin_client.get(reverse("admin:intacct_connect_jobrun_change", args=[run.pk]))
    assert detail.status_code == 200
    assert admin_client.get(reverse("admin:intacct_connect_jobrun_add")).status_code == 403


def test_connection_change_page_links_to_its_runs(
    admin_client: Client, count_job: Recorder
) -> None:
    connection = factories.connection(company="LINK-CO")
    JobRun.objects.create(job="count_job", connection=connection)
    page = admin_client.get(
        reverse("admin:intacct_connect_connection_change", args=[connection.pk])
    ).content.decode()
    assert "1 job run" in page
    assert runs_url(connection_id=connection.pk) in page


# --- permissions and confirmations -------------------------------------------------------


def staff_client(django_user_model: Any, *codenames: str) -> Client:
    from django.contrib.auth.models import Permission
    from django.test import Client

    user = django_user_model.objects.create_user(
        f"staff-{'-'.join(codenames)}", password="pw", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="intacct_connect", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def post_action(client: Client, url: str, action: str, *objs: Any) -> str:
    data = {"action": action, "_selected_action": [o.pk for o in objs], "post": "yes"}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("action", ["run_now", "pause", "resume"])
def test_view_only_user_cannot_run_schedule_actions(
    django_user_model: Any,
    count_job: Recorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
    action: str,
) -> None:
    viewer = staff_client(django_user_model, "view_schedule")
    schedule = factories.schedule(
        connection=factories.connection(), due=False, enabled=action != "resume"
    )
    before = (schedule.enabled, schedule.next_run_at)
    listing = viewer.get(reverse(CHANGELIST)).content.decode()
    assert f'value="{action}"' not in listing
    with django_capture_on_commit_callbacks(execute=True):
        html = post_action(viewer, reverse(CHANGELIST), action, schedule)
    assert "You do not have permission to run the action" in html
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.next_run_at) == before
    assert not JobRun.objects.exists()


@pytest.mark.parametrize(
    ("action", "message"),
    [("run_now", "Queued 1 run for 1 schedule."), ("pause", "Paused 1 schedule.")],
)
def test_change_permission_runs_schedule_actions(
    django_user_model: Any,
    count_job: Recorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
    action: str,
    message: str,
) -> None:
    changer = staff_client(django_user_model, "change_schedule")
    schedule = factories.schedule(connection=factories.connection(), due=False)
    with django_capture_on_commit_callbacks(execute=True):
        html = post_action(changer, reverse(CHANGELIST), action, schedule)
    assert message in html
    schedule.refresh_from_db()
    if action == "run_now":
        assert JobRun.objects.filter(schedule=schedule).count() == 1
    else:
        assert not schedule.enabled


def test_change_permission_resumes(django_user_model: Any, count_job: Recorder) -> None:
    changer = staff_client(django_user_model, "change_schedule")
    schedule = factories.schedule(connection=factories.connection(), due=False, enabled=False)
    assert "Resumed 1 schedule." in post_action(changer, reverse(CHANGELIST), "resume", schedule)
    schedule.refresh_from_db()
    assert schedule.enabled


def test_run_now_confirms_and_says_how_many_runs(admin_client: Client, count_job: Recorder) -> None:
    factories.connection(tenant="t", company="T1")
    factories.connection(tenant="t", company="T2")
    factories.connection(tenant="t", company="T3", status="needs_reauth")
    tenant = factories.schedule(scope="tenant", tenant="t", due=False)
    single = factories.schedule(connection=factories.connection(tenant="u"), due=False)
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "run_now", "_selected_action": [tenant.pk, single.pk], "index": "0"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Up to 3 runs are queued now" in html
    assert "1 connection needs re-authorisation" in html
    assert "following 2 job schedules" in html
    assert str(tenant) in html
    assert 'name="post" value="yes"' in html
    assert "No, take me back" in html
    assert not JobRun.objects.exists()


def test_view_only_user_cannot_run_jobs_again(
    django_user_model: Any,
    count_job: Recorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    viewer = staff_client(django_user_model, "view_jobrun")
    run = JobRun.objects.create(job="count_job", connection=factories.connection(), status="failed")
    url = reverse("admin:intacct_connect_jobrun_changelist")
    assert 'value="run_again"' not in viewer.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        html = post_action(viewer, url, "run_again", run)
    assert "You do not have permission to run the action" in html
    assert JobRun.objects.count() == 1


def test_rerun_permission_runs_jobs_again(
    django_user_model: Any,
    count_job: Recorder,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    rerunner = staff_client(django_user_model, "view_jobrun", "rerun_jobrun")
    run = JobRun.objects.create(job="count_job", connection=factories.connection(), status="failed")
    url = reverse("admin:intacct_connect_jobrun_changelist")
    confirmation = rerunner.post(
        url, {"action": "run_again", "_selected_action": [run.pk], "index": "0"}
    )
    assert confirmation.status_code == 200
    assert f"#{run.pk} count_job" in confirmation.content.decode()
    assert JobRun.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        html = post_action(rerunner, url, "run_again", run)
    assert "Queued 1 run." in html
    assert JobRun.objects.filter(trigger="manual", status="succeeded").count() == 1


def test_schedule_list_labels_tenants(
    admin_client: Client, django_user_model: Any, count_job: Recorder
) -> None:
    jane = django_user_model.objects.create_user("jane", first_name="Jane", last_name="Doe")
    factories.schedule(scope="tenant", tenant=f"user:{jane.pk}", due=False)
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "tenant Jane Doe" in html
    assert f"tenant user:{jane.pk}" not in html
