"""Proofs 3 and 8 of issue 12, sized for CI (the full size: ``bench/proof_worker_kill.py``
and ``bench/proof_query_atomic.py``): a real prefork worker whose child is SIGKILLed in
the middle of ``query_to_storage`` runs, on PostgreSQL with a Redis broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.proof_harness import Cluster, broker_url, cluster
from bench.proof_worker_kill import run_kill_trials, run_park_proof
from intacct_connect.testing.emulator import EmulatorServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def one_child(intacct_connect_settings: EmulatorServer) -> Iterator[Cluster]:
    """One worker with one child (the child to kill is the one running the task)."""
    with cluster(
        broker_url(11), intacct_connect_settings.base_url, PROOF_COMPANY_CONCURRENCY="0"
    ) as group:
        group.worker(concurrency=1)
        yield group


def test_killed_child_runs_complete_exactly_once(
    one_child: Cluster, intacct_connect_settings: EmulatorServer
) -> None:
    figures = run_kill_trials(one_child, intacct_connect_settings, 4, mode="page")
    assert not figures.violations, figures.violations
    assert figures.killed_mid_run == 4
    assert figures.completed_once == 4
    assert figures.duplicate_rows == figures.missing_rows == figures.stale_rows == 0
    assert figures.mixed_snapshots == 0
    assert figures.snapshots > 0


def test_run_killed_at_random_points_is_all_or_nothing(
    one_child: Cluster, intacct_connect_settings: EmulatorServer
) -> None:
    figures = run_kill_trials(one_child, intacct_connect_settings, 6, mode="random", seed=8)
    assert not figures.violations, figures.violations
    assert figures.mixed_snapshots == 0
    assert figures.snapshots > 0
    assert figures.completed_once == 6


def test_run_that_keeps_killing_its_worker_is_parked(one_child: Cluster, tmp_path: Path) -> None:
    park = run_park_proof(one_child, tmp_path)
    assert park.status == "parked", vars(park)
    assert park.error_code == "max_deliveries", vars(park)
    assert park.executions == park.max_deliveries
    assert park.deliveries == park.max_deliveries + 1
    assert not park.requeued_after_parking
