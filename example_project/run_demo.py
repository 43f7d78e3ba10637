"""Run the whole demo: the Intacct emulator, the Django site, a Celery worker and Celery beat.

Started by ``make demo``. Everything runs on embedded defaults (SQLite and kombu's
filesystem broker in ``.demo/``), so no server has to be installed. Ctrl-C stops it all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = Path(os.environ.get("DEMO_DIR", ROOT / ".demo")).resolve()
PY = sys.executable
EMULATOR_PORT = int(os.environ.get("INTACCT_EMULATOR_PORT", "8765"))
SITE = os.environ.get("DEMO_SITE_ADDRESS", "127.0.0.1:8000")


def manage(*args: str) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True)


def wait_for(url: str, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own loopback URL)
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start within {timeout:.0f} s ({url})")


def main() -> int:
    DEMO.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    manage("migrate", "--noinput", "-v", "0")
    manage("demo_setup")

    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, *cmd: str) -> None:
        procs.append((name, subprocess.Popen(cmd, cwd=ROOT)))

    start(
        "emulator",
        PY,
        "-m",
        "intacct_connect.testing.emulator",
        "--port",
        str(EMULATOR_PORT),
        "--state",
        str(DEMO / "emulator.json"),
        # 20-minute access tokens: with the 15-minute refresh window (and up to 5 minutes
        # of jitter) proactive refreshes show up in the admin within minutes.
        "--access-token-ttl",
        "1200",
    )
    wait_for(f"http://127.0.0.1:{EMULATOR_PORT}/.well-known/openid-configuration", "emulator")
    start("site", PY, "manage.py", "runserver", SITE, "--noreload")
    start(
        "worker",
        PY,
        "-m",
        "celery",
        "-A",
        "example_project",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "1",
        "--queues",
        "celery,intacct.refresh,intacct.jobs",
    )
    start(
        "beat",
        PY,
        "-m",
        "celery",
        "-A",
        "example_project",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(DEMO / "celerybeat-schedule"),
    )
    wait_for(f"http://{SITE}/admin/login/", "site")
    host = SITE.replace("127.0.0.1", "localhost")
    print(
        f"\nDemo running:\n"
        f"  site      http://{host}/intacct/   (admin: http://{host}/admin/, admin / admin)\n"
        f"  emulator  http://127.0.0.1:{EMULATOR_PORT}/ia/api/v1"
        "  (sign in as DEMO-CO / admin / admin)\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in procs:
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the demo", flush=True)
                exit_code = 1
                stopping = True
        time.sleep(0.5)
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for _, proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
