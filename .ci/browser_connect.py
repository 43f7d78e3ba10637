"""Drive Chromium through a fresh site made by .ci/smoke_install.sh.

1. A tenant signs in on the site's login page, opens /intacct/, presses Connect, signs in to
   the emulator, accepts the consent and is back on /intacct/ with the company connected.
2. A superuser signs in to the site's admin, adds a job schedule for every active
   connection and runs it with "Run selected schedules now": the web process enqueues one
   ``intacct_connect.run_job`` task (the caller then looks for it in the site's broker).

Runs with the repository's own virtual environment (Playwright for Python), against the
system Chromium: ``.venv/bin/python .ci/browser_connect.py --site http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import os
import sys

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def step(text: str) -> None:
    print(f"  browser: {text}", flush=True)


def sign_in(page: Page, username: str, password: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form [type=submit]").click()


def connect_company(page: Page, site: str, args: argparse.Namespace) -> None:
    page.goto(f"{site}/intacct/")
    expect(page).to_have_url(f"{site}/accounts/login/?next=/intacct/")
    step(f"/intacct/ redirects to the site's login page ({page.url})")
    sign_in(page, args.tenant, args.tenant_password)
    expect(page).to_have_url(f"{site}/intacct/")
    expect(page.locator("h1")).to_have_text("Sage Intacct connections")
    step(f"signed in as {args.tenant}; /intacct/ shows the connect form")

    page.get_by_role("button", name="Connect Sage Intacct").click()
    page.wait_for_selector("input[name=company_id]")
    step(f"emulator sign-in page: {page.url.split('?')[0]}")
    page.fill("input[name=company_id]", args.company)
    page.fill("input[name=user_id]", args.intacct_user)
    page.fill("input[name=password]", args.intacct_password)
    page.locator("button[name=sign_in]").click()
    page.locator("button[name=approve]").click()
    step("consent accepted")

    expect(page).to_have_url(f"{site}/intacct/")
    row = page.locator("[id^='connection-']").first  # one row (or item) per connection
    expect(row).to_contain_text(args.company)
    expect(row).to_contain_text("Active")
    step(f"back on /intacct/: {' '.join(row.inner_text().split())}")


def run_schedule_now(page: Page, site: str, args: argparse.Namespace) -> None:
    page.goto(f"{site}/admin/intacct_connect/schedule/add/")
    expect(page).to_have_url(f"{site}/admin/login/?next=/admin/intacct_connect/schedule/add/")
    sign_in(page, args.admin, args.admin_password)
    expect(page).to_have_url(f"{site}/admin/intacct_connect/schedule/add/")
    page.fill("#id_name", "Smoke health check")
    page.select_option("#id_job", "health_check")
    page.fill("#id_params", "{}")
    page.select_option("#id_scope", "site")
    page.fill("#id_interval_seconds", "3600")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    step("admin: schedule added")

    page.locator("#result_list tbody input.action-select").first.check()
    page.select_option("select[name=action]", "run_now")
    page.locator("button[name=index]").click()
    # The action may ask for confirmation first (a page re-posting it with post=yes).
    confirm = page.locator("form:has(input[name=post][value=yes]) [type=submit]")
    done = page.locator(".messagelist")
    expect(confirm.or_(done).first).to_be_visible()
    if confirm.count():
        step(f"admin: confirmation page: {page.locator('h1').first.inner_text()}")
        confirm.click()
    expect(done).to_contain_text("Queued 1 run for 1 schedule.")
    step("admin: 'Run selected schedules now' says: Queued 1 run for 1 schedule.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--site", required=True, help="the fresh site, e.g. http://127.0.0.1:8000")
    parser.add_argument("--tenant", default="alice")
    parser.add_argument("--tenant-password", default="alice")
    parser.add_argument("--admin", default="admin")
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--company", default="DEMO-CO")
    parser.add_argument("--intacct-user", default="admin")
    parser.add_argument("--intacct-password", default="admin")
    parser.add_argument(
        "--chromium", default=os.environ.get("INTACCT_CHROMIUM", "/usr/bin/chromium")
    )
    args = parser.parse_args()
    site = args.site.rstrip("/")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            expect.set_options(timeout=15_000)
            tenant = browser.new_context()
            page = tenant.new_page()
            page.set_default_timeout(15_000)
            connect_company(page, site, args)
            tenant.close()
            operator = browser.new_context()
            page = operator.new_page()
            page.set_default_timeout(15_000)
            run_schedule_now(page, site, args)
            operator.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
