"""The app's tables, one module per concern (every model is importable from here):

* :mod:`~intacct_connect.models.connections`: connected Intacct companies, their encrypted
  tokens and token journal, authorization requests and event history;
* :mod:`~intacct_connect.models.jobs`: schedules, job runs, stored records, watermarks and
  task deliveries;
* :mod:`~intacct_connect.models.calls`: the API call log and the concurrency slots;
* :mod:`~intacct_connect.models.incidents`: site-wide incidents;
* :mod:`~intacct_connect.models.choices` and :mod:`~intacct_connect.models.querysets`:
  the enumerations and querysets they share (``LockingQuerySet``: the one row-lock rule).
"""

from intacct_connect.models.calls import ApiCallLog, ConcurrencySlot
from intacct_connect.models.choices import (
    AWAITING_ACTION,
    ConnectionStatus,
    Environment,
    EventKind,
    GrantType,
    IncidentKind,
    JobRunStatus,
    JobRunTrigger,
    ScheduleScope,
)
from intacct_connect.models.connections import (
    Connection,
    ConnectionEvent,
    OAuthFlow,
    Token,
    TokenJournalEntry,
)
from intacct_connect.models.incidents import SiteIncident
from intacct_connect.models.jobs import (
    MIN_INTERVAL_SECONDS,
    JobRun,
    Schedule,
    StoredRecord,
    TaskDelivery,
    Watermark,
)
from intacct_connect.models.querysets import (
    ConnectionQuerySet,
    JobRunQuerySet,
    LockingQuerySet,
    OAuthFlowQuerySet,
    ScheduleQuerySet,
    SiteIncidentQuerySet,
    TokenQuerySet,
)

__all__ = [
    "AWAITING_ACTION",
    "MIN_INTERVAL_SECONDS",
    "ApiCallLog",
    "ConcurrencySlot",
    "Connection",
    "ConnectionEvent",
    "ConnectionQuerySet",
    "ConnectionStatus",
    "Environment",
    "EventKind",
    "GrantType",
    "IncidentKind",
    "JobRun",
    "JobRunQuerySet",
    "JobRunStatus",
    "JobRunTrigger",
    "LockingQuerySet",
    "OAuthFlow",
    "OAuthFlowQuerySet",
    "Schedule",
    "ScheduleQuerySet",
    "ScheduleScope",
    "SiteIncident",
    "SiteIncidentQuerySet",
    "StoredRecord",
    "TaskDelivery",
    "Token",
    "TokenJournalEntry",
    "TokenQuerySet",
    "Watermark",
]
