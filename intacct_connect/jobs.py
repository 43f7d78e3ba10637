"""The job registry: functions that run against one connection, in the background.

A host site defines jobs in code and operators schedule them in the admin::

    from intacct_connect import jobs

    @jobs.register("sync_vendors", description="Copy active vendors")
    def sync_vendors(client, ctx):
        count = 0
        for row in client.query("accounts-payable/vendor", ["key", "id", "name"]):
            Vendor.objects.update_or_create(...)
            count += 1
        return count  # records processed, shown on the run

A job receives an authenticated :class:`~intacct_connect.client.IntacctClient` for one
connection and a :class:`JobContext` (the run, its parameters, the watermark helpers and
:meth:`JobContext.on_success`). It returns the number of records processed (or ``None``).
Raising :class:`JobError` fails the run without retry; transient API errors (429, 5xx,
transport errors) are retried by the task with backoff.

Two jobs are built in: ``health_check`` and ``query_to_storage``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils import timezone

from intacct_connect.models import Connection, JobRun, StoredRecord, Watermark

if TYPE_CHECKING:
    from intacct_connect.client import IntacctClient

logger = logging.getLogger(__name__)

#: Most rows one ``query_to_storage`` run holds before its single commit (see the docs).
QUERY_TO_STORAGE_MAX_RECORDS = 200_000


class JobError(Exception):
    """A job failed for a reason retrying will not fix; the run is marked failed."""

    def __init__(self, message: str, *, code: str = "job_error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownJob(LookupError):
    """No job is registered under this name."""


class JobFunction(Protocol):
    def __call__(self, client: IntacctClient, ctx: JobContext, /) -> int | None: ...


ParamsValidator = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Job:
    """A registered job."""

    name: str
    func: JobFunction
    description: str = ""
    validate_params: ParamsValidator | None = None

    def clean_params(self, params: Any) -> dict[str, Any]:
        """Validated parameters; raises ``ValidationError`` with a precise message."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValidationError(
                f"The parameters of job {self.name!r} must be a JSON object, "
                f"not {type(params).__name__}.",
                code="invalid_params",
            )
        if self.validate_params is not None:
            self.validate_params(params)
        return params


@dataclass
class JobContext:
    """What a job knows about its run, and how it commits its results atomically."""

    run: JobRun
    connection: Connection
    params: dict[str, Any]
    cursor_name: str
    _hooks: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def on_success(self, func: Callable[[], None]) -> None:
        """Call ``func`` inside the transaction that marks the run succeeded.

        Writes made there commit together with the run record, or not at all (a killed
        or failed run, or a run another delivery has taken over, leaves nothing)."""
        self._hooks.append(func)

    def watermark(self, name: str | None = None) -> str:
        """The committed watermark of this job (or ``name``) for this connection ('' if none)."""
        row = Watermark.objects.filter(
            connection=self.connection, name=name or self.cursor_name
        ).first()
        return row.value if row else ""

    def set_watermark(self, value: str, name: str | None = None) -> None:
        """Store a new watermark when, and only when, the run succeeds."""
        key = name or self.cursor_name
        connection = self.connection

        def write() -> None:
            Watermark.objects.update_or_create(
                connection=connection,
                name=key,
                defaults={"value": str(value)[:200], "updated_at": timezone.now()},
            )

        self.on_success(write)


_registry: dict[str, Job] = {}


def register(
    name: str,
    *,
    description: str = "",
    validate_params: ParamsValidator | None = None,
) -> Callable[[JobFunction], JobFunction]:
    """Register a job function under ``name`` (decorator).

    ``validate_params(params)`` raises ``django.core.exceptions.ValidationError`` for
    parameters the job cannot use; the admin and the management command call it.
    Registering another function under a taken name raises ``ImproperlyConfigured``.
    """
    if not name or len(name) > 100:
        raise ImproperlyConfigured("A job name must be 1 to 100 characters long.")

    def decorator(func: JobFunction) -> JobFunction:
        existing = _registry.get(name)
        if existing is not None and _qualname(existing.func) != _qualname(func):
            raise ImproperlyConfigured(
                f"Job {name!r} is already registered by {_qualname(existing.func)}."
            )
        _registry[name] = Job(
            name, func, description or (func.__doc__ or "").strip(), validate_params
        )
        return func

    return decorator


def unregister(name: str) -> None:
    """Remove a job (tests, or a site replacing a built-in job)."""
    _registry.pop(name, None)


def _qualname(func: Any) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def get(name: str) -> Job:
    """The job registered as ``name``; raises :class:`UnknownJob`."""
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise UnknownJob(f"No job is registered as {name!r} (registered: {known}).") from None


def registered() -> dict[str, Job]:
    """All registered jobs by name."""
    return dict(_registry)


def choices() -> list[tuple[str, str]]:
    """(name, label) pairs for forms."""
    return [
        (job.name, f"{job.name} — {job.description}" if job.description else job.name)
        for job in sorted(_registry.values(), key=lambda j: j.name)
    ]


@register("health_check", description="One cheap API call that updates the connection's health")
def health_check(client: IntacctClient, ctx: JobContext) -> int:
    result = client.health_check()
    if not result.ok:
        raise JobError(
            f"Health check failed: {result.message}", code=result.error_code or "unhealthy"
        )
    return 1


def _validate_query_params(params: Mapping[str, Any]) -> None:
    errors: list[str] = []
    allowed = {
        "object",
        "fields",
        "filters",
        "filter_expression",
        "filter_parameters",
        "order_by",
        "key_field",
        "watermark_field",
        "page_size",
        "max_records",
    }
    unknown = sorted(set(params) - allowed)
    if unknown:
        errors.append(
            f"unknown parameter(s): {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    obj = params.get("object")
    if not isinstance(obj, str) or not obj.strip():
        errors.append("'object' is required: an Intacct object such as 'accounts-payable/vendor'")
    fields = params.get("fields")
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, str) and f for f in fields)
    ):
        errors.append("'fields' is required: a non-empty list of field names")
    key_field = params.get("key_field", "key")
    if not isinstance(key_field, str) or not key_field:
        errors.append("'key_field' must be a field name")
    elif isinstance(fields, list) and key_field not in fields:
        errors.append(f"'fields' must include the key field {key_field!r}")
    wm = params.get("watermark_field")
    if wm is not None:
        if not isinstance(wm, str) or not wm:
            errors.append("'watermark_field' must be a field name such as 'audit.modifiedDateTime'")
        elif isinstance(fields, list) and wm not in fields:
            errors.append(f"'fields' must include the watermark field {wm!r}")
    filters = params.get("filters")
    if filters is not None and (
        not isinstance(filters, list)
        or not all(isinstance(f, dict) and len(f) == 1 for f in filters)
    ):
        errors.append("'filters' must be a list of one-operator objects like {\"$eq\": {...}}")
    order_by = params.get("order_by")
    if order_by is not None and (
        not isinstance(order_by, list)
        or not all(
            isinstance(o, dict) and len(o) == 1 and set(o.values()) <= {"asc", "desc"}
            for o in order_by
        )
    ):
        errors.append('\'order_by\' must be a list like [{"id": "asc"}]')
    fe = params.get("filter_expression")
    if fe is not None and not isinstance(fe, str):
        errors.append("'filter_expression' must be a string")
    fp = params.get("filter_parameters")
    if fp is not None and not isinstance(fp, dict):
        errors.append("'filter_parameters' must be an object")
    page_size = params.get("page_size", 1000)
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= 4000:
        errors.append("'page_size' must be an integer from 1 to 4000")
    max_records = params.get("max_records", QUERY_TO_STORAGE_MAX_RECORDS)
    if (
        not isinstance(max_records, int)
        or isinstance(max_records, bool)
        or not 1 <= max_records <= QUERY_TO_STORAGE_MAX_RECORDS
    ):
        errors.append(f"'max_records' must be an integer from 1 to {QUERY_TO_STORAGE_MAX_RECORDS}")
    if errors:
        raise ValidationError("; ".join(errors) + ".", code="invalid_params")


@register(
    "query_to_storage",
    description="Run a query-service request and store its rows (upserted by key)",
    validate_params=_validate_query_params,
)
def query_to_storage(client: IntacctClient, ctx: JobContext) -> int:
    """Fetch every page first, then store all rows, the watermark and the run record in one
    transaction: a killed or failed run leaves the previous data and watermark intact, and
    a redelivered run upserts the same keys instead of adding rows."""
    params = ctx.params
    _validate_query_params(params)
    obj: str = params["object"]
    key_field: str = params.get("key_field", "key")
    wm_field: str | None = params.get("watermark_field")
    max_records: int = params.get("max_records", QUERY_TO_STORAGE_MAX_RECORDS)
    cursor = ctx.cursor_name if ctx.run.schedule_id else f"{ctx.cursor_name}:{obj}"
    filters = list(params.get("filters") or [])
    previous = ctx.watermark(cursor) if wm_field else ""
    if wm_field and previous:
        # $gte, not $gt: rows sharing the last timestamp are fetched again and upserted.
        filters.append({"$gte": {wm_field: previous}})
    order_by = params.get("order_by") or (
        [{wm_field: "asc"}, {key_field: "asc"}] if wm_field else [{key_field: "asc"}]
    )
    rows: dict[str, dict[str, Any]] = {}
    newest = previous
    for row in client.query(
        obj,
        params["fields"],
        filters=filters or None,
        filter_expression=params.get("filter_expression"),
        filter_parameters=params.get("filter_parameters"),
        order_by=order_by,
        page_size=params.get("page_size", 1000),
    ):
        key = row.get(key_field)
        if key in (None, ""):
            raise JobError(
                f"A row of {obj} has no {key_field!r}; cannot store it", code="row_without_key"
            )
        rows[str(key)[:200]] = row
        if len(rows) > max_records:
            raise JobError(
                f"More than {max_records} rows; narrow the query with filters or a watermark",
                code="too_many_records",
            )
        if wm_field:
            value = row.get(wm_field)
            if value not in (None, "") and str(value) > newest:
                newest = str(value)
    connection, run = ctx.connection, ctx.run

    def store() -> None:
        now = timezone.now()
        StoredRecord.objects.bulk_create(
            [
                StoredRecord(
                    connection=connection, object=obj, key=key, data=data, run=run, updated_at=now
                )
                for key, data in rows.items()
            ],
            batch_size=500,
            update_conflicts=True,
            unique_fields=["connection", "object", "key"],
            update_fields=["data", "run", "updated_at"],
        )

    if rows:
        ctx.on_success(store)
    if wm_field and newest != previous:
        ctx.set_watermark(newest, cursor)
    logger.info(
        "query_to_storage: %s rows of %s fetched for connection %s", len(rows), obj, connection.pk
    )
    return len(rows)
