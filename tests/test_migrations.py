from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_match_migrations() -> None:
    out = StringIO()
    try:
        call_command(
            "makemigrations", "intacct_connect", "--check", "--dry-run", stdout=out, stderr=out
        )
    except SystemExit as exit_:  # makemigrations --check exits 1 when changes are missing
        pytest.fail(f"Missing migrations (run `make migrations`):\n{out.getvalue()}")
        raise AssertionError from exit_
