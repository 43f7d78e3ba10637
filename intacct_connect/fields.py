"""``EncryptedTextField``: a text column that only ever holds ciphertext.

* On save, plaintext is encrypted with the newest key in ``TOKEN_KEYS`` (AES-256-GCM),
  bound to the model, the row's primary key and the field name. The primary key must
  therefore be known before the first save (a OneToOne primary key or a UUID).
* On load, the column's ciphertext is kept as is and decrypted on first attribute access;
  a wrong key, tampering, or a value copied from another row raises
  :class:`~intacct_connect.exceptions.DecryptionError`. Ciphertext is never returned as
  if it were the value.
* ``QuerySet.values()`` and raw SQL see ciphertext only. The field is not editable, so
  model forms and the admin never render it.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from intacct_connect.crypto import get_keyring


class Ciphertext(str):
    """A value read from the database, still encrypted."""

    __slots__ = ()


class _EncryptedDescriptor:
    def __init__(self, field: EncryptedTextField) -> None:
        self.field = field

    def __get__(self, instance: models.Model | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if self.field.attname not in instance.__dict__:  # deferred: load it, as Django would
            instance.refresh_from_db(fields=[self.field.attname])
        value = instance.__dict__.get(self.field.attname)
        if isinstance(value, Ciphertext):
            value = get_keyring().decrypt(value, self.field.associated_data(instance))
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """Encrypted at rest; see the module docstring."""

    description = "Text encrypted at rest with intacct_connect's TOKEN_KEYS"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def contribute_to_class(
        self, cls: type[models.Model], name: str, *args: Any, **kw: Any
    ) -> None:
        super().contribute_to_class(cls, name, *args, **kw)
        setattr(cls, self.attname, _EncryptedDescriptor(self))

    def associated_data(self, instance: models.Model) -> str:
        if instance.pk is None:
            raise ValueError(
                f"{type(instance).__name__}.{self.name} is encrypted bound to the primary key, "
                "which must be set before the row is saved."
            )
        return self.associated_data_for(instance.pk)

    def associated_data_for(self, pk: Any) -> str:
        """What a value of this field in the row ``pk`` is bound to (model, row, field)."""
        return f"{self.model._meta.label_lower}:{pk}:{self.name}"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return Ciphertext(value)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None or value == "" or isinstance(value, Ciphertext):
            return value
        return get_keyring().encrypt(str(value), self.associated_data(model_instance))

    def stored_value(self, instance: models.Model) -> str | None:
        """The ciphertext as stored (or about to be), without decrypting it."""
        value = instance.__dict__.get(self.attname)
        return value if isinstance(value, Ciphertext) else None

    def get_prep_value(self, value: Any) -> Any:
        # Ciphertext is produced in pre_save(); lookups on encrypted columns make no sense.
        return value if value is None else str(value)
