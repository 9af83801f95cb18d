"""The Redis adapter (``adapter.py``, redis-py's asyncio connections).

Entities are hashes laid out by ``layout.py`` (keys, field codecs), kept with their
secondary indexes by the Lua scripts in ``scripts.py``; ``index.py`` plans a query onto
those indexes and ``resp.py`` packs commands and decodes replies (RESP); ``_redispy.py``
holds the only use of redis-py's private attributes.

Importing this package imports no driver: ``diaspora_async.adapters.resolve("redis")``
loads ``adapter.py`` (which needs redis-py) only when the label is used.
"""
