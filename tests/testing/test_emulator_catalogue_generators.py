"""Deterministic seed data (``catalogue/generators.py``)."""

from __future__ import annotations

import pytest

from intacct_connect.testing.emulator import EmulatorServer


def test_seed_data_is_deterministic_and_sizeable(intacct_emulator: EmulatorServer) -> None:
    first = intacct_emulator.records("DEMO-CO", "accounts-payable/bill")
    intacct_emulator.reset()
    assert intacct_emulator.records("DEMO-CO", "accounts-payable/bill") == first
    assert len(first) >= 300
    assert intacct_emulator.record_count("SECOND-CO", "accounts-payable/vendor") >= 100
    entities = {e["id"] for e in intacct_emulator.records("DEMO-CO", "company-config/entity")}
    assert entities == {"EAST", "WEST"}
    for bill in first[:20]:
        total = sum(float(line["txnAmount"]) for line in bill["lines"])
        assert float(bill["totalTxnAmount"]) == pytest.approx(total)
