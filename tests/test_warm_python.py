"""tests.warm_python: a run forked from the warm server behaves like a new interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.warm_python import run_python

ROOT = Path(__file__).resolve().parent.parent


def test_exit_status_output_environment_and_directory(tmp_path: Path) -> None:
    code = (
        "import os, sys; print(os.getcwd()); print(os.environ.get('ONLY_HERE'), "
        "os.environ.get('HOME')); print(sys.argv); sys.stderr.write('err'); sys.exit(3)"
    )
    result = run_python(["-c", code, "x"], env={"ONLY_HERE": "yes"}, cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout.splitlines() == [str(tmp_path), "yes None", "['-c', 'x']"]
    assert result.stderr == "err"
    assert result.args == [sys.executable, "-c", code, "x"]


def test_nothing_of_this_repository_and_no_settings_are_loaded_yet() -> None:
    code = (
        "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('intacct_connect', 'example_project', 'tests')))\n"
        "from django.conf import settings; print(settings.configured)"
    )
    result = run_python(["-c", code], env={}, cwd=ROOT, check=True)
    assert result.stdout.split() == ["[]", "False"]


def test_an_uncaught_exception_prints_its_traceback_and_exits_1() -> None:
    result = run_python(["-c", "raise ValueError('boom')"], env={}, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().endswith("ValueError: boom")
    with pytest.raises(subprocess.CalledProcessError):
        run_python(["-c", "raise SystemExit(2)"], env={}, cwd=ROOT, check=True)


def test_modules_and_pythonpath_as_python_dash_m(tmp_path: Path) -> None:
    (tmp_path / "probe_module.py").write_text(
        "import sys\nprint(__name__, sys.argv[1:])\nraise SystemExit('a message')\n"
    )
    result = run_python(
        ["-m", "probe_module", "a", "b"], env={"PYTHONPATH": str(tmp_path)}, cwd=ROOT
    )
    assert result.stdout == "__main__ ['a', 'b']\n"
    assert (result.returncode, result.stderr) == (1, "a message\n")
