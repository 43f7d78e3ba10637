"""Benchmark of the background half: dispatching, and end-to-end proactive refresh.

Run from the repository root (PostgreSQL and Redis running)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/bench_dispatch.py [--rows 10000] [--refreshes 1000] [--workers 4] \\
        [--rounds 3] [--token-latency 0,0.05] [--skip-dispatch] [--skip-refresh]

It creates a scratch database ``intacct_bench_dispatch`` next to the one ``DATABASE_URL``
names (dropped and recreated on every run), migrates it, and prints:

1. **dispatch**: claiming ``--rows`` due refreshes, then ``--rows`` due schedules (one run
   each), in batches of ``DISPATCH_BATCH_SIZE`` (500) with ``SKIP LOCKED``; SQL queries per
   batch (``CaptureQueriesContext``; target: the same for every batch) and total time,
   messages published to Redis included;
2. **refresh throughput**: ``--refreshes`` due connections refreshed end to end by a real
   ``celery worker -P prefork -c <workers>`` (dispatcher task → one refresh task per
   connection → single-flight refresh → emulator token endpoint → encrypted write), against
   a bare loop of the same token POSTs (``requests``, ``<workers>`` processes, real
   refresh-token rotation) to the same emulator. Both sides are warmed up first (the worker
   by a round of ``10 * workers`` refreshes, the bare processes by ``10 * workers`` token
   POSTs), use fresh tokens every round, and alternate for ``--rounds`` rounds; the ratio
   is the ratio of the median rates (target >= 0.8).

The emulator runs in its own process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "intacct_bench_dispatch"
WORKER_LOG = Path(tempfile.gettempdir()) / "intacct_bench_worker.log"
QUEUES = "intacct.refresh,intacct.jobs"


def db_url(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def broker_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit((parts.scheme, parts.netloc, "/13", "", ""))


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(db_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


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


def setup_django(base_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url(BENCH_DB)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.worker_settings"
    os.environ["INTACCT_WORKER_BROKER_URL"] = broker_url()
    os.environ["INTACCT_WORKER_API_BASE_URL"] = base_url
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def control(base_url: str, method: str, name: str, **body: Any) -> Any:
    import requests

    root = base_url.split("/ia/api/v1")[0]
    response = requests.request(method, f"{root}/__emulator__/{name}", json=body, timeout=300)
    response.raise_for_status()
    return response.json()


# --- CPU attribution (Linux /proc) -----------------------------------------------------

#: The emulator process of the current refresh round (set by ``main``).
EMULATOR_PID = 0


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (0 for processes that are gone)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _bench_backends() -> list[int]:
    """PostgreSQL backends connected to the bench database (the workers' and this one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [row[0] for row in cursor.fetchall()]


def _redis_server() -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _comm(entry) == "redis-server"
    ]


def _comm(entry: Path) -> str:
    try:
        return (entry / "comm").read_text().strip()
    except OSError:
        return ""


class CpuMeter:
    """CPU seconds used by named groups of processes between ``start()`` and ``stop()``."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: _cpu_seconds(pids) for name, pids in self.groups.items()}

    def stop(self) -> None:
        for name, pids in self.groups.items():
            self.used[name] = self.used.get(name, 0.0) + _cpu_seconds(pids) - self._before[name]

    def per_refresh(self, refreshes: int) -> str:
        parts = [f"{name} {secs / refreshes * 1000:.2f}" for name, secs in self.used.items()]
        total = sum(self.used.values()) / refreshes * 1000
        return ", ".join(parts) + f"; total {total:.2f} ms"


# --- 1. dispatch ------------------------------------------------------------------------


def bulk_connections(n: int, *, due: bool) -> list[int]:
    from django.utils import timezone

    from intacct_connect.models import Connection, Token

    now = timezone.now()
    start = Connection.objects.count()
    conns = Connection.objects.bulk_create(
        [
            Connection(
                tenant_key=f"tenant-{(start + i) % 100}",
                company_id=f"CO-{start + i}",
                intacct_user_id="admin",
                next_refresh_at=now - timedelta(seconds=1) if due else None,
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    Token.objects.bulk_create(
        [
            Token(
                connection=c,
                access_token=f"bench-access-{c.pk}",
                refresh_token=f"bench-refresh-{c.pk}",
                expires_at=now + timedelta(minutes=5),
                last_refreshed_at=now,
            )
            for c in conns
        ],
        batch_size=2000,
    )
    return [c.pk for c in conns]


def measure_batches(claim: Any) -> tuple[list[int], list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    queries: list[int] = []
    times: list[float] = []
    total = 0
    while True:
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            claimed = claim()
            elapsed = time.perf_counter() - started
        if not claimed:
            break
        total += len(claimed)
        queries.append(len(ctx.captured_queries))
        times.append(elapsed)
    return queries, times, total


def bench_dispatch(rows: int) -> list[tuple[str, str]]:
    from django.utils import timezone

    from intacct_connect import jobs, scheduling
    from intacct_connect.models import Connection, JobRun, Schedule
    from tests.celery_app import app

    app.conf.task_always_eager = False
    with app.connection_for_write() as broker:
        for queue in QUEUES.split(","):
            broker.SimpleQueue(queue).clear()
    ids = bulk_connections(rows, due=True)
    started = time.perf_counter()
    q_refresh, t_refresh, n_refresh = measure_batches(scheduling.claim_due_refreshes)
    total_refresh = time.perf_counter() - started
    assert n_refresh == rows, (n_refresh, rows)

    jobs.register("bench_noop")(lambda client, ctx: 0)
    now = timezone.now()
    Schedule.objects.bulk_create(
        [
            Schedule(
                name=f"s{pk}",
                job="bench_noop",
                connection_id=pk,
                interval_seconds=900,
                next_run_at=now - timedelta(seconds=1),
            )
            for pk in ids
        ],
        batch_size=2000,
    )
    started = time.perf_counter()
    q_sched, t_sched, n_runs = measure_batches(scheduling.claim_due_schedules)
    total_sched = time.perf_counter() - started
    assert n_runs == rows == JobRun.objects.filter(status="queued").count()
    with app.connection_for_write() as broker:
        published = sum(broker.SimpleQueue(q).qsize() for q in QUEUES.split(","))
        for queue in QUEUES.split(","):
            broker.SimpleQueue(queue).clear()
    JobRun.objects.all().delete()
    Schedule.objects.all().delete()
    Connection.objects.all().delete()
    return [
        (
            f"dispatch {rows:,} due refreshes",
            f"{len(q_refresh)} batches, queries/batch {min(q_refresh)}..{max(q_refresh)}, "
            f"{statistics.median(t_refresh) * 1000:.0f} ms/batch, total {total_refresh:.2f} s",
        ),
        (
            f"dispatch {rows:,} due job runs",
            f"{len(q_sched)} batches, queries/batch {min(q_sched)}..{max(q_sched)}, "
            f"{statistics.median(t_sched) * 1000:.0f} ms/batch, total {total_sched:.2f} s",
        ),
        ("messages published to Redis", f"{published:,} (expected {2 * rows:,})"),
    ]


# --- 2. refresh throughput ----------------------------------------------------------------


_session: Any = None


def _init_bare(token_url: str) -> None:
    import requests

    global _session
    _session = requests.Session()
    _session.token_url = token_url  # type: ignore[attr-defined]


def _bare_refresh(refresh_token: str) -> int:
    from intacct_connect.testing.emulator import seed

    response = _session.post(
        _session.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": seed.DEMO_CLIENT_ID,
            "client_secret": seed.DEMO_CLIENT_SECRET,
        },
        timeout=(3.05, 30),
    )
    return response.status_code


def _noop(_: int) -> int:
    return 0


def bare_rate(
    base_url: str,
    refresh_tokens: list[str],
    workers: int,
    *,
    warm_up: list[str],
    meter: dict[str, CpuMeter] | None = None,
) -> float:
    ctx = multiprocessing.get_context("spawn")  # clean processes (no Django)
    with ctx.Pool(workers, initializer=_init_bare, initargs=(f"{base_url}/oauth2/token",)) as pool:
        pool.map(_noop, range(workers * 4))  # processes up
        # Warm-up like the Celery side's: every process has imported, connected and
        # refreshed before the clock starts.
        assert set(pool.map(_bare_refresh, warm_up, chunksize=1)) == {200}
        clients = [p.pid for p in pool._pool if p.pid]  # type: ignore[attr-defined]
        cpu = CpuMeter({"clients": clients, "emulator": [EMULATOR_PID]})
        if meter is not None:
            cpu = meter.setdefault("bare", cpu)
        cpu.start()
        started = time.perf_counter()
        statuses = pool.map(_bare_refresh, refresh_tokens, chunksize=4)
        elapsed = time.perf_counter() - started
        cpu.stop()
    bad = [s for s in statuses if s != 200]
    assert not bad, f"{len(bad)} bare token requests failed: {bad[:5]}"
    return len(refresh_tokens) / elapsed


def issued_connections(base_url: str, n: int, prefix: str = "bench") -> list[int]:
    from django.utils import timezone

    from intacct_connect.models import Connection, Token

    now = timezone.now()
    ids = []
    prefix = f"{prefix}-{Connection.objects.count()}"
    for i in range(n):
        issued = control(base_url, "POST", "tokens", company_id="DEMO-CO", user_id="admin")
        conn = Connection.objects.create(
            tenant_key=f"{prefix}-{i}", company_id="DEMO-CO", intacct_user_id=f"{prefix}-{i}"
        )
        Token.objects.create(
            connection=conn,
            access_token=issued["access_token"],
            refresh_token=issued["refresh_token"],
            expires_at=now + timedelta(seconds=issued["expires_in"]),
            last_refreshed_at=now,
        )
        ids.append(conn.pk)
    return ids


def start_worker(base_url: str, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "DATABASE_URL": db_url(BENCH_DB),
        "INTACCT_WORKER_BROKER_URL": broker_url(),
        "INTACCT_WORKER_API_BASE_URL": base_url,
        "PYTHONPATH": str(ROOT),
    }
    log = open(WORKER_LOG, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
            "-P", "prefork", "-c", str(workers), "-Q", QUEUES,
            "--loglevel", os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
            "-n", f"bench-{os.getpid()}@%h",
            "--without-heartbeat", "--without-mingle", "--without-gossip",
            "--include", "bench.floor_tasks",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    from tests.celery_app import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # ready when a ping is answered
        replies = app.control.ping(timeout=0.5)
        if replies:
            break
    else:
        proc.kill()
        raise SystemExit(f"the worker did not start; see {WORKER_LOG}")
    return proc


def refresh_round(ids: list[int], cpu: CpuMeter | None = None) -> float:
    """Make ``ids`` (all at token version 1) due, send the dispatcher task, and wait until
    every one is refreshed (version 2). One cheap COUNT every 20 ms."""
    from django.db import connection
    from django.utils import timezone

    from intacct_connect.models import Connection, Token
    from tests.celery_app import app

    count_sql = (
        f"SELECT count(*) FROM {Token._meta.db_table} "
        f"WHERE version >= 2 AND {Token._meta.pk.column} = ANY(%s)"
    )
    if cpu is not None:
        cpu.start()
    started = time.perf_counter()
    Connection.objects.filter(pk__in=ids).update(next_refresh_at=timezone.now())
    app.send_task("intacct_connect.dispatch_due_refreshes", queue="intacct.refresh")
    with connection.cursor() as cursor:
        while True:
            # One small statement per poll (an ORM ``pk__in`` of 1,000 IDs costs this
            # process several ms of CPU, taken from the workers on a small machine).
            cursor.execute(count_sql, [ids])
            if cursor.fetchone()[0] >= len(ids):
                break
            if time.perf_counter() - started > 600:
                raise SystemExit("refreshes did not finish in 10 minutes")
            time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.stop()
    return elapsed


def floor_round(n: int, cpu: CpuMeter | None = None) -> float:
    """Publish ``n`` no-op tasks (``bench/floor_tasks.py``) to the refresh queue, as the
    dispatcher publishes refresh tasks, and wait until the worker has run them all:
    the rate Celery itself allows with the app's task options, before any refresh work."""
    import redis

    from bench.floor_tasks import COUNTER
    from tests.celery_app import app

    counter = redis.Redis.from_url(broker_url())
    counter.set(COUNTER, 0)
    if cpu is not None:
        cpu.start()
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for index in range(n):
            app.send_task("bench.noop", args=(index,), queue="intacct.refresh", producer=producer)
    while int(counter.get(COUNTER) or 0) < n:
        if time.perf_counter() - started > 600:
            raise SystemExit("no-op tasks did not finish in 10 minutes")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.stop()
    return n / elapsed


def _refresh_requests(base_url: str) -> int:
    counters = control(base_url, "GET", "counters")["token_requests"]
    return int(counters.get("refresh_token", 0))


def bench_refresh(
    base_url: str, n: int, workers: int, latency: float, rounds: int
) -> list[tuple[str, str]]:
    """``rounds`` alternated rounds: ``n`` bare token POSTs, then ``n`` Celery refreshes
    (fresh tokens and connections every round, one worker warmed up once); medians."""
    from tests.celery_app import app

    app.conf.task_always_eager = False
    control(base_url, "POST", "config", supersede_grants=False)
    if latency:
        control(base_url, "POST", "faults", kind="slow", endpoint="token", seconds=latency)
    warm = issued_connections(base_url, workers * 10, prefix="warm")
    proc = start_worker(base_url, workers)
    bare: list[float] = []
    celery: list[float] = []
    floor: list[float] = []
    calls = 0
    meters: dict[str, CpuMeter] = {}
    try:
        refresh_round(warm)  # every pool process has imported, connected and refreshed
        meters["celery"] = CpuMeter(
            {
                "worker pool processes": _children(proc.pid),
                "worker main process": [proc.pid],
                "PostgreSQL backends": _bench_backends(),
                "emulator": [EMULATOR_PID],
                "Redis server (shared)": _redis_server(),
                "this process (dispatch + polling)": [os.getpid()],
            }
        )
        meters["floor"] = CpuMeter(
            {
                "worker pool processes": _children(proc.pid),
                "worker main process": [proc.pid],
                "Redis server (shared)": _redis_server(),
                "this process (publishing)": [os.getpid()],
            }
        )
        floor_round(workers * 10)  # warm-up
        for _ in range(rounds):
            tokens = [
                control(base_url, "POST", "tokens", company_id="DEMO-CO", user_id="admin")[
                    "refresh_token"
                ]
                for _ in range(n + workers * 10)
            ]
            bare.append(bare_rate(base_url, tokens[:n], workers, warm_up=tokens[n:], meter=meters))
            ids = issued_connections(base_url, n)
            before = _refresh_requests(base_url)
            celery.append(n / refresh_round(ids, meters["celery"]))
            calls += _refresh_requests(base_url) - before
            floor.append(floor_round(n, meters["floor"]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        control(base_url, "DELETE", "faults")
    label = f"token endpoint +{latency * 1000:.0f} ms" if latency else "token endpoint as is"

    def rates(values: list[float]) -> str:
        each = ", ".join(f"{v:.0f}" for v in values)
        return f"median {statistics.median(values):.0f} refreshes/s (rounds: {each})"

    ratio = statistics.median(celery) / statistics.median(bare)
    ceiling = statistics.median(floor) / statistics.median(bare)
    each = ", ".join(f"{c / b:.2f}" for c, b in zip(celery, bare, strict=True))
    return [
        (f"bare token POSTs, {workers} processes ({label})", f"{rates(bare)}, {n} per round"),
        (
            f"celery refresh, {workers} worker processes ({label})",
            f"{rates(celery)}, {n} connections per round, {calls} token requests in all",
        ),
        (f"ratio ({label}; target >= 0.8)", f"{ratio:.2f} (rounds: {each})"),
        (f"  CPU ms per refresh, bare ({label})", meters["bare"].per_refresh(n * rounds)),
        (f"  CPU ms per refresh, celery ({label})", meters["celery"].per_refresh(n * rounds)),
        (
            f"celery floor: no-op tasks, same worker ({label})",
            f"{rates(floor).replace('refreshes', 'tasks')}; "
            f"the most a refresh rate could be: {ceiling:.2f} of bare",
        ),
        (f"  CPU ms per no-op task ({label})", meters["floor"].per_refresh(n * rounds)),
    ]


def main() -> None:
    global EMULATOR_PID
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--refreshes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternated bare / Celery rounds per latency"
    )
    parser.add_argument(
        "--token-latency",
        default="0,0.05",
        help="comma-separated extra seconds the emulator's token endpoint waits per request "
        "(0 = loopback speed; 0.05 = closer to a real token endpoint)",
    )
    parser.add_argument("--skip-dispatch", action="store_true")
    parser.add_argument("--skip-refresh", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server (the bench uses SKIP LOCKED).")
    recreate_database()
    emulator, base_url = start_emulator()
    rows: list[tuple[str, str]] = []
    try:
        setup_django(base_url)
        if not args.skip_dispatch:
            rows += bench_dispatch(args.rows)
    finally:
        emulator.terminate()
        emulator.wait(10)
    if not args.skip_refresh:
        for latency in (float(x) for x in args.token_latency.split(",") if x.strip()):
            emulator, base_url = start_emulator()  # a fresh emulator for every round
            EMULATOR_PID = emulator.pid
            try:
                rows += bench_refresh(base_url, args.refreshes, args.workers, latency, args.rounds)
            finally:
                emulator.terminate()
                emulator.wait(10)
    width = max(len(name) for name, _ in rows)
    print(f"{'measure'.ljust(width)}  result")
    print(f"{'-' * width}  {'-' * 60}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
