"""``POST /services/core/query``, one module per stage:

* :mod:`.fields`: the object and the typed field paths a query names;
* :mod:`.filters`: ``filters`` compiled to predicates, with the date macros;
* :mod:`.expression`: ``filterExpression`` combining them;
* :mod:`.engine`: the whole query (validation, cache, sort, paging, aggregates).

This package only documents its modules; import them directly.
"""
