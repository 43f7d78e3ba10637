"""Compatibility module: the background jobs' admin screens now live in
:mod:`intacct_connect.admin.jobs`."""

from intacct_connect.admin.jobs import (
    RUN_STATUS_COLOURS,
    JobRunAdmin,
    ScheduleAdmin,
    ScheduleForm,
    StoredRecordAdmin,
    WatermarkAdmin,
    connection_runs_link,
    planned_runs,
    runs_url,
)

__all__ = [
    "RUN_STATUS_COLOURS",
    "JobRunAdmin",
    "ScheduleAdmin",
    "ScheduleForm",
    "StoredRecordAdmin",
    "WatermarkAdmin",
    "connection_runs_link",
    "planned_runs",
    "runs_url",
]
