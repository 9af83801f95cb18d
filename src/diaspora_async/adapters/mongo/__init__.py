"""The MongoDB adapter (``adapter.py``, the async pymongo client).

``filter.py`` compiles canonical query nodes to Mongo filter documents and holds the
canonical form used for deep equality of list/dict values.

Importing this package imports no driver: ``diaspora_async.adapters.resolve("mongo")``
loads ``adapter.py`` (which needs pymongo) only when the label is used.
"""
