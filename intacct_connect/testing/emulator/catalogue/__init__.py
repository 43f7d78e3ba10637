"""The object catalogue: what each emulated object is, with Sage's field names.

* :mod:`.spec`: the types (``ObjectSpec``, ``FieldSpec``, ``RefSpec``, ``LineSpec``);
* :mod:`.registry`: the served objects (``SPECS``) and their seeding order;
* :mod:`.generators`: deterministic seed and bulk data;
* :mod:`.company_preference`: the company-wide preferences singleton.

Pure data: nothing here reads or writes the emulator's state. This package only documents
its modules; import them directly.
"""
