"""The per-company circuit breaker (intacct_connect.circuit) through IntacctClient and
real HTTP against the emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches

from intacct_connect import checks, circuit, signals
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import CompanyUnavailable, IntacctAPIError, TransportError
from intacct_connect.models import ApiCallLog
from intacct_connect.scheduling import TRANSIENT_ERRORS
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories
from tests.helpers import cache_config, finish_emulator_requests, point_at_emulator

pytestmark = pytest.mark.django_db

VENDOR = "accounts-payable/vendor"


class Clock:
    """circuit.clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(circuit, "clock", fake)
    return fake


@pytest.fixture
def breaker_events() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    def opened(sender: Any, signal: Any, **kwargs: Any) -> None:
        events.append(("opened", kwargs))

    def closed(sender: Any, signal: Any, **kwargs: Any) -> None:
        events.append(("closed", kwargs))

    signals.company_circuit_opened.connect(opened)
    signals.company_circuit_closed.connect(closed)
    yield events
    signals.company_circuit_opened.disconnect(opened)
    signals.company_circuit_closed.disconnect(closed)


def _client(emulator: EmulatorServer, company: str = "DEMO-CO") -> IntacctClient:
    return IntacctClient(factories.connection(emulator, company=company))


def _trip(emulator: EmulatorServer, client: IntacctClient) -> None:
    """Five dropped connections in a row (MAX_RETRIES=3: four attempts a call)."""
    emulator.set_fault("drop", company=client.connection.company_id)
    with pytest.raises(TransportError) as first:
        client.get(VENDOR, "1")
    assert not isinstance(first.value, CompanyUnavailable)
    with pytest.raises(CompanyUnavailable):
        client.get(VENDOR, "1")


def test_consecutive_failures_open_the_breaker_and_calls_fail_fast(
    emulator: EmulatorServer, clock: Clock, breaker_events: list[Any]
) -> None:
    client = _client(emulator)
    _trip(emulator, client)
    assert emulator.api_calls("DEMO-CO") == 5  # the fifth failure opened it
    with pytest.raises(CompanyUnavailable) as info:
        client.get(VENDOR, "1")
    assert emulator.api_calls("DEMO-CO") == 5  # nothing sent
    err = info.value
    assert err.code == "circuit_open"
    assert 29 <= (err.retry_after or 0) <= 30
    assert isinstance(err, TRANSIENT_ERRORS)  # a job run retries it later
    assert [kind for kind, _ in breaker_events] == ["opened"]
    assert breaker_events[0][1] == {"company_id": "DEMO-CO", "open_seconds": 30.0, "trips": 0}
    assert circuit.state("DEMO-CO")["state"] == "open"
    client.close()
    codes = list(ApiCallLog.objects.order_by("pk").values_list("error_code", flat=True))
    assert codes[-2:] == ["circuit_open", "circuit_open"]


def test_other_companies_are_not_affected(emulator: EmulatorServer, clock: Clock) -> None:
    _trip(emulator, _client(emulator))
    other = _client(emulator, "DEMO-SANDBOX")
    assert other.get(VENDOR, "1")["key"] == "1"
    assert circuit.state("DEMO-SANDBOX")["state"] == "closed"


def test_a_probe_that_gets_an_answer_closes_the_breaker(
    emulator: EmulatorServer, clock: Clock, breaker_events: list[Any]
) -> None:
    client = _client(emulator)
    _trip(emulator, client)
    emulator.clear_faults()
    clock.now += 29
    with pytest.raises(CompanyUnavailable):
        client.get(VENDOR, "1")
    clock.now += 1.01
    assert circuit.state("DEMO-CO")["state"] == "half-open"
    assert client.get(VENDOR, "1")["key"] == "1"
    assert emulator.api_calls("DEMO-CO") == 6  # the one probe
    assert circuit.state("DEMO-CO") == {"state": "closed", "failures": 0, "open_for": 0.0}
    assert [kind for kind, _ in breaker_events] == ["opened", "closed"]
    assert client.get(VENDOR, "1")["key"] == "1"


def test_a_failed_probe_opens_the_breaker_twice_as_long(
    emulator: EmulatorServer, clock: Clock, breaker_events: list[Any], settings: Any
) -> None:
    point_at_emulator(settings, emulator, CIRCUIT_OPEN_MAX=100)
    client = _client(emulator)
    _trip(emulator, client)
    for trips, seconds in ((1, 60.0), (2, 100.0), (3, 100.0)):
        clock.now += 1000
        sent = emulator.api_calls("DEMO-CO")
        with pytest.raises(CompanyUnavailable) as info:
            client.get(VENDOR, "1")  # the probe fails; its retry is refused at once
        assert emulator.api_calls("DEMO-CO") == sent + 1
        assert info.value.retry_after == seconds
        assert breaker_events[-1] == (
            "opened",
            {"company_id": "DEMO-CO", "open_seconds": seconds, "trips": trips},
        )


def test_only_one_probe_at_a_time(emulator: EmulatorServer, clock: Clock) -> None:
    client = _client(emulator)
    _trip(emulator, client)
    emulator.clear_faults()
    clock.now += 30.01
    probe = circuit.before_request("DEMO-CO")  # another caller's probe, in flight
    assert probe.probe
    with pytest.raises(CompanyUnavailable) as info:
        client.get(VENDOR, "1")
    assert info.value.retry_after == circuit.SHARED_READ_INTERVAL
    assert emulator.api_calls("DEMO-CO") == 5
    circuit.abandon(probe)  # e.g. it found no concurrency slot: the next caller probes
    assert client.get(VENDOR, "1")["key"] == "1"
    assert circuit.state("DEMO-CO")["state"] == "closed"


def test_an_answer_resets_the_count(emulator: EmulatorServer, clock: Clock) -> None:
    client = _client(emulator)
    for _ in range(3):
        emulator.set_fault("drop", company="DEMO-CO", count=4)
        with pytest.raises(TransportError) as info:
            client.get(VENDOR, "1")  # four failures, never five in a row
        assert not isinstance(info.value, CompanyUnavailable)
        assert client.get(VENDOR, "1")["key"] == "1"
    assert circuit.state("DEMO-CO")["state"] == "closed"


@pytest.mark.parametrize(("fault", "opens"), [("503", True), ("500", False), ("429", False)])
def test_gateway_errors_count_but_other_answers_do_not(
    emulator: EmulatorServer, clock: Clock, settings: Any, fault: str, opens: bool
) -> None:
    point_at_emulator(settings, emulator, MAX_RETRIES=0, RETRY_AFTER_MAX=0)
    client = _client(emulator)
    emulator.set_fault(fault, company="DEMO-CO")
    for _ in range(5):
        with pytest.raises(IntacctAPIError) as info:
            client.get(VENDOR, "1")
        assert not isinstance(info.value, CompanyUnavailable)
    assert (circuit.state("DEMO-CO")["state"] == "open") is opens
    assert emulator.api_calls("DEMO-CO") == 5


def test_threshold_zero_turns_the_breaker_off(
    emulator: EmulatorServer, clock: Clock, settings: Any
) -> None:
    point_at_emulator(settings, emulator, CIRCUIT_FAILURE_THRESHOLD=0)
    client = _client(emulator)
    emulator.set_fault("drop", company="DEMO-CO")
    for _ in range(3):
        with pytest.raises(TransportError) as info:
            client.get(VENDOR, "1")
        assert not isinstance(info.value, CompanyUnavailable)
    assert emulator.api_calls("DEMO-CO") == 12


def test_read_timeouts_over_a_real_socket_open_it(
    socket_emulator: EmulatorServer, clock: Clock, settings: Any
) -> None:
    emulator = socket_emulator
    point_at_emulator(
        settings, emulator, HTTP_TIMEOUT=(2.0, 0.2), MAX_RETRIES=0, CIRCUIT_FAILURE_THRESHOLD=2
    )
    emulator.set_fault("slow", company="DEMO-CO", seconds=0.5)
    client = _client(emulator)
    threads = set(threading.enumerate())
    for _ in range(2):
        with pytest.raises(TransportError) as info:
            client.get(VENDOR, "1")
        assert not isinstance(info.value, CompanyUnavailable)
    started = time.monotonic()
    with pytest.raises(CompanyUnavailable):
        client.get(VENDOR, "1")
    assert time.monotonic() - started < 0.2  # no read timeout waited
    finish_emulator_requests(threads)
    assert emulator.api_calls("DEMO-CO") == 2


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def breaker_cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    settings.CACHES = {**settings.CACHES, "breakers": cache_config(request.param, "cb")}
    yield "breakers"
    caches["breakers"].clear()


def test_the_state_is_shared_through_the_cache(
    emulator: EmulatorServer, clock: Clock, settings: Any, breaker_cache: str
) -> None:
    """A process that never saw a failure reads the open breaker from the shared cache
    (simulated by forgetting this process's copy)."""
    point_at_emulator(settings, emulator, CIRCUIT_CACHE=breaker_cache)
    client = _client(emulator)
    _trip(emulator, client)
    circuit._views.clear()
    with pytest.raises(CompanyUnavailable):
        client.get(VENDOR, "1")
    assert emulator.api_calls("DEMO-CO") == 5
    assert caches[breaker_cache].get(circuit._keys("DEMO-CO")[0]) == 5
    circuit.reset("DEMO-CO")
    emulator.clear_faults()
    assert client.get(VENDOR, "1")["key"] == "1"


def test_check_reports_a_missing_breaker_cache(settings: Any) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "CIRCUIT_CACHE": "nope"}
    ids = [m.id for m in checks.check_settings()]
    assert "intacct_connect.E016" in ids
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "CIRCUIT_FAILURE_THRESHOLD": 0}
    assert "intacct_connect.E016" not in [m.id for m in checks.check_settings()]


def test_a_caller_that_waited_for_a_slot_rechecks_before_sending(
    emulator: EmulatorServer, clock: Clock
) -> None:
    """Permission taken while the breaker was closed; the breaker opened while the caller
    waited for its concurrency slot: nothing is sent."""
    waiting = circuit.before_request("DEMO-CO")
    circuit.recheck(waiting)  # still closed: go on
    _trip(emulator, _client(emulator))
    with pytest.raises(CompanyUnavailable):
        circuit.recheck(waiting)
    clock.now += 30.01
    circuit.recheck(waiting)  # half-open: the probe decides, not the recheck
