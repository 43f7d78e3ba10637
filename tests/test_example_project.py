"""The example project's settings: defaults need no server; the environment switches them.

Each probe starts the site in a new process (forked from a warm interpreter: see
``tests.warm_python``), so the settings module reads that process's environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import cast

import pytest

from tests.warm_python import run_python

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import json
from django.conf import settings
import django
django.setup()
from intacct_connect.conf import app_settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "token_url": app_settings.TOKEN_URL,
    "authorize_url": app_settings.AUTHORIZE_URL,
    "client_id": app_settings.CLIENT_ID,
    "keys": len(app_settings.TOKEN_KEYS),
    "apps": settings.INSTALLED_APPS,
    "prefetch": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
    "redirect_uri": app_settings.REDIRECT_URI,
    "transport_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "demo_dir": str(settings.DEMO_DIR),
}))
"""


def probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INTACCT_", "DJANGO_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("CELERY_BROKER_URL", None)
    clean.update(env, DJANGO_SETTINGS_MODULE="example_project.settings")
    out = run_python(["-c", PROBE], cwd=ROOT, env=clean, check=True)
    values: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return values


def test_defaults_need_no_server() -> None:
    values = probe()
    assert values["engine"] == "django.db.backends.sqlite3"
    assert str(values["db_name"]).endswith(".demo/db.sqlite3")
    assert values["broker"] == "filesystem://localhost//"  # a host: kombu warns without one
    assert values["redirect_uri"] == "http://localhost:8000/intacct/callback/"
    options = values["transport_options"]
    assert isinstance(options, dict)
    # kombu's exchange tables stay in the demo directory, not in ./control/
    assert options["control_folder"] == f"{values['demo_dir']}/broker/control"
    assert Path(options["control_folder"]).is_dir()
    assert values["token_url"] == "http://127.0.0.1:8765/ia/api/v1/oauth2/token"
    assert values["client_id"] == "demo-client.app.sage.com"
    assert values["keys"] == 1  # the demo-only key, because DEBUG is on
    assert values["prefetch"] == 1
    assert "intacct_connect" in cast(list[str], values["apps"])


def test_environment_switches_to_postgres_redis_and_another_intacct() -> None:
    values = probe(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/somedb",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
        INTACCT_API_BASE_URL="https://sandbox-proxy.example.com/ia/api/v1",
        INTACCT_CLIENT_ID="abc.app.sage.com",
    )
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["db_name"] == "somedb"
    assert values["broker"] == "redis://127.0.0.1:6379/3"
    assert values["authorize_url"] == "https://sandbox-proxy.example.com/ia/api/v1/oauth2/authorize"
    assert values["client_id"] == "abc.app.sage.com"


def test_production_has_no_demo_key() -> None:
    values = probe(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 60)
    assert values["debug"] is False
    assert values["keys"] == 0  # so check --deploy fails with intacct_connect.E004


def test_env_example_documents_every_variable() -> None:
    text = (ROOT / ".env.example").read_text()
    settings_src = (ROOT / "example_project" / "settings.py").read_text()
    import re

    used = set(re.findall(r"env\.\w+\(\s*\"([A-Z_]+)\"", settings_src)) | set(
        re.findall(r"env\(\"([A-Z_]+)\"", settings_src)
    )
    assert used, "no variables found"
    missing = sorted(v for v in used if v not in text)
    assert not missing, f".env.example does not document {missing}"


@pytest.mark.parametrize("variable", ["DATABASE_URL", "CELERY_BROKER_URL", "INTACCT_TOKEN_KEYS"])
def test_key_variables_named_in_env_example(variable: str) -> None:
    assert variable in (ROOT / ".env.example").read_text()


@pytest.mark.parametrize(
    ("address", "redirect_uri"),
    [
        ("127.0.0.1:28000", "http://localhost:28000/intacct/callback/"),
        ("28001", "http://localhost:28001/intacct/callback/"),
        ("[::1]:28002", "http://localhost:28002/intacct/callback/"),
    ],
)
def test_redirect_uri_follows_the_demo_site_port(address: str, redirect_uri: str) -> None:
    assert probe(DEMO_SITE_ADDRESS=address)["redirect_uri"] == redirect_uri
    explicit = "https://app.example.com/intacct/callback/"
    assert probe(DEMO_SITE_ADDRESS=address, INTACCT_REDIRECT_URI=explicit)["redirect_uri"] == (
        explicit
    )


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:0", "x:70000"])
def test_bad_demo_site_address_is_a_precise_error(address: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTACCT_", "DJANGO_"))}
    env.update(DEMO_SITE_ADDRESS=address, DJANGO_SETTINGS_MODULE="example_project.settings")
    result = run_python(["-c", "import django; django.setup()"], cwd=ROOT, env=env)
    assert result.returncode == 1
    assert f"DEMO_SITE_ADDRESS={address!r} is not [host:]port" in result.stderr


def test_favicon_is_served() -> None:
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client(HTTP_HOST='localhost').get('/favicon.ico'); "
        "print(r.status_code, r['Content-Type'], r['Cache-Control'], r.content[:4])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTACCT_", "DJANGO_"))}
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    out = run_python(["-c", code], cwd=ROOT, env=env, check=True)
    assert out.stdout.split() == ["200", "image/svg+xml", "max-age=86400,", "public", "b'<svg'"]
