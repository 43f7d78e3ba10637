"""``python -m intacct_connect.testing.emulator --port 8765 [--host 127.0.0.1] [--state FILE]
[--access-token-ttl SECONDS] [--refresh-mode none|rotate|reuse_detection]``

Runs the emulator until Ctrl-C or SIGTERM, then saves the state file (if any) and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m intacct_connect.testing.emulator",
        description="Run the local Sage Intacct emulator (OAuth 2.0 server and REST API).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port (0: a free port)")
    parser.add_argument(
        "--state",
        metavar="FILE",
        default=None,
        help="keep the state in this JSON file (loaded at start, saved atomically)",
    )
    parser.add_argument(
        "--access-token-ttl",
        type=int,
        default=None,
        metavar="SECONDS",
        help="lifetime of issued access tokens (default 21600, Intacct's documented 6 hours)",
    )
    parser.add_argument(
        "--refresh-mode",
        choices=("none", "rotate", "reuse_detection"),
        default=None,
        help="refresh-token behaviour (default reuse_detection, the strictest)",
    )
    args = parser.parse_args(argv)
    options = {
        name: value
        for name, value in (
            ("access_token_ttl", args.access_token_ttl),
            ("refresh_mode", args.refresh_mode),
        )
        if value is not None
    }

    from intacct_connect.testing.emulator.server import EmulatorServer

    try:
        server = EmulatorServer(args.host, args.port, state_path=args.state)
        server.start()
    except (OSError, ValueError) as err:
        sys.stderr.write(f"Could not start the emulator: {err}\n")
        return 1
    try:
        if options:
            server.configure(**options)
    except ValueError as err:
        server.stop()
        sys.stderr.write(f"Could not start the emulator: {err}\n")
        return 1
    stop = threading.Event()

    def handle_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle_signal)
    signal.signal(signal.SIGTERM, handle_signal)
    say(f"Sage Intacct emulator running: API base URL {server.base_url}")
    say(f"  authorize: {server.authorize_url}")
    say(f"  token:     {server.token_url}")
    say(f"  control:   {server.control_url}/")
    if args.state:
        say(f"  state file: {args.state}")
    while not stop.wait(0.5):
        pass
    server.stop()
    say("Emulator stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
