"""Sphinx configuration (built strictly: ``sphinx-build -W -n``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from intacct_connect import __version__  # noqa: E402

project = "intacct_connect"
author = "intacct_connect developers"
copyright = "2026, intacct_connect developers"
release = __version__
version = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
html_theme = "furo"
html_title = f"intacct_connect {__version__}"
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# No network here or on CI: intersphinx inventories are not fetched.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(django|requests|celery|datetime|collections|typing|_?thread|threading)\..*"),
    (r"py:class", r"(Any|Token|Connection|HttpRequest|HttpResponse|QuerySet.*|Model|TokenSet)"),
]
