"""Admin for schedules and runs: validation, run now / pause / resume, runs per connection
and per schedule."""

from __future__ import annotations

import pytest
from django.urls import reverse

import intacct_connect.admin_jobs  # noqa: F401  (registers the ModelAdmins)
import tests.celery_app  # noqa: F401
from intacct_connect.admin_jobs import connection_runs_link, runs_url
from intacct_connect.models import JobRun, Schedule
from tests.job_factories import Recorder, count_job, make_connection, make_schedule

__all__ = ["count_job"]

pytestmark = pytest.mark.django_db

ADD_URL = "admin:intacct_connect_schedule_add"
CHANGELIST = "admin:intacct_connect_schedule_changelist"


def form_data(**overrides):
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


def test_add_schedule_computes_the_next_run(admin_client, count_job: Recorder):
    conn = make_connection()
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
def test_bad_schedule_input_gets_a_precise_error(admin_client, count_job, overrides, message):
    conn = make_connection()
    data = form_data(connection=str(conn.pk), **overrides)
    if overrides.get("scope") == "tenant":
        data["connection"] = ""
    response = admin_client.post(reverse(ADD_URL), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Schedule.objects.exists()


def test_actions_run_now_pause_resume(
    admin_client, count_job: Recorder, django_capture_on_commit_callbacks
):
    make_connection(tenant="t")
    make_connection(tenant="t")
    tenant = make_schedule(scope="tenant", tenant="t", due=False)
    other = make_schedule(connection=make_connection(tenant="u"), due=False)
    url = reverse(CHANGELIST)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, {"action": "run_now", "_selected_action": [tenant.pk]}, follow=True
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


def test_runs_visible_per_connection_and_per_schedule(admin_client, count_job: Recorder):
    a = make_connection(company="AAA-CO")
    b = make_connection(company="BBB-CO")
    sa = make_schedule(connection=a)
    sb = make_schedule(connection=b)
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
    admin_client, count_job: Recorder, django_capture_on_commit_callbacks
):
    conn = make_connection()
    run = JobRun.objects.create(job="count_job", connection=conn, status="failed")
    gone = JobRun.objects.create(job="vanished_job", connection=conn, status="failed")
    url = reverse("admin:intacct_connect_jobrun_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, {"action": "run_again", "_selected_action": [run.pk, gone.pk]}, follow=True
        )
    page = response.content.decode()
    assert "Queued 1 run." in page
    assert "1 run could not be queued" in page
    assert "vanished_job" in page
    assert JobRun.objects.filter(trigger="manual", status="succeeded").count() == 1
    token = conn.token
    for name in ("jobrun", "storedrecord", "watermark", "schedule"):
        page = admin_client.get(reverse(f"admin:intacct_connect_{name}_changelist"))
        assert page.status_code == 200
        assert str(token.access_token) not in page.content.decode()
    detail = admin_client.get(reverse("admin:intacct_connect_jobrun_change", args=[run.pk]))
    assert detail.status_code == 200
    assert admin_client.get(reverse("admin:intacct_connect_jobrun_add")).status_code == 403


def test_connection_change_page_links_to_its_runs(admin_client, count_job: Recorder):
    connection = make_connection(company="LINK-CO")
    JobRun.objects.create(job="count_job", connection=connection)
    page = admin_client.get(
        reverse("admin:intacct_connect_connection_change", args=[connection.pk])
    ).content.decode()
    assert "1 job run" in page
    assert runs_url(connection_id=connection.pk) in page
