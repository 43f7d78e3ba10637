"""The tenant's journey in a real Chromium: sign in, Connect, the emulator's sign-in and
consent (Accept and Deny), back to the site, Reconnect, Disconnect with its confirmation,
and a connection needing re-authorisation as the tenant sees it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser

from intacct_connect import flows
from intacct_connect.models import Connection, ConnectionStatus, Token
from tests.browser.conftest import NARROW, Guard, Site, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(django_user_model: Any) -> AbstractBaseUser:
    return django_user_model.objects.create_user(  # type: ignore[no-any-return]
        "alice", password="alice-pw", first_name="Alice", last_name="Archer"
    )


def connect_through_emulator(guard: Guard, site: Site, *, approve: bool = True) -> None:
    """From the tenant page: Connect, sign in at the emulator, Accept or Deny."""
    guard.submit(guard.page.get_by_role("button", name="Connect Sage Intacct"), "Connect")
    authorise_at_emulator(guard, site, approve=approve)


def authorise_at_emulator(guard: Guard, site: Site, *, approve: bool = True) -> None:
    """On the emulator's sign-in page: sign in as DEMO-CO's admin, then Accept or Deny."""
    page = guard.page
    assert page.url.startswith(site.emulator.authorize_url.rsplit("/", 1)[0])
    guard.shot("emulator-sign-in")
    page.fill("input[name=company_id]", "DEMO-CO")
    page.fill("input[name=user_id]", "admin")
    page.fill("input[name=password]", "admin")
    guard.submit(page.get_by_role("button", name="Sign in"), "emulator sign-in")
    guard.shot("emulator-consent")
    guard.submit(page.get_by_role("button", name="Accept" if approve else "Deny"), "consent")


def test_connect_accept_then_disconnect_with_confirmation(
    open_page: Any, site: Site, alice: AbstractBaseUser
) -> None:
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "alice", "alice-pw")
    assert page.url == site.path("/intacct/")
    guard.shot("tenant-empty")

    connect_through_emulator(guard, site)
    assert page.url == site.path("/intacct/")
    conn = Connection.objects.get()
    assert conn.status == ConnectionStatus.ACTIVE
    assert conn.tenant_key == f"user:{alice.pk}"
    row = page.locator(f"#connection-{conn.pk}")
    assert "DEMO-CO" in row.inner_text()
    assert "Connected" in page.locator(".messages, .intacct-messages").first.inner_text()
    guard.shot("tenant-connected")

    # Every form post so far carried the site's own Origin (the CSRF check passed).
    posts = [url for url, _ in guard.posts]
    assert site.path("/accounts/login/") in posts
    assert site.path("/intacct/connect/") in posts
    assert all(origin == guard.site_origin for _, origin in guard.posts)

    # Disconnect asks first; the confirmation's own button does it.
    guard.submit(
        row.get_by_role("link", name="Disconnect")
        .or_(row.get_by_role("button", name="Disconnect"))
        .first,
        "open the disconnect confirmation",
    )
    guard.shot("tenant-disconnect-confirm")
    assert Connection.objects.get().status == ConnectionStatus.ACTIVE
    guard.submit(page.get_by_role("button", name="Disconnect"), "confirm disconnect")
    conn.refresh_from_db()
    assert conn.status == ConnectionStatus.REVOKED
    assert not Token.objects.exists()
    # The revoked connection leaves the main table for the collapsed history.
    assert (
        page.locator(f"table #connection-{conn.pk}").count() == 0
        or page.locator(f"details #connection-{conn.pk}").count()
    )
    history = page.locator("details")
    assert history.count() == 1
    assert not history.first.evaluate("d => d.open")
    assert "No company is connected" in page.inner_text("body")
    guard.shot("tenant-after-disconnect")
    assert [g["status"] for g in site.emulator.grants("DEMO-CO")] == ["revoked"]
    assert all(origin == guard.site_origin for _, origin in guard.posts)


def test_deny_at_consent_shows_a_plain_refusal(
    open_page: Any, site: Site, alice: AbstractBaseUser
) -> None:
    guard = open_page()
    sign_in(guard, site, "alice", "alice-pw")
    # The callback answers 403 on purpose: the tenant refused.
    guard.allow(403, r"/intacct/callback/")
    connect_through_emulator(guard, site, approve=False)
    assert "not authorised" in guard.page.inner_text("body")
    assert guard.refusals == [(403, guard.page.url)]
    assert not Connection.objects.exists()
    guard.shot("tenant-denied")


def test_needs_reauth_then_reconnect_keeps_the_connection(
    open_page: Any, site: Site, alice: AbstractBaseUser
) -> None:
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "alice", "alice-pw")
    connect_through_emulator(guard, site)
    conn = Connection.objects.get()
    flows.mark_needs_reauth(conn.pk, reason="test", message="Refresh token rejected.")

    guard.goto(site.path("/intacct/"))
    row = page.locator(f"#connection-{conn.pk}")
    text = row.inner_text()
    assert "Reconnect" in text
    guard.shot("tenant-needs-reauth")

    guard.submit(row.get_by_role("button", name="Reconnect"), "Reconnect")
    authorise_at_emulator(guard, site)
    assert page.url == site.path("/intacct/")
    assert Connection.objects.get().pk == conn.pk
    assert Connection.objects.get().status == ConnectionStatus.ACTIVE
    assert "Reconnected" in page.inner_text("body")


def test_tenant_page_fits_a_phone(open_page: Any, site: Site, alice: AbstractBaseUser) -> None:
    guard = open_page(viewport=NARROW)
    sign_in(guard, site, "alice", "alice-pw")
    connect_through_emulator(guard, site)
    guard.check("the connected tenant page at 375 px")
    guard.shot("tenant-phone")


def test_choose_the_default_entity_read_from_intacct(
    open_page: Any, site: Site, alice: AbstractBaseUser
) -> None:
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "alice", "alice-pw")
    connect_through_emulator(guard, site)
    conn = Connection.objects.get()
    assert conn.entity_id == ""
    assert conn.company_name == "Demo Company"  # read from Intacct after connecting

    guard.submit(
        page.locator(f"#connection-{conn.pk}").get_by_role("link", name="Default entity"),
        "open the entity page",
    )
    options = page.locator("select[name=entity] option").all_inner_texts()
    assert options[0] == "Top level"
    assert any("East Region" in o for o in options), options
    guard.shot("tenant-default-entity")
    page.select_option("select[name=entity]", "EAST")
    guard.submit(page.get_by_role("button", name="Save"), "save the entity")
    conn.refresh_from_db()
    assert conn.entity_id == "EAST"
    assert page.url == site.path("/intacct/")
    assert all(origin == guard.site_origin for _, origin in guard.posts)


def test_sign_out_from_the_header(open_page: Any, site: Site, alice: AbstractBaseUser) -> None:
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "alice", "alice-pw")
    assert "Alice Archer" in page.locator("header").inner_text()
    guard.submit(page.get_by_role("button", name="Sign out"), "sign out")
    guard.goto(site.path("/intacct/"))
    assert page.url.startswith(site.path("/accounts/login/"))


def test_too_many_connect_clicks_get_a_plain_429_page(
    open_page: Any, site: Site, alice: AbstractBaseUser, settings: Any
) -> None:
    settings.INTACCT_CONNECT = {**settings.INTACCT_CONNECT, "CONNECT_RATE_LIMIT": 1}
    guard = open_page()
    page = guard.page
    sign_in(guard, site, "alice", "alice-pw")
    guard.submit(page.get_by_role("button", name="Connect Sage Intacct"), "Connect")
    assert page.url.startswith(site.emulator.authorize_url.rsplit("/", 1)[0])
    page.goto(site.path("/intacct/"))  # the tenant gives up at Intacct and clicks again
    guard.allow(429, r"/intacct/connect/")
    guard.submit(page.get_by_role("button", name="Connect Sage Intacct"), "Connect again")
    body = page.inner_text("body")
    assert "too many times" in body
    assert "Please try again in" in body
    assert [status for status, _ in guard.refusals] == [429]
    assert page.get_by_role("link", name="Back to your connections").is_visible()
    guard.shot("tenant-too-many-attempts")
