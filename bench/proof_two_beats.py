"""Proof 5 (issue 12): two beat processes and four workers, for minutes, with short periods.

Run from the repository root (PostgreSQL and Redis running)::

    .venv/bin/python bench/proof_two_beats.py       # --seconds 180 --period 5 --connections 8

Two ``celery beat`` processes each send ``dispatch_due_schedules`` every second (so the
dispatcher runs about twice a second, on whichever of the four ``celery worker -c 2``
processes takes it); the dispatcher's 60-second floor on intervals is lowered to 1 s in
every process of the proof (``bench/proof_jobs.py``). Every connection has one schedule
of the job ``proof_sleep`` every ``--period`` seconds; every other connection has a second
schedule of the same job (two schedules racing for one connection), and one connection in
four runs longer than a period (the next run must be skipped, not overlap). The job logs
its own start and end, so overlaps are read from what really ran.

Figures: runs per status, runs executed twice, overlapping executions of the job on one
connection, and per schedule the periods with two runs and the periods with none.
Uses a scratch database ``proof_two_beats`` (dropped at the end) and Redis database 9.

The engine (:func:`run_schedules`, :func:`analyse`) also serves proof 4
(``proof_redis_restart.py``).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proof_harness import Cluster, wait_until


@dataclass
class Plan:
    connections: int
    period: int
    seconds: float
    double: bool = True  # a second schedule of the same job on every other connection
    long_every: int = 4  # one connection in this many runs longer than a period (0: none)
    # Proof 4 (the broker restarted): a worker's connection loss terminates its running
    # late-ack tasks, and the run is executed again. Then a run started twice is a
    # violation only if an execution had already reached the job's end; and as dispatches
    # are late while the broker is down (the next run keeps the schedule's phase), "two
    # runs in one period" means two runs in the same period of the schedule's phase.
    interruptions: bool = False


@dataclass
class ScheduleFigures:
    """The measured outcome; ``violations`` lists every broken property."""

    schedules: int = 0
    runs: collections.Counter[str] = field(default_factory=collections.Counter)
    executions: int = 0
    executed_twice: int = 0
    interrupted: int = 0
    completed_twice: int = 0
    started_after_end: int = 0
    interruptions: bool = False
    overlaps: int = 0
    double_periods: int = 0
    missed_periods: int = 0
    longest_gap_periods: float = 0.0
    not_finished: int = 0
    seconds: float = 0.0
    started_wall: float = 0.0
    pid_starts: list[tuple[int, float]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "schedules": self.schedules,
            "runs by status": dict(sorted(self.runs.items())),
            "job executions": self.executions,
            "runs executed more than once": self.executed_twice,
            **(
                {
                    "  executions interrupted (started, never ended)": self.interrupted,
                    "  runs whose job ran to its end more than once": self.completed_twice,
                    "  runs started again after their job had ended": self.started_after_end,
                }
                if self.interruptions
                else {}
            ),
            "overlapping executions on one connection": self.overlaps,
            "periods with two runs of a schedule": self.double_periods,
            "due periods without a run": self.missed_periods,
            "longest gap between a connection's runs (periods)": round(self.longest_gap_periods, 2),
            "runs not finished at the end": self.not_finished,
            "wall time (s)": round(self.seconds, 1),
            "violations": len(self.violations),
        }


def create_schedules(plan: Plan, log: Path) -> dict[int, int]:
    """The plan's connections and schedules, first due in a few seconds; returns each
    schedule's sleep in seconds."""
    from django.utils import timezone

    from intacct_connect.models import Schedule
    from tests.job_factories import make_connection

    start = timezone.now() + timedelta(seconds=3)
    sleeps: dict[int, int] = {}
    for i in range(plan.connections):
        conn = make_connection()
        long_run = plan.long_every and i % plan.long_every == plan.long_every - 1
        names = ("a", "b") if plan.double and i % 2 else ("a",)
        for j, name in enumerate(names):
            sleep = plan.period * 1.3 if long_run else plan.period * (0.15 + 0.1 * (i % 4))
            schedule = Schedule.objects.create(
                name=f"proof {conn.pk} {name}",
                job="proof_sleep",
                params={"log": str(log), "sleep": sleep},
                connection=conn,
                interval_seconds=plan.period,
                next_run_at=start + timedelta(seconds=(i * 0.37 + j * 0.5) % plan.period),
            )
            sleeps[schedule.pk] = int(sleep)
    return sleeps


def run_schedules(
    group: Cluster,
    plan: Plan,
    *,
    during: Callable[[float], None] | None = None,
) -> ScheduleFigures:
    """Let the group's beats and workers run the plan's schedules for ``plan.seconds``
    (``during(elapsed)`` is called about every 0.2 s, e.g. to restart the broker), then
    pause the schedules, let the runs finish and analyse what happened."""
    from django.utils import timezone

    from intacct_connect.models import JobRun, Schedule

    log = group.workdir / "executions.log"
    log.touch()
    sleeps = create_schedules(plan, log)
    firsts = dict(Schedule.objects.values_list("pk", "next_run_at"))
    started, started_wall = time.monotonic(), time.time()
    pids: dict[int, int] = {}
    while (elapsed := time.monotonic() - started) < plan.seconds + 3:
        if during is not None:
            during(elapsed)
        for n, worker in enumerate(group.workers()):
            for child in worker.children():
                pids[child.pid] = n
        time.sleep(0.2)
    Schedule.objects.update(enabled=False)
    stop_at = timezone.now()
    wait_until(
        lambda: not JobRun.objects.filter(status__in=["queued", "running"]).exists(),
        plan.period * 3 + 60,
        "the last runs to finish",
    )
    out = analyse(log, plan, firsts, stop_at)
    out.seconds = time.monotonic() - started
    out.started_wall = started_wall
    out.schedules = len(sleeps)
    out.pid_starts = [(pids.get(pid, -1), at) for pid, at in out.pid_starts]
    return out


def analyse(log: Path, plan: Plan, firsts: dict[int, Any], stop_at: Any) -> ScheduleFigures:
    from intacct_connect.models import JobRun

    out = ScheduleFigures(interruptions=plan.interruptions)
    spans: dict[int, dict[int, list[float]]] = collections.defaultdict(dict)
    starts: collections.Counter[int] = collections.Counter()
    events: dict[int, list[tuple[float, str]]] = collections.defaultdict(list)
    for line in log.read_text().split("\n"):
        if not line:
            continue
        event, pid, run_pk, conn_pk, at = line.split()
        spans[int(conn_pk)].setdefault(int(run_pk), []).append(float(at))
        events[int(run_pk)].append((float(at), event))
        if event == "start":
            starts[int(run_pk)] += 1
            out.pid_starts.append((int(pid), float(at)))
    out.executions = sum(starts.values())
    out.executed_twice = sum(1 for n in starts.values() if n > 1)
    for run_events in events.values():
        kinds = [event for _, event in sorted(run_events)]
        out.interrupted += kinds.count("start") - kinds.count("end")
        out.completed_twice += kinds.count("end") > 1
        out.started_after_end += "end" in kinds and "start" in kinds[kinds.index("end") :]
    for conn, runs in spans.items():
        intervals = sorted((min(t), max(t)) for t in runs.values())
        for (_, end), (start, _) in itertools.pairwise(intervals):
            if start < end:
                out.overlaps += 1
                out.violations.append(f"connection {conn}: executions overlap")
    period = float(plan.period)
    step = timedelta(seconds=period)
    by_schedule: dict[int, list[Any]] = collections.defaultdict(list)
    for run in JobRun.objects.order_by("queued_at"):
        out.runs[f"{run.status} {run.error_code}".strip()] += 1
        if run.status in ("queued", "running"):
            out.not_finished += 1
        if run.schedule_id is not None:
            by_schedule[run.schedule_id].append(run.queued_at)
    for pk, first in firsts.items():
        times = [first, *by_schedule.get(pk, []), stop_at]
        if plan.interruptions:
            doubles = _early_runs(first, times[1:-1], step)
        else:
            doubles = [b for a, b in itertools.pairwise(times[1:-1]) if b - a < step / 2]
        for b in doubles:
            out.double_periods += 1
            out.violations.append(f"schedule {pk}: two runs in one period at {b}")
        for a, b in itertools.pairwise(times):
            gap = (b - a).total_seconds() / period
            out.longest_gap_periods = max(out.longest_gap_periods, gap)
            if gap > 1.5:
                out.missed_periods += round(gap) - 1
    if plan.interruptions:
        if out.completed_twice or out.started_after_end:
            out.violations.append(
                f"{out.started_after_end} runs started again after their job had ended "
                f"({out.completed_twice} ran to the end twice)"
            )
    elif out.executed_twice:
        out.violations.append(f"{out.executed_twice} runs executed more than once")
    if out.not_finished:
        out.violations.append(f"{out.not_finished} runs never finished")
    return out


def _early_runs(first: Any, queued: list[Any], step: timedelta) -> list[Any]:
    """The runs queued before they were due. The due times are replayed with the
    dispatcher's rule (``Schedule.next_run_after``: the next run keeps the phase,
    ``due + step``, while that is still after the claim, else ``claim + step``), so a late
    run followed by an on-time one is not a double, and a second run of one period (queued
    before the next due time) is."""
    early, due = [], first
    for at in queued:
        if at < due - timedelta(milliseconds=50):
            early.append(at)
        due = due + step if due + step > at else at + step
    return early


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--period", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    from bench.proof_harness import bench_environment, broker_url, cluster, print_figures

    plan = Plan(args.connections, args.period, args.seconds)
    with bench_environment("proof_two_beats") as emulator:
        from bench.proof_jobs import lower_interval_floor  # after django.setup()

        lower_interval_floor(1)
        with cluster(broker_url(9), emulator.base_url, PROOF_MIN_INTERVAL="1") as group:
            for _ in range(4):
                group.worker(concurrency=2)
            group.beat()
            group.beat()
            figures = run_schedules(group, plan)
        print_figures(
            f"proof 5: 2 beats, 4 workers x 2 children, {args.connections} connections, "
            f"period {args.period} s, {args.seconds:.0f} s",
            figures.figures(),
        )
        for line in figures.violations[:20]:
            print("  VIOLATION", line)


if __name__ == "__main__":
    main()
