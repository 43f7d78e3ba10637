# Task runner for intacct_connect. The README's two commands are `make demo` and `make test`;
# both create the virtual environment and install what they need, from nothing but Python.
#
#   make demo        set up and run the demo: site + Intacct emulator + Celery worker + beat
#   make test        run the test suite (SQLite, embedded broker: no servers needed)
#   make lint        ruff + mypy
#   make coverage    the test suite under coverage, then the gate (fail_under in pyproject.toml)
#   make docs        strict Sphinx build (warnings are errors)
#   make dist        build wheel + sdist and check their metadata
#   make screenshots run the browser tests and save the docs' screenshots (docs/images/screenshots)
#
# Variables: PYTHON (interpreter that creates the venv), VENV (its directory), PYTEST_ARGS,
# DJANGO_SPEC (a requirement pinning Django in a new venv, e.g. 'django>=6.0,<6.1').

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
DJANGO_SPEC ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs dist clean venv migrations screenshots coverage

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[testing]" --group dev $(if $(DJANGO_SPEC),"$(DJANGO_SPEC)")
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python example_project/run_demo.py

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

coverage: $(STAMP)
	$(BIN)/python -m coverage erase
	$(BIN)/python -m coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --skip-covered --sort=cover

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy intacct_connect example_project tests

# The browser tests (tests/browser, Chromium through Playwright) save their screenshots here.
screenshots: $(STAMP)
	rm -rf docs/images/screenshots
	INTACCT_REQUIRE_BROWSER=1 INTACCT_SCREENSHOT_DIR=docs/images/screenshots \
		$(BIN)/python -m pytest tests/browser -q -m browser
	@ls docs/images/screenshots

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html

dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf .venv .venv-* dist docs/_build .demo

# Pre-release there is one initial migration, regenerated from the models.
migrations: $(STAMP)
	rm -f intacct_connect/migrations/0*.py
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/django-admin makemigrations intacct_connect -n initial
