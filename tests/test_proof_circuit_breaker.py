"""Failure proof 6, sized for CI: ``bench/proof_circuit_breaker.py`` with 6 companies, 2
processes x 3 threads and 8 s per phase (the script makes its own scratch database and
emulator; the breakers live in Redis, the concurrency slots in PostgreSQL). One company
answers nothing within the read timeout; its breaker opens, the others keep answering.
The full size (10 companies, 4 x 4, 20 s) is in ``docs/reliability.rst``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parent.parent


def test_a_hanging_company_trips_its_breaker_and_spares_the_others() -> None:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/postgres"
    env["BENCH_REDIS_URL"] = os.environ["REDIS_URL"]
    done = subprocess.run(
        [
            sys.executable, "bench/proof_circuit_breaker.py", "--json", "--companies", "6",
            "--processes", "2", "--threads", "3", "--seconds", "8", "--open-seconds", "3",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    baseline, breaker, unprotected = figures["baseline"], figures["breaker"], figures["no breaker"]
    assert baseline["faulty company outcomes"] == {"ok": baseline["faulty company calls"]}
    # The breaker opened: the faulty company's calls failed fast, few requests were sent.
    assert breaker["faulty company outcomes"].get("fast_fail", 0) > 0
    bound = figures["bound on requests to the faulty company"]
    assert breaker["faulty company requests sent"] <= bound
    assert breaker["faulty company requests sent"] < unprotected["faulty company requests sent"]
    # The others: every call answered, the cap held, nobody throttled.
    for phase in (baseline, breaker, unprotected):
        assert phase["healthy success rate"] == 100.0
        assert phase["max concurrency at the emulator, healthy companies"] <= 2
        assert phase["throttled (429)"] == 0
    assert breaker["healthy calls per second"] > 2 * unprotected["healthy calls per second"]
    # p95 within 25 % is the full-size target (docs/reliability.rst); 8-second phases on
    # two shared cores measured 0.57 to 1.45 x, so CI guards against a real regression
    # (no breaker: 5 x) with a looser bound.
    assert figures["healthy p95 ratio, breaker / baseline"] <= 2.0, figures
    assert [v for v in figures["violations"] if "p95" not in v] == [], figures
