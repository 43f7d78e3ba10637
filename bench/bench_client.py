"""Benchmark of IntacctClient against bare requests-oauthlib, on the local emulator.

Run from the repository root::

    .venv/bin/python bench/bench_client.py [--calls 2000] [--records 100000] [--rounds 3]

It starts the emulator in its own process (``python -m intacct_connect.testing.emulator``,
so the server's CPU time does not compete with the client for this process's GIL), sets
Django up with the test settings on a temporary SQLite database (WAL mode, the setup a
single-server site would use; set ``DATABASE_URL`` to use another database) and prints:

1. per-call overhead: ``IntacctClient.get`` of one vendor vs a bare
   ``OAuth2Session.get`` (+ ``.json()``) of the same URL with the same token, alternated
   call by call; median latency of each and their ratio (target <= 1.05);
2. a query over ``--records`` records: ``IntacctClient.query`` vs a bare paging loop
   (``OAuth2Session.post`` following ``ia::meta.next``), alternated by round; median time
   ratio (target <= 1.10); tracemalloc peak of the client for 10 % and 100 % of the records
   (target: flat);
3. database queries per API call with a fresh token.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VENDOR = "accounts-payable/vendor"
PAGE_SIZE = 1000


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "intacct_connect.testing.emulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "API base URL" not in line:
        process.kill()
        raise SystemExit(f"The emulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1].strip()


def setup_django(tmp: str) -> None:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.conf import settings

    django.setup()
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("OPTIONS", {})["init_command"] = (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        )
    settings.LOGGING_CONFIG = None
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def control(session: Any, base_url: str, method: str, name: str, **body: Any) -> Any:
    root = base_url.split("/ia/api/v1")[0]
    response = session.request(method, f"{root}/__emulator__/{name}", json=body, timeout=300)
    response.raise_for_status()
    return response.json()


def configure(base_url: str, **overrides: Any) -> None:
    from django.conf import settings

    from intacct_connect.conf import app_settings
    from intacct_connect.testing.emulator import seed

    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "CLIENT_ID": seed.DEMO_CLIENT_ID,
        "CLIENT_SECRET": seed.DEMO_CLIENT_SECRET,
        "API_BASE_URL": base_url,
        **overrides,
    }
    app_settings.reload()


def make_connection(session: Any, base_url: str) -> Any:
    from datetime import timedelta

    from django.utils import timezone

    from intacct_connect import crypto
    from intacct_connect.models import Connection, Token

    issued = control(session, base_url, "POST", "tokens", company_id="DEMO-CO", user_id="admin")
    conn = Connection.objects.create(
        tenant_key=f"bench-{Connection.objects.count()}",
        company_id="DEMO-CO",
        intacct_user_id="admin",
    )
    Token.objects.create(
        connection=conn,
        access_token=issued["access_token"],
        refresh_token=issued["refresh_token"],
        expires_at=timezone.now() + timedelta(seconds=issued["expires_in"]),
        fingerprint=crypto.fingerprint(issued["access_token"]),
    )
    return conn, issued["access_token"]


def timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def per_call(conn: Any, bare: Any, base_url: str, calls: int) -> list[tuple[str, float, float]]:
    from intacct_connect.client import IntacctClient
    from intacct_connect.conf import app_settings

    url = f"{base_url}/objects/{VENDOR}/1"
    timeout = app_settings.HTTP_TIMEOUT
    reused = IntacctClient(conn)

    def bare_get() -> None:
        bare.get(url, timeout=timeout).json()

    variants: dict[str, Callable[[], Any]] = {
        "IntacctClient(conn).get (new client per call)": lambda: IntacctClient(conn).get(
            VENDOR, "1"
        ),
        "client.get (one client, token cached)": lambda: reused.get(VENDOR, "1"),
    }
    rows = []
    for label, function in variants.items():
        for _ in range(200):  # warm up both paths
            function()
            bare_get()
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(calls):
            if i % 2:
                ours.append(timed(function))
                theirs.append(timed(bare_get))
            else:
                theirs.append(timed(bare_get))
                ours.append(timed(function))
        rows.append((label, statistics.median(ours), statistics.median(theirs)))
    return rows


def bare_query(session: Any, base_url: str, token: str) -> int:
    body: dict[str, Any] = {"object": VENDOR, "fields": ["key", "id", "name"], "size": PAGE_SIZE}
    start, seen = 1, 0
    while True:
        body["start"] = start
        page = session.post(f"{base_url}/services/core/query", json=body, timeout=(3.05, 30)).json()
        for _row in page["ia::result"]:
            seen += 1
        nxt = page["ia::meta"]["next"]
        if nxt is None:
            return seen
        start = nxt


def client_query(conn: Any) -> int:
    from intacct_connect.client import IntacctClient

    seen = 0
    for _row in IntacctClient(conn).query(VENDOR, ["key", "id", "name"], page_size=PAGE_SIZE):
        seen += 1
    return seen


def peak(function: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def count_queries(function: Callable[[], Any]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        function()
    return len(captured.captured_queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per variant")
    parser.add_argument("--records", type=int, default=100_000, help="records to query")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the query benchmark")
    args = parser.parse_args()
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the bare baseline on http://127.0.0.1
    from requests_oauthlib import OAuth2Session

    emulator, base_url = start_emulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            setup_django(tmp)
            import requests
            from django.db import connection

            configure(base_url)
            admin = requests.Session()
            conn, token = make_connection(admin, base_url)
            bare = OAuth2Session(
                "demo-client.app.sage.com", token={"access_token": token, "token_type": "Bearer"}
            )
            from intacct_connect.client import IntacctClient

            print(
                f"Emulator {base_url}; database {connection.vendor}; "
                f"Python {sys.version.split()[0]}"
            )
            print()
            print("1. Per-call overhead: GET one vendor, alternated call by call")
            print(f"{'variant':52} {'ours ms':>8} {'bare ms':>8} {'ratio':>6}")
            for cap in (2, 0):
                configure(base_url, COMPANY_CONCURRENCY=cap)
                for label, ours, theirs in per_call(conn, bare, base_url, args.calls):
                    name = f"{label}, cap {cap or 'off'}"
                    print(f"{name:52} {ours * 1000:8.3f} {theirs * 1000:8.3f} {ours / theirs:6.3f}")
            configure(base_url)

            print()
            total = control(
                admin,
                base_url,
                "POST",
                "generate",
                company="DEMO-CO",
                object=VENDOR,
                count=args.records - 250,
            )["total"]
            print(f"2. Query iteration over {total:,} records (page size {PAGE_SIZE})")
            ours_t: list[float] = []
            theirs_t: list[float] = []
            client_query(conn)  # warm the emulator's query cache
            for round_ in range(args.rounds):
                if round_ % 2:
                    ours_t.append(timed(lambda: client_query(conn)))
                    theirs_t.append(timed(lambda: bare_query(bare, base_url, token)))
                else:
                    theirs_t.append(timed(lambda: bare_query(bare, base_url, token)))
                    ours_t.append(timed(lambda: client_query(conn)))
            ours_m, theirs_m = statistics.median(ours_t), statistics.median(theirs_t)
            print(
                f"   client {ours_m:.2f} s, bare loop {theirs_m:.2f} s, "
                f"ratio {ours_m / theirs_m:.3f} (median of {args.rounds})"
            )
            assert client_query(conn) == total
            # Memory: the emulator is another process, so only the client is traced.
            control(admin, base_url, "POST", "reset")
            conn, token = make_connection(admin, base_url)
            control(
                admin,
                base_url,
                "POST",
                "generate",
                company="DEMO-CO",
                object=VENDOR,
                count=total // 10 - 250,
            )
            small = peak(lambda: client_query(conn))
            control(
                admin,
                base_url,
                "POST",
                "generate",
                company="DEMO-CO",
                object=VENDOR,
                count=total - total // 10,
            )
            large = peak(lambda: client_query(conn))
            print(
                f"   tracemalloc peak: {total // 10:,} records {small / 1024:.0f} KiB, "
                f"{total:,} records {large / 1024:.0f} KiB (x{large / small:.2f})"
            )

            print()
            print("3. Database queries per API call (fresh token)")
            client = IntacctClient(conn)
            client.get(VENDOR, "1")
            for cap in (2, 0):
                configure(base_url, COMPANY_CONCURRENCY=cap)
                new = count_queries(lambda: IntacctClient(conn).get(VENDOR, "1"))
                same = count_queries(lambda: client.get(VENDOR, "1"))
                pages = count_queries(
                    lambda: sum(
                        1 for _ in IntacctClient(conn).query(VENDOR, ["key"], page_size=4000)
                    )
                )
                n_pages = -(-total // 4000)
                print(
                    f"   cap {cap or 'off'}: new client {new}, reused client {same}, "
                    f"query of {n_pages} pages {pages} "
                    f"({(pages - 1) / n_pages:.0f} per page + 1 token read)"
                )
    finally:
        emulator.terminate()
        emulator.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
