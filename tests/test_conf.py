from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from intacct_connect.adapter import DefaultIntacctAdapter
from intacct_connect.conf import DEFAULTS, app_settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_defaults_and_user_values(settings: Any) -> None:
    assert app_settings.CLIENT_ID == "demo-client.app.sage.com"
    assert app_settings.STATE_TTL == 600  # default
    assert app_settings.SCOPE == "offline_access"
    assert app_settings.ADAPTER is DefaultIntacctAdapter  # imported from its dotted path


def test_urls_derive_from_api_base_url() -> None:
    with override_settings(
        INTACCT_CONNECT={"API_BASE_URL": "https://proxy.example.com/ia/api/v1/"}
    ):
        assert app_settings.API_BASE_URL == "https://proxy.example.com/ia/api/v1"
        assert app_settings.AUTHORIZE_URL == "https://proxy.example.com/ia/api/v1/oauth2/authorize"
        assert app_settings.TOKEN_URL == "https://proxy.example.com/ia/api/v1/oauth2/token"
        assert app_settings.REVOKE_URL == "https://proxy.example.com/ia/api/v1/oauth2/revoke"


def test_explicit_url_wins_over_derived() -> None:
    with override_settings(
        INTACCT_CONNECT={"TOKEN_URL": "https://sso.example.com/token"},
    ):
        assert app_settings.TOKEN_URL == "https://sso.example.com/token"
        assert app_settings.AUTHORIZE_URL == "https://api.intacct.com/ia/api/v1/oauth2/authorize"


def test_unknown_key_rejected_with_its_name() -> None:
    with override_settings(INTACCT_CONNECT={"CLIENTID": "x", "TOKEN_KEY": "y"}):
        with pytest.raises(ImproperlyConfigured, match="CLIENTID, TOKEN_KEY"):
            app_settings.CLIENT_ID  # noqa: B018


def test_not_a_dict_rejected() -> None:
    with override_settings(INTACCT_CONNECT=["CLIENT_ID"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict, not list"):
            app_settings.CLIENT_ID  # noqa: B018


def test_wrong_type_rejected_naming_key() -> None:
    with override_settings(INTACCT_CONNECT={"STATE_TTL": "600"}):
        with pytest.raises(ImproperlyConfigured, match=r"\['STATE_TTL'\] must be int, not str"):
            app_settings.STATE_TTL  # noqa: B018


def test_unknown_attribute_is_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Invalid INTACCT_CONNECT setting"):
        app_settings.NOT_A_SETTING  # noqa: B018


def test_unimportable_adapter() -> None:
    with override_settings(INTACCT_CONNECT={"ADAPTER": "nowhere.Adapter"}):
        with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
            app_settings.ADAPTER  # noqa: B018


def test_reloaded_on_setting_changed() -> None:
    assert app_settings.CLIENT_ID == "demo-client.app.sage.com"
    with override_settings(INTACCT_CONNECT={"CLIENT_ID": "other.app.sage.com"}):
        assert app_settings.CLIENT_ID == "other.app.sage.com"
    assert app_settings.CLIENT_ID == "demo-client.app.sage.com"


def test_timeouts_are_tuples() -> None:
    with override_settings(INTACCT_CONNECT={"HTTP_TIMEOUT": [1, 2]}):
        assert app_settings.HTTP_TIMEOUT == (1, 2)


def test_user_agent_names_version() -> None:
    from intacct_connect import __version__

    assert app_settings.USER_AGENT == f"intacct-connect/{__version__}"


def test_every_setting_is_documented_in_the_settings_reference() -> None:
    text = (DOCS / "settings.rst").read_text()
    documented = set(re.findall(r"^``([A-Z_]+)``$", text, flags=re.MULTILINE))
    assert documented == set(DEFAULTS), (
        f"undocumented: {sorted(set(DEFAULTS) - documented)}; "
        f"stale: {sorted(documented - set(DEFAULTS))}"
    )


def test_every_setting_is_declared_with_the_type_a_reader_gets() -> None:
    """``AppSettings`` declares each key's type, so code reads settings without casts; the
    declarations and ``DEFAULTS`` list the same keys, and every default value (after
    derivation and import) is an instance of its declared type."""
    import typing

    from intacct_connect import conf

    hints = typing.get_type_hints(
        conf.AppSettings, globalns=vars(conf) | {"DefaultIntacctAdapter": DefaultIntacctAdapter}
    )
    assert sorted(hints) == sorted(DEFAULTS)
    with override_settings(INTACCT_CONNECT={}):
        for name, hint in hints.items():
            value = getattr(app_settings, name)
            origin = typing.get_origin(hint) or hint
            if origin is type:
                assert isinstance(value, type), name
            elif hint is float:
                assert isinstance(value, int | float), name
            else:
                assert isinstance(value, origin), (name, value, hint)
