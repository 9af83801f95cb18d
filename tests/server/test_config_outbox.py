"""``from_config`` with an ``"outbox"`` entry: a source name or a ``use_outbox`` table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import diaspora_async as da

BASE: dict[str, Any] = {
    "data_sources": {"main": {"adapter": "memory"}, "local": {"adapter": "memory"}},
    "models": {"Note": {"sources": ["main"], "attributes": {"text": "string"}}},
}


def with_outbox(value: Any) -> dict[str, Any]:
    return {**BASE, "outbox": value}


def test_a_source_name_gives_the_default_outbox() -> None:
    orm = da.Diaspora.from_config(with_outbox("local"))
    box = orm.outbox
    assert box.source == "local"
    assert box.schema.collection == "diaspora_outbox"
    assert (box.max_attempts, box.lease.total_seconds(), box.backoff) == (10, 30.0, (0.5, 60.0))


def test_a_table_sets_every_option() -> None:
    options = {"source": "main", "collection": "intents", "max_attempts": 3, "lease": 5,
               "backoff": [0.1, 2]}  # fmt: skip
    orm = da.Diaspora.from_config(with_outbox(options))
    box = orm.outbox
    assert (box.source, box.schema.collection, box.max_attempts) == ("main", "intents", 3)
    assert box.lease.total_seconds() == 5.0
    assert box.backoff == (0.1, 2.0)


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(
        '[data_sources.local]\nadapter = "memory"\n\n'
        '[models.Note]\nsources = ["local"]\nattributes = { text = "string" }\n\n'
        '[outbox]\nsource = "local"\nlease = 2.5\nbackoff = [1, 4]\n'
    )
    box = da.Diaspora.from_config(path).outbox
    assert (box.source, box.lease.total_seconds(), box.backoff) == ("local", 2.5, (1.0, 4.0))


async def test_the_outbox_works_once_connected() -> None:
    orm = da.Diaspora.from_config(with_outbox("local"))
    async with orm:
        assert await orm.outbox_stats() == []
        assert await orm.replay_outbox() == {"replayed": 0, "failed": 0, "dead": 0}


def test_no_outbox_entry_no_outbox() -> None:
    with pytest.raises(da.ConfigError):
        _ = da.Diaspora.from_config(BASE).outbox


def test_a_client_ignores_it() -> None:
    orm = da.Diaspora.from_config(
        with_outbox("local"), role="client", server_url="http://127.0.0.1:1/api"
    )
    with pytest.raises(da.ConfigError):
        _ = orm.outbox


def test_an_unknown_source_is_named() -> None:
    with pytest.raises(da.UnknownDataSource, match="'nowhere'"):
        da.Diaspora.from_config(with_outbox("nowhere"))
    with pytest.raises(da.UnknownDataSource, match="'nowhere'"):
        da.Diaspora.from_config(with_outbox({"source": "nowhere"}))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, "a data source name or a table"),
        (["local"], "a data source name or a table"),
        ({}, 'needs "source"'),
        ({"source": ""}, 'needs "source"'),
        ({"source": "local", "retries": 3}, "unknown key"),
        ({"source": "local", "collection": 5}, "collection"),
        ({"source": "local", "max_attempts": "3"}, "max_attempts"),
        ({"source": "local", "max_attempts": True}, "max_attempts"),
        ({"source": "local", "max_attempts": 0}, "max_attempts"),
        ({"source": "local", "lease": "long"}, "lease"),
        ({"source": "local", "lease": 0}, "lease"),
        ({"source": "local", "backoff": 1}, "backoff"),
        ({"source": "local", "backoff": [1]}, "backoff"),
        ({"source": "local", "backoff": [1, "x"]}, "backoff"),
        ({"source": "local", "backoff": [2, 1]}, "backoff"),
    ],
)
def test_a_bad_shape_is_a_config_error(value: Any, message: str) -> None:
    with pytest.raises(da.ConfigError, match=message) as info:
        da.Diaspora.from_config(with_outbox(value))
    assert "outbox" in str(info.value)
