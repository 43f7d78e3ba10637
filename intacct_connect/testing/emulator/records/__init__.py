"""The record model: records per company and object, and the rules for writing them.

* :mod:`.storage`: collections, lazy deterministic seeding, entity visibility, look-ups;
* :mod:`.validation`: a write body checked against the object's fields;
* :mod:`.rules`: required fields, references, balances and uniqueness (business rules);
* :mod:`.writes`: create, update and delete.

Every function takes the typed :class:`~intacct_connect.testing.emulator.store.Store` its
caller holds from ``state.transaction()`` (or ``state.read()``); nothing here locks. This
package only documents its modules; import them directly.
"""
