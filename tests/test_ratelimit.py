"""The per-company concurrency cap (intacct_connect.ratelimit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test import override_settings
from django.utils import timezone

from intacct_connect import ratelimit
from intacct_connect.conf import app_settings
from intacct_connect.exceptions import RateLimited
from intacct_connect.models import ConcurrencySlot
from tests.settings import INTACCT_CONNECT


def _settings(**overrides: object) -> override_settings:
    return override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, **overrides})


def _slot_sql(sql: str, params: list[object]) -> None:
    """Run SQL on the connection the rate limiter uses (a private one on PostgreSQL)."""
    db = ratelimit._wrapper()
    with db.cursor() as cursor:
        cursor.execute(
            sql.replace("{table}", db.ops.quote_name(ConcurrencySlot._meta.db_table)), params
        )


def _expire(company: str, slot: int | None = None) -> None:
    """Pretend the holder of a slot crashed long ago: its lease is in the past."""
    db = ratelimit._wrapper()
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
    ratelimit.close_private_connection()


@pytest.mark.django_db
def test_claims_at_most_the_configured_number_of_slots() -> None:
    first = ratelimit.try_acquire("ACME")
    second = ratelimit.try_acquire("ACME")
    assert first is not None
    assert second is not None
    assert {first[0], second[0]} == {0, 1}
    assert ratelimit.try_acquire("ACME") is None
    assert ratelimit.busy_slots("ACME") == 2
    # Another company has its own slots.
    assert ratelimit.try_acquire("OTHER") is not None
    ratelimit.release("ACME", *first)
    assert ratelimit.busy_slots("ACME") == 1
    again = ratelimit.try_acquire("ACME")
    assert again is not None
    assert again[0] == first[0]


@pytest.mark.django_db
def test_release_by_a_stale_holder_does_not_free_a_reclaimed_slot() -> None:
    with _settings(COMPANY_CONCURRENCY=1):
        slot, holder = ratelimit.acquire("ACME")
        # The holder crashed: its slot expired and someone else claimed it.
        _expire("ACME")
        new_slot, new_holder = ratelimit.acquire("ACME", timeout=0)
        ratelimit.release("ACME", slot, holder)  # late release of the crashed holder
        assert ratelimit.busy_slots("ACME") == 1
        assert ConcurrencySlot.objects.get(company_id="ACME", slot=new_slot).holder == new_holder


@pytest.mark.django_db
def test_slots_of_crashed_holders_are_reclaimed_after_the_ttl() -> None:
    with _settings(COMPANY_CONCURRENCY=2, CONCURRENCY_SLOT_TTL=120):
        assert ratelimit.try_acquire("ACME") is not None
        assert ratelimit.try_acquire("ACME") is not None
        assert ratelimit.try_acquire("ACME") is None
        held = ConcurrencySlot.objects.get(company_id="ACME", slot=0).held_until
        assert held is not None
        ttl = (held - timezone.now()).total_seconds()
        assert 110 < ttl <= 120
        _expire("ACME", 0)
        reclaimed = ratelimit.try_acquire("ACME")
        assert reclaimed is not None
        assert reclaimed[0] == 0


@pytest.mark.django_db
def test_waiting_for_a_busy_company_times_out_with_rate_limited() -> None:
    with _settings(COMPANY_CONCURRENCY=1):
        ratelimit.acquire("ACME")
        started = time.monotonic()
        with pytest.raises(RateLimited, match="concurrency slots of Intacct company ACME"):
            ratelimit.acquire("ACME", timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2


@pytest.mark.django_db
def test_zero_disables_the_cap() -> None:
    with _settings(COMPANY_CONCURRENCY=0), ratelimit.company_slot("ACME") as slot:
        assert slot is None
        assert not ConcurrencySlot.objects.exists()


@pytest.mark.django_db
def test_company_slot_releases_on_error() -> None:
    seen: list[int] = []

    def fail_inside_slot() -> None:
        with ratelimit.company_slot("ACME"):
            seen.append(ratelimit.busy_slots("ACME"))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail_inside_slot()
    assert seen == [1]
    assert ratelimit.busy_slots("ACME") == 0


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
                with ratelimit.company_slot("ACME", timeout=30):
                    with lock:
                        inside += 1
                        highest = max(highest, inside)
                    time.sleep(0.01)
                    with lock:
                        inside -= 1
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            ratelimit.close_private_connection()
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert highest == limit
    assert ratelimit.busy_slots("ACME") == 0
