"""Testing tools for intacct_connect: a local Sage Intacct emulator and a pytest plugin.

* :class:`EmulatorServer` runs the emulator (OAuth 2.0 server + REST API) in a thread on a
  free local port; it is also the handle the ``intacct_emulator`` pytest fixture returns.
* ``python -m intacct_connect.testing.emulator --port 8765`` runs it as a standalone server.

Importing this package is cheap and needs no optional dependency; the emulator itself needs
the ``testing`` extra (``pip install "intacct-connect[testing]"``: werkzeug and PyJWT).
The emulator never imports Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from intacct_connect.testing.emulator import Emulator, EmulatorServer

__all__ = ["Emulator", "EmulatorServer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from intacct_connect.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
