"""The browser helper (``browser.py``): ``complete_authorization()`` drives the sign-in and
consent pages, returns the final redirect, and says what went wrong otherwise."""

from __future__ import annotations

import pytest

from intacct_connect.testing.emulator import EmulatorError, EmulatorServer
from tests.testing.conftest import authorize_url, pkce, query_of


def test_returns_the_redirect_with_the_code(intacct_emulator: EmulatorServer) -> None:
    location = intacct_emulator.complete_authorization(
        authorize_url(intacct_emulator, pkce()[1]), "DEMO-CO", "admin", "admin"
    )
    assert set(query_of(location)) == {"code", "state"}


def test_an_early_redirect_is_returned_as_it_is(intacct_emulator: EmulatorServer) -> None:
    url = authorize_url(intacct_emulator, pkce()[1], response_type="token")
    location = intacct_emulator.complete_authorization(url, "DEMO-CO", "admin", "admin")
    assert query_of(location)["error"] == "unsupported_response_type"


def test_an_error_page_raises_with_its_message(intacct_emulator: EmulatorServer) -> None:
    url = authorize_url(intacct_emulator, pkce()[1], client_id="nobody.app.sage.com")
    with pytest.raises(EmulatorError, match="The authorize page answered 400: Unknown client_id"):
        intacct_emulator.complete_authorization(url, "DEMO-CO", "admin", "admin")
