"""The state (``state.py``): transactions over the typed store, single-step operations that
take the lock themselves, thread safety, and the state file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from intacct_connect.testing.emulator import Emulator, seed
from intacct_connect.testing.emulator.state import State
from intacct_connect.testing.emulator.store import Fault


def test_a_transaction_marks_the_state_changed_and_a_read_does_not(tmp_path: Path) -> None:
    state = State(str(tmp_path / "state.json"))
    assert state.save() is False  # nothing changed yet
    with state.read() as store:
        assert store.companies == {}
    assert state.save() is False
    with state.transaction() as store:
        store.sequence += 1
    assert state.save() is True
    assert state.save() is False  # saved once
    assert json.loads((tmp_path / "state.json").read_text())["sequence"] == 1001


def test_the_state_file_round_trips(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    emu = Emulator(state_path=path)
    tokens = emu.issue_tokens("DEMO-CO", "jane", entity="EAST")
    emu.configure(code_ttl=30)
    emu.set_fault("503", company="DEMO-CO")
    emu.advance_time(100)
    assert emu.state.save() is True
    again = Emulator(state_path=path)
    assert again.kid == emu.kid  # the signing key is kept
    assert again.grants() == emu.grants()
    assert again.faults() == emu.faults()
    assert again.config()["code_ttl"] == 30
    assert again.now() - emu.now() < 5
    with again.state.read() as store:
        claims = again.signer.decode(tokens["access_token"])
        assert claims is not None
        assert store.session(claims["sessionId"]) is not None


def test_concurrent_transactions_lose_no_update() -> None:
    state = State()
    threads, rounds = 8, 500

    def work() -> None:
        for _ in range(rounds):
            with state.transaction() as store:
                current = store.sequence
                store.sequence = current + 1
            state.count_api_call("DEMO-CO")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with state.read() as store:
        assert store.sequence == 1000 + threads * rounds
    assert state.counters()["api_calls"] == {"DEMO-CO": threads * rounds}


def test_concurrency_tracking_survives_a_reset() -> None:
    state = State()
    with state.tracking_concurrency("DEMO-CO") as first:
        assert first == 1
        state.reset()
        with state.tracking_concurrency("DEMO-CO") as after_reset:
            assert after_reset == 1  # the call started before the reset is not counted
    assert state.counters()["max_concurrency"] == {"DEMO-CO": 1}


def test_minute_slots() -> None:
    state = State()
    assert [state.take_minute_slot("DEMO-CO", 2, 60.5) for _ in range(3)] == [1, 2, None]
    assert state.counters()["throttled"] == {"DEMO-CO": 1}
    assert state.take_minute_slot("DEMO-CO", 2, 120.0) == 1  # a new minute


def test_faults_are_taken_and_used_up() -> None:
    state = State()
    state.add_fault(Fault("f1", "500", "DEMO-CO", "api", 2, {}))
    assert state.take_fault("token", "DEMO-CO") is None
    assert state.take_fault("api", "SECOND-CO") is None
    first = state.take_fault("api", "DEMO-CO")
    assert first is not None
    assert first.remaining == 1
    assert state.take_fault("api", "DEMO-CO", kinds=("503",)) is None
    assert state.take_fault("api", "DEMO-CO") is not None
    assert state.faults() == []
    assert state.counters()["faults_injected"] == 2


def test_reset_replaces_the_store() -> None:
    state = State()
    with state.transaction() as store:
        seed.seed(store)
    state.count_unexpected("boom")
    state.reset()
    assert state.last_error is None
    assert state.counters()["unexpected_errors"] == 0
    with state.read() as store:
        assert store.companies == {}
