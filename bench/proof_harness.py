"""What the failure proofs (issue 12, proofs 3, 4, 5 and 8) share: real ``celery worker``
and ``celery beat`` subprocesses, a private ``redis-server``, a scratch PostgreSQL
database for the full-size scripts, and an in-process emulator.

The same proof functions run in two places: the slow tests (``tests/test_proof_*.py``,
pytest-django's test database, a few trials) and the scripts ``bench/proof_*.py`` (a
scratch database ``proof_*`` created and dropped by the script, full size). Workers and
beats are started as in ``tests/test_worker_processes.py`` (settings
``tests.worker_settings``), with the app ``bench.proof_celery_app``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
QUEUES = "intacct.refresh,intacct.jobs"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def redis_db_url(base: str, db: int) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def broker_url(db: int) -> str:
    """Database ``db`` of the Redis server ``REDIS_URL`` names (a private set of queues)."""
    return redis_db_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), db)


def database_url() -> str:
    """The URL of the database the current Django connection uses (for the subprocesses)."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


# --- redis ----------------------------------------------------------------------------


class RedisServer:
    """A private ``redis-server`` with the append-only file on, restartable on its port."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / f"redis-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(self.ping, 20, "redis-server")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: the AOF is flushed), as a service manager restarts it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.proc = None

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1


# --- celery processes -----------------------------------------------------------------


@dataclass
class Celery:
    """A ``celery worker`` or ``celery beat`` subprocess and its log."""

    role: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[Any]:
        import psutil

        try:
            return list(psutil.Process(self.proc.pid).children(recursive=True))
        except psutil.Error:
            return []

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        kids = self.children()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            for kid in kids:
                with contextlib.suppress(Exception):
                    kid.kill()
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Cluster:
    """The subprocesses of one proof, all sharing a broker, a database and an emulator."""

    broker: str
    db_url: str
    api_base_url: str
    workdir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    procs: list[Celery] = field(default_factory=list)
    _sender: Any = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "DATABASE_URL": self.db_url,
            "INTACCT_WORKER_BROKER_URL": self.broker,
            "INTACCT_WORKER_API_BASE_URL": self.api_base_url,
            "INTACCT_WORKER_TEST_JOBS": "1",
            "PYTHONPATH": str(ROOT),
            **self.env_extra,
        }

    def _start(self, role: str, args: list[str], ready: str) -> Celery:
        name = f"{role}-{len(self.procs)}-{uuid.uuid4().hex[:6]}"
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "bench.proof_celery_app", role, *args],
                cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        handle = Celery(role, proc, log)
        self.procs.append(handle)
        wait_until(lambda: ready in handle.output() or proc.poll() is not None, 90, role)
        if proc.poll() is not None:
            raise AssertionError(f"{role} exited: {handle.output()[-3000:]}")
        return handle

    def worker(self, concurrency: int = 2) -> Celery:
        return self._start(
            "worker",
            ["-P", "prefork", "-c", str(concurrency), "-Q", QUEUES, "--loglevel", "INFO",
             "-n", f"proof-{uuid.uuid4().hex[:8]}@%h",
             "--without-heartbeat", "--without-mingle", "--without-gossip"],
            "ready.",
        )  # fmt: skip

    def beat(self) -> Celery:
        schedule = self.workdir / f"beat-{uuid.uuid4().hex[:6]}"
        return self._start(
            "beat",
            ["--loglevel", "INFO", "-s", str(schedule), "--pidfile", f"{schedule}.pid"],
            "beat: Starting",
        )

    def send(self, name: str, *args: object) -> None:
        """Publish a task by name to the broker, routed as the app routes it."""
        from celery import Celery as App

        from intacct_connect.celery import task_routes

        if self._sender is None:
            self._sender = App("proof-sender", broker=self.broker)
            self._sender.conf.task_routes = task_routes
        self._sender.send_task(name, args=args)

    def workers(self) -> list[Celery]:
        return [p for p in self.procs if p.role == "worker"]

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()
        if self._sender is not None:
            self._sender.close()

    def logs(self, tail: int = 2000) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-tail:]}" for p in self.procs)


def clear_queues(broker: str) -> None:
    from celery import Celery as App

    sender = App("proof-sender", broker=broker)
    try:
        with sender.connection_for_write() as conn:
            for queue in QUEUES.split(","):
                conn.SimpleQueue(queue).clear()
    finally:
        sender.close()


@contextlib.contextmanager
def cluster(broker: str, api_base_url: str, **env: str) -> Iterator[Cluster]:
    """Subprocesses against the current Django database; all stopped on exit, and their
    database sessions waited for."""
    with tempfile.TemporaryDirectory(prefix="intacct-proof-") as tmp:
        clear_queues(broker)
        group = Cluster(broker, database_url(), api_base_url, Path(tmp), dict(env))
        try:
            yield group
        except BaseException:
            print(group.logs(), file=sys.stderr)
            raise
        finally:
            group.stop()
            wait_for_sessions()
            keep_logs(group)


def keep_logs(group: Cluster) -> None:
    """With ``PROOF_KEEP_LOGS`` set to a directory, copy the subprocesses' logs and the
    job log there before the temporary directory goes."""
    target = os.environ.get("PROOF_KEEP_LOGS")
    if not target:
        return
    dest = Path(target) / group.workdir.name
    shutil.copytree(group.workdir, dest, ignore=shutil.ignore_patterns("beat-*"))
    print(f"proof logs kept in {dest}", file=sys.stderr)


def wait_for_sessions() -> None:
    """Let the subprocesses' PostgreSQL sessions end (before a test database is flushed):
    the worker-process tests' helper, its complaint about sessions left behind dropped."""
    from tests.test_worker_processes import wait_for_other_sessions_to_end

    with contextlib.suppress(AssertionError):
        wait_for_other_sessions_to_end(30.0)


# --- the full-size scripts ------------------------------------------------------------


@contextlib.contextmanager
def bench_environment(db_name: str) -> Iterator[Any]:
    """For a script: Django on a fresh scratch database ``db_name`` (migrated, dropped at
    the end) on the server ``DATABASE_URL`` names, and an in-process emulator that
    ``settings.INTACCT_CONNECT`` points at. Yields the emulator."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    os.environ["DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{db_name}", "", ""))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from intacct_connect.conf import app_settings
    from intacct_connect.testing.emulator import EmulatorServer

    call_command("migrate", verbosity=0)
    emulator = EmulatorServer().start()
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, **emulator.connect_settings()}
    app_settings.reload()
    import tests.celery_app  # noqa: F401  - the default Celery app, as in the tests

    try:
        yield emulator
    finally:
        emulator.stop()
        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def print_figures(title: str, figures: dict[str, Any]) -> None:
    print(title)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
