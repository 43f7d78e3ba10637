"""Crontab expressions of job schedules: five fields (minute hour day-of-month month
day-of-week), parsed and evaluated by ``celery.schedules.crontab`` in the site's
``TIME_ZONE``.

:func:`parse_crontab` raises ``ValidationError`` (code ``invalid_crontab``) for an unusable
expression; :func:`next_crontab_run` gives the first matching time strictly after a moment.
Used by :class:`~intacct_connect.models.Schedule`; imports nothing of the app.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from celery.schedules import crontab as celery_crontab
from django.core.exceptions import ValidationError
from django.utils import timezone


def parse_crontab(expression: str) -> celery_crontab:
    """A ``celery.schedules.crontab`` from 'minute hour day-of-month month day-of-week'."""
    parts = expression.split()
    if len(parts) != 5:
        raise ValidationError(
            f"A crontab has 5 fields (minute hour day-of-month month day-of-week); "
            f"{expression!r} has {len(parts)}.",
            code="invalid_crontab",
        )
    minute, hour, day_of_month, month, day_of_week = parts
    try:
        return celery_crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
        )
    except (ValueError, TypeError, IndexError) as err:
        raise ValidationError(
            f"Invalid crontab {expression!r}: {err}", code="invalid_crontab"
        ) from None


def next_crontab_run(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` matching the crontab (in ``TIME_ZONE``)."""
    cron = parse_crontab(expression)
    local = timezone.localtime(after).replace(microsecond=0)
    tz = local.tzinfo
    last, delta, _now = cron.remaining_delta(local, tz=tz)
    nxt: datetime = last + delta
    if nxt <= after:  # pragma: no cover - defensive: never schedule in the past
        nxt = next_crontab_run(expression, after + timedelta(minutes=1))
    return nxt
