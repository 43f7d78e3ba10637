"""The emulated REST API under ``/ia/api/v1``, one module per endpoint family:

* :mod:`.calls`: the call, its caller and its answer, and the checks every handler shares;
* :mod:`.auth`: the bearer token and the entity header, giving the caller's context;
* :mod:`.dispatch`: parsing, ``Idempotency-Key`` replay (:mod:`.idempotency`) and routing;
* :mod:`.objects`: ``/objects`` list, get, create, update and delete, and the company
  preferences; :mod:`.batch` the array and comma-separated-key forms;
* :mod:`.model`, :mod:`.composite`: ``/services/core/model`` and ``/composite``
  (``/services/core/query`` is :mod:`intacct_connect.testing.emulator.query`).

Handlers take the :class:`~intacct_connect.testing.emulator.state.State`, never the
``Emulator``. This package only documents its modules; import them directly.
"""
