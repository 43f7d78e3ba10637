"""Failure proof 7, sized for CI: ``bench/proof_key_rotation.py`` rotates the keys of 1,000
rows while 40 refreshes run in 4 processes on PostgreSQL (the script makes its own scratch
database and emulator); no update is lost, nothing fails to decrypt, during the run or
after the old key is removed. The full size (10,000 rows, 200 refreshes) is in
``docs/reliability.rst``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parent.parent


def test_key_rotation_during_concurrent_refreshes_loses_nothing() -> None:
    db = connection.settings_dict
    base = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/postgres"
    done = subprocess.run(
        [
            sys.executable, "bench/proof_key_rotation.py", "--json", "--rows", "1000",
            "--refreshes", "40", "--processes", "4", "--threads", "2", "--postgres", base,
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["refreshes"] == 40
    assert figures["overlap_seconds"] > 0  # the refreshes really ran during the rotation
    assert figures["refresh_errors"] == []
    assert figures["lost_updates"] == 0
    assert figures["decryption_errors_during"] == 0
    assert figures["decryption_errors_after_old_key_removed"] == 0
    assert figures["rows_under_old_key"] == 0
    # 40 refreshes during the rotation and 40 checks afterwards: one token request each.
    assert figures["token_requests"]["token_requests"] == {"refresh_token": 80}
