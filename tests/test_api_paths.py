"""intacct_connect.api_paths: object paths, record keys and batch limits in URLs."""

from __future__ import annotations

import pytest

from intacct_connect.api_paths import (
    MAX_BATCH,
    check_batch,
    keys_segment,
    quote_key,
    quote_object,
)


def test_object_paths_are_checked_and_quoted() -> None:
    assert quote_object("accounts-payable/vendor") == "accounts-payable/vendor"
    assert quote_object("/objects/accounts-payable/vendor/") == "accounts-payable/vendor"
    assert quote_object("platform-apps/nsp::custom obj") == "platform-apps/nsp::custom%20obj"
    for bad in ("vendor", "Accounts/vendor", "a/b/c", "a/b?x=1"):
        with pytest.raises(ValueError, match="not an Intacct object path"):
            quote_object(bad)


def test_keys_are_checked_and_quoted() -> None:
    assert quote_key(84) == "84"
    assert quote_key("a b") == "a%20b"
    for bad in ("", "1,2", "1/2"):
        with pytest.raises(ValueError, match="not a valid record key"):
            quote_key(bad)
    assert keys_segment([84, "85"]) == "84,85"
    with pytest.raises(ValueError, match="at least one key"):
        keys_segment([])
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH} keys"):
        keys_segment(range(MAX_BATCH + 1))


def test_a_batch_holds_one_to_max_batch_records() -> None:
    check_batch([{}] * MAX_BATCH)
    with pytest.raises(ValueError, match="at least one record"):
        check_batch([])
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH} records"):
        check_batch([{}] * (MAX_BATCH + 1))
