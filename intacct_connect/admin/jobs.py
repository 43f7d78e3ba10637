"""Admin screens for background jobs: schedules (run now / pause / resume), runs (per
connection and per schedule), stored records and watermarks.

Imported by ``intacct_connect/admin/__init__.py``. Links to a connection's runs:
``/admin/intacct_connect/jobrun/?connection__id__exact=<pk>`` (see :func:`runs_url`).

Schedule actions need change permission on schedules; "run selected jobs again" needs the
dedicated ``intacct_connect.rerun_jobrun`` permission (runs are read-only). Run now and run
again confirm first. Runs, stored records and watermarks are never deleted here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Length
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from intacct_connect import jobs, scheduling
from intacct_connect.admin.base import (
    ActionAdmin,
    ReadOnlyModelAdmin,
    TenantLabelChangeList,
    company_label,
    confirm_action,
)
from intacct_connect.models import (
    ConnectionStatus,
    JobRun,
    JobRunStatus,
    JobRunTrigger,
    Schedule,
    ScheduleScope,
    StoredRecord,
    Watermark,
)

RUN_STATUS_COLOURS = {
    JobRunStatus.QUEUED: ("#1f4f8a", "#dbe8f8"),
    JobRunStatus.RUNNING: ("#1f4f8a", "#dbe8f8"),
    JobRunStatus.SUCCEEDED: ("#1e7b34", "#d4f4dd"),
    JobRunStatus.FAILED: ("#8a1c1c", "#f9d6d6"),
    JobRunStatus.PARKED: ("#8a1c1c", "#f9d6d6"),
    JobRunStatus.SKIPPED: ("#555", "#e5e5e5"),
}


def runs_url(*, connection_id: int | None = None, schedule_id: int | None = None) -> str:
    """The job-run changelist filtered to one connection or one schedule."""
    url = reverse("admin:intacct_connect_jobrun_changelist")
    if connection_id is not None:
        return f"{url}?connection__id__exact={connection_id}"
    if schedule_id is not None:
        return f"{url}?schedule__id__exact={schedule_id}"
    return url


def connection_runs_link(connection: Any) -> SafeString:
    """A link to a connection's runs, for the connections admin (``readonly_fields``)."""
    if connection is None or connection.pk is None:
        return format_html("{}", "—")
    count = JobRun.objects.filter(connection_id=connection.pk).count()
    return format_html(
        '<a href="{}">{}</a>',
        runs_url(connection_id=connection.pk),
        ngettext("%(n)d job run", "%(n)d job runs", count) % {"n": count},
    )


class ScheduleForm(forms.ModelForm):  # type: ignore[type-arg]
    job = forms.ChoiceField(label=_("job"), choices=jobs.choices)
    params = forms.JSONField(
        label=_("parameters"),
        required=False,
        initial=dict,
        help_text=_(
            "A JSON object; see the job's documentation (query_to_storage: object, fields…)."
        ),
    )

    class Meta:
        model = Schedule
        fields = (
            "name",
            "job",
            "params",
            "scope",
            "connection",
            "tenant_key",
            "interval_seconds",
            "crontab",
            "enabled",
            "next_run_at",
        )

    def clean(self) -> dict[str, Any]:
        """The job's parameters, by the job registry's rule; the schedule's own rules are
        :meth:`Schedule.clean`, which the model validation of the form runs."""
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            data["params"] = jobs.get(data["job"]).clean_params(data.get("params"))
        except ValidationError as err:
            self.add_error("params", err)
        return data


def planned_runs(schedules: list[Schedule]) -> tuple[int, int]:
    """(runs that "run now" would queue, runs it would record as skipped), at most: one per
    active target connection, skipped for connections needing re-authorisation."""
    targets = scheduling._targets(schedules)
    queued = skipped = 0
    for conns in targets.values():
        for conn in conns:
            if conn.status == ConnectionStatus.ACTIVE:
                queued += 1
            else:
                skipped += 1
    return queued, skipped


def _company_column(obj: Any) -> str:
    return company_label(obj.connection) if obj.connection_id else "—"


@admin.register(Schedule)
class ScheduleAdmin(ActionAdmin):
    form = ScheduleForm
    list_display = (
        "name",
        "job",
        "scope",
        "target",
        "cadence",
        "enabled",
        "next_run_at",
        "last_run_at",
        "runs_link",
    )
    list_filter = ("enabled", "scope", "job")
    search_fields = ("name", "job", "tenant_key", "connection__company_id")
    list_select_related = ("connection",)
    raw_id_fields = ("connection",)
    readonly_fields = ("last_run_at", "runs_link", "created_at", "updated_at")
    actions = ("run_now", "pause", "resume")
    fieldsets = (
        (None, {"fields": ("name", "job", "params")}),
        (_("Which connections"), {"fields": ("scope", "connection", "tenant_key")}),
        (
            _("When"),
            {
                "fields": ("interval_seconds", "crontab", "enabled", "next_run_at", "last_run_at"),
                "description": _(
                    "An interval in seconds (60 or more) or a crontab evaluated in the site's "
                    "time zone. Leave the next run empty to compute it."
                ),
            },
        ),
        (_("History"), {"fields": ("runs_link", "created_at", "updated_at")}),
    )

    @admin.display(description=_("runs for"))
    def target(self, obj: Schedule) -> str:
        if obj.scope == ScheduleScope.CONNECTION:
            return str(obj.connection) if obj.connection_id else "—"
        if obj.scope == ScheduleScope.TENANT:
            label = getattr(obj, "tenant_label", None) or obj.tenant_key
            return str(_("tenant %(tenant)s")) % {"tenant": label}
        return str(_("every active connection"))

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[TenantLabelChangeList]:
        return TenantLabelChangeList

    @admin.display(description=_("every"))
    def cadence(self, obj: Schedule) -> str:
        if obj.crontab:
            return gettext("cron %(crontab)s") % {"crontab": obj.crontab}
        return gettext("%(seconds)s s") % {"seconds": obj.interval_seconds}

    @admin.display(description=_("runs"))
    def runs_link(self, obj: Schedule) -> SafeString:
        if obj.pk is None:
            return format_html("{}", "—")
        return format_html('<a href="{}">{}</a>', runs_url(schedule_id=obj.pk), _("View runs"))

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        cadence_changed = any(f in form.changed_data for f in ("interval_seconds", "crontab"))
        enabling = "enabled" in form.changed_data and obj.enabled
        if (
            obj.enabled
            and "next_run_at" not in form.changed_data
            and (obj.next_run_at is None or cadence_changed or enabling)
        ):
            obj.next_run_at = obj.next_run_after(timezone.now())
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Run selected schedules now"), permissions=["change"])
    def run_now(
        self, request: HttpRequest, queryset: QuerySet[Schedule]
    ) -> TemplateResponse | None:
        schedules = list(queryset.select_related("connection"))
        if request.POST.get("post") != "yes":
            expected, skipped = planned_runs(schedules)
            consequences = [
                ngettext(
                    "Up to %(count)d run is queued now (one per active target connection).",
                    "Up to %(count)d runs are queued now (one per active target connection).",
                    expected,
                )
                % {"count": expected},
                str(_("A connection whose previous run of the job is still active is skipped.")),
                str(_("The schedules' next run times do not change.")),
            ]
            if skipped:
                consequences.insert(
                    1,
                    ngettext(
                        "%(count)d connection needs re-authorisation: its run is recorded as "
                        "skipped.",
                        "%(count)d connections need re-authorisation: their runs are recorded "
                        "as skipped.",
                        skipped,
                    )
                    % {"count": skipped},
                )
            return confirm_action(
                self,
                request,
                queryset,
                action="run_now",
                title=str(_("Run selected schedules now")),
                consequences=consequences,
            )
        queued = scheduling.run_schedules_now(schedules)
        runs = ngettext("%(count)d run", "%(count)d runs", queued) % {"count": queued}
        targets = ngettext("%(count)d schedule", "%(count)d schedules", len(schedules)) % {
            "count": len(schedules)
        }
        self.message_user(
            request,
            _("Queued %(runs)s for %(schedules)s.") % {"runs": runs, "schedules": targets},
            messages.SUCCESS if queued else messages.WARNING,
        )
        return None

    @admin.action(description=_("Pause selected schedules"), permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        count = scheduling.pause_schedules(queryset)
        self.message_user(
            request,
            ngettext("Paused %(count)d schedule.", "Paused %(count)d schedules.", count)
            % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Resume selected schedules"), permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        count = scheduling.resume_schedules(queryset)
        self.message_user(
            request,
            ngettext("Resumed %(count)d schedule.", "Resumed %(count)d schedules.", count)
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyModelAdmin):
    list_display = (
        "job",
        "company",
        "schedule",
        "status_badge",
        "trigger",
        "queued_at",
        "started_at",
        "duration",
        "records_processed",
        "attempt",
        "delivery_count",
        "error_code",
    )
    list_display_links = ("job",)
    list_filter = ("status", "trigger", "job")
    search_fields = ("job", "error_code", "connection__company_id", "task_id")
    list_select_related = ("connection", "schedule")
    date_hierarchy = "queued_at"
    list_per_page = 100
    actions = ("run_again",)
    fields = (
        "job",
        "connection",
        "schedule",
        "params",
        "trigger",
        "status_badge",
        "queued_at",
        "started_at",
        "finished_at",
        "duration",
        "lease_until",
        "records_processed",
        "attempt",
        "delivery_count",
        "error_code",
        "error_message",
        "task_id",
    )
    readonly_fields = fields

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # runs per connection and per schedule, linked from those pages
        if lookup in ("connection__id__exact", "schedule__id__exact"):
            return True
        return bool(super().lookup_allowed(lookup, value, request))

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: JobRun) -> SafeString:
        fg, bg = RUN_STATUS_COLOURS.get(JobRunStatus(obj.status), ("#333", "#eee"))
        return format_html(
            '<span style="color:{};background:{};padding:1px 6px;border-radius:8px">{}</span>',
            fg,
            bg,
            obj.get_status_display(),
        )

    @admin.display(description=_("duration"))
    def duration(self, obj: JobRun) -> str:
        delta = obj.duration
        if delta is None:
            return "—"
        return gettext("%(seconds).1f s") % {"seconds": delta.total_seconds()}

    @admin.display(description=_("connection"), ordering="connection__company_id")
    def company(self, obj: JobRun) -> str:
        return _company_column(obj)

    def has_rerun_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """The dedicated ``intacct_connect.rerun_jobrun`` permission (runs are read-only)."""
        opts = self.opts
        return bool(request.user.has_perm(f"{opts.app_label}.rerun_{opts.model_name}"))

    @admin.action(description=_("Run selected jobs again"), permissions=["rerun"])
    def run_again(
        self, request: HttpRequest, queryset: QuerySet[JobRun]
    ) -> TemplateResponse | None:
        confirmation = confirm_action(
            self,
            request,
            queryset.select_related("connection"),
            action="run_again",
            title=str(_("Run selected jobs again")),
            consequences=[
                str(
                    _(
                        "A new run of the same job, with the same parameters, is queued for each "
                        "selected run's connection (triggered manually)."
                    )
                ),
                str(_("The selected runs themselves are not changed.")),
            ],
            describe=lambda run: (
                f"#{run.pk} {run.job} · {_company_column(run)} ({run.get_status_display()})"
            ),
        )
        if confirmation is not None:
            return confirmation
        queued = 0
        failed: list[str] = []
        for run in queryset.select_related("schedule"):
            try:
                scheduling.enqueue_run(
                    run.job,
                    run.connection_id,
                    run.params,
                    trigger=JobRunTrigger.MANUAL,
                    schedule=run.schedule,
                )
            except (jobs.UnknownJob, ValidationError) as err:
                failed.append(f"#{run.pk}: {err}")
            else:
                queued += 1
        if queued:
            self.message_user(
                request,
                ngettext("Queued %(count)d run.", "Queued %(count)d runs.", queued)
                % {"count": queued},
                messages.SUCCESS,
            )
        if failed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d run could not be queued: %(errors)s",
                    "%(count)d runs could not be queued: %(errors)s",
                    len(failed),
                )
                % {"count": len(failed), "errors": "; ".join(failed)},
                messages.ERROR,
            )
        return None


@admin.register(StoredRecord)
class StoredRecordAdmin(ReadOnlyModelAdmin):
    list_display = ("object", "key", "company", "updated_at", "run")
    # Natural order of keys: numeric string keys "2" before "10" (shorter first, then
    # lexicographic). Length("key") cannot use the (connection, object, key) index, so the
    # database sorts the filtered rows; filter by connection/object on large tables, or add
    # a functional index on (connection, object, Length("key"), key) if that is slow.
    ordering = ("connection", "object", Length("key").asc(), "key", "pk")
    list_filter = ("object",)
    search_fields = ("key", "object", "connection__company_id")
    list_select_related = ("connection", "run")
    raw_id_fields = ("connection", "run")
    fields = ("connection", "object", "key", "data", "run", "updated_at")
    readonly_fields = fields

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        if lookup == "connection__id__exact":
            return True
        return bool(super().lookup_allowed(lookup, value, request))

    @admin.display(description=_("connection"), ordering="connection__company_id")
    def company(self, obj: StoredRecord) -> str:
        return _company_column(obj)


@admin.register(Watermark)
class WatermarkAdmin(ReadOnlyModelAdmin):
    list_display = ("name", "company", "value", "updated_at")
    search_fields = ("name", "connection__company_id")
    list_select_related = ("connection",)
    fields = ("connection", "name", "value", "updated_at")
    readonly_fields = fields

    @admin.display(description=_("connection"), ordering="connection__company_id")
    def company(self, obj: Watermark) -> str:
        return _company_column(obj)
