"""A separate worker process for the multi-process token tests (tests/test_tokens_postgres.py).

Run as ``python -m tests.token_worker <mode> <connection id>`` with ``DATABASE_URL`` pointing at
the test database and ``INTACCT_TEST_SETTINGS`` holding the INTACCT_CONNECT overrides (JSON).
It sets Django up, prints ``ready``, waits for a line on stdin (the start signal, so that all
workers start together), does its work and prints one JSON line with the outcome.

Modes: ``token`` (``tokens.get_access_token``), ``client`` (``IntacctClient.get``) and
``calls`` (four ``IntacctClient.get`` in a row). A failure is reported as ``error`` (its
text) and ``error_class`` (the most specific class of the token-outcome errors it is).
"""

from __future__ import annotations

import json
import os
import sys


def _error_class(err: Exception) -> str:
    from intacct_connect import exceptions as e

    for cls in (
        e.GrantRejected,
        e.RefreshInDoubt,
        e.ClientCredentialsRejected,
        e.RefreshBackoff,
        e.NeedsReauthorization,
        e.TokenRequestError,
    ):
        if isinstance(err, cls):
            return cls.__name__
    return type(err).__name__


def main() -> int:
    mode, connection_id = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings

    from intacct_connect import concurrency, crypto, tokens
    from intacct_connect.client import IntacctClient
    from intacct_connect.conf import app_settings

    settings.INTACCT_CONNECT = {
        **settings.INTACCT_CONNECT,
        **json.loads(os.environ["INTACCT_TEST_SETTINGS"]),
    }
    app_settings.reload()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    outcome: dict[str, object] = {"pid": os.getpid()}
    try:
        if mode == "token":
            outcome["fingerprint"] = crypto.fingerprint(tokens.get_access_token(connection_id))
        elif mode == "calls":
            client = IntacctClient(connection_id)
            outcome["keys"] = [client.get("accounts-payable/vendor", "1")["key"] for _ in range(4)]
        else:
            outcome["key"] = IntacctClient(connection_id).get("accounts-payable/vendor", "1")["key"]
            outcome["fingerprint"] = crypto.fingerprint(tokens.get_access_token(connection_id))
    except Exception as err:  # reported to the parent test
        outcome["error"] = f"{type(err).__name__}: {err}"
        outcome["error_class"] = _error_class(err)
    finally:
        concurrency.close_private_connection()
    sys.stdout.write(json.dumps(outcome) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
