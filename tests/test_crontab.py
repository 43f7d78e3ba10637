"""intacct_connect.crontab: parsing crontab expressions and their next match."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from intacct_connect import scheduling
from intacct_connect.crontab import next_crontab_run, parse_crontab


def test_crontab_next_run_and_validation() -> None:
    after = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)
    assert next_crontab_run("*/15 * * * *", after) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert next_crontab_run("0 2 * * 1", after) == datetime(
        2026, 3, 2, 2, 0, tzinfo=UTC
    )  # next Monday 02:00
    with pytest.raises(ValidationError, match="5 fields"):
        parse_crontab("* * *")
    with pytest.raises(ValidationError, match="Invalid crontab"):
        parse_crontab("61 * * * *")
    assert scheduling.parse_crontab is parse_crontab  # still importable from there
    assert scheduling.next_crontab_run is next_crontab_run


@override_settings(TIME_ZONE="Europe/Paris")
def test_crontab_is_evaluated_in_the_site_time_zone() -> None:
    after = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # 14:00 in Paris
    nxt = next_crontab_run("0 3 * * *", after)
    assert nxt.astimezone(ZoneInfo("Europe/Paris")).hour == 3
    assert nxt == datetime(2026, 7, 2, 1, 0, tzinfo=UTC)


def test_the_next_match_is_strictly_after() -> None:
    on_the_minute = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert next_crontab_run("*/15 * * * *", on_the_minute) == datetime(
        2026, 3, 1, 10, 30, tzinfo=UTC
    )
