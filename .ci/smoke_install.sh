#!/usr/bin/env bash
# Install the built wheel into a brand-new `django-admin startproject` site, following
# docs/installation.rst with the files of docs/snippets/ (appended or copied, never retyped
# here), and require:
#   - a missing environment variable to fail with a message naming it;
#   - `check` to report intacct_connect.W003 while the project package does not import the
#     site's Celery app, and `migrate` + `check --fail-level WARNING` to pass once it does;
#   - a company to connect through a real browser (Chromium + Playwright, from the
#     repository's .venv) against the emulator CLI, as in "Trying it locally";
#   - the admin's "Run selected schedules now" to land in the site's OWN broker (a Redis
#     database of the local server), not in Celery's default amqp://guest@localhost//.
# Usage: bash .ci/smoke_install.sh dist/intacct_connect-<version>-py3-none-any.whl
# Needs Redis on 127.0.0.1:6379 (SMOKE_REDIS_DB picks the database, default 13; its
# intacct.* queues are emptied) and Chromium (/usr/bin/chromium, or INTACCT_CHROMIUM).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
snippets="$root/docs/snippets"
wheel=$(realpath "$1")
redis_db=${SMOKE_REDIS_DB:-13}
work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for log in "$work"/*.log; do
    [ -f "$log" ] && { echo "--- $(basename "$log")" >&2; tail -n 40 "$log" >&2; }
  done
  exit 1
}
say() { printf 'smoke: %s\n' "$*"; }
redis() { redis-cli -h 127.0.0.1 -p 6379 -n "$redis_db" "$@"; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() {  # URL LOG: until the URL answers (any HTTP status)
  local _
  for _ in $(seq 1 60); do
    if python3 -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass' "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  fail "$1 did not answer (see $2)"
}

redis ping >/dev/null 2>&1 || fail "Redis is not reachable on 127.0.0.1:6379"
cd "$work"

# --- 1. install (the wheel stands in for the git URL / PyPI; the testing extra for the
# emulator, and the Redis client for the broker) ---
python3 -m venv venv
venv/bin/python -m pip install --quiet "$wheel[testing]" "celery[redis]"
venv/bin/django-admin startproject mysite .
export PATH="$work/venv/bin:$PATH"  # `python` in docs/snippets/emulator_env.sh

# --- 2-5. settings, URLs, sign-in: the docs' snippets, as they are ---
for part in settings_intacct settings_login settings_celery settings_emulator; do
  printf '\n' >>mysite/settings.py
  cat "$snippets/$part.py" >>mysite/settings.py
done
cp "$snippets/urls.py" mysite/urls.py
mkdir -p templates/registration
cp "$snippets/login.html" templates/registration/login.html
cp "$snippets/celery.py" mysite/celery.py

# A missing variable is an error naming it, not a KeyError traceback.
if out=$(env -u INTACCT_CLIENT_ID python manage.py check 2>&1); then
  fail "check passed without INTACCT_CLIENT_ID"
fi
grep -q "ImproperlyConfigured: Set the environment variable INTACCT_CLIENT_ID" <<<"$out" \
  || fail "no clear message for a missing INTACCT_CLIENT_ID: $out"
say "a missing INTACCT_CLIENT_ID says: $(grep -o 'Set the environment variable.*' <<<"$out")"

# --- "Trying it locally against the emulator": its environment, on free ports ---
# shellcheck source=../docs/snippets/emulator_env.sh
source "$snippets/emulator_env.sh"
site_port=$(free_port)
emulator_port=$(free_port)
site="http://127.0.0.1:$site_port"
export INTACCT_REDIRECT_URI="$site/intacct/callback/"
export INTACCT_EMULATOR_URL="http://127.0.0.1:$emulator_port"
export CELERY_BROKER_URL="redis://127.0.0.1:6379/$redis_db"

check_ids() {  # the ids `manage.py check` reports, one a line
  python manage.py check 2>&1 | grep -o '([a-z_]*\.[A-Z][0-9]*)' | tr -d '()' | sort -u || true
}
# Without mysite/__init__.py importing the app, tasks would go to Celery's default broker.
check_ids | grep -qx "intacct_connect.W003" \
  || fail "no intacct_connect.W003 while mysite/__init__.py does not import the Celery app"
say "before mysite/__init__.py imports the Celery app, check warns: intacct_connect.W003"
cp "$snippets/project_init.py" mysite/__init__.py

# --- 6. create the tables and check ---
python manage.py migrate --noinput -v 0
# The only warning left is W001 (SQLite with a real broker), as the docs say.
ids=$(check_ids | tr '\n' ' ')
[ "$ids" = "intacct_connect.W001 " ] || fail "check reports [$ids], expected only W001"
say "migrate OK; check reports only intacct_connect.W001 (SQLite with a real broker)"
python manage.py makemigrations --check --dry-run intacct_connect
admin_password="smoke-$(python -c 'import secrets; print(secrets.token_urlsafe(12))')"
DJANGO_SUPERUSER_PASSWORD="$admin_password" \
  python manage.py createsuperuser --noinput --username admin --email admin@example.com
python manage.py shell -c \
  "from django.contrib.auth.models import User; User.objects.create_user('alice', password='alice')"

# --- the emulator CLI and the site, then the browser ---
python -m intacct_connect.testing.emulator --port "$emulator_port" \
  --redirect-uri "$INTACCT_REDIRECT_URI" >emulator.log 2>&1 &
pids+=($!)
python manage.py runserver --noreload "127.0.0.1:$site_port" >site.log 2>&1 &
pids+=($!)
wait_for "$INTACCT_EMULATOR_URL/ia/api/v1/oauth2/authorize" emulator.log
wait_for "$site/accounts/login/" site.log
say "emulator on $INTACCT_EMULATOR_URL, site on $site, broker $CELERY_BROKER_URL"

redis del intacct.jobs intacct.refresh >/dev/null
"$root/.venv/bin/python" "$root/.ci/browser_connect.py" --site "$site" \
  --admin admin --admin-password "$admin_password" \
  || fail "the browser run failed"

# --- the admin's "run now" reached the site's own broker ---
queued=$(redis llen intacct.jobs)
[ "$queued" = "1" ] || fail "expected 1 message in Redis db $redis_db list intacct.jobs, found $queued"
redis lindex intacct.jobs 0 | grep -q '"task": "intacct_connect.run_job"' \
  || fail "the message in intacct.jobs is not an intacct_connect.run_job task"
say "Redis db $redis_db, list intacct.jobs: 1 intacct_connect.run_job message from the web process"
redis del intacct.jobs intacct.refresh >/dev/null
echo "smoke install OK"
