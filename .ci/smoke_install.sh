#!/usr/bin/env bash
# Install the built wheel into a brand-new `django-admin startproject` site, following
# docs/installation.rst, and require `migrate` and `check` to pass.
set -euo pipefail
wheel=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 -m venv venv
venv/bin/python -m pip install --quiet "$wheel"
venv/bin/django-admin startproject mysite .
key=$(venv/bin/python -m intacct_connect.crypto)
cat >> mysite/settings.py <<PY

# --- docs/installation.rst, steps 2 and 3 ---
INSTALLED_APPS += ["intacct_connect"]
INTACCT_CONNECT = {
    "CLIENT_ID": "b5974b6c5d6f2f1edb33.app.sage.com",
    "CLIENT_SECRET": "smoke-secret",
    "SENDER_ID": "SMOKE-SENDER",
    "REDIRECT_URI": "https://app.example.com/intacct/callback/",
    "TOKEN_KEYS": ["$key"],
}
PY
# --- step 4: mount the URLs ---
venv/bin/python - <<'PY'
from pathlib import Path
p = Path("mysite/urls.py")
s = p.read_text().replace("from django.urls import path", "from django.urls import include, path")
s = s.replace("urlpatterns = [", 'urlpatterns = [\n    path("intacct/", include("intacct_connect.urls")),', 1)
p.write_text(s)
PY
# --- step 5 ---
venv/bin/python manage.py migrate --noinput -v 0
venv/bin/python manage.py check --fail-level WARNING
venv/bin/python manage.py makemigrations --check --dry-run intacct_connect
echo "smoke install OK"
