"""Proof 4 (issue 12): the broker (Redis, append-only file on) restarted mid-run 10 times.

Run from the repository root (PostgreSQL running; Redis is started by the script)::

    .venv/bin/python bench/proof_redis_restart.py     # --restarts 10 --period 10 --connections 8

A private ``redis-server --appendonly yes`` on a free port (never the shared one) is the
broker of one ``celery beat`` (dispatch every second) and two ``celery worker -c 2``. Every
connection has one schedule of ``proof_sleep`` every ``--period`` seconds (the
dispatcher's 60-second floor lowered to 1 s, and the 60-second delay before a queued
run's lost message is sent again to half a period). Every ``1.5 * period`` seconds Redis is
shut down (SIGTERM, AOF flushed), left down for ``--down`` seconds and started again on the
same port and directory, while runs are queued and running.

Figures: runs per status, runs lost (created but never finished, or failed), the longest
gap between two runs of a connection in periods (target: at most 2), overlapping
executions, whether every worker ran jobs again after every restart and is still running
at the end, and the executions of a run: a worker's connection loss terminates its running
late-ack tasks (``worker_cancel_long_running_tasks_on_connection_loss``), so an execution
interrupted mid-job is run again (counted, expected); a run started again after its job had
run to its end is a violation. Uses a scratch database ``proof_redis_restart`` (dropped at
the end). ``--no-guard``: the control run, workers without
``intacct_connect.celery.guard_redis_channels``. ``PROOF_KEEP_LOGS=DIR`` keeps the
workers' logs and the job log (``bench/proof_harness.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proof_harness import Cluster, RedisServer
from bench.proof_two_beats import Plan, ScheduleFigures, run_schedules


def run_restarts(
    group: Cluster, redis: RedisServer, restarts: int, period: int, connections: int, down: float
) -> tuple[ScheduleFigures, dict[str, Any]]:
    """Run the schedules for ``restarts`` restart cycles; returns the schedule figures and
    the restart figures (``resumed``: restarts after which every worker ran a job)."""
    cycle = period * 1.5
    restart_at = [cycle * (i + 1) for i in range(restarts)]
    done: list[float] = []

    def during(elapsed: float) -> None:
        if restart_at and elapsed >= restart_at[0]:
            restart_at.pop(0)
            redis.restart(down)
            done.append(elapsed)

    plan = Plan(
        connections,
        period,
        cycle * (restarts + 1.5),
        double=False,
        long_every=0,
        interruptions=True,
    )
    out = run_schedules(group, plan, during=during)
    alive = sum(w.proc.poll() is None for w in group.workers())
    # ``done`` holds seconds since run_schedules began; the jobs log wall-clock times.
    ends = [*done[1:], float("inf")]
    workers = len(group.workers())
    resumed = 0
    for lo, hi in zip(done, ends, strict=True):
        ran = {n for n, at in out.pid_starts if lo < at - out.started_wall < hi}
        resumed += len(ran) == workers
    if resumed < len(done):
        out.violations.append(f"workers resumed after {resumed} of {len(done)} restarts")
    if alive < workers:
        out.violations.append(f"{workers - alive} of {workers} worker processes exited")
    if out.longest_gap_periods > 2:
        out.violations.append(f"a connection waited {out.longest_gap_periods:.2f} periods")
    # Lost: failed (the message or the worker lost: "lost", "lease_expired") or never
    # finished. A run skipped because the previous one was still active is recorded.
    lost = out.not_finished + sum(n for st, n in out.runs.items() if st.startswith("failed"))
    if lost:
        out.violations.append(f"{lost} scheduled runs lost: {dict(out.runs)}")
    return out, {
        "restarts": len(done),
        "restarts after which every worker ran jobs": f"{resumed}/{len(done)}",
        "worker processes alive at the end": f"{alive}/{workers}",
        "scheduled runs lost (failed or never finished)": lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--period", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--down", type=float, default=2.0)
    parser.add_argument(
        "--no-guard",
        action="store_true",
        help="the control run: workers without intacct_connect.celery.guard_redis_channels",
    )
    args = parser.parse_args()
    from bench.proof_harness import bench_environment, cluster, print_figures

    with bench_environment("proof_redis_restart") as emulator, tempfile.TemporaryDirectory() as tmp:
        from bench.proof_jobs import lower_interval_floor  # after django.setup()

        lower_interval_floor(1)
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            with cluster(
                redis.url,
                emulator.base_url,
                PROOF_MIN_INTERVAL="1",
                PROOF_REDISPATCH_SECONDS=str(max(1, args.period // 2)),
                PROOF_REDIS_GUARD="0" if args.no_guard else "1",
            ) as group:
                group.worker(concurrency=2)
                group.worker(concurrency=2)
                group.beat()
                figures, restarts = run_restarts(
                    group, redis, args.restarts, args.period, args.connections, args.down
                )
        finally:
            redis.stop()
        print_figures(
            f"proof 4: Redis (AOF) restarted {args.restarts} times, down {args.down:.0f} s each; "
            f"1 beat, 2 workers x 2 children, {args.connections} connections, "
            f"period {args.period} s" + (" (control: no Redis channel guard)" * args.no_guard),
            {**restarts, **figures.figures()},
        )
        for line in figures.violations[:20]:
            print("  VIOLATION", line)


if __name__ == "__main__":
    main()
