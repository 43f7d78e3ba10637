"""The code snippets of docs/installation.rst live in docs/snippets/: the docs include them
(``literalinclude``) and ``.ci/smoke_install.sh`` builds a fresh site from them. These tests
keep the three in step and run the settings snippets the way a fresh site does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from intacct_connect import celery as intacct_celery
from intacct_connect.checks import CELERY_DOC

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
SMOKE = (ROOT / ".ci" / "smoke_install.sh").read_text()
SNIPPET_FILES = sorted(
    p.name for p in SNIPPETS.iterdir() if p.is_file() and p.name not in ("ruff.toml",)
)
#: The settings snippets, in the order the docs (and the smoke install) append them.
SETTINGS_PARTS = ("settings_intacct", "settings_login", "settings_celery", "settings_emulator")

ENV = {
    "INTACCT_CLIENT_ID": "demo-client.app.sage.com",
    "INTACCT_CLIENT_SECRET": "demo-secret",
    "INTACCT_SENDER_ID": "DEMO-SENDER",
    "INTACCT_REDIRECT_URI": "http://localhost:8000/intacct/callback/",
    "INTACCT_TOKEN_KEYS": "key-one,key-two",
    "CELERY_BROKER_URL": "redis://localhost:6379/0",
}


def included_snippets() -> set[str]:
    found: set[str] = set()
    for page in DOCS.glob("*.rst"):
        found.update(re.findall(r"literalinclude:: snippets/(\S+)", page.read_text()))
    return found


def test_every_snippet_is_in_the_docs_and_in_the_smoke_install() -> None:
    assert SNIPPET_FILES
    assert set(SNIPPET_FILES) <= included_snippets()
    for name in SNIPPET_FILES:
        assert f'"$snippets/{name}"' in SMOKE or '"$snippets/$part.py"' in SMOKE, name
    for part in SETTINGS_PARTS:
        assert part in SMOKE
    assert f"for part in {' '.join(SETTINGS_PARTS)}; do" in SMOKE


def test_the_docs_include_only_existing_snippets() -> None:
    assert included_snippets() <= set(SNIPPET_FILES)


def fresh_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """The module namespace of a `startproject` settings.py with the snippets appended."""
    for name in (*ENV, "INTACCT_EMULATOR_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {
        "BASE_DIR": Path("/srv/mysite"),
        "INSTALLED_APPS": ["django.contrib.admin", "django.contrib.auth"],
        "TEMPLATES": [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": []}],
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}},
    }
    for part in SETTINGS_PARTS:
        path = SNIPPETS / f"{part}.py"
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def test_settings_snippets_configure_a_fresh_site(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = fresh_settings(monkeypatch, **ENV)
    assert conf["INSTALLED_APPS"][-1] == "intacct_connect"
    intacct = conf["INTACCT_CONNECT"]
    assert intacct["CLIENT_ID"] == ENV["INTACCT_CLIENT_ID"]
    assert intacct["REDIRECT_URI"] == ENV["INTACCT_REDIRECT_URI"]
    assert intacct["TOKEN_KEYS"] == ["key-one", "key-two"]
    # The emulator's default address, as in the docs' `--port 8765`.
    assert intacct["TOKEN_URL"] == "http://127.0.0.1:8765/ia/api/v1/oauth2/token"
    assert conf["LOGIN_URL"] == "login"
    assert conf["TEMPLATES"][0]["DIRS"] == [Path("/srv/mysite/templates")]
    assert conf["CELERY_BROKER_URL"] == ENV["CELERY_BROKER_URL"]
    assert conf["CELERY_BEAT_SCHEDULE"] == intacct_celery.beat_schedule
    assert conf["CELERY_TASK_ROUTES"] == intacct_celery.task_routes
    for key, value in intacct_celery.recommended_settings.items():
        assert conf[f"CELERY_{key.upper()}"] == value, key


def test_emulator_snippet_follows_the_emulator_url(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = fresh_settings(monkeypatch, **ENV, INTACCT_EMULATOR_URL="http://127.0.0.1:9999")
    intacct = conf["INTACCT_CONNECT"]
    assert intacct["API_BASE_URL"] == "http://127.0.0.1:9999/ia/api/v1"
    for key, path in (
        ("AUTHORIZE_URL", "authorize"),
        ("TOKEN_URL", "token"),
        ("REVOKE_URL", "revoke"),
    ):
        assert intacct[key] == f"http://127.0.0.1:9999/ia/api/v1/oauth2/{path}"


@pytest.mark.parametrize("missing", sorted(ENV))
def test_a_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ImproperlyConfigured, match=f"Set the environment variable {missing} "):
        fresh_settings(monkeypatch, **env)


def test_w003_points_at_an_existing_section() -> None:
    title = re.search(r"section '(.+)'", CELERY_DOC)
    assert title is not None
    assert re.search(
        rf"^\d+\. {re.escape(title.group(1))}$", (DOCS / "installation.rst").read_text(), re.M
    )


def test_readme_snippet_is_self_contained() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adding it to an existing site", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert code
    for block in code:
        compile(block, "README.md", "exec")
        assert "env(" not in block
        assert "env.list(" not in block
        assert "import os" in block
    assert "git+https://github.com/intacct-connect/intacct-connect" in section
    assert "docs/installation.rst" in section
