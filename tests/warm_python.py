"""Run ``python -c …`` / ``python -m …`` as a fresh process would, without paying for
Django's and Celery's imports each time.

The tests that start a site in a new process (the example project's settings read from the
environment, system checks, a management command's exit code) spend most of each start
importing third-party packages. :func:`run_python` forks each run from one *warm* server
process instead: the server has imported Django, Celery, requests and the like (nothing of
this repository, and no settings), so every child starts with a fresh ``os.environ``,
working directory, ``sys.argv`` and ``sys.path`` from the request, imports the settings,
``intacct_connect`` and the site for the first time, and reports its exit status, stdout
and stderr like :func:`subprocess.run`. An uncaught exception prints its traceback and
exits 1, as the interpreter does.

Without ``os.fork`` (not POSIX) it falls back to :func:`subprocess.run`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Imported once by the server: third-party packages that read nothing at import time.
PRELOAD = (
    "django.contrib.admin",
    "django.core.management",
    "django.core.serializers.json",
    "django.db.models",
    "django.test",
    "django.urls",
    "celery",
    "celery.app",
    "kombu",
    "requests",
    "requests_oauthlib",
    "cryptography.fernet",
    "environ",
    "sqlparse",
)

SERVER = r"""
import importlib, json, os, sys, tempfile, traceback

for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
BASE_PATH = [p for p in sys.path[1:] if p not in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
BASE_ENV = dict(os.environ)


def child(request, out_path, err_path):
    import runpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    args = request["args"]
    out = os.open(out_path, os.O_WRONLY)
    err = os.open(err_path, os.O_WRONLY)
    os.dup2(out, 1)
    os.dup2(err, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    code = 0
    try:
        if args[0] == "-c":
            sys.path[:] = ["", *extra, *BASE_PATH]
            sys.argv = ["-c", *args[2:]]
            main = type(sys)("__main__")
            sys.modules["__main__"] = main
            exec(compile(args[1], "<string>", "exec"), main.__dict__)
        elif args[0] == "-m":
            sys.path[:] = [os.getcwd(), *extra, *BASE_PATH]
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            script = os.path.abspath(args[0])
            sys.path[:] = [os.path.dirname(script), *extra, *BASE_PATH]
            sys.argv = list(args)
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        if exit.code is None:
            code = 0
        elif isinstance(exit.code, int):
            code = exit.code
        else:
            print(exit.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


for line in sys.stdin:
    request = json.loads(line)
    paths = []
    for prefix in ("warm-python-out-", "warm-python-err-"):
        fd, path = tempfile.mkstemp(prefix=prefix)
        os.close(fd)
        paths.append(path)
    out_path, err_path = paths
    pid = os.fork()
    if pid == 0:
        child(request, out_path, err_path)
    _, status = os.waitpid(pid, 0)
    with open(out_path, "rb") as o, open(err_path, "rb") as e:
        reply = {
            "returncode": os.waitstatus_to_exitcode(status),
            "stdout": o.read().decode("utf-8", "replace"),
            "stderr": e.read().decode("utf-8", "replace"),
        }
    os.unlink(out_path)
    os.unlink(err_path)
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class _Server:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None

    def run(self, request: dict[str, object]) -> dict[str, object]:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", SERVER, json.dumps(PRELOAD)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
                )
            assert self.proc.stdin is not None
            assert self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the warm Python server died")
            reply: dict[str, object] = json.loads(line)
            return reply

    def stop(self) -> None:
        with self.lock:
            if self.proc is not None:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=10)
                self.proc = None


_server = _Server()


def run_python(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
    text=True, check=check)``, forked from the warm server. ``args`` starts with ``-c``,
    ``-m`` or a script path."""
    argv = [sys.executable, *args]
    if not hasattr(os, "fork"):  # pragma: no cover - POSIX only
        return subprocess.run(
            argv, env=dict(env), cwd=cwd, capture_output=True, text=True, check=check
        )
    reply = _server.run({"args": list(args), "env": dict(env), "cwd": str(Path(cwd))})
    result = subprocess.CompletedProcess(
        argv, int(str(reply["returncode"])), str(reply["stdout"]), str(reply["stderr"])
    )
    if check:
        result.check_returncode()
    return result


def stop() -> None:
    """Stop the warm server (at the end of the test session)."""
    _server.stop()
