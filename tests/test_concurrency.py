"""The per-company concurrency cap (intacct_connect.concurrency)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import time_machine
from django.conf import settings as django_settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection as db_connection
from django.test import override_settings
from django.utils import timezone

from intacct_connect import concurrency
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import IntacctConfigurationError, RateLimited
from intacct_connect.models import ApiCallLog, ConcurrencySlot
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import (
    cache_config,
    count_statements,
    require_postgres,
    run_released_together,
)
from tests.settings import INTACCT_CONNECT

ROOT = Path(__file__).resolve().parent.parent


def _settings(**overrides: object) -> override_settings:
    return override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, **overrides})


def _settings_merge(**overrides: object) -> override_settings:
    """Like _settings, on top of the current INTACCT_CONNECT (keeps a fixture's backend)."""
    return override_settings(INTACCT_CONNECT={**django_settings.INTACCT_CONNECT, **overrides})


def _slot_sql(sql: str, params: list[object]) -> None:
    """Run SQL on the connection the rate limiter uses (a private one on PostgreSQL)."""
    db = concurrency._wrapper()
    with db.cursor() as cursor:
        cursor.execute(
            sql.replace("{table}", db.ops.quote_name(ConcurrencySlot._meta.db_table)), params
        )


def _expire(company: str, slot: int | None = None) -> None:
    """Pretend the holder of a slot crashed long ago: its lease is in the past."""
    db = concurrency._wrapper()
    past = db.ops.adapt_datetimefield_value(timezone.now() - timedelta(seconds=1))
    if slot is None:
        _slot_sql("UPDATE {table} SET held_until = %s WHERE company_id = %s", [past, company])
    else:
        _slot_sql(
            "UPDATE {table} SET held_until = %s WHERE company_id = %s AND slot = %s",
            [past, company, slot],
        )


@pytest.fixture(autouse=True)
def _clean_slots(db: None) -> Iterator[None]:
    """Slot rows written on PostgreSQL's private connection are committed: remove them."""
    yield
    _slot_sql("DELETE FROM {table}", [])
    concurrency.close_private_connection()


@pytest.mark.django_db
def test_claims_at_most_the_configured_number_of_slots() -> None:
    first = concurrency.try_acquire("ACME")
    second = concurrency.try_acquire("ACME")
    assert first is not None
    assert second is not None
    assert {first[0], second[0]} == {0, 1}
    assert concurrency.try_acquire("ACME") is None
    assert concurrency.busy_slots("ACME") == 2
    # Another company has its own slots.
    assert concurrency.try_acquire("OTHER") is not None
    concurrency.release("ACME", first.slot, first.holder)
    assert concurrency.busy_slots("ACME") == 1
    again = concurrency.try_acquire("ACME")
    assert again is not None
    assert again[0] == first[0]


@pytest.mark.django_db
def test_release_by_a_stale_holder_does_not_free_a_reclaimed_slot() -> None:
    with _settings(COMPANY_CONCURRENCY=1):
        slot, holder, _ = concurrency.acquire("ACME")
        # The holder crashed: its slot expired and someone else claimed it.
        _expire("ACME")
        new_slot, new_holder, _ = concurrency.acquire("ACME", timeout=0)
        concurrency.release("ACME", slot, holder)  # late release of the crashed holder
        assert concurrency.busy_slots("ACME") == 1
        assert ConcurrencySlot.objects.get(company_id="ACME", slot=new_slot).holder == new_holder


@pytest.mark.django_db
def test_slots_of_crashed_holders_are_reclaimed_after_the_ttl() -> None:
    with _settings(COMPANY_CONCURRENCY=2, CONCURRENCY_SLOT_TTL=120):
        assert concurrency.try_acquire("ACME") is not None
        assert concurrency.try_acquire("ACME") is not None
        assert concurrency.try_acquire("ACME") is None
        held = ConcurrencySlot.objects.get(company_id="ACME", slot=0).held_until
        assert held is not None
        ttl = (held - timezone.now()).total_seconds()
        assert 110 < ttl <= 120
        _expire("ACME", 0)
        reclaimed = concurrency.try_acquire("ACME")
        assert reclaimed is not None
        assert reclaimed[0] == 0


@pytest.mark.django_db
def test_waiting_for_a_busy_company_times_out_with_rate_limited() -> None:
    with _settings(COMPANY_CONCURRENCY=1):
        concurrency.acquire("ACME")
        started = time.monotonic()
        with pytest.raises(RateLimited, match="concurrency slots of Intacct company ACME"):
            concurrency.acquire("ACME", timeout=0.05)
        assert 0.05 <= time.monotonic() - started < 2


@pytest.mark.django_db
def test_zero_disables_the_cap() -> None:
    with _settings(COMPANY_CONCURRENCY=0), concurrency.company_slot("ACME") as slot:
        assert slot is None
        assert not ConcurrencySlot.objects.exists()


@pytest.mark.django_db
def test_company_slot_releases_on_error() -> None:
    seen: list[int] = []

    def fail_inside_slot() -> None:
        with concurrency.company_slot("ACME"):
            seen.append(concurrency.busy_slots("ACME"))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_inside_slot()
    assert seen == [1]
    assert concurrency.busy_slots("ACME") == 0


@pytest.mark.django_db(transaction=True)
def test_threads_never_exceed_the_cap() -> None:
    """Eight threads hammer one company: never more than COMPANY_CONCURRENCY inside."""
    limit = app_settings.COMPANY_CONCURRENCY
    inside = 0
    highest = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal inside, highest
        try:
            for _ in range(5):
                with concurrency.company_slot("ACME", timeout=30):
                    with lock:
                        inside += 1
                        highest = max(highest, inside)
                    time.sleep(0.01)
                    with lock:
                        inside -= 1
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            concurrency.close_private_connection()
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert highest == limit
    assert concurrency.parked_slots("ACME") <= limit
    concurrency.release_parked()
    assert concurrency.busy_slots("ACME") == 0


# --- the cache backend -----------------------------------------------------------------

SLOTS_CACHE = "intacct_slots"


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def cache_slots(request: pytest.FixtureRequest, settings: Any) -> Iterator[BaseCache]:
    """CONCURRENCY_BACKEND = 'cache' on a LocMemCache, then on a real Redis."""
    config = cache_config(request.param, request.param)
    settings.CACHES = {**settings.CACHES, SLOTS_CACHE: config}
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        "CONCURRENCY_BACKEND": "cache",
        "CONCURRENCY_CACHE": SLOTS_CACHE,
    }
    cache = caches[SLOTS_CACHE]
    yield cache
    cache.clear()


def _held(cache: BaseCache, company: str, slot: int) -> object:
    return cache.get(concurrency.slot_key(company, slot))


@pytest.mark.django_db
def test_cache_claims_at_most_the_configured_number_of_slots(cache_slots: BaseCache) -> None:
    first = concurrency.try_acquire("ACME")
    second = concurrency.try_acquire("ACME")
    assert first is not None
    assert second is not None
    assert {first.slot, second.slot} == {0, 1}
    assert concurrency.try_acquire("ACME") is None
    assert concurrency.busy_slots("ACME") == 2
    assert str(_held(cache_slots, "ACME", first.slot)) == first.holder
    assert concurrency.try_acquire("OTHER CO/1") is not None  # any company id makes a safe key
    concurrency.release("ACME", first.slot, first.holder)
    assert concurrency.busy_slots("ACME") == 1
    again = concurrency.try_acquire("ACME")
    assert again is not None
    assert again.slot == first.slot
    assert not ConcurrencySlot.objects.exists()  # the database is not used


@pytest.mark.django_db
def test_cache_release_by_a_stale_holder_does_not_free_a_reclaimed_slot(
    cache_slots: BaseCache,
) -> None:
    with _settings_merge(COMPANY_CONCURRENCY=1):
        slot, holder, _ = concurrency.acquire("ACME")
        cache_slots.delete(concurrency.slot_key("ACME", slot))  # its TTL ran out
        new_slot, new_holder, _ = concurrency.acquire("ACME", timeout=0)
        concurrency.release("ACME", slot, holder)  # late release of the crashed holder
        assert concurrency.busy_slots("ACME") == 1
        assert str(_held(cache_slots, "ACME", new_slot)) == new_holder


@pytest.mark.django_db
def test_cache_slots_of_crashed_holders_expire_after_the_ttl(cache_slots: BaseCache) -> None:
    with _settings_merge(COMPANY_CONCURRENCY=1, CONCURRENCY_SLOT_TTL=1):
        crashed = concurrency.try_acquire("ACME")  # never released
        assert crashed is not None
        assert concurrency.try_acquire("ACME") is None
        if isinstance(cache_slots, RedisCache):
            time.sleep(1.05)  # real expiry on the server
        else:
            with time_machine.travel(timezone.now() + timedelta(seconds=1.5), tick=False):
                assert concurrency.try_acquire("ACME") is not None
            return
        assert concurrency.try_acquire("ACME") is not None


@pytest.mark.django_db
def test_cache_waiting_for_a_busy_company_times_out(cache_slots: BaseCache) -> None:
    with _settings_merge(COMPANY_CONCURRENCY=1):
        concurrency.acquire("ACME")
        started = time.monotonic()
        with pytest.raises(RateLimited, match="concurrency slots of Intacct company ACME"):
            concurrency.acquire("ACME", timeout=0.05)
        assert 0.05 <= time.monotonic() - started < 2


@pytest.mark.django_db
def test_cache_company_slot_releases_on_error(cache_slots: BaseCache) -> None:
    seen: list[int] = []

    def fail_inside_slot() -> None:
        with concurrency.company_slot("ACME"):
            seen.append(concurrency.busy_slots("ACME"))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_inside_slot()
    assert seen == [1]
    assert concurrency.busy_slots("ACME") == 0


@pytest.mark.django_db
def test_unknown_backend_or_cache_is_a_configuration_error(settings: Any) -> None:
    with (
        _settings_merge(CONCURRENCY_BACKEND="redis"),
        pytest.raises(IntacctConfigurationError, match="CONCURRENCY_BACKEND"),
    ):
        concurrency.try_acquire("ACME")
    with (
        _settings_merge(CONCURRENCY_BACKEND="cache", CONCURRENCY_CACHE="nowhere"),
        pytest.raises(IntacctConfigurationError, match="CONCURRENCY_CACHE"),
    ):
        concurrency.try_acquire("ACME")


@pytest.mark.django_db
def test_cache_threads_through_the_emulator_stay_under_the_cap(
    cache_slots: BaseCache, intacct_emulator: EmulatorServer
) -> None:
    """Six threads call one slow company, each request inside a cache slot: the emulator
    (Intacct's limit 2) sees at most 2 requests at once and throttles none."""
    intacct_emulator.configure(concurrency_limit=2)
    intacct_emulator.set_fault("slow", company="DEMO-CO", seconds=0.05)
    token = intacct_emulator.issue_tokens("DEMO-CO", "admin", None)["access_token"]
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        session = requests.Session()
        try:
            barrier.wait(10)
            for _ in range(3):
                with concurrency.company_slot("DEMO-CO", timeout=30):
                    response = session.get(
                        f"{intacct_emulator.base_url}/objects/accounts-payable/vendor/1",
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=10,
                    )
                    response.raise_for_status()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            session.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert intacct_emulator.max_concurrency("DEMO-CO") == 2
    assert intacct_emulator.counters()["throttled"].get("DEMO-CO", 0) == 0
    assert concurrency.release_parked() <= 2
    assert concurrency.busy_slots("DEMO-CO") == 0


def test_cache_threads_never_exceed_the_cap(cache_slots: BaseCache) -> None:
    """Eight threads hammer one company through the cache: never more than the cap."""
    limit = app_settings.COMPANY_CONCURRENCY
    inside = 0
    highest = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal inside, highest
        try:
            for _ in range(5):
                with concurrency.company_slot("ACME", timeout=30):
                    with lock:
                        inside += 1
                        highest = max(highest, inside)
                    time.sleep(0.01)
                    with lock:
                        inside -= 1
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert highest == limit
    assert concurrency.parked_slots("ACME") <= limit
    concurrency.release_parked()
    assert concurrency.busy_slots("ACME") == 0


# A worker process: Django set up on its own, slots in the shared Redis, requests to the
# emulator. It prints "ready", waits for "go" on stdin, then makes its calls: inside
# concurrency.company_slot with a bare requests session, or (mode "client", PostgreSQL: the
# test database is shared) with IntacctClient.get.
_PROCESS_WORKER = """
import json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
from django.conf import settings
import requests
django.setup()
config = json.loads(os.environ["INTACCT_SLOT_TEST"])
settings.CACHES = {**settings.CACHES, "intacct_slots": config["cache"]}
settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, **config["connect"]}
from intacct_connect import concurrency
from intacct_connect.client import IntacctClient
from intacct_connect.conf import app_settings
app_settings.reload()
session = requests.Session()
print("ready", flush=True)
sys.stdin.readline()
for _ in range(config["calls"]):
    if config["mode"] == "client":
        assert IntacctClient(config["connection"]).get("accounts-payable/vendor", "1")["key"] == "1"
        continue
    with concurrency.company_slot("DEMO-CO", timeout=30):
        session.get(config["url"], headers={"Authorization": "Bearer " + config["token"]},
                    timeout=10).raise_for_status()
print("done", flush=True)
"""


def _run_processes(
    emulator: EmulatorServer, settings: Any, count: int, backend: str = "cache", **config: Any
) -> None:
    """Start ``count`` worker processes sharing one Redis (or the PostgreSQL test
    database) for the slots, release them together, and check the cap held at the
    emulator."""
    emulator.configure(concurrency_limit=2)
    emulator.set_fault("slow", company="DEMO-CO", seconds=0.05)
    cache = cache_config("redis")
    settings.CACHES = {**settings.CACHES, SLOTS_CACHE: cache}
    connect = {
        **emulator.connect_settings(),
        "RETRY_BACKOFF": 0.01,
        "RETRY_BACKOFF_MAX": 0.05,
        "CONCURRENCY_BACKEND": backend,
        "CONCURRENCY_CACHE": SLOTS_CACHE,
    }
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, **connect}
    config = {"cache": cache, "connect": connect, "calls": 5, **config}
    env = {**os.environ, "INTACCT_SLOT_TEST": json.dumps(config)}
    if db_connection.vendor == "postgresql":
        name = db_connection.settings_dict["NAME"]
        assert name.startswith("test_"), name  # never the development database
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    outputs = run_released_together(
        [sys.executable, "-c", _PROCESS_WORKER], count=count, env=env, cwd=ROOT
    )
    assert [out.strip() for out in outputs] == ["done"] * count, outputs
    try:
        assert emulator.max_concurrency("DEMO-CO") == 2
        assert emulator.counters()["throttled"].get("DEMO-CO", 0) == 0
        assert concurrency.busy_slots("DEMO-CO") == 0
    finally:
        caches[SLOTS_CACHE].clear()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db
def test_cache_cap_holds_across_processes_on_redis(
    intacct_emulator: EmulatorServer, settings: Any
) -> None:
    """Four processes hammer one slow company, each request inside a slot of the shared
    Redis: the emulator never sees more than COMPANY_CONCURRENCY (2) at once."""
    token = intacct_emulator.issue_tokens("DEMO-CO", "admin", None)["access_token"]
    url = f"{intacct_emulator.base_url}/objects/accounts-payable/vendor/1"
    _run_processes(intacct_emulator, settings, 4, mode="slot", token=token, url=url)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["cache", "database"])
def test_clients_in_processes_share_the_cap(
    intacct_emulator: EmulatorServer, settings: Any, backend: str
) -> None:
    """Three processes call one slow company through IntacctClient, each reusing its
    parked slot between calls, with the slots in Redis or in the PostgreSQL database
    (the default): the emulator never sees more than 2 at once, and every slot is free
    once the processes have exited."""
    require_postgres()
    conn = factories.connection(intacct_emulator)
    _run_processes(
        intacct_emulator, settings, 3, backend=backend, mode="client", connection=conn.pk
    )
    assert ConcurrencySlot.objects.filter(holder__gt="").count() == 0
    assert ApiCallLog.objects.filter(connection=conn, status=200).count() == 15


# --- parked slots ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_finished_slot_is_parked_and_reused_without_a_statement() -> None:
    lease = concurrency.acquire("ACME")
    concurrency.finish("ACME", lease)
    assert concurrency.parked_slots("ACME") == 1
    assert concurrency.busy_slots("ACME") == 1  # still claimed for every other process
    again: list[concurrency.Lease] = []
    assert count_statements(lambda: again.append(concurrency.acquire("ACME"))) == 0
    assert again[0] == lease
    assert concurrency.parked_slots("ACME") == 0
    concurrency.finish("ACME", again[0])
    assert concurrency.release_parked("OTHER") == 0
    assert concurrency.release_parked("ACME") == 1
    assert concurrency.busy_slots("ACME") == 0


@pytest.mark.django_db(transaction=True)
def test_parked_slots_still_count_against_the_cap() -> None:
    """Two slots parked by this process: a claim from elsewhere (try_acquire does not
    look at this process's parked slots) finds none free."""
    first, second = concurrency.acquire("ACME"), concurrency.acquire("ACME")
    concurrency.finish("ACME", first)
    concurrency.finish("ACME", second)
    assert concurrency.try_acquire("ACME") is None
    concurrency.release_parked()
    assert concurrency.try_acquire("ACME") is not None


@pytest.mark.django_db(transaction=True)
def test_the_releaser_frees_a_slot_nobody_takes_back() -> None:
    with _settings(CONCURRENCY_SLOT_LINGER=0.05):
        concurrency.finish("ACME", concurrency.acquire("ACME"))
        deadline = time.monotonic() + 5
        while concurrency.busy_slots("ACME") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert concurrency.busy_slots("ACME") == 0
        assert concurrency.parked_slots() == 0


@pytest.mark.django_db(transaction=True)
def test_linger_zero_releases_at_once() -> None:
    with _settings(CONCURRENCY_SLOT_LINGER=0):
        concurrency.finish("ACME", concurrency.acquire("ACME"))
        assert concurrency.parked_slots() == 0
        assert concurrency.busy_slots("ACME") == 0


@pytest.mark.django_db(transaction=True)
def test_an_old_slot_is_released_and_claimed_afresh() -> None:
    """A slot is reused only while younger than half its TTL, so a long sync never runs
    on a lease about to expire."""
    with _settings(CONCURRENCY_SLOT_TTL=2):
        old = concurrency.acquire("ACME")
        # Claimed 0.6 s ago: young enough to park under a TTL of 2 s ...
        concurrency.finish("ACME", old._replace(claimed_at=old.claimed_at - 0.6))
        assert concurrency.parked_slots() == 1
    with _settings(CONCURRENCY_SLOT_TTL=1):
        # ... but no longer young enough to reuse under a TTL of 1 s (0.6 >= 1 / 2).
        fresh = concurrency.acquire("ACME")
        assert fresh.holder != old.holder
        assert concurrency.busy_slots("ACME") == 1  # the old one was released
        concurrency.finish("ACME", old._replace(claimed_at=time.monotonic() - 1))
        assert concurrency.parked_slots() == 0  # too old to park: released
        concurrency.finish("ACME", fresh)
        concurrency.release_parked()


@pytest.mark.django_db
def test_inside_a_transaction_on_sqlite_a_slot_is_released_at_once() -> None:
    """SQLite: the slot statements run in the caller's transaction, so the slot cannot
    outlive the request. PostgreSQL: they run on the private connection, so it parks."""
    concurrency.finish("ACME", concurrency.acquire("ACME"))
    if db_connection.vendor == "sqlite":
        assert concurrency.parked_slots() == 0
        assert concurrency.busy_slots("ACME") == 0
    else:
        assert concurrency.parked_slots() == 1
        concurrency.release_parked()


@pytest.mark.django_db(transaction=True)
def test_parked_slots_are_kept_apart_per_store(settings: Any) -> None:
    """A slot parked in the database is never handed to a request counting on the cache
    (settings changed at run time, as in tests), and each is released in its own store."""
    concurrency.finish("ACME", concurrency.acquire("ACME"))
    settings.CACHES = {**settings.CACHES, SLOTS_CACHE: cache_config("locmem", "locmem")}
    with _settings_merge(CONCURRENCY_BACKEND="cache", CONCURRENCY_CACHE=SLOTS_CACHE):
        in_cache = concurrency.acquire("ACME")
        assert concurrency.parked_slots("ACME") == 1  # the database one is untouched
        concurrency.finish("ACME", in_cache)
        assert concurrency.parked_slots("ACME") == 2
        assert concurrency.release_parked() == 2
        assert concurrency.busy_slots("ACME") == 0
    assert concurrency.busy_slots("ACME") == 0
    caches[SLOTS_CACHE].clear()


@pytest.mark.django_db(transaction=True)
def test_company_slot_parks_after_a_block_that_succeeds() -> None:
    with concurrency.company_slot("ACME") as slot:
        assert slot in (0, 1)
    assert concurrency.parked_slots("ACME") == 1
    concurrency.release_parked()
    assert concurrency.busy_slots("ACME") == 0
