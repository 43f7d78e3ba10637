"""Proof 6 (issue 12): one company answering only timeouts, the others unaffected.

Run from the repository root (PostgreSQL and Redis running)::

    .venv/bin/python bench/proof_circuit_breaker.py   # --companies 10 --processes 4
                                                       # --threads 4 --seconds 20

``--processes`` worker processes (spawned) of ``--threads`` threads each call
``IntacctClient.get`` on connections of ``--companies`` companies, picked at random, with a
``--pause`` between calls, for ``--seconds`` per phase, against one emulator over real
HTTP. The concurrency cap (``COMPANY_CONCURRENCY`` = 2) is in the scratch PostgreSQL
database; the circuit breakers are in a Redis cache shared by the processes. Three phases,
each on a freshly seeded emulator, in one run:

* ``baseline``: every company answers;
* ``breaker``: company 0 answers nothing within the read timeout (each request sleeps
  ``--hang`` seconds at the emulator; ``HTTP_TIMEOUT`` read = 1 s), breaker on
  (``CIRCUIT_FAILURE_THRESHOLD`` 5, ``CIRCUIT_OPEN_SECONDS`` ``--open-seconds``);
* ``no breaker``: the same fault with ``CIRCUIT_FAILURE_THRESHOLD = 0``, for comparison.

Targets (phase ``breaker``): the other companies' success rate 100 %, their p95 latency
within 25 % of the baseline's, no company ever sees more than 2 requests the site waits
for at once, and the faulty company gets at most ``threshold + cap + probes`` requests.
``--json`` prints the figures as one JSON line (the CI test reads it). Uses a scratch
database ``proof_circuit_breaker`` (dropped at the end).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VENDOR = "accounts-payable/vendor"
CAP = 2
THRESHOLD = 5
READ_TIMEOUT = 1.0


def _company(i: int) -> str:
    return f"CB-{i:03d}"


# --- the worker processes -------------------------------------------------------------


def _worker(config: dict[str, Any], out: Any) -> None:
    """One spawned process: Django on the scratch database, ``threads`` callers."""
    os.environ["DATABASE_URL"] = config["database_url"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.INTACCT_CONNECT = config["connect"]
    settings.CACHES = {**settings.CACHES, "breakers": config["cache"]}
    from django.db import connections

    from intacct_connect.client import IntacctClient
    from intacct_connect.conf import app_settings
    from intacct_connect.exceptions import CompanyUnavailable, IntacctConnectError
    from intacct_connect.models import Connection

    app_settings.reload()
    pks = config["connections"]
    rows: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    def caller(seed: int) -> None:
        rnd = random.Random(seed)
        clients = {
            pk: IntacctClient(Connection.objects.select_related("token").get(pk=pk)) for pk in pks
        }
        mine: list[tuple[str, str, float]] = []
        while time.time() < config["start_at"]:
            time.sleep(0.005)
        end = config["start_at"] + config["seconds"]
        while time.time() < end:
            client = clients[rnd.choice(pks)]
            started = time.monotonic()
            try:
                client.get(VENDOR, "1")
                outcome = "ok"
            except CompanyUnavailable:
                outcome = "fast_fail"
            except IntacctConnectError as err:
                outcome = type(err).__name__
            mine.append((client.connection.company_id, outcome, time.monotonic() - started))
            time.sleep(config["pause"])
        for client in clients.values():
            client.close()
        connections.close_all()
        with lock:
            rows.extend(mine)

    threads = [
        threading.Thread(target=caller, args=(config["seed"] * 100 + n,))
        for n in range(config["threads"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(rows)


# --- one phase ------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def run_phase(
    emulator: Any, args: argparse.Namespace, *, fault: bool, breaker: bool
) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection, connections

    from intacct_connect.models import Connection
    from tests import factories

    emulator.reset()
    companies = [_company(i) for i in range(args.companies)]
    for company in companies:
        emulator.seed_company(company)
    Connection.objects.all().delete()
    pks = [
        factories.connection(emulator, tenant=f"t-{company}", company=company).pk
        for company in companies
    ]
    faulty = companies[0]
    if fault:
        emulator.set_fault("slow", company=faulty, seconds=args.hang)
    connect = {
        **settings.INTACCT_CONNECT,
        "HTTP_TIMEOUT": (3.05, READ_TIMEOUT),
        "COMPANY_CONCURRENCY": CAP,
        "CIRCUIT_FAILURE_THRESHOLD": THRESHOLD if breaker else 0,
        "CIRCUIT_OPEN_SECONDS": args.open_seconds,
        "CIRCUIT_CACHE": "breakers",
    }
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
    cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url,
        "KEY_PREFIX": f"proof6-{uuid.uuid4().hex}",
    }
    db = connection.settings_dict
    config = {
        "database_url": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "connect": connect,
        "cache": cache,
        "connections": pks,
        "threads": args.threads,
        "seconds": args.seconds,
        "pause": args.pause,
        "start_at": time.time() + 6.0,  # spawned processes start Django first
    }
    connections.close_all()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=({**config, "seed": n}, out))
        for n in range(args.processes)
    ]
    for proc in procs:
        proc.start()
    rows: list[tuple[str, str, float]] = []
    for _ in procs:
        rows.extend(out.get(timeout=args.seconds + 120))
    for proc in procs:
        proc.join(timeout=30)
    healthy = [r for r in rows if r[0] != faulty]
    bad = [r for r in rows if r[0] == faulty]
    latencies = [r[2] * 1000 for r in healthy if r[1] == "ok"]
    outcomes: dict[str, int] = {}
    for _company_id, outcome, _seconds in bad:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {
        "healthy calls": len(healthy),
        "healthy successes": sum(r[1] == "ok" for r in healthy),
        "healthy success rate": (
            round(100.0 * sum(r[1] == "ok" for r in healthy) / len(healthy), 3) if healthy else 0.0
        ),
        "healthy p50 ms": round(_percentile(latencies, 0.50), 1),
        "healthy p95 ms": round(_percentile(latencies, 0.95), 1),
        "healthy calls per second": round(len(healthy) / args.seconds, 1),
        "faulty company calls": len(bad),
        "faulty company outcomes": outcomes,
        "faulty company requests sent": emulator.api_calls(faulty),
        "worker seconds on the faulty company": round(sum(r[2] for r in bad), 1),
        "max concurrency at the emulator, healthy companies": max(
            emulator.max_concurrency(c) for c in companies[1:]
        ),
        "max concurrency at the emulator, faulty company": emulator.max_concurrency(faulty),
        "throttled (429)": sum(emulator.counters()["throttled"].values()),
    }


def run_proof(emulator: Any, args: argparse.Namespace) -> dict[str, Any]:
    baseline = run_phase(emulator, args, fault=False, breaker=True)
    breaker = run_phase(emulator, args, fault=True, breaker=True)
    unprotected = run_phase(emulator, args, fault=True, breaker=False)
    probes = math.ceil(args.seconds / args.open_seconds) + 1
    bound = THRESHOLD + CAP + probes
    violations = []
    if breaker["healthy success rate"] != 100.0:
        violations.append(f"healthy success rate {breaker['healthy success rate']} %")
    base_p95 = baseline["healthy p95 ms"]
    ratio = breaker["healthy p95 ms"] / base_p95 if base_p95 else 0.0
    if ratio > 1.25:
        violations.append(f"healthy p95 {ratio:.2f} x the baseline's")
    if breaker["max concurrency at the emulator, healthy companies"] > CAP:
        violations.append("a healthy company saw more than the cap at once")
    if breaker["throttled (429)"]:
        violations.append(f"{breaker['throttled (429)']} requests throttled")
    if breaker["faulty company requests sent"] > bound:
        violations.append(
            f"{breaker['faulty company requests sent']} requests to the faulty company "
            f"(bound {bound})"
        )
    return {
        "baseline": baseline,
        "breaker": breaker,
        "no breaker": unprotected,
        "healthy p95 ratio, breaker / baseline": round(ratio, 3),
        "bound on requests to the faulty company": bound,
        "violations": violations,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pause", type=float, default=0.05)
    parser.add_argument("--hang", type=float, default=3.0)
    parser.add_argument("--open-seconds", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.companies < 2 or args.processes < 1 or args.threads < 1 or args.seconds <= 0:
        parser.error("need at least 2 companies, 1 process, 1 thread and some seconds")
    from bench.proof_harness import bench_environment

    with bench_environment("proof_circuit_breaker") as emulator:
        figures = run_proof(emulator, args)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"proof 6: company 0 of {args.companies} hangs {args.hang:.0f} s per request "
        f"(read timeout {READ_TIMEOUT:.0f} s); {args.processes} processes x {args.threads} "
        f"threads, {args.seconds:.0f} s per phase, breaker threshold {THRESHOLD}, open "
        f"{args.open_seconds:.0f} s"
    )
    phases = ("baseline", "breaker", "no breaker")
    keys = list(figures["baseline"])
    width = max(len(k) for k in keys)
    print(f"  {'':<{width}}  " + "  ".join(f"{p:>14}" for p in phases))
    for key in keys:
        cells = []
        for phase in phases:
            value = figures[phase][key]
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            cells.append(f"{text:>14}")
        print(f"  {key:<{width}}  " + "  ".join(cells))
    for key in ("healthy p95 ratio, breaker / baseline", "bound on requests to the faulty company"):
        print(f"  {key}: {figures[key]}")
    print(f"  violations: {figures['violations'] or 0}")
    return 1 if figures["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
