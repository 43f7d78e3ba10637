"""Run the whole demo: the Intacct emulator, the Django site, a Celery worker and Celery beat.

Started by ``make demo``. Everything runs on embedded defaults (SQLite and kombu's
filesystem broker in ``.demo/``), so no server has to be installed. ``DEMO_SITE_ADDRESS``
and ``INTACCT_EMULATOR_PORT`` move the ports; the site's redirect URI follows the site's
port and the emulator registers it. The ports are checked before anything starts; a
start-up failure stops whatever had started. The banner is printed once all four processes
are ready. Ctrl-C stops it all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DEFAULT_SITE_ADDRESS = "127.0.0.1:8000"
DEFAULT_EMULATOR_PORT = "8765"
START_TIMEOUT = 60.0  # seconds for all four processes to be ready
STOP_TIMEOUT = 15.0  # seconds each process gets after SIGTERM before it is killed


class DemoError(Exception):
    """The demo cannot start; the message says why (printed without a traceback)."""


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM / SIGHUP) arrived while the demo was starting."""


@dataclass(frozen=True)
class Config:
    demo_dir: Path
    site_host: str
    site_port: int
    site_address: str  # as given to runserver
    site_setting: str  # "DEMO_SITE_ADDRESS=..." for messages
    emulator_port: int
    emulator_setting: str
    redirect_uri: str

    @property
    def site_probe_url(self) -> str:
        host = self.site_host
        if host in ("0.0.0.0", ""):  # noqa: S104 (a wildcard address: probe loopback)
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.site_port}/admin/login/"

    @property
    def site_url(self) -> str:
        """Where to open the site: the redirect URI's origin (the session cookie must come
        back from Intacct on the same host)."""
        parts = urlsplit(self.redirect_uri)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"


def _setting(name: str, default: str) -> tuple[str, str]:
    value = os.environ.get(name, "").strip()
    if value:
        return value, f"{name}={value}"
    return default, f"{name}={default}, the default"


def _port(text: str, setting: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise DemoError(f"{text!r} is not a port number from 1 to 65535 ({setting})")
    return int(text)


def read_config() -> Config:
    """The demo's addresses from the environment (and ``.env``, as the settings read it)."""
    import environ

    environ.Env.read_env(ROOT / ".env")  # never overrides the environment
    site_address, site_setting = _setting("DEMO_SITE_ADDRESS", DEFAULT_SITE_ADDRESS)
    host, sep, port_text = site_address.rpartition(":")
    if not sep:
        host = "127.0.0.1"
    host = host.removeprefix("[").removesuffix("]")
    if sep and not host:
        raise DemoError(f"{site_address!r} has no host before the colon ({site_setting})")
    site_port = _port(port_text, site_setting)
    emulator_text, emulator_setting = _setting("INTACCT_EMULATOR_PORT", DEFAULT_EMULATOR_PORT)
    emulator_port = _port(emulator_text, emulator_setting)
    redirect_uri = os.environ.get("INTACCT_REDIRECT_URI", "").strip()
    if not redirect_uri:
        redirect_uri = f"http://localhost:{site_port}/intacct/callback/"
    return Config(
        demo_dir=Path(os.environ.get("DEMO_DIR", ROOT / ".demo")).resolve(),
        site_host=host,
        site_port=site_port,
        site_address=site_address,
        site_setting=site_setting,
        emulator_port=emulator_port,
        emulator_setting=emulator_setting,
        redirect_uri=redirect_uri,
    )


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the servers do: a port whose old connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(config: Config) -> None:
    problems = []
    if config.emulator_port == config.site_port:
        problems.append(
            f"the site and the emulator cannot share port {config.site_port} "
            f"({config.site_setting}; {config.emulator_setting})"
        )
    else:
        if port_in_use("127.0.0.1", config.emulator_port):
            problems.append(
                f"port {config.emulator_port} is already in use ({config.emulator_setting}); "
                "set INTACCT_EMULATOR_PORT to a free port"
            )
        try:
            site_busy = port_in_use(config.site_host, config.site_port)
        except (OSError, UnicodeError) as err:
            raise DemoError(
                f"cannot listen on {config.site_host!r}: {err} ({config.site_setting})"
            ) from err
        if site_busy:
            problems.append(
                f"port {config.site_port} is already in use ({config.site_setting}); "
                "set DEMO_SITE_ADDRESS to a free [host:]port, e.g. 127.0.0.1:8001"
            )
    if problems:
        raise DemoError("; ".join(problems))


class Processes:
    """The demo's long-running processes, stopped together."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.interrupted = False

    def start(self, name: str, *cmd: str) -> None:
        # Own session: Ctrl-C reaches only this script, which stops them in order (one
        # SIGTERM each) instead of every process reacting to the terminal's SIGINT too.
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, start_new_session=True)
        self.running.append((name, proc))

    def exited(self) -> tuple[str, int] | None:
        for name, proc in self.running:
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def wait_until(self, ready: Callable[[], bool], what: str, deadline: float) -> None:
        """Wait for ``ready()``; fail at once when a process exits or Ctrl-C arrives."""
        while not ready():
            if self.interrupted:
                raise Interrupted
            gone = self.exited()
            if gone is not None:
                name, code = gone
                raise DemoError(f"{name} exited with status {code} while starting")
            if time.monotonic() > deadline:
                raise DemoError(f"{what} did not start within {START_TIMEOUT:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in reversed(self.running):
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our own loopback URL)
                return True
        except OSError:
            return False

    return check


def manage(procs: Processes, *args: str) -> None:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=procs.env, check=False)
    if procs.interrupted:
        raise Interrupted
    if result.returncode != 0:
        raise DemoError(f"manage.py {args[0]} failed with exit status {result.returncode}")


def start_demo(config: Config, procs: Processes) -> None:
    check_ports(config)
    config.demo_dir.mkdir(parents=True, exist_ok=True)
    manage(procs, "migrate", "--noinput", "-v", "0")
    manage(procs, "demo_setup")
    ready_files = [config.demo_dir / "worker.ready", config.demo_dir / "beat.ready"]
    for path in ready_files:
        path.unlink(missing_ok=True)
    deadline = time.monotonic() + START_TIMEOUT
    procs.start(
        "the emulator",
        PY,
        "-m",
        "intacct_connect.testing.emulator",
        "--port",
        str(config.emulator_port),
        "--state",
        str(config.demo_dir / "emulator.json"),
        # 20-minute access tokens: with the 15-minute refresh window (and up to 5 minutes
        # of jitter) proactive refreshes show up in the admin within minutes.
        "--access-token-ttl",
        "1200",
        "--redirect-uri",
        config.redirect_uri,
    )
    procs.wait_until(
        answers(f"{config.emulator_url}/.well-known/openid-configuration"), "the emulator", deadline
    )
    procs.start("the site", PY, "manage.py", "runserver", config.site_address, "--noreload")
    procs.start(
        "the Celery worker",
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
    procs.start(
        "Celery beat",
        PY,
        "-m",
        "celery",
        "-A",
        "example_project",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(config.demo_dir / "celerybeat-schedule"),
    )
    procs.wait_until(answers(config.site_probe_url), "the site", deadline)
    procs.wait_until(ready_files[0].exists, "the Celery worker", deadline)
    procs.wait_until(ready_files[1].exists, "Celery beat", deadline)


def banner(config: Config) -> str:
    site = config.site_url
    return (
        "\nDemo running:\n"
        f"  site      {site}/intacct/   (sign in as alice / alice)\n"
        f"  admin     {site}/admin/   (admin / admin)\n"
        f"  emulator  {config.emulator_url}/ia/api/v1"
        "   (Intacct sign-in: company DEMO-CO, user admin, password admin)\n"
        f"  callback  {config.redirect_uri}   (registered with the emulator)\n"
        "Press Ctrl-C to stop.\n"
    )


def main() -> int:
    try:
        config = read_config()
    except DemoError as err:
        print(f"Demo not started: {err}", file=sys.stderr, flush=True)
        return 1
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    env["INTACCT_REDIRECT_URI"] = config.redirect_uri
    env["DEMO_READY_DIR"] = str(config.demo_dir)
    env["PYTHONUNBUFFERED"] = "1"  # the children's lines come out in order, before the banner
    procs = Processes(env)

    def stop(signum: int, frame: FrameType | None) -> None:
        procs.interrupted = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)

    exit_code = 0
    try:
        start_demo(config, procs)
        print(banner(config), flush=True)
        while not procs.interrupted:
            gone = procs.exited()
            if gone is not None:
                name, code = gone
                what = f"{name[0].upper()}{name[1:]}"
                print(f"{what} exited with status {code}; stopping the demo", flush=True)
                exit_code = 1
                break
            time.sleep(0.5)
    except DemoError as err:
        print(f"Demo not started: {err}", file=sys.stderr, flush=True)
        exit_code = 1
    except Interrupted:
        exit_code = 0
    finally:
        if procs.exited() is None and procs.running:
            # The Celery worker's warm shutdown takes a few seconds.
            print("Stopping the demo...", flush=True)
        procs.stop()
    if procs.running or procs.interrupted:
        print("Demo stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
