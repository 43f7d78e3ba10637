"""Proof 3 (issue 12): a worker child SIGKILLed in the middle of a run.

Run from the repository root (PostgreSQL and Redis running)::

    .venv/bin/python bench/proof_worker_kill.py            # --trials 50

One ``celery worker -P prefork -c 1`` (its only child runs the task, so the child to kill is
known) runs ``query_to_storage`` of the emulator's 250 vendors in 10 pages of 25 against the
emulator (each page slowed by 0.1 s). Every trial renames the 250 vendors at the emulator,
queues a run, waits until it is running and its child is talking to the emulator (a random
page of the 10), and SIGKILLs that child. Late acknowledgement redelivers the message; the
trial then checks that the run completed exactly once (succeeded, delivered twice, every
stored row written by it), that the stored rows are exactly the emulator's (0 duplicate, 0
missing, every name the new one) and that the watermark moved to the newest row. Last, a run
whose job kills its own worker every time is parked after ``MAX_DELIVERIES`` deliveries.

The same trial engine (:func:`run_kill_trials`) serves proof 8 (``proof_query_atomic.py``)
with kills at uniformly random moments of the run. Uses a scratch database
``proof_worker_kill`` (dropped at the end) and Redis database 12 as the broker.
"""

from __future__ import annotations

import argparse
import collections
import functools
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proof_harness import Cluster, wait_until

VENDOR = "accounts-payable/vendor"
COMPANY = "DEMO-CO"
PAGES = 10
PAGE_SECONDS = 0.1


def query_params(rows: int) -> dict[str, Any]:
    """``query_to_storage`` of every vendor in ``PAGES`` pages."""
    return {
        "object": VENDOR,
        "fields": ["key", "id", "name", "audit.modifiedDateTime"],
        "watermark_field": "audit.modifiedDateTime",
        "page_size": -(-rows // PAGES),
    }


@dataclass
class KillFigures:
    """What the trials measured; ``violations`` lists every broken property."""

    trials: int = 0
    killed_mid_run: int = 0
    finished_before_kill: int = 0
    kill_points: collections.Counter[str] = field(default_factory=collections.Counter)
    completed_once: int = 0
    deliveries: collections.Counter[int] = field(default_factory=collections.Counter)
    duplicate_rows: int = 0
    missing_rows: int = 0
    stale_rows: int = 0
    snapshots: int = 0
    mixed_snapshots: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "trials": self.trials,
            "killed mid-run": self.killed_mid_run,
            "finished before the kill": self.finished_before_kill,
            "kill points": dict(sorted(self.kill_points.items())),
            "runs completed exactly once": f"{self.completed_once}/{self.trials}",
            "deliveries per run": dict(sorted(self.deliveries.items())),
            "duplicate stored rows": self.duplicate_rows,
            "missing stored rows": self.missing_rows,
            "rows with old data after the run": self.stale_rows,
            "database snapshots read during the trials": self.snapshots,
            "snapshots mixing old and new": self.mixed_snapshots,
            "wall time (s)": round(self.seconds, 1),
            "violations": len(self.violations),
        }


class Snapshots(threading.Thread):
    """Reads (watermark, names per trial) in one statement, over and over, from its own
    database connection: what any reader of the stored data could see."""

    def __init__(self, connection_id: int) -> None:
        super().__init__(daemon=True)
        self.connection_id = connection_id
        self.seen: collections.Counter[tuple[str, tuple[tuple[str, int], ...]]] = (
            collections.Counter()
        )
        self.stopping = threading.Event()

    def read(self) -> tuple[str, tuple[tuple[str, int], ...]]:
        from django.db import connection

        from intacct_connect.models import StoredRecord, Watermark

        records, marks = StoredRecord._meta.db_table, Watermark._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT max(value) FROM {marks} WHERE connection_id = %s), "
                f"split_part(data->>'name', '-', 1), count(*) FROM {records} "
                "WHERE connection_id = %s AND object = %s GROUP BY 2 ORDER BY 2",
                [self.connection_id, self.connection_id, VENDOR],
            )
            rows = cursor.fetchall()
        mark = rows[0][0] if rows else ""
        return str(mark or ""), tuple((str(t), int(n)) for _, t, n in rows)

    def run(self) -> None:
        from django.db import connections

        try:
            while not self.stopping.is_set():
                self.seen[self.read()] += 1
                time.sleep(0.005)
        finally:
            connections.close_all()

    def take(self) -> collections.Counter[tuple[str, tuple[tuple[str, int], ...]]]:
        seen, self.seen = self.seen, collections.Counter()
        return seen


def rename_all(conn: Any, trial: int, keys: list[str]) -> None:
    """One batch PATCH at the emulator: every vendor gets this trial's name."""
    from intacct_connect.client import IntacctClient

    client = IntacctClient(conn)
    try:
        client.update_many(VENDOR, [{"key": k, "name": f"t{trial}-{k}"} for k in keys])
    finally:
        client.close()


def stored(conn: Any) -> dict[str, tuple[str, int | None]]:
    from intacct_connect.models import StoredRecord

    return {
        key: (str(data.get("name")), run_id)
        for key, data, run_id in StoredRecord.objects.filter(
            connection=conn, object=VENDOR
        ).values_list("key", "data", "run_id")
    }


def prepare(emulator: Any) -> tuple[Any, list[str]]:
    """A connection and the emulator's vendors (250 in the seed data), named for trial 0
    and stored by one complete run (the 'previous data')."""
    from intacct_connect import scheduling
    from intacct_connect.models import JobRun
    from tests.job_factories import emulator_connection

    keys = sorted(str(r["key"]) for r in emulator.records(COMPANY, VENDOR))
    conn = emulator_connection(emulator, COMPANY)
    rename_all(conn, 0, keys)
    first = JobRun.objects.create(
        job="query_to_storage", connection=conn, params=query_params(len(keys))
    )
    done = scheduling.execute_run(first.pk)
    assert done is not None, first.pk
    assert done.status == "succeeded", done.error_message
    return conn, keys


def run_in(pk: int, *statuses: str) -> bool:
    """Whether run ``pk`` is in one of ``statuses``."""
    from intacct_connect.models import JobRun

    return JobRun.objects.filter(pk=pk, status__in=statuses).exists()


def newest_mark(emulator: Any) -> str:
    return max(str(r["audit"]["modifiedDateTime"]) for r in emulator.records(COMPANY, VENDOR))


def run_kill_trials(
    group: Cluster, emulator: Any, trials: int, *, mode: str, seed: int = 12
) -> KillFigures:
    """``trials`` runs of ``query_to_storage``, each killed once (``mode``: ``"page"``: while
    a random page's request is in flight; ``"random"``: at a uniformly random moment of the
    run, fetching, storing or committing). ``group`` must hold one worker with ``-c 1``."""
    from intacct_connect.models import JobRun, Watermark

    rng = random.Random(seed)
    (worker,) = group.workers()
    out = KillFigures()
    started = time.monotonic()
    conn, keys = prepare(emulator)
    rows_total = len(keys)
    params = query_params(rows_total)
    emulator.set_fault("slow", company=COMPANY, endpoint="api", seconds=PAGE_SECONDS)
    watcher = Snapshots(conn.pk)
    watcher.start()
    run_seconds = PAGE_SECONDS * (PAGES + 2) + 0.5
    try:
        for trial in range(1, trials + 1):
            old = (Watermark.objects.get(connection=conn).value, ((f"t{trial - 1}", rows_total),))
            rename_all(conn, trial, keys)
            watcher.take()
            calls_before = emulator.api_calls(COMPANY)
            run = JobRun.objects.create(job="query_to_storage", connection=conn, params=params)
            group.send("intacct_connect.run_job", run.pk)
            wait_until(
                functools.partial(run_in, run.pk, "running", "succeeded"),
                60,
                f"run {run.pk} to start",
            )
            t_running = time.monotonic()
            if mode == "page":
                page = rng.randint(1, PAGES)
                wait_until(
                    lambda: emulator.api_calls(COMPANY) - calls_before >= page,  # noqa: B023
                    30,
                    f"page {page}",
                )
                time.sleep(rng.uniform(0, PAGE_SECONDS * 0.8))
            else:
                time.sleep(max(0.0, rng.uniform(0, run_seconds) - (time.monotonic() - t_running)))
            victims = worker.children()
            for child in victims:
                child.send_signal(signal.SIGKILL)
            pages = emulator.api_calls(COMPANY) - calls_before
            wait_until(
                functools.partial(run_in, run.pk, "succeeded", "failed", "parked"),
                120,
                f"run {run.pk} to finish",
            )
            time.sleep(0.05)
            new = (newest_mark(emulator), ((f"t{trial}", rows_total),))
            seen = watcher.take()
            run.refresh_from_db()
            out.trials += 1
            out.deliveries[run.delivery_count] += 1
            if run.delivery_count == 1:
                out.finished_before_kill += 1
                out.kill_points["after the commit"] += 1
            else:
                out.killed_mid_run += 1
                out.kill_points[
                    f"page {pages:>2} of {PAGES}" if pages <= PAGES else "storing/committing"
                ] += 1
            rows = stored(conn)
            names = collections.Counter(name.split("-")[0] for name, _ in rows.values())
            out.missing_rows += len(set(keys) - set(rows))
            out.duplicate_rows += max(0, len(rows) - rows_total)
            out.stale_rows += rows_total - names[f"t{trial}"]
            written_by_run = sum(1 for _, run_id in rows.values() if run_id == run.pk)
            once = (
                run.status == "succeeded"
                and run.records_processed == rows_total
                and written_by_run == rows_total
                and run.delivery_count <= 2
            )
            out.completed_once += once
            if not once:
                out.violations.append(
                    f"trial {trial}: run {run.pk} {run.status} {run.error_code} delivered "
                    f"{run.delivery_count}x, {written_by_run} rows written by it"
                )
            if Watermark.objects.get(connection=conn).value != new[0]:
                out.violations.append(f"trial {trial}: watermark not the newest row's")
            out.snapshots += sum(seen.values())
            for snapshot, count in seen.items():
                if snapshot not in (old, new):
                    out.mixed_snapshots += count
                    out.violations.append(f"trial {trial}: mixed snapshot {snapshot}")
    finally:
        watcher.stopping.set()
        watcher.join(10)
        emulator.clear_faults()
    out.seconds = time.monotonic() - started
    return out


@dataclass
class ParkFigures:
    max_deliveries: int
    deliveries: int
    executions: int
    status: str
    error_code: str
    requeued_after_parking: bool


def run_park_proof(group: Cluster, workdir: Path) -> ParkFigures:
    """A run whose job SIGKILLs its own worker child every time (``test_kill_own_worker``
    of ``tests/worker_jobs.py``): parked after ``MAX_DELIVERIES`` executions."""
    from intacct_connect.conf import app_settings
    from intacct_connect.models import JobRun
    from tests.job_factories import make_connection

    log = workdir / f"deliveries-{time.monotonic_ns()}.log"
    run = JobRun.objects.create(
        job="test_kill_own_worker", connection=make_connection(), params={"log": str(log)}
    )
    group.send("intacct_connect.run_job", run.pk)
    wait_until(
        lambda: JobRun.objects.filter(
            pk=run.pk, status__in=["parked", "failed", "skipped", "succeeded"]
        ).exists(),
        180,
        "parking",
    )
    executions = len(log.read_text().split())
    time.sleep(2)
    run.refresh_from_db()
    return ParkFigures(
        max_deliveries=int(app_settings.MAX_DELIVERIES),
        deliveries=run.delivery_count,
        executions=executions,
        status=run.status,
        error_code=run.error_code,
        requeued_after_parking=len(log.read_text().split()) != executions,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    from bench.proof_harness import bench_environment, broker_url, cluster, print_figures

    with bench_environment("proof_worker_kill") as emulator:
        with cluster(broker_url(12), emulator.base_url, PROOF_COMPANY_CONCURRENCY="0") as group:
            group.worker(concurrency=1)
            figures = run_kill_trials(group, emulator, args.trials, mode="page")
            park = run_park_proof(group, group.workdir)
        print_figures(
            f"proof 3: worker child SIGKILLed mid-run, {args.trials} trials "
            f"(query_to_storage, 250 rows in {PAGES} pages)",
            figures.figures(),
        )
        print_figures("proof 3: a run that kills its worker on every delivery", vars(park))
        for line in figures.violations[:20]:
            print("  VIOLATION", line)


if __name__ == "__main__":
    main()
