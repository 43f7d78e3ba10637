"""Real-browser fixtures: the system Chromium driven by Playwright, against ``live_server``
and the emulator over real sockets. No header is rewritten and no request is intercepted.

Every page a test opens is watched by a :class:`Guard`: a response of 400 or more that the
test did not declare as a deliberate refusal, any console error or uncaught exception, and
a page wider than its viewport fail the test. Form posts to the site must carry the site's
own ``Origin`` (Django's CSRF check depends on it; ``Origin: null`` is what a
``no-referrer`` policy made Chromium send).

Chromium is found at ``$INTACCT_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on the
PATH. Without it the tests skip with the reason, unless ``INTACCT_REQUIRE_BROWSER`` is set
(CI), when they fail. ``INTACCT_SCREENSHOT_DIR`` makes :meth:`Guard.shot` save PNGs there
(``make screenshots`` writes the docs' gallery).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.support import browser_unavailable, chromium_path

VIEWPORT = {"width": 1280, "height": 900}
NARROW = {"width": 375, "height": 812}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the package; Playwright stops when the package ends so
    its event loop never leaks into the rest of the suite."""
    reason = browser_unavailable()
    if reason is not None:
        if os.environ.get("INTACCT_REQUIRE_BROWSER"):
            pytest.fail(f"INTACCT_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop on this thread; the ORM calls the tests
    # make between browser steps are plain synchronous code (the live server answers in
    # its own thread), so Django's async-safety guard is lifted for the browser tests only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Guard:
    """Watches one browser page; see the module docstring."""

    page: Any
    site_origin: str
    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[int, re.Pattern[str]]] = field(default_factory=list)
    posts: list[tuple[str, str | None]] = field(default_factory=list)
    refusals: list[tuple[int, str]] = field(default_factory=list)

    def attach(self) -> None:
        self.page.on("response", self._on_response)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        self.page.on("request", self._on_request)

    # -- declared refusals ---------------------------------------------------------------

    def allow(self, status: int, url_pattern: str) -> None:
        """Declare that a response of ``status`` at a URL matching ``url_pattern`` (a
        regular expression searched in the URL) is a deliberate refusal."""
        self.allowed.append((status, re.compile(url_pattern)))

    def _is_allowed(self, status: int, url: str) -> bool:
        return any(status == s and p.search(url) for s, p in self.allowed)

    # -- listeners -------------------------------------------------------------------

    def _on_response(self, response: Any) -> None:
        if response.status < 400:
            return
        if self._is_allowed(response.status, response.url):
            self.refusals.append((response.status, response.url))
            return
        self.problems.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = message.text
        status = re.search(r"status of (\d{3})", text)
        location = (message.location or {}).get("url", "")
        if status and self._is_allowed(int(status.group(1)), location or self.page.url):
            return
        self.problems.append(f"console error on {self.page.url}: {text}")

    def _on_request(self, request: Any) -> None:
        if request.method != "POST":
            return
        url = request.url
        if url.startswith(self.site_origin):
            self.posts.append((url, request.headers.get("origin")))

    # -- steps ----------------------------------------------------------------------

    def check(self, what: str = "") -> None:
        """Fail on anything collected so far, and on a page wider than its viewport."""
        width = self.page.viewport_size["width"]
        scroll = self.page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            self.problems.append(f"{self.page.url} is {scroll} px wide in a {width} px viewport")
        wrong_origin = [(url, origin) for url, origin in self.posts if origin != self.site_origin]
        for url, origin in wrong_origin:
            self.problems.append(f"POST {url} sent Origin {origin!r}, not {self.site_origin!r}")
        self.posts = [p for p in self.posts if p not in wrong_origin]
        if self.problems:
            found, self.problems = self.problems, []
            pytest.fail(f"{what or self.page.url}:\n  " + "\n  ".join(found), pytrace=False)

    def goto(self, url: str) -> Any:
        response = self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.check(f"GET {url}")
        return response

    def submit(self, locator: Any, what: str = "") -> None:
        """Click a submit button (or link) and wait for the page it leads to."""
        with self.page.expect_navigation():
            locator.click()
        self.page.wait_for_load_state("load")
        self.check(what or f"after submitting on {self.page.url}")

    def shot(self, name: str, *, full_page: bool = True) -> None:
        """Save a screenshot for the docs' gallery when INTACCT_SCREENSHOT_DIR is set."""
        target = os.environ.get("INTACCT_SCREENSHOT_DIR")
        if not target:
            return
        folder = Path(target)
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


@pytest.fixture
def open_page(chromium: Any, live_server: Any) -> Iterator[Any]:
    """``open_page(viewport=VIEWPORT) -> Guard``: a fresh browser context (own cookies) per
    call; every guard is checked once more when the test ends."""
    contexts: list[Any] = []
    guards: list[Guard] = []
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(live_server.url))

    def make(viewport: dict[str, int] | None = None) -> Guard:
        context = chromium.new_context(viewport=viewport or VIEWPORT, locale="en-GB")
        contexts.append(context)
        guard = Guard(context.new_page(), origin)
        guard.attach()
        guards.append(guard)
        return guard

    yield make
    try:
        for guard in guards:
            guard.check("at the end of the test")
    finally:
        for context in contexts:
            context.close()


@dataclass
class Site:
    """The live site (the example project's URLs: its sign-in page, the admin and
    intacct_connect's pages) registered at the emulator as this application's redirect URI."""

    url: str
    emulator: Any

    def path(self, path: str) -> str:
        return self.url + path


@pytest.fixture
def site(live_server: Any, intacct_emulator: Any, settings: Any) -> Site:
    redirect_uri = f"{live_server.url}/intacct/callback/"
    intacct_emulator.add_redirect_uri(redirect_uri)
    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        **intacct_emulator.connect_settings(redirect_uri=redirect_uri),
    }
    settings.ROOT_URLCONF = "example_project.urls"
    settings.LOGIN_URL = "login"
    settings.LOGIN_REDIRECT_URL = "intacct_connect:connections"
    settings.LOGOUT_REDIRECT_URL = "login"
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "DIRS": [Path(__file__).resolve().parents[2] / "example_project" / "templates"],
        }
    ]
    return Site(live_server.url, intacct_emulator)


def sign_in(
    guard: Guard, site: Site, username: str, password: str, *, path: str = "/accounts/login/"
) -> None:
    """Sign in through the site's own login form (the example project's, or the admin's)."""
    guard.goto(site.path(path))
    guard.page.fill("input[name=username]", username)
    guard.page.fill("input[name=password]", password)
    guard.submit(guard.page.locator("form [type=submit]").last, f"signing in as {username}")
