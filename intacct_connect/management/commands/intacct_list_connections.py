"""``manage.py intacct_list_connections``: connections with their status and token expiry."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from intacct_connect import flows
from intacct_connect.models import Connection, ConnectionStatus


class Command(BaseCommand):
    help = "List Intacct connections with their status and access-token expiry (never tokens)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Only this tenant key.")
        parser.add_argument(
            "--status", choices=ConnectionStatus.values, help="Only connections in this status."
        )
        parser.add_argument("--company", help="Only this Intacct company ID.")
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")

    def handle(self, *args: Any, **options: Any) -> None:
        qs = (
            Connection.objects.select_related("token")
            .defer("token__access_token", "token__refresh_token")
            .order_by("tenant_key", "company_id", "pk")
        )
        if options["tenant"]:
            qs = qs.for_tenant(options["tenant"])
        if options["status"]:
            qs = qs.filter(status=options["status"])
        if options["company"]:
            qs = qs.filter(company_id=options["company"])
        now = timezone.now()
        rows = []
        for conn in qs.iterator(chunk_size=500):
            token = flows.token_of(conn)
            rows.append(
                {
                    "id": conn.pk,
                    "tenant": conn.tenant_key,
                    "company": conn.company_id,
                    "entity": conn.entity_id,
                    "user": conn.intacct_user_id,
                    "environment": conn.environment,
                    "grant": conn.grant_type,
                    "status": conn.status,
                    "expires_at": token.expires_at.isoformat() if token else None,
                    "expired": bool(token and token.expires_at <= now),
                    "fingerprint": token.fingerprint if token else "",
                    "last_error": conn.last_error_code,
                }
            )
        if options["json"]:
            for row in rows:
                self.stdout.write(json.dumps(row))
            return
        if not rows:
            self.stdout.write("No connections.")
            return
        headers = [
            "id",
            "tenant",
            "company",
            "entity",
            "user",
            "environment",
            "grant",
            "status",
            "expires_at",
            "last_error",
        ]
        table = [[str(row[h] if row[h] is not None else "-") for h in headers] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
        self.stdout.write(_line([h.upper() for h in headers], widths))
        for r in table:
            self.stdout.write(_line(r, widths))
        self.stdout.write(f"{len(rows)} connection(s).")


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
