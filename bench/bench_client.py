"""Benchmark of IntacctClient against bare requests-oauthlib, on the local emulator.

Run from the repository root::

    .venv/bin/python bench/bench_client.py [--calls 2000] [--records 100000] [--rounds 3]
        [--postgres postgres://postgres@127.0.0.1:5432/bench_client] [--redis redis://127.0.0.1:6379/0]

It starts the emulator in its own process (``python -m intacct_connect.testing.emulator``,
so the server's CPU time does not compete with the client for this process's GIL), sets
Django up with the test settings on a temporary SQLite database (WAL mode, the setup a
single-server site would use; set ``DATABASE_URL`` to use another database) and prints:

1. per-call overhead: ``IntacctClient.get`` of one vendor vs a bare
   ``OAuth2Session.get`` (+ ``.json()``) of the same URL with the same token, alternated
   call by call; median latency of each and their ratio (target <= 1.05), for every
   configuration in one table: database (the temporary SQLite, and the PostgreSQL
   database given with ``--postgres``, each measured in its own child process with its own
   emulator), concurrency slots (cap off, ``database``, ``cache`` on a LocMemCache,
   ``cache`` on the Redis given with ``--redis`` or ``REDIS_URL``), and a new client per
   call or one reused client; with the database statements each call ran (default
   connection plus the rate limiter's private connection) and the cache round trips;
2. a query over ``--records`` records: ``IntacctClient.query`` vs a bare paging loop
   (``OAuth2Session.post`` following ``ia::meta.next``), alternated by round; median time
   ratio (target <= 1.10); tracemalloc peak of the client for 10 % and 100 % of the records
   (target: flat);
3. database statements of a paginated query, per slot configuration.

``--postgres`` must name a scratch database (tables are created in it, rows added).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VENDOR = "accounts-payable/vendor"
PAGE_SIZE = 1000
STATEMENT_SAMPLE = 500  # calls whose statements are counted (the log is batched)


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


def setup_django(tmp: str, redis_url: str = "") -> None:
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
    caches_setting: dict[str, Any] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "bench_locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    if redis_url:
        caches_setting["bench_redis"] = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"bench-{uuid.uuid4().hex}",
        }
    settings.CACHES = caches_setting  # before the first cache access
    settings.LOGGING_CONFIG = None
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


#: (label, INTACCT_CONNECT overrides) of each concurrency-slot configuration.
SLOT_CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("cap off", {"COMPANY_CONCURRENCY": 0}),
    ("database (default)", {"COMPANY_CONCURRENCY": 2, "CONCURRENCY_BACKEND": "database"}),
    (
        "cache: LocMemCache",
        {
            "COMPANY_CONCURRENCY": 2,
            "CONCURRENCY_BACKEND": "cache",
            "CONCURRENCY_CACHE": "bench_locmem",
        },
    ),
    (
        "cache: Redis",
        {
            "COMPANY_CONCURRENCY": 2,
            "CONCURRENCY_BACKEND": "cache",
            "CONCURRENCY_CACHE": "bench_redis",
        },
    ),
]


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


def per_call(
    conn: Any, bare: Any, base_url: str, calls: int, configs: list[tuple[str, dict[str, Any]]]
) -> list[tuple[str, str, float, float, float, float, float]]:
    """Every (slot configuration, client variant) measured round-robin: call ``i`` of
    every variant runs before call ``i + 1`` of any, each as an alternated pair with the
    bare GET, so a change in the machine's load hits every row alike.

    Returns (slots, variant, ours, bare (medians), ratio of the means, DB statements per
    call and cache round trips per call, both averaged over STATEMENT_SAMPLE calls and
    the end-of-task flush)."""
    from intacct_connect.client import IntacctClient
    from intacct_connect.conf import app_settings

    url = f"{base_url}/objects/{VENDOR}/1"
    timeout = app_settings.HTTP_TIMEOUT

    def bare_get() -> None:
        bare.get(url, timeout=timeout).json()

    def new_client() -> None:
        IntacctClient(conn).get(VENDOR, "1")

    variants: list[tuple[str, dict[str, Any], str, Callable[[], Any]]] = []
    for label, overrides in configs:
        reused = IntacctClient(conn)
        variants.append((label, overrides, "new client per call", new_client))
        variants.append(
            (label, overrides, "one reused client", lambda c=reused: c.get(VENDOR, "1"))
        )
    ours: list[list[float]] = [[] for _ in variants]
    theirs: list[list[float]] = [[] for _ in variants]
    for i in range(-200, calls):  # 200 warm-up rounds
        for index, (_label, overrides, _variant, function) in enumerate(variants):
            configure(base_url, **overrides)
            if i % 2:
                mine, bares = timed(function), timed(bare_get)
            else:
                bares, mine = timed(bare_get), timed(function)
            if i >= 0:
                ours[index].append(mine)
                theirs[index].append(bares)
    rows = []
    for index, (label, overrides, variant, function) in enumerate(variants):
        configure(base_url, **overrides)
        statements, cache_ops = count_statements(function, STATEMENT_SAMPLE)
        rows.append(
            (
                label,
                variant,
                statistics.median(ours[index]),
                statistics.median(theirs[index]),
                statistics.fmean(ours[index]) / statistics.fmean(theirs[index]),
                statements / STATEMENT_SAMPLE,
                cache_ops / STATEMENT_SAMPLE,
            )
        )
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


def count_statements(function: Callable[[], Any], repeat: int = 1) -> tuple[int, int]:
    """Database statements (default connection + the rate limiter's private connection)
    and cache round trips (Redis commands, or cache.add/get/delete calls) of ``repeat``
    calls of ``function``, followed by what the end of a Celery task does (write the
    waiting call-log rows, release the parked slots), so deferred work is counted too."""
    from contextlib import ExitStack

    from django.core.cache import caches
    from django.db import DEFAULT_DB_ALIAS, connections

    from intacct_connect import concurrency
    from intacct_connect.client import finish_pending_work

    statements = 0
    cache_ops = 0

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    function()  # open the connections, create the slot rows
    finish_pending_work()
    default = connections[DEFAULT_DB_ALIAS]
    private = concurrency._wrapper()
    with ExitStack() as stack:
        stack.enter_context(default.execute_wrapper(record))
        if private is not default:
            stack.enter_context(private.execute_wrapper(record))
        originals: list[tuple[Any, str, Any]] = []
        for alias in ("bench_locmem", "bench_redis"):
            try:
                cache = caches[alias]
            except Exception:
                continue
            targets: list[tuple[Any, str]] = [(cache, n) for n in ("add", "get", "delete")]
            if alias == "bench_redis":
                import redis

                targets = [(redis.Redis, "execute_command")]  # one round trip per command
            for owner, name in targets:
                original = getattr(owner, name)

                def counting(*a: Any, _original: Any = original, **k: Any) -> Any:
                    nonlocal cache_ops
                    cache_ops += 1
                    return _original(*a, **k)

                originals.append((owner, name, original))
                setattr(owner, name, counting)
        try:
            for _ in range(repeat):
                function()
            finish_pending_work()
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)
    return statements, cache_ops


def child_per_call(args: argparse.Namespace) -> int:
    """One database: every slot configuration, printed as JSON lines for the parent."""
    from requests_oauthlib import OAuth2Session

    emulator, base_url = start_emulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            setup_django(tmp, args.redis)
            import requests
            from django.db import connection

            configure(base_url)
            conn, token = make_connection(requests.Session(), base_url)
            bare = OAuth2Session(
                "demo-client.app.sage.com", token={"access_token": token, "token_type": "Bearer"}
            )
            configs = [
                (label, overrides)
                for label, overrides in SLOT_CONFIGS
                if args.redis or "bench_redis" not in overrides.values()
            ]
            for label, variant, ours, theirs, mean_ratio, statements, cache_ops in per_call(
                conn, bare, base_url, args.calls, configs
            ):
                row = {
                    "database": connection.vendor,
                    "slots": label,
                    "client": variant,
                    "ours": ours,
                    "bare": theirs,
                    "mean_ratio": mean_ratio,
                    "statements": statements,
                    "cache_ops": cache_ops,
                }
                print(json.dumps(row), flush=True)
    finally:
        emulator.terminate()
        emulator.wait(10)
    return 0


def per_call_table(args: argparse.Namespace) -> None:
    databases = [("sqlite", "")]
    if args.postgres:
        databases.append(("postgresql", args.postgres))
    rows: list[dict[str, Any]] = []
    for _name, url in databases:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "DATABASE_URL": url or f"sqlite:///{tmp}/bench.sqlite3"}
            command = [sys.executable, __file__, "--child", "--calls", str(args.calls)]
            if args.redis:
                command += ["--redis", args.redis]
            out = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, check=True
            ).stdout
            rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    print(
        f"1. Per-call overhead: GET one vendor, {args.calls:,} alternated pairs per row, "
        "rows measured round-robin, medians"
    )
    header = (
        f"{'database':10} {'concurrency slots':20} {'client':20} "
        f"{'ours ms':>8} {'bare ms':>8} {'ratio':>6} {'mean r':>6} {'SQL':>5} {'cache':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row["ours"] / row["bare"]
        print(
            f"{row['database']:10} {row['slots']:20} {row['client']:20} "
            f"{row['ours'] * 1000:8.3f} {row['bare'] * 1000:8.3f} {ratio:6.3f} "
            f"{row['mean_ratio']:6.3f} {row['statements']:5.2f} {row['cache_ops']:5.2f}"
            + ("  <= 1.05" if ratio <= 1.05 else "")
        )
    print(
        "   ratio: of the medians (the target); mean r: of the means. SQL: database "
        f"statements per call, cache: cache round trips per call, both over {STATEMENT_SAMPLE} "
        "calls and the end-of-task flush (call-log rows are written in batches)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per variant")
    parser.add_argument("--records", type=int, default=100_000, help="records to query")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the query benchmark")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", ""),
        help="also measure per-call overhead on this (scratch) PostgreSQL database",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("REDIS_URL", ""),
        help="Redis URL for the 'cache: Redis' slot configuration",
    )
    parser.add_argument("--per-call-only", action="store_true", help="skip parts 2 and 3")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the bare baseline on http://127.0.0.1
    if args.child:
        return child_per_call(args)
    print(f"Python {sys.version.split()[0]}; emulator in its own process")
    print()
    per_call_table(args)
    if args.per_call_only:
        return 0
    from requests_oauthlib import OAuth2Session

    emulator, base_url = start_emulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            setup_django(tmp, args.redis)
            import requests
            from django.db import connection

            configure(base_url)
            admin = requests.Session()
            conn, token = make_connection(admin, base_url)
            bare = OAuth2Session(
                "demo-client.app.sage.com", token={"access_token": token, "token_type": "Bearer"}
            )
            from intacct_connect.client import IntacctClient

            print()
            print(f"Parts 2 and 3: database {connection.vendor}, emulator {base_url}")
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
            print("3. Database statements of a paginated query (fresh token)")
            n_pages = -(-total // 4000)
            for label, overrides in SLOT_CONFIGS:
                if "bench_redis" in overrides.values() and not args.redis:
                    continue
                configure(base_url, **overrides)
                pages, cache_ops = count_statements(
                    lambda: sum(
                        1 for _ in IntacctClient(conn).query(VENDOR, ["key"], page_size=4000)
                    )
                )
                print(
                    f"   {label}: query of {n_pages} pages, then the end-of-task flush: "
                    f"{pages} statements, {cache_ops} cache round trips"
                )
    finally:
        emulator.terminate()
        emulator.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
