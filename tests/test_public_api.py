"""Pin the public names: removing or renaming one is a breaking change."""

from __future__ import annotations

import diaspora_async as da

EXPECTED = {
    "ALL", "AccessDenied", "Adapter", "Capabilities", "CollectionSchema", "ConfigError", "ConflictError", "ConnectionLost",
    "DataSource", "DataSourceError", "Diaspora", "DiasporaError", "Entity", "EntitySet",
    "EntityState", "EntityStateError", "FanOutError", "IntegrityError", "Model", "OperationTimeout",
    "PoolTimeout",
    "QueryError", "UnknownDataSource", "UnsupportedQuery", "ValidationError", "errors", "field", "server",
}  # fmt: skip


def test_exported_members() -> None:
    assert set(da.__all__) == EXPECTED
    for name in da.__all__:
        assert getattr(da, name) is not None


def test_errors_module_exports_the_tree() -> None:
    for name in da.errors.__all__:
        assert issubclass(getattr(da.errors, name), da.DiasporaError)


def test_entity_states() -> None:
    assert [s.name for s in da.EntityState] == ["ORPHAN", "SYNCING", "SYNC", "DIRTY"]


def test_registry_and_model_surface() -> None:
    for name in ("create_data_source", "register_adapter", "data_sources", "models", "connect",
                 "close", "declare_model", "from_config", "replay_outbox", "use_outbox"):  # fmt: skip
        assert hasattr(da.Diaspora, name), name
    for name in ("spawn", "spawn_many", "insert", "insert_many", "find", "find_many", "update",
                 "update_many", "delete", "delete_many", "count", "iterate", "on", "persist",
                 "fetch", "destroy", "validate", "diff", "state_in", "to_dict"):  # fmt: skip
        assert hasattr(da.Model, name), name
    for name in ("persist", "fetch", "destroy", "update", "to_dicts"):
        assert hasattr(da.EntitySet, name), name
