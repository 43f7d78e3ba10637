from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from intacct_connect.crypto import generate_key
from intacct_connect.exceptions import DecryptionError
from intacct_connect.fields import Ciphertext
from intacct_connect.models import Connection, Token
from tests import factories
from tests.settings import INTACCT_CONNECT, TEST_TOKEN_KEY

pytestmark = pytest.mark.django_db


def raw_token_row(pk: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM intacct_connect_token "
            "WHERE connection_id = %s",
            [pk],
        )
        row = cursor.fetchone()
    assert row is not None
    return row[0], row[1]


def test_raw_sql_sees_only_ciphertext() -> None:
    tokens = factories.token_set()
    conn = factories.connection(tokens=tokens)
    access, refresh = raw_token_row(conn.pk)
    assert tokens.access_token not in access
    assert tokens.refresh_token
    assert tokens.refresh_token not in refresh
    assert access.startswith("v1:")
    assert refresh.startswith("v1:")
    # Reading through the model decrypts.
    token = Token.objects.get(pk=conn.pk)
    assert token.access_token == tokens.access_token
    assert token.refresh_token == tokens.refresh_token


def test_values_and_loaded_instances_hold_ciphertext_until_accessed() -> None:
    tokens = factories.token_set()
    conn = factories.connection(tokens=tokens)
    (value,) = Token.objects.filter(pk=conn.pk).values_list("access_token", flat=True)
    assert tokens.access_token not in value
    token = Token.objects.get(pk=conn.pk)
    assert isinstance(token.__dict__["access_token"], Ciphertext)
    assert token.access_token == tokens.access_token
    assert not isinstance(token.__dict__["access_token"], Ciphertext)


def test_wrong_key_raises() -> None:
    conn = factories.connection()
    with override_settings(INTACCT_CONNECT={**INTACCT_CONNECT, "TOKEN_KEYS": [generate_key()]}):
        token = Token.objects.get(pk=conn.pk)
        with pytest.raises(DecryptionError):
            _ = token.access_token


def test_ciphertext_copied_between_rows_is_detected() -> None:
    a = factories.connection(tenant="user:1", company="A")
    b = factories.connection(tenant="user:2", company="B")
    access_a, refresh_a = raw_token_row(a.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE intacct_connect_token SET access_token = %s, refresh_token = %s "
            "WHERE connection_id = %s",
            [access_a, refresh_a, b.pk],
        )
    token_b = Token.objects.get(pk=b.pk)
    with pytest.raises(DecryptionError, match="another row or field"):
        _ = token_b.access_token
    with pytest.raises(DecryptionError):
        _ = token_b.refresh_token


def test_ciphertext_swapped_between_fields_is_detected() -> None:
    conn = factories.connection()
    access, refresh = raw_token_row(conn.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE intacct_connect_token SET access_token = %s, refresh_token = %s "
            "WHERE connection_id = %s",
            [refresh, access, conn.pk],
        )
    token = Token.objects.get(pk=conn.pk)
    with pytest.raises(DecryptionError):
        _ = token.access_token


def test_saving_unchanged_row_keeps_ciphertext() -> None:
    conn = factories.connection()
    before = raw_token_row(conn.pk)
    token = Token.objects.get(pk=conn.pk)
    token.refresh_count += 1
    token.save()
    assert raw_token_row(conn.pk) == before


def test_deferred_field_loads_on_access() -> None:
    tokens = factories.token_set()
    conn = factories.connection(tokens=tokens)
    token = Token.objects.defer("access_token").get(pk=conn.pk)
    assert token.access_token == tokens.access_token


def test_primary_key_required_before_encrypting() -> None:
    field = Token._meta.get_field("access_token")
    with pytest.raises(ValueError, match="primary key"):
        field.associated_data(Token())


def test_not_editable_so_forms_never_render_it() -> None:
    assert not Token._meta.get_field("access_token").editable
    assert not Token._meta.get_field("refresh_token").editable


def test_empty_refresh_token_stored_empty() -> None:
    conn = Connection.objects.create(tenant_key="t", company_id="C", intacct_user_id="u")
    from intacct_connect.flows import store_tokens

    store_tokens(conn, factories.token_set(refresh=None))
    assert raw_token_row(conn.pk)[1] == ""
    assert Token.objects.get(pk=conn.pk).refresh_token == ""


def test_encrypted_with_the_first_key() -> None:
    from intacct_connect.crypto import key_id, parse_key

    conn = factories.connection()
    assert raw_token_row(conn.pk)[0].split(":")[1] == key_id(parse_key(TEST_TOKEN_KEY))
