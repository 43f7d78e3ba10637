from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from intacct_connect.checks import (
    celery_app_messages,
    check_celery_app,
    check_settings,
    check_sqlite_with_real_broker,
    sqlite_broker_messages,
    unshared_cache_messages,
)
from intacct_connect.crypto import generate_key
from tests.warm_python import run_python

GOOD_KEY = generate_key()
BASE: dict[str, Any] = {
    "CLIENT_ID": "abc.app.sage.com",
    "CLIENT_SECRET": "s3cret",
    "REDIRECT_URI": "https://app.example.com/intacct/callback/",
    "TOKEN_KEYS": [GOOD_KEY],
}


def ids(**overrides: Any) -> list[str | None]:
    config = {**BASE, **overrides}
    config = {k: v for k, v in config.items() if v is not DROP}
    with override_settings(INTACCT_CONNECT=config):
        return [m.id for m in check_settings()]


DROP = object()


def messages(**overrides: Any) -> list[Any]:
    config = {k: v for k, v in {**BASE, **overrides}.items() if v is not DROP}
    with override_settings(INTACCT_CONNECT=config):
        return list(check_settings())


def test_valid_configuration_passes() -> None:
    assert ids() == []


@pytest.mark.parametrize(
    ("overrides", "expected", "names"),
    [
        ({"CLIENT_ID": DROP}, "intacct_connect.E002", "CLIENT_ID"),
        ({"CLIENT_ID": "  "}, "intacct_connect.E002", "CLIENT_ID"),
        ({"CLIENT_SECRET": ""}, "intacct_connect.E003", "CLIENT_SECRET"),
        ({"TOKEN_KEYS": []}, "intacct_connect.E004", "TOKEN_KEYS"),
        ({"TOKEN_KEYS": DROP}, "intacct_connect.E004", "TOKEN_KEYS"),
        ({"TOKEN_KEYS": ["not base64!"]}, "intacct_connect.E005", "TOKEN_KEYS"),
        ({"TOKEN_KEYS": ["c2hvcnQ="]}, "intacct_connect.E005", "TOKEN_KEYS"),
        ({"TOKEN_KEYS": [GOOD_KEY, GOOD_KEY]}, "intacct_connect.E012", "TOKEN_KEYS"),
        ({"REDIRECT_URI": DROP}, "intacct_connect.E007", "REDIRECT_URI"),
        ({"REDIRECT_URI": "/intacct/callback/"}, "intacct_connect.E007", "REDIRECT_URI"),
        ({"REDIRECT_URI": "http://app.example.com/cb/"}, "intacct_connect.E008", "REDIRECT_URI"),
        ({"TOKEN_URL": "ftp://x/token"}, "intacct_connect.E010", "TOKEN_URL"),
        ({"API_BASE_URL": "api.intacct.com"}, "intacct_connect.E010", "API_BASE_URL"),
        ({"CLIENT_SCOPE": "prod"}, "intacct_connect.E011", "CLIENT_SCOPE"),
        ({"STATE_TTL": "ten"}, "intacct_connect.E001", "STATE_TTL"),
        ({"BOGUS": 1}, "intacct_connect.E001", "BOGUS"),
        ({"ADAPTER": "no.such.Adapter"}, "intacct_connect.E013", "ADAPTER"),
        ({"CONCURRENCY_BACKEND": "redis"}, "intacct_connect.E014", "CONCURRENCY_BACKEND"),
        (
            {"CONCURRENCY_BACKEND": "cache", "CONCURRENCY_CACHE": "nowhere"},
            "intacct_connect.E014",
            "CONCURRENCY_CACHE",
        ),
        ({"COMPANY_CONCURRENCY": -1}, "intacct_connect.E015", "COMPANY_CONCURRENCY"),
        ({"CONCURRENCY_SLOT_TTL": 0}, "intacct_connect.E015", "CONCURRENCY_SLOT_TTL"),
        ({"CONCURRENCY_SLOT_LINGER": -0.5}, "intacct_connect.E015", "CONCURRENCY_SLOT_LINGER"),
        ({"API_CALL_LOG_BATCH_SIZE": 0}, "intacct_connect.E015", "API_CALL_LOG_BATCH_SIZE"),
        ({"API_CALL_LOG_MAX_DELAY": -1}, "intacct_connect.E015", "API_CALL_LOG_MAX_DELAY"),
    ],
)
def test_each_problem_has_a_stable_id_naming_the_setting(
    overrides: dict[str, Any], expected: str, names: str
) -> None:
    found = messages(**overrides)
    assert found
    assert {m.id for m in found} == {expected}
    assert all(isinstance(m, Error) for m in found)
    assert names in found[0].msg


def test_key_equal_to_secret_key(settings: Any) -> None:
    assert ids(TOKEN_KEYS=[settings.SECRET_KEY]) == ["intacct_connect.E006"]
    key = generate_key()
    settings.SECRET_KEY = key
    found = messages(TOKEN_KEYS=[key])
    assert [m.id for m in found] == ["intacct_connect.E006"]
    assert "SECRET_KEY" in found[0].msg


def test_key_equal_to_secret_key_fallback(settings: Any) -> None:
    key = generate_key()
    settings.SECRET_KEY_FALLBACKS = [key]
    assert ids(TOKEN_KEYS=[GOOD_KEY, key]) == ["intacct_connect.E006"]


def test_http_redirect_allowed_while_debug(settings: Any) -> None:
    settings.DEBUG = True
    assert ids(REDIRECT_URI="http://localhost:8000/intacct/callback/") == []


def test_samesite_strict_breaks_the_return(settings: Any) -> None:
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    found = messages()
    assert [m.id for m in found] == ["intacct_connect.E009"]
    assert "SESSION_COOKIE_SAMESITE" in found[0].msg


def test_sqlite_with_real_broker_warns() -> None:
    found = sqlite_broker_messages(
        engine="django.db.backends.sqlite3", eager=False, broker="redis://:pw@127.0.0.1:6379/0"
    )
    assert [m.id for m in found] == ["intacct_connect.W001"]
    assert isinstance(found[0], Warning)
    assert "pw" not in found[0].msg  # broker credentials are not echoed
    assert "CELERY_BROKER_URL" in found[0].msg


@pytest.mark.parametrize(
    ("eager", "broker", "engine"),
    [
        (True, "redis://127.0.0.1:6379/0", "django.db.backends.sqlite3"),
        (False, "memory://", "django.db.backends.sqlite3"),
        (False, "", "django.db.backends.sqlite3"),  # Celery not configured
        (False, "redis://127.0.0.1:6379/0", "django.db.backends.postgresql"),
    ],
)
def test_sqlite_check_quiet_otherwise(eager: bool, broker: str, engine: str) -> None:
    assert sqlite_broker_messages(engine=engine, eager=eager, broker=broker) == []


def test_registered_check_reads_settings(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    expected = (
        ["intacct_connect.W001"] if "sqlite" in settings.DATABASES["default"]["ENGINE"] else []
    )
    assert [m.id for m in check_sqlite_with_real_broker()] == expected
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert check_sqlite_with_real_broker() == []


def test_manage_py_check_fails_with_the_setting_named() -> None:
    with override_settings(INTACCT_CONNECT={**BASE, "CLIENT_SECRET": ""}):
        with pytest.raises(SystemCheckError, match=r"intacct_connect\.E003.*CLIENT_SECRET"):
            call_command("check")


def test_test_settings_pass_all_checks() -> None:
    call_command("check", fail_level="WARNING")


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {
    "slots": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://h"}
}


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
        "django.core.cache.backends.filebased.FileBasedCache",
        "django.core.cache.backends.db.DatabaseCache",
    ],
)
def test_cache_backend_on_a_cache_not_shared_by_processes_warns(backend: str) -> None:
    found = unshared_cache_messages("default", backend)
    assert [m.id for m in found] == ["intacct_connect.W002"]
    assert isinstance(found[0], Warning)
    assert "CONCURRENCY_BACKEND" in found[0].msg
    assert backend.rsplit(".", 1)[-1] in found[0].msg


def test_registered_check_warns_about_a_process_local_concurrency_cache(settings: Any) -> None:
    settings.CACHES = LOCMEM
    assert ids(CONCURRENCY_BACKEND="cache") == ["intacct_connect.W002"]
    # The database backend (the default) does not use the cache at all.
    assert ids() == []
    assert ids(CONCURRENCY_BACKEND="database") == []


def test_shared_concurrency_cache_passes(settings: Any) -> None:
    settings.CACHES = {**LOCMEM, **REDIS}
    assert ids(CONCURRENCY_BACKEND="cache", CONCURRENCY_CACHE="slots") == []
    assert (
        unshared_cache_messages("x", "django.core.cache.backends.memcached.PyMemcacheCache") == []
    )


# --- W003: tasks published through Celery's fallback app or its default broker ---------


@pytest.fixture
def no_broker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery reads CELERY_BROKER_URL from the environment too (CI sets it)."""
    for name in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL", "CELERY_BROKER_READ_URL"):
        monkeypatch.delenv(name, raising=False)


def site_app(**conf: Any) -> Celery:
    """An app like a site's ``celery.py`` makes, without touching Celery's global state."""
    app = Celery("mysite", set_as_current=False, fixups=[])
    app.conf.update(conf)
    return app


def test_no_celery_app_loaded_warns() -> None:
    found = celery_app_messages(app=None, eager=False)
    assert [m.id for m in found] == ["intacct_connect.W003"]
    assert isinstance(found[0], Warning)
    assert "fallback app" in found[0].msg
    assert found[0].hint is not None
    assert "from .celery import app as celery_app" in found[0].hint
    assert "CELERY_BROKER_URL" in found[0].hint
    assert "docs/installation.rst" in found[0].hint


def test_celerys_fallback_app_warns() -> None:
    # What celery.current_app creates when no app of the site made itself the default.
    fallback = Celery("default", fixups=[], set_as_current=False)
    assert [m.id for m in celery_app_messages(app=fallback, eager=False)] == [
        "intacct_connect.W003"
    ]


def test_site_app_without_a_broker_warns(no_broker_env: None) -> None:
    found = celery_app_messages(app=site_app(), eager=False)
    assert [m.id for m in found] == ["intacct_connect.W003"]
    assert "'mysite'" in found[0].msg
    assert "amqp://guest@localhost//" in found[0].msg


def test_site_app_with_a_broker_passes(
    no_broker_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        celery_app_messages(app=site_app(broker_url="redis://127.0.0.1:6379/5"), eager=False) == []
    )
    # A broker given only in the environment is one Celery uses as well.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/6")
    assert celery_app_messages(app=site_app(), eager=False) == []


@pytest.mark.parametrize("app", [None, Celery("default", fixups=[], set_as_current=False)])
def test_eager_tasks_never_warn(app: Celery | None) -> None:
    assert celery_app_messages(app=app, eager=True) == []


def test_registered_check_reads_celerys_default_app(
    settings: Any, monkeypatch: pytest.MonkeyPatch, no_broker_env: None
) -> None:
    from celery import _state

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(_state, "default_app", None)
    assert [m.id for m in check_celery_app()] == ["intacct_connect.W003"]
    assert _state.default_app is None  # type: ignore[attr-defined]  # the check did not create Celery's fallback app
    monkeypatch.setattr(_state, "default_app", site_app(broker_url="memory://"))
    assert check_celery_app() == []
    monkeypatch.setattr(_state, "default_app", None)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert check_celery_app() == []


ROOT = Path(__file__).resolve().parent.parent
CHECK_IDS = """
import json
import django
from django.core.checks import run_checks
django.setup()
print(json.dumps(sorted(m.id for m in run_checks(include_deployment_checks=False))))
"""


def check_ids_in_a_fresh_process(settings_module: str, *paths: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTACCT_", "DJANGO_"))}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(name, None)
    env["DJANGO_SETTINGS_MODULE"] = settings_module
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (*paths, ROOT))
    out = run_python(["-c", CHECK_IDS], cwd=ROOT, env=env, check=True)
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_a_site_that_never_imports_its_celery_app_warns(tmp_path: Path) -> None:
    # The fresh site: Celery configured in settings, the app never imported.
    (tmp_path / "site_without_app.py").write_text(
        "from tests.settings import *\n"
        "CELERY_TASK_ALWAYS_EAGER = False\n"
        "CELERY_BROKER_URL = 'redis://127.0.0.1:6379/9'\n"
    )
    assert "intacct_connect.W003" in check_ids_in_a_fresh_process("site_without_app", tmp_path)


def test_a_site_that_imports_its_celery_app_passes(tmp_path: Path) -> None:
    (tmp_path / "site_with_app.py").write_text(
        "from tests.settings import *\n"
        "CELERY_TASK_ALWAYS_EAGER = False\n"
        "CELERY_BROKER_URL = 'redis://127.0.0.1:6379/9'\n"
        "import tests.celery_app  # what <project>/__init__.py does\n"
    )
    assert "intacct_connect.W003" not in check_ids_in_a_fresh_process("site_with_app", tmp_path)


def test_the_example_project_does_not_warn() -> None:
    # example_project/__init__.py imports its app (and the demo's broker is set).
    assert "intacct_connect.W003" not in check_ids_in_a_fresh_process("example_project.settings")
