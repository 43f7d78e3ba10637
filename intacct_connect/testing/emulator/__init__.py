"""A local Sage Intacct emulator: OAuth 2.0 server, REST API, faults and a control API.

* :class:`Emulator` is the WSGI application (``Emulator().wsgi_app``) with Python control
  methods.
* :class:`EmulatorServer` serves it in a thread on a local port (``start()``/``stop()`` or a
  ``with`` block) and is the handle of the ``intacct_emulator`` pytest fixture.
* ``python -m intacct_connect.testing.emulator --port 8765 [--host H] [--state FILE]`` runs
  it from the command line.

Needs werkzeug and PyJWT (the ``testing`` extra); never imports Django.
"""

from __future__ import annotations

from intacct_connect.testing.emulator.app import Emulator
from intacct_connect.testing.emulator.server import EmulatorError, EmulatorServer

__all__ = ["Emulator", "EmulatorError", "EmulatorServer"]
