"""``python -m intacct_connect.testing.emulator --port 8765 [--host 127.0.0.1] [--state FILE]
[--access-token-ttl SECONDS] [--refresh-mode none|rotate|reuse_detection]
[--refresh-grace SECONDS] [--redirect-uri URI ...] [--client-id CLIENT_ID]``

Runs the emulator until Ctrl-C or SIGTERM, then saves the state file (if any) and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from intacct_connect.testing.emulator.seed import DEMO_CLIENT_ID
from intacct_connect.testing.emulator.server import EmulatorServer


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
    parser.add_argument(
        "--refresh-grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="accept a rotated-away refresh token for this long (default 0: never)",
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="register this redirect URI for the application (repeatable)",
    )
    parser.add_argument(
        "--client-id",
        default=None,
        metavar="CLIENT_ID",
        help="the application --redirect-uri registers for (default: the demo application)",
    )
    args = parser.parse_args(argv)
    if args.client_id is not None and not args.redirect_uri:
        parser.error("--client-id needs at least one --redirect-uri")
    options = {
        name: value
        for name, value in (
            ("access_token_ttl", args.access_token_ttl),
            ("refresh_mode", args.refresh_mode),
            ("refresh_grace_seconds", args.refresh_grace),
        )
        if value is not None
    }

    client_id = args.client_id or DEMO_CLIENT_ID
    try:
        server = EmulatorServer(args.host, args.port, state_path=args.state)
        if options:
            server.configure(**options)
        for uri in args.redirect_uri:
            server.add_redirect_uri(uri, client_id)
        server.start()
    except (OSError, ValueError) as err:
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
    for uri in args.redirect_uri:
        say(f"  redirect URI registered for {client_id}: {uri}")
    while not stop.wait(0.5):
        pass
    server.stop()
    say("Emulator stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
