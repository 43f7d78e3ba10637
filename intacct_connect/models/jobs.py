"""Schedules, job runs, stored records, watermarks and task deliveries; a schedule's rules
are on :class:`Schedule`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from intacct_connect.crontab import next_crontab_run, parse_crontab
from intacct_connect.models.choices import JobRunStatus, JobRunTrigger, ScheduleScope
from intacct_connect.models.connections import Connection
from intacct_connect.models.querysets import JobRunQuerySet, ScheduleQuerySet

#: Shortest interval of a :class:`Schedule`: the dispatcher runs once a minute.
MIN_INTERVAL_SECONDS = 60


class Schedule(models.Model):
    """When to run a registered job (see :mod:`intacct_connect.jobs`) and for which connections.

    Either ``interval_seconds`` or ``crontab`` (five fields, evaluated in ``TIME_ZONE`` by
    ``celery.schedules.crontab``) is set. One dispatcher task claims due rows with
    ``SKIP LOCKED`` and fans them out to one job run per connection
    (:func:`intacct_connect.scheduling.dispatch_due_schedules`). The schedule's rules live
    here: :meth:`clean` and :meth:`next_run_after`.
    """

    name = models.CharField(_("name"), max_length=200)
    job = models.CharField(_("job"), max_length=100, help_text=_("A registered job name."))
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    scope = models.CharField(
        _("scope"), max_length=20, choices=ScheduleScope.choices, default=ScheduleScope.CONNECTION
    )
    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="schedules",
        help_text=_("For the 'one connection' scope."),
    )
    tenant_key = models.CharField(
        _("tenant"), max_length=255, blank=True, help_text=_("For the 'tenant' scope.")
    )
    interval_seconds = models.PositiveIntegerField(
        _("every (seconds)"), null=True, blank=True, help_text=_("Leave empty to use a crontab.")
    )
    crontab = models.CharField(
        _("crontab"),
        max_length=200,
        blank=True,
        help_text=_("minute hour day-of-month month day-of-week, e.g. '*/15 * * * *'."),
    )
    enabled = models.BooleanField(_("enabled"), default=True, help_text=_("Off = paused."))
    next_run_at = models.DateTimeField(_("next run at"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        verbose_name = _("job schedule")
        verbose_name_plural = _("job schedules")
        ordering = ("name", "pk")
        indexes = [
            models.Index(fields=("enabled", "next_run_at"), name="intacct_schedule_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.job})"

    def __repr__(self) -> str:
        return f"<Schedule pk={self.pk} job={self.job!r} scope={self.scope!r}>"

    def clean(self) -> None:
        """Raise ``ValidationError`` (with field keys) unless the schedule has an interval
        of at least ``MIN_INTERVAL_SECONDS`` or a valid crontab, not both, and the target its
        scope needs. The job and its parameters are the job registry's rule
        (``jobs.get(name).clean_params(params)``), checked where a schedule is entered."""
        errors: dict[str, list[str]] = {}
        for field, message in self._problems():
            errors.setdefault(field, []).append(message)
        if errors:
            raise ValidationError(errors)

    def _problems(self) -> Iterator[tuple[str, str]]:
        has_interval = self.interval_seconds is not None
        has_cron = bool(self.crontab.strip())
        if has_interval == has_cron:
            yield "interval_seconds", "Set either an interval in seconds or a crontab, not both."
        if has_interval and (self.interval_seconds or 0) < MIN_INTERVAL_SECONDS:
            yield (
                "interval_seconds",
                f"The shortest interval is {MIN_INTERVAL_SECONDS} seconds.",
            )
        if has_cron:
            try:
                parse_crontab(self.crontab)
            except ValidationError as err:
                for message in err.messages:
                    yield "crontab", message
        has_connection, has_tenant = self.connection_id is not None, bool(self.tenant_key)
        if self.scope == ScheduleScope.CONNECTION:
            if not has_connection:
                yield "connection", "Choose the connection to run for."
            if has_tenant:
                yield "tenant_key", "Leave the tenant empty for one connection."
        elif self.scope == ScheduleScope.TENANT:
            if not has_tenant:
                yield "tenant_key", "Enter the tenant whose connections to run."
            if has_connection:
                yield "connection", "Leave the connection empty for a tenant."
        elif self.scope == ScheduleScope.SITE:
            if has_connection or has_tenant:
                yield "scope", "A site-wide schedule has neither a connection nor a tenant."
        else:
            yield "scope", f"Unknown scope {self.scope!r}."

    def next_run_after(self, when: datetime, *, previous: datetime | None = None) -> datetime:
        """The next run after ``when``: the crontab's next match, or ``when`` plus the
        interval. Given the ``previous`` run time, an interval schedule keeps its phase
        (``previous`` plus the interval) while that is still after ``when``, so a late
        schedule does not catch up missed runs. A bad crontab (saved without
        :meth:`clean`) raises ``ValidationError``."""
        if self.crontab.strip():
            return next_crontab_run(self.crontab, when)
        interval = timedelta(seconds=max(self.interval_seconds or 0, MIN_INTERVAL_SECONDS))
        if previous is not None and previous + interval > when:
            return previous + interval
        return when + interval


class JobRun(models.Model):
    """One run of one job for one connection.

    ``delivery_count`` counts the deliveries of the current attempt (counted in the
    database at task start, so a run that keeps killing its worker is parked);
    ``lease_until`` bounds a running run, so a run whose worker died can be taken over.
    At most one run per (job, connection) is running at a time (a partial unique index).
    """

    job = models.CharField(_("job"), max_length=100)
    schedule = models.ForeignKey(
        Schedule,
        verbose_name=_("schedule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="job_runs"
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    trigger = models.CharField(
        _("trigger"), max_length=20, choices=JobRunTrigger.choices, default=JobRunTrigger.SCHEDULE
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=JobRunStatus.choices,
        default=JobRunStatus.QUEUED,
        db_index=True,
    )
    queued_at = models.DateTimeField(_("queued at"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    records_processed = models.PositiveIntegerField(_("records processed"), default=0)
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    error_message = models.TextField(_("error"), blank=True)
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=0)
    delivery_count = models.PositiveSmallIntegerField(_("deliveries of this attempt"), default=0)
    task_id = models.CharField(_("Celery task ID"), max_length=64, blank=True)

    objects = JobRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ("-queued_at", "-pk")
        permissions = [("rerun_jobrun", "Can run jobs again")]
        constraints = [
            models.UniqueConstraint(
                fields=("job", "connection"),
                condition=Q(status="running"),
                name="intacct_connect_one_running_job_per_connection",
            ),
        ]
        indexes = [
            models.Index(fields=("connection", "job", "status"), name="intacct_run_conn_job"),
        ]

    def __str__(self) -> str:
        return f"{self.job} on connection {self.connection_id} ({self.get_status_display()})"

    def __repr__(self) -> str:
        return (
            f"<JobRun pk={self.pk} job={self.job!r} connection={self.connection_id} "
            f"status={self.status!r} attempt={self.attempt} deliveries={self.delivery_count}>"
        )

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class StoredRecord(models.Model):
    """A row stored by the ``query_to_storage`` job, upserted by (connection, object, key)."""

    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        on_delete=models.CASCADE,
        related_name="stored_records",
    )
    object = models.CharField(_("object"), max_length=200)
    key = models.CharField(_("key"), max_length=200)
    data = models.JSONField(_("data"), default=dict)
    run = models.ForeignKey(
        JobRun,
        verbose_name=_("stored by run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("stored record")
        verbose_name_plural = _("stored records")
        ordering = ("connection", "object", "key")
        constraints = [
            models.UniqueConstraint(
                fields=("connection", "object", "key"), name="intacct_connect_one_record_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.object} {self.key} (connection {self.connection_id})"


class Watermark(models.Model):
    """A job's cursor for one connection (e.g. the last ``audit.modifiedDateTime`` stored).

    ``name`` is ``schedule:<pk>`` for scheduled runs, ``job:<job name>`` otherwise (the
    ``query_to_storage`` job appends ``:<object>``). Written in the same transaction as the
    data it covers, so it is never ahead of committed data.
    """

    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=200)
    value = models.CharField(_("value"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("watermark")
        verbose_name_plural = _("watermarks")
        constraints = [
            models.UniqueConstraint(
                fields=("connection", "name"), name="intacct_connect_one_watermark"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} = {self.value or '(none)'}"


class TaskDelivery(models.Model):
    """How many times the broker delivered one Celery task message (by task ID).

    Brokers do not count redeliveries; tasks with ``reject_on_worker_lost`` count them
    here at start and give up after ``MAX_DELIVERIES``. Old rows are pruned by the
    refresh dispatcher.
    """

    task_id = models.CharField(max_length=64, primary_key=True)
    task_name = models.CharField(max_length=200)
    deliveries = models.PositiveIntegerField(default=0)
    first_delivered_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("task delivery")
        verbose_name_plural = _("task deliveries")

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}: {self.deliveries}"
