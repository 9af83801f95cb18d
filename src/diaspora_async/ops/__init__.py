"""Operations over entities and sources: the write and read paths above model metadata.

``fanout`` runs one operation on several sources and applies the ``on_error`` policy;
``persist``, ``destroy`` and ``fetch`` are each source's part of an entity operation;
``outbox`` queues failed writes and replays them; ``sync`` copies a model between two
sources. Entities and models call down into these modules, never the other way.
"""
