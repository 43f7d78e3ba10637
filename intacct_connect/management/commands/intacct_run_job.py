"""Run a registered job now for one connection (operators).

    python manage.py intacct_run_job health_check --connection 12
    python manage.py intacct_run_job query_to_storage --connection 12 \\
        --params '{"object": "accounts-payable/vendor", "fields": ["key", "id", "name"]}'
    python manage.py intacct_run_job sync_vendors --connection 12 --enqueue
    python manage.py intacct_run_job --list

The run is recorded like a scheduled one (trigger "command"). Without ``--enqueue`` it runs
in this process (no worker needed) and the command exits with an error when it fails.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from intacct_connect import jobs, scheduling
from intacct_connect.models import (
    Connection,
    ConnectionStatus,
    JobRun,
    JobRunStatus,
    JobRunTrigger,
)


class Command(BaseCommand):
    help = "Run a registered intacct_connect job now for one connection."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", nargs="?", help="Registered job name (see --list).")
        parser.add_argument("--connection", "-c", type=int, help="Connection ID.")
        parser.add_argument("--params", default="{}", help="Job parameters as a JSON object.")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Queue the run for a Celery worker instead of running it here.",
        )
        parser.add_argument("--list", action="store_true", help="List the registered jobs.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for name, job in sorted(jobs.registered().items()):
                self.stdout.write(f"{name}\t{job.description}")
            return
        name = options["job"]
        if not name:
            raise CommandError("Name the job to run (see --list).")
        try:
            job = jobs.get(name)
        except jobs.UnknownJob as err:
            raise CommandError(str(err)) from None
        if options["connection"] is None:
            raise CommandError("--connection is required (a connection ID).")
        connection = Connection.objects.filter(pk=options["connection"]).first()
        if connection is None:
            raise CommandError(f"Connection {options['connection']} does not exist.")
        if connection.status != ConnectionStatus.ACTIVE:
            raise CommandError(
                f"Connection {connection.pk} ({connection.company_id}) is "
                f"{connection.get_status_display().lower()}; a user must reconnect it first."
            )
        try:
            params = json.loads(options["params"])
        except json.JSONDecodeError as err:
            raise CommandError(f"--params is not valid JSON: {err}") from None
        try:
            params = job.clean_params(params)
        except ValidationError as err:
            raise CommandError(f"Invalid parameters for {name}: {' '.join(err.messages)}") from None
        if options["enqueue"]:
            queued = scheduling.enqueue_run(
                name, connection.pk, params, trigger=JobRunTrigger.COMMAND
            )
            self.stdout.write(f"Queued run {queued.pk} of {name} for connection {connection.pk}.")
            return
        run = JobRun.objects.create(
            job=name, connection_id=connection.pk, params=params, trigger=JobRunTrigger.COMMAND
        )
        try:
            done = scheduling.execute_run(run.pk, attempt=1, final_attempt=True)
        except scheduling.RetryRun as err:  # pragma: no cover - final_attempt never retries
            raise CommandError(str(err)) from None
        if done is None:
            raise CommandError(f"Run {run.pk} disappeared.")
        line = (
            f"Run {done.pk} of {name} for connection {connection.pk}: {done.status}, "
            f"{done.records_processed} records"
        )
        if done.status != JobRunStatus.SUCCEEDED:
            raise CommandError(f"{line}. {done.error_code}: {done.error_message}")
        self.stdout.write(self.style.SUCCESS(line + "."))
