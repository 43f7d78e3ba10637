"""Proof 5 of issue 12, sized for CI (the full size: ``bench/proof_two_beats.py``): real
beat and worker processes running database schedules with short periods, on PostgreSQL.

Proof 4 (Redis restarted mid-run, ``bench/proof_redis_restart.py``) has its own module,
``tests/test_proof_redis_restart.py``."""

from __future__ import annotations

import pytest

from bench.proof_harness import broker_url, cluster
from bench.proof_two_beats import Plan, run_schedules
from intacct_connect.testing.emulator import EmulatorServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.redis
def test_two_beats_four_workers_no_overlap_one_run_per_period(
    intacct_connect_settings: EmulatorServer, short_periods: None
) -> None:
    plan = Plan(connections=4, period=5, seconds=30)
    with cluster(broker_url(10), intacct_connect_settings.base_url, PROOF_MIN_INTERVAL="1") as g:
        for _ in range(4):
            g.worker(concurrency=1)
        g.beat()
        g.beat()
        out = run_schedules(g, plan)
    assert not out.violations, (out.violations, out.figures())
    assert out.overlaps == out.double_periods == out.missed_periods == 0, out.figures()
    assert out.runs["skipped overlap"] > 0  # the long schedule and the second ones raced
    assert out.executions >= 4 * 30 // 5 - 4
