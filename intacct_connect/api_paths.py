"""The parts of an API URL the client builds from its arguments: object paths
(``accounts-payable/vendor``), record keys and key lists, and the 500-item batch limit.

Each helper quotes what it is given and raises ``ValueError`` for input Intacct would
refuse, before any request is made. Pure functions: no I/O, no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

#: Most records (or keys) in one batch request.
MAX_BATCH = 500
_OBJECT_PATH = re.compile(r"^[a-z][a-z0-9\-]*/[A-Za-z0-9_\-.: %]+$")


def quote_object(object_path: str) -> str:
    """An object path such as ``accounts-payable/vendor`` (``objects/`` prefix allowed)."""
    object_path = object_path.strip("/")
    if object_path.startswith("objects/"):
        object_path = object_path[len("objects/") :]
    if not _OBJECT_PATH.match(object_path):
        raise ValueError(
            f"{object_path!r} is not an Intacct object path such as 'accounts-payable/vendor'"
        )
    return quote(object_path, safe="/:")


def quote_key(key: str | int) -> str:
    """One record key as a path segment."""
    text = str(key)
    if not text or "," in text or "/" in text:
        raise ValueError(f"{text!r} is not a valid record key")
    return quote(text, safe="")


def keys_segment(keys: Iterable[str | int]) -> str:
    """1 to ``MAX_BATCH`` keys as one comma-separated path segment."""
    quoted = [quote_key(k) for k in keys]
    if not quoted:
        raise ValueError("at least one key is required")
    if len(quoted) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} keys per request, not {len(quoted)}")
    return ",".join(quoted)


def check_batch(body: list[dict[str, Any]]) -> None:
    """A batch body holds 1 to ``MAX_BATCH`` records."""
    if not body:
        raise ValueError("at least one record is required")
    if len(body) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} records per request, not {len(body)}")
