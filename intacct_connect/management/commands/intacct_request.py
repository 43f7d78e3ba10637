"""Send a test request to Intacct as one connection and print the status and the JSON.

Examples::

    manage.py intacct_request 7 GET /objects/accounts-payable/vendor
    manage.py intacct_request 7 POST /objects/accounts-payable/vendor --data '{"name": "Acme"}'
    manage.py intacct_request 7 --query '{"object": "accounts-payable/vendor", "fields": ["id"]}'
    manage.py intacct_request 7 GET /objects/general-ledger/account --entity US-EAST
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from intacct_connect.client import QUERY_PATH, IntacctClient
from intacct_connect.exceptions import IntacctConnectError
from intacct_connect.models import Connection

METHODS = ("GET", "POST", "PATCH", "DELETE")


def _json_argument(name: str, raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as err:
        raise CommandError(f"{name} is not valid JSON: {err}") from None


class Command(BaseCommand):
    help = (
        "Send one request to the Intacct REST API as the given connection and print the "
        "HTTP status and the JSON answer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("connection_id", help="Primary key of the Intacct connection.")
        parser.add_argument("method", nargs="?", help=f"HTTP method: {', '.join(METHODS)}.")
        parser.add_argument(
            "path",
            nargs="?",
            help="Path under API_BASE_URL, e.g. /objects/accounts-payable/vendor.",
        )
        parser.add_argument(
            "--query",
            metavar="JSON",
            help="Run one page of the query service (POST /services/core/query) with this body.",
        )
        parser.add_argument("--data", metavar="JSON", help="JSON body for POST and PATCH.")
        parser.add_argument(
            "--entity",
            metavar="ENTITY_ID",
            help="Entity to send as X-IA-API-Param-Entity (default: the connection's).",
        )
        parser.add_argument(
            "--idempotency-key", metavar="KEY", help="Idempotency-Key for POST and PATCH."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = self._connection(options["connection_id"])
        method, path, body = self._request_parts(options)
        client = IntacctClient(connection, entity_id=options["entity"])
        try:
            response = client.request(
                method, path, body, idempotency_key=options["idempotency_key"]
            )
        except IntacctConnectError as err:
            raise CommandError(f"The request failed: {err}") from None
        except ImproperlyConfigured as err:
            raise CommandError(f"Configuration error: {err}") from None
        finally:
            client.close()
        self.stdout.write(f"HTTP {response.status_code}")
        if response.data is not None:
            self.stdout.write(json.dumps(response.data, indent=2, ensure_ascii=False))

    def _connection(self, raw: str) -> Connection:
        try:
            pk = int(raw)
        except ValueError:
            raise CommandError(f"The connection id must be an integer, not {raw!r}.") from None
        try:
            return Connection.objects.get(pk=pk)
        except Connection.DoesNotExist:
            raise CommandError(f"There is no Intacct connection with id {pk}.") from None

    def _request_parts(self, options: dict[str, Any]) -> tuple[str, str, Any]:
        method, path = options["method"], options["path"]
        query = _json_argument("--query", options["query"])
        data = _json_argument("--data", options["data"])
        if options["query"] is not None:
            if method or path or data is not None:
                raise CommandError("Give either --query or a METHOD and PATH, not both.")
            if not isinstance(query, dict) or not query.get("object"):
                raise CommandError(
                    '--query must be a JSON object with at least "object" and "fields", e.g. '
                    '\'{"object": "accounts-payable/vendor", "fields": ["id", "name"]}\'.'
                )
            return "POST", QUERY_PATH, query
        if not method or not path:
            raise CommandError("Give a METHOD and a PATH (e.g. GET /objects/...), or --query.")
        method = method.upper()
        if method not in METHODS:
            raise CommandError(f"The method must be one of {', '.join(METHODS)}, not {method!r}.")
        if not path.startswith("/") or "://" in path or ".." in path.split("/"):
            raise CommandError(
                f"The path must be relative to API_BASE_URL and start with '/', not {path!r}."
            )
        if data is not None and method not in ("POST", "PATCH"):
            raise CommandError("--data is only for POST and PATCH requests.")
        return method, path, data
