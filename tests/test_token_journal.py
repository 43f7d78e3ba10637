"""The token journal: a token response is written ahead, cleared after the commit, and a
response whose commit failed is adopted by the next refresh without a token request.
The proof against a really failing PostgreSQL (``pg_terminate_backend`` and
``statement_timeout`` between the response and the commit) is the slow test at the end,
which runs ``bench/proof_token_journal.py`` small; ``docs/reliability.rst`` has the full
size."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError
from django.db import connection as db_connection
from django.utils import timezone

from intacct_connect import private_db, token_journal, tokens
from intacct_connect.client import IntacctClient
from intacct_connect.exceptions import NeedsReauthorization
from intacct_connect.models import (
    ConnectionEvent,
    ConnectionStatus,
    EventKind,
    Token,
    TokenJournalEntry,
)
from intacct_connect.testing.emulator import EmulatorServer
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
VENDOR = "accounts-payable/vendor"


@pytest.fixture
def emulator(socket_emulator: EmulatorServer) -> EmulatorServer:
    return socket_emulator


def journal_the_next_answer(emulator: EmulatorServer, conn: Any) -> Any:
    """What a refresh whose commit failed leaves behind: Intacct rotated the refresh token
    (the stored one is dead) and the answer is only in the journal."""
    stored = Token.objects.get(pk=conn.pk)
    from intacct_connect import oauth

    answer = oauth.refresh(str(stored.refresh_token))  # rotates at the emulator
    token_journal.write_ahead(conn.pk, base_version=stored.version, tokens=answer)
    return answer


@pytest.mark.django_db(transaction=True)
def test_a_refresh_leaves_no_journal_entry_after_its_commit(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator, expires_in=-60)
    tokens.get_access_token(conn.pk)
    assert Token.objects.get(pk=conn.pk).version == 2
    assert not TokenJournalEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_uncommitted_answer_is_adopted_without_a_token_request(
    emulator: EmulatorServer,
) -> None:
    emulator.configure(refresh_mode="reuse_detection")
    conn = factories.connection(emulator, expires_in=-60)
    answer = journal_the_next_answer(emulator, conn)
    entry = TokenJournalEntry.objects.get()
    assert entry.base_version == 1
    assert answer.access_token not in str(TokenJournalEntry.objects.values_list("access_token"))
    requests_before = emulator.token_requests("refresh_token")

    assert tokens.get_access_token(conn.pk) == answer.access_token
    assert emulator.token_requests("refresh_token") == requests_before  # nothing sent
    stored = Token.objects.get(pk=conn.pk)
    assert stored.version == 2
    assert stored.refresh_token == answer.refresh_token
    assert not TokenJournalEntry.objects.exists()
    assert ConnectionEvent.objects.filter(
        connection=conn, kind=EventKind.REFRESHED, message__contains="token journal"
    ).exists()
    # The adopted tokens are Intacct's live ones: an API call and a refresh both work.
    IntacctClient(conn.pk).get(VENDOR, "1")
    assert tokens.refresh_connection(conn.pk, force=True) is not None
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_an_entry_for_an_older_version_is_deleted_not_adopted(emulator: EmulatorServer) -> None:
    conn = factories.connection(emulator, expires_in=-60)
    stale = factories.token_set()
    token_journal.write_ahead(conn.pk, base_version=0, tokens=stale)  # committed long ago
    value = tokens.get_access_token(conn.pk)
    assert value != stale.access_token
    assert emulator.token_requests("refresh_token") == 1
    assert not TokenJournalEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_refresh_in_doubt_connection_becomes_active_by_adoption(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator, expires_in=-60)
    answer = journal_the_next_answer(emulator, conn)
    conn.status = ConnectionStatus.REFRESH_IN_DOUBT
    conn.save(update_fields=["status"])
    trial = tokens.try_stored_refresh_token(conn.pk)
    assert trial.outcome == "active"
    assert tokens.get_access_token(conn.pk) == answer.access_token
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_needs_reauthorisation_adopts_nothing(
    emulator: EmulatorServer,
) -> None:
    conn = factories.connection(emulator, expires_in=-60)
    journal_the_next_answer(emulator, conn)
    conn.status = ConnectionStatus.NEEDS_REAUTH
    conn.save(update_fields=["status"])
    with pytest.raises(NeedsReauthorization):
        tokens.get_access_token(conn.pk)
    assert TokenJournalEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_journal_that_cannot_be_written_is_logged_and_the_tokens_still_stored(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = factories.connection(emulator, expires_in=-60)

    def unreachable() -> Any:
        raise OperationalError("the journal's connection is down")

    monkeypatch.setattr(private_db, "durable", unreachable)
    with caplog.at_level(logging.ERROR, logger="intacct_connect.token_journal"):
        value = tokens.get_access_token(conn.pk)
    assert Token.objects.get(pk=conn.pk).version == 2
    assert "Could not write the token journal entry" in caplog.text
    assert value not in caplog.text


def test_the_entry_never_shows_its_tokens() -> None:
    entry = TokenJournalEntry(
        connection_id=7, base_version=3, expires_at=timezone.now() + timedelta(hours=1)
    )
    entry.access_token = "secret-access"
    assert "secret" not in repr(entry) + str(entry)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("failure", "baseline", "trials"),
    [("terminate", False, 12), ("statement_timeout", False, 6), ("terminate", True, 3)],
)
def test_database_failing_before_the_commit_loses_no_token(
    failure: str, baseline: bool, trials: int
) -> None:
    """Against a scratch PostgreSQL database: every trial's refresh fails between the token
    response and the commit; with the journal every new token set is recovered without a
    token request; without it (``--baseline``) every connection is lost, which shows the
    trials really hit the window."""
    db = db_connection.settings_dict
    base = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/postgres"
    command = [
        sys.executable, "bench/proof_token_journal.py", "--json", "--trials", str(trials),
        "--failure", failure, "--postgres", base, *(["--baseline"] if baseline else []),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["failures_injected"] == trials
    if baseline:
        assert figures["lost"] == trials
    else:
        assert figures["recovered"] == trials
        assert figures["lost"] == 0
        assert figures["extra_token_requests"] == 0
        assert figures["journal_entries_left"] == 0
