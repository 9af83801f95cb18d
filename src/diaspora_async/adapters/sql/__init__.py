"""The SQL adapters: SQLite (``sqlite.py``, aiosqlite) and MySQL/MariaDB (``mysql.py``).

Both subclass ``SQLAdapter`` (``adapter.py``), which runs a collection's ``TablePlan``
(``plan.py``: statements and row conversion; ``upsert.py``: the revision-guarded writes).
Plans compile queries with the shared WHERE compiler (``compile.py``), engine
differences live in a ``Dialect`` (``dialect.py``), and list/dict/``any`` values are
canonical JSON text (``json.py``).
``_aiosqlite.py`` holds the only uses of aiosqlite's private attributes.

Importing this package imports no driver: ``diaspora_async.adapters.resolve`` loads the
driver modules (``sqlite``, ``mysql``) only when their label is used.
"""
