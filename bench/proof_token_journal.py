"""Failure proof 2 (issue 12): no token lost when the database fails between the token
response and the commit.

Run from the repository root (PostgreSQL running)::

    .venv/bin/python bench/proof_token_journal.py [--trials 200] [--failure terminate]
        [--baseline] [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--json]

Each trial, on a scratch database ``proof_token_journal_<pid>`` (dropped at the end) with
the emulator in its own process (refresh-token rotation with reuse detection: replaying a
rotated-away refresh token revokes the grant):

1. a connection whose access token has expired asks for a token
   (``tokens.get_access_token``): one refresh request, Intacct rotates the refresh token;
2. between the token response and the commit, at the 1st, 2nd or 3rd write of the storing
   transaction (chosen at random), the database fails: ``--failure terminate`` kills the
   refreshing backend with ``pg_terminate_backend`` from another connection (the default),
   ``--failure statement_timeout`` makes the write run past ``statement_timeout``. The call
   raises, the transaction is gone;
3. the next ``get_access_token`` (a new database connection) must come back with the
   tokens Intacct issued in step 1, without a token request of its own (the token journal
   adopts them), the access token must work for an API call, and the stored refresh token
   must be Intacct's live one (a forced refresh succeeds).

``--baseline`` deletes the journal entry before step 3, i.e. what happens without the
journal. Prints recovered / lost counts (target: every trial recovered, 0 lost).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_client import control, start_emulator  # noqa: E402
from proof_key_rotation import admin_sql, scratch_url, setup_django  # noqa: E402

VENDOR = "accounts-payable/vendor"


def failing_at(write: int, failure: str, admin: Any) -> Any:
    """An ``execute_wrapper`` that makes the database fail at the ``write``-th INSERT or
    UPDATE of the default connection."""
    from django.db import connection

    seen = [0]

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            seen[0] += 1
            if seen[0] == write:
                if failure == "terminate":
                    pid = connection.connection.info.backend_pid
                    admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                    for _ in range(200):  # until the backend is gone
                        row = admin.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]
                        ).fetchone()
                        if not row[0]:
                            break
                        time.sleep(0.01)
                else:
                    execute("SET LOCAL statement_timeout = '20ms'", None, False, context)
                    execute("SELECT pg_sleep(1)", None, False, context)
        return execute(sql, params, many, context)

    return wrapper


def trial(
    number: int, failure: str, baseline: bool, admin: Any, session: Any, base_url: str
) -> dict[str, Any]:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from intacct_connect import crypto, tokens
    from intacct_connect.client import IntacctClient
    from intacct_connect.models import Connection, Token, TokenJournalEntry

    user = f"user-{number}"
    control(session, base_url, "POST", "users", company_id="DEMO-CO", user_id=user, password="pw")
    issued = control(session, base_url, "POST", "tokens", company_id="DEMO-CO", user_id=user)
    conn = Connection.objects.create(
        tenant_key=f"proof-{number}", company_id="DEMO-CO", intacct_user_id=user
    )
    Token.objects.create(
        connection=conn,
        access_token=issued["access_token"],
        refresh_token=issued["refresh_token"],
        expires_at=timezone.now() - timedelta(seconds=60),
        fingerprint=crypto.fingerprint(issued["access_token"]),
    )
    before = requests_so_far(session, base_url)
    write = random.randint(1, 3)
    outcome: dict[str, Any] = {"trial": number, "write": write}
    try:
        with connection.execute_wrapper(failing_at(write, failure, admin)):
            tokens.get_access_token(conn.pk)
        outcome["failed"] = False  # the failure was not injected: the trial proves nothing
    except Exception as err:
        outcome["failed"] = True
        outcome["error"] = type(err).__name__
    connection.close()
    if baseline:
        TokenJournalEntry.objects.filter(connection_id=conn.pk).delete()
    try:
        value = tokens.get_access_token(conn.pk)
        outcome["extra_requests"] = requests_so_far(session, base_url) - before - 1
        IntacctClient(conn.pk).get(VENDOR, "1")
        tokens.refresh_connection(conn.pk, force=True)
        outcome["recovered"] = bool(value)
    except Exception as err:
        outcome["recovered"] = False
        outcome["recovery_error"] = f"{type(err).__name__}: {err}"[:200]
    outcome["journal_left"] = TokenJournalEntry.objects.filter(connection_id=conn.pk).count()
    return outcome


def requests_so_far(session: Any, base_url: str) -> int:
    counters = control(session, base_url, "GET", "counters")
    return int(counters.get("token_requests", {}).get("refresh_token", 0))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg
    import requests

    from intacct_connect import crypto

    base = args.postgres
    name = f"proof_token_journal_{os.getpid()}"
    admin_sql(base, f'DROP DATABASE IF EXISTS "{name}"')
    admin_sql(base, f'CREATE DATABASE "{name}"')
    emulator, base_url = start_emulator()
    random.seed(args.seed)
    try:
        setup_django(scratch_url(base, name), base_url, [crypto.generate_key()])
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        session = requests.Session()
        control(session, base_url, "POST", "config", refresh_mode="reuse_detection")
        with psycopg.connect(base, autocommit=True) as admin:
            results = [
                trial(n, args.failure, args.baseline, admin, session, base_url)
                for n in range(1, args.trials + 1)
            ]
        connections.close_all()
        from intacct_connect import private_db

        private_db.close()
    finally:
        emulator.terminate()
        emulator.wait(10)
        admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    injected = [r for r in results if r["failed"]]
    return {
        "trials": args.trials,
        "failure": args.failure,
        "baseline": args.baseline,
        "failures_injected": len(injected),
        "recovered": sum(r["recovered"] for r in injected),
        "lost": sum(not r["recovered"] for r in injected),
        "extra_token_requests": sum(r.get("extra_requests", 0) for r in injected),
        "journal_entries_left": sum(r["journal_left"] for r in results),
        "by_write": {w: sum(r["write"] == w for r in injected) for w in (1, 2, 3)},
        "errors": sorted({r.get("error", "") for r in injected}),
        "recovery_errors": [r["recovery_error"] for r in results if "recovery_error" in r][:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument(
        "--failure", choices=("terminate", "statement_timeout"), default="terminate"
    )
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
        return 0
    mode = "WITHOUT the journal (baseline)" if args.baseline else "with the token journal"
    print(
        f"{figures['trials']} trials, database failure '{figures['failure']}' between the token "
        f"response and the commit, {mode}; PostgreSQL, emulator with reuse detection"
    )
    for label, key in (
        ("failures injected", "failures_injected"),
        ("failing write (1st/2nd/3rd)", "by_write"),
        ("errors the refreshing call raised", "errors"),
        ("new tokens recovered", "recovered"),
        ("connections lost", "lost"),
        ("extra token requests on recovery", "extra_token_requests"),
        ("journal entries left", "journal_entries_left"),
        ("first recovery errors", "recovery_errors"),
    ):
        print(f"  {label}: {figures[key]}")
    ok = figures["failures_injected"] == figures["trials"] and figures["lost"] == 0
    return 0 if ok or args.baseline else 1


if __name__ == "__main__":
    sys.exit(main())
