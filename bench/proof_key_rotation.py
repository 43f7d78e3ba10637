"""Failure proof 7 (issue 12): key rotation during concurrent refreshes on PostgreSQL.

Run from the repository root (PostgreSQL running)::

    .venv/bin/python bench/proof_key_rotation.py [--rows 10000] [--refreshes 200] \\
        [--processes 8] [--threads 4] [--postgres postgres://postgres@127.0.0.1:5432/postgres]

What it does:

1. creates a scratch database ``proof_key_rotation_<pid>`` next to the one ``--postgres``
   names (or ``BENCH_POSTGRES_URL``; dropped at the end), migrates it, starts the emulator
   in its own process (refresh-token rotation with reuse detection: a replayed refresh
   token revokes the grant, so a lost token write shows);
2. stores ``--rows`` connections whose tokens are encrypted under an *old* key; the
   ``--refreshes`` connections spread evenly over the table get real tokens from the
   emulator and an expired access token;
3. deploys ``TOKEN_KEYS = [new, old]`` and releases at the same instant ``--processes``
   processes x ``--threads`` threads refreshing those connections (``tokens.get_access_token``
   through the single-flight path) and ``rotate_keys()`` in this process;
4. deploys ``TOKEN_KEYS = [new]`` and checks every row.

It prints the overlap of the two, then the figures the proof is about (targets: 0):
*lost updates* (a refreshed connection whose stored token is not the one its refresh
returned, or whose stored refresh token Intacct no longer accepts: each refreshed
connection is refreshed once more at the end), *decryption errors* (during the run and
after the old key is removed) and *rows under the old key*. ``--json`` prints one JSON
object instead (used by ``tests/test_proof_key_rotation.py``, which runs it small).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_client import control, start_emulator  # noqa: E402


def scratch_url(base: str, name: str) -> str:
    return f"{base.rsplit('/', 1)[0]}/{name}"


def admin_sql(base: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as db:
        db.execute(sql)


def setup_django(database_url: str, base_url: str, keys: list[str]) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.conf import settings

    django.setup()
    settings.LOGGING_CONFIG = None
    import logging

    logging.getLogger().setLevel(logging.CRITICAL)
    deploy(base_url, keys)


def deploy(base_url: str, keys: list[str]) -> None:
    """Change ``TOKEN_KEYS`` (and point the app at the emulator), as a deploy would."""
    from django.conf import settings

    from intacct_connect.conf import app_settings
    from intacct_connect.testing.emulator import seed

    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "CLIENT_ID": seed.DEMO_CLIENT_ID,
        "CLIENT_SECRET": seed.DEMO_CLIENT_SECRET,
        "API_BASE_URL": base_url,
        "TOKEN_KEYS": keys,
        "COMPANY_CONCURRENCY": 0,
    }
    app_settings.reload()


def child(args: argparse.Namespace) -> int:
    """One refreshing process: set up, say ready, wait for the start line, refresh."""
    setup_django(args.database_url, args.emulator, json.loads(args.keys))
    from django.db import connection

    from intacct_connect import crypto, tokens
    from intacct_connect.exceptions import DecryptionError

    pks = [int(pk) for pk in args.pks.split(",") if pk]
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()

    def refresh(pk: int) -> dict[str, Any]:
        try:
            return {"pk": pk, "fingerprint": crypto.fingerprint(tokens.get_access_token(pk))}
        except DecryptionError as err:
            return {"pk": pk, "decryption_error": str(err)}
        except Exception as err:  # reported, never hidden
            return {"pk": pk, "error": f"{type(err).__name__}: {err}"}
        finally:
            connection.close()

    with ThreadPoolExecutor(args.threads) as pool:
        results = list(pool.map(refresh, pks))
    print(json.dumps({"started": started, "ended": time.time(), "results": results}), flush=True)
    return 0


def populate(rows: int, refreshed: list[int], session: Any, base_url: str) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from intacct_connect import crypto
    from intacct_connect.models import Connection, Token

    now = timezone.now()
    Connection.objects.bulk_create(
        Connection(
            id=pk,
            tenant_key=f"proof-{pk}",
            company_id="DEMO-CO",
            intacct_user_id=f"user-{pk}",
            next_refresh_at=now + timedelta(days=1),
        )
        for pk in range(1, rows + 1)
    )
    live = set(refreshed)
    batch: list[Token] = []
    for pk in range(1, rows + 1):
        if pk in live:  # one Intacct user per connection: a new grant supersedes the user's last
            control(
                session, base_url, "POST", "users",
                company_id="DEMO-CO", user_id=f"user-{pk}", password="pw",
            )  # fmt: skip
            issued = control(
                session, base_url, "POST", "tokens", company_id="DEMO-CO", user_id=f"user-{pk}"
            )
            access, refresh, expires = (
                issued["access_token"],
                issued["refresh_token"],
                now - timedelta(seconds=60),  # expired: the next use refreshes
            )
        else:
            access, refresh, expires = f"at-{pk}", f"rt-{pk}", now + timedelta(days=1)
        batch.append(
            Token(
                connection_id=pk,
                access_token=access,
                refresh_token=refresh,
                expires_at=expires,
                fingerprint=crypto.fingerprint(access),
            )
        )
        if len(batch) == 1000:
            Token.objects.bulk_create(batch)
            batch = []
    Token.objects.bulk_create(batch)


def check_rows() -> tuple[int, int]:
    """(rows that do not decrypt, rows still under an old key) with the current keys."""
    from intacct_connect.exceptions import DecryptionError
    from intacct_connect.flows.key_rotation import rows_under_old_keys
    from intacct_connect.models import Token

    failures = 0
    for token in Token.objects.order_by("pk").iterator(chunk_size=2000):
        try:
            _ = token.access_token, token.refresh_token
        except DecryptionError:
            failures += 1
    return failures, rows_under_old_keys()[0].count()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    from intacct_connect import crypto

    base = args.postgres
    name = f"proof_key_rotation_{os.getpid()}"
    database_url = scratch_url(base, name)
    admin_sql(base, f'DROP DATABASE IF EXISTS "{name}"')
    admin_sql(base, f'CREATE DATABASE "{name}"')
    emulator, base_url = start_emulator()
    processes: list[subprocess.Popen[str]] = []
    old_key, new_key = crypto.generate_key(), crypto.generate_key()
    try:
        setup_django(database_url, base_url, [old_key])
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        session = requests.Session()
        control(session, base_url, "POST", "config", refresh_mode="reuse_detection")
        step = max(1, args.rows // args.refreshes)
        refreshed = list(range(1, args.rows + 1, step))[: args.refreshes]
        populate(args.rows, refreshed, session, base_url)

        keys = [new_key, old_key]
        shares = [refreshed[i :: args.processes] for i in range(args.processes)]
        for share in shares:
            process = subprocess.Popen(
                [
                    sys.executable, __file__, "--child",
                    "--database-url", database_url, "--emulator", base_url,
                    "--keys", json.dumps(keys), "--pks", ",".join(map(str, share)),
                    "--threads", str(args.threads),
                ],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            processes.append(process)
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise SystemExit(f"a refreshing process did not start: {line!r}")

        deploy(base_url, keys)
        from intacct_connect.flows.key_rotation import rotate_keys

        for process in processes:  # release every refresher, then rotate at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        rotation_started = time.time()
        progress = rotate_keys(batch_size=500)
        rotation_ended = time.time()
        outcomes = []
        for process in processes:
            out, _ = process.communicate(timeout=600)
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
        results = [r for o in outcomes for r in o["results"]]
        refresh_started = min(o["started"] for o in outcomes)
        refresh_ended = max(o["ended"] for o in outcomes)

        from intacct_connect import tokens
        from intacct_connect.models import Token

        decryption_during = sum("decryption_error" in r for r in results)
        errors = [r["error"] for r in results if "error" in r]
        lost = 0
        for result in results:
            if "fingerprint" not in result:
                continue
            stored = Token.objects.get(pk=result["pk"])
            if stored.fingerprint != result["fingerprint"] or stored.version != 2:
                lost += 1
        # The stored refresh token of each refreshed connection must still be Intacct's
        # live one: refresh once more (reuse detection revokes a replayed one).
        for pk in refreshed:
            try:
                tokens.refresh_connection(pk, force=True)
            except Exception:
                lost += 1
        counters = control(session, base_url, "GET", "counters")
        token_requests = {k: v for k, v in counters.items() if "token" in k}

        deploy(base_url, [new_key])  # the old key removed
        decryption_after, under_old = check_rows()
        connection.close()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        emulator.terminate()
        emulator.wait(10)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        admin_sql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    overlap = max(0.0, min(rotation_ended, refresh_ended) - max(rotation_started, refresh_started))
    return {
        "rows": args.rows,
        "refreshes": len(refreshed),
        "processes": args.processes,
        "threads": args.threads,
        "rotation_seconds": round(rotation_ended - rotation_started, 2),
        "refresh_seconds": round(refresh_ended - refresh_started, 2),
        "overlap_seconds": round(overlap, 2),
        "rotated": progress.done,
        "conflicts": progress.conflicts,
        "rounds": progress.rounds,
        "refresh_errors": errors,
        "token_requests": token_requests,
        "lost_updates": lost,
        "decryption_errors_during": decryption_during,
        "decryption_errors_after_old_key_removed": decryption_after,
        "rows_under_old_key": under_old,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--emulator", help=argparse.SUPPRESS)
    parser.add_argument("--keys", help=argparse.SUPPRESS)
    parser.add_argument("--pks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.rows < 1 or not 1 <= args.refreshes <= args.rows or args.processes < 1:
        parser.error("need rows >= refreshes >= 1 and processes >= 1")
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"Key rotation of {figures['rows']:,} rows during {figures['refreshes']} concurrent "
        f"refreshes ({figures['processes']} processes x {figures['threads']} threads), "
        "PostgreSQL, emulator with refresh-token reuse detection"
    )
    print(
        f"  rotation {figures['rotation_seconds']} s ({figures['rotated']:,} rows rewritten, "
        f"{figures['conflicts']} lost a compare-and-swap to a refresh, "
        f"{figures['rows'] - figures['rotated'] - figures['conflicts']} already re-encrypted by "
        f"a refresh, {figures['rounds']} rounds); "
        f"refreshes {figures['refresh_seconds']} s; overlap {figures['overlap_seconds']} s"
    )
    print(f"  token requests at the emulator: {figures['token_requests']}")
    print(f"  refresh errors: {len(figures['refresh_errors'])} {figures['refresh_errors'][:3]}")
    for label, key in (
        ("lost updates", "lost_updates"),
        ("decryption errors during the run", "decryption_errors_during"),
        (
            "decryption errors after the old key is removed",
            "decryption_errors_after_old_key_removed",
        ),
        ("rows under the old key", "rows_under_old_key"),
    ):
        print(f"  {label}: {figures[key]}")
    bad = figures["refresh_errors"] or any(
        figures[k]
        for k in (
            "lost_updates",
            "decryption_errors_during",
            "decryption_errors_after_old_key_removed",
            "rows_under_old_key",
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
