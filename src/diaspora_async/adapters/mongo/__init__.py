"""The MongoDB adapter (``adapter.py``, the async pymongo client).

``filter.py`` compiles canonical query nodes to Mongo filter documents and holds the
canonical form used for deep equality of list/dict values; ``collection.py`` holds what
is compiled once per collection schema (documents, read filters that never match a
tombstone, the guarded ops of ``write``); ``write.py`` reads a ``write``'s bulk result.

Importing this package imports no driver: ``diaspora_async.adapters.resolve("mongo")``
loads ``adapter.py`` (which needs pymongo) only when the label is used.
"""
