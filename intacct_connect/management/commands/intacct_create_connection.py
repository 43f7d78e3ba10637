"""``manage.py intacct_create_connection``: connect a company with client credentials."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from intacct_connect import flows
from intacct_connect.exceptions import IntacctConnectError


class Command(BaseCommand):
    help = (
        "Create (or renew) a client-credentials connection for a Web Services user, "
        "server-to-server, without a browser."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant key that owns the connection.")
        parser.add_argument(
            "--username",
            required=True,
            help="Web Services user as user@company or user@company|entity.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            conn = flows.create_client_credentials_connection(
                tenant_key=options["tenant"], username=options["username"]
            )
        except ValidationError as err:
            raise CommandError(" ".join(err.messages)) from None
        except IntacctConnectError as err:
            raise CommandError(f"Intacct refused the credentials: {err}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Connection {conn.pk}: company {conn.company_id}"
                f"{'|' + conn.entity_id if conn.entity_id else ''} as {conn.intacct_user_id} "
                f"for tenant {conn.tenant_key} ({conn.get_status_display()})."
            )
        )
