"""``manage.py intacct_rotate_keys``: re-encrypt stored tokens under the newest key.

Run it after deploying ``TOKEN_KEYS = [new, old]``; when it reports 0 rows left, deploy
``TOKEN_KEYS = [new]``. Safe while the site runs and refreshes tokens (see
``docs/key_rotation.rst``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from intacct_connect import crypto, flows
from intacct_connect.exceptions import DecryptionError


def render_bar(done: int, total: int, width: int = 30) -> str:
    total = max(total, done, 1)
    filled = int(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Command(BaseCommand):
    help = "Re-encrypt every stored token and PKCE verifier with the first key of TOKEN_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Rows per transaction (default 500)."
        )
        parser.add_argument(
            "--check", action="store_true", help="Only count rows under an old key; exit 1 if any."
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="Do not draw the progress bar (stderr)."
        )
        parser.add_argument(
            "--max-idle",
            type=float,
            default=60.0,
            help="Give up after this many seconds without progress (rows kept locked).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        ring = crypto.get_keyring()
        tokens, flows_qs = flows.rows_under_old_keys()
        left = tokens.count() + flows_qs.count()
        if options["check"]:
            self.stdout.write(f"{left} row(s) not under the newest key {ring.primary_id}.")
            if left:
                raise CommandError(f"{left} row(s) still need re-encryption.", returncode=1)
            return
        show = not options["no_progress"]

        def progress(p: flows.RotationProgress) -> None:
            if show:
                bar = render_bar(p.done + p.conflicts, p.total)
                self.stderr.write(f"\rRe-encrypting {bar}", style_func=str, ending="")
                self.stderr.flush()

        try:
            result = flows.rotate_keys(
                batch_size=options["batch_size"],
                on_progress=progress,
                max_idle_seconds=options["max_idle"],
            )
        except DecryptionError as err:
            raise CommandError(
                f"A stored value cannot be decrypted with the configured keys: {err}. "
                "Keep every key still in use in TOKEN_KEYS."
            ) from None
        except TimeoutError as err:
            raise CommandError(str(err)) from None
        if show:
            self.stderr.write("", style_func=str)
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {result.done} row(s) under key {ring.primary_id} "
                f"({result.conflicts} rewritten meanwhile by a refresh, "
                f"{result.flows_purged} finished authorization request(s) purged). "
                "0 rows remain under an old key."
            )
        )
