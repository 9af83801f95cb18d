"""``Diaspora.from_config``: one configuration, loaded as server and as client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import diaspora_async as da
from diaspora_async.server import create_app

CONFIG: dict[str, Any] = {
    "data_sources": {
        "main": {"adapter": "memory"},
        "cache": {"adapter": "memory"},
    },
    "models": {
        "Contact": {
            "sources": ["main", "cache"],
            "collection": "contacts",
            "attributes": {
                "name": {"type": "string", "required": True},
                "phone": "string",
                "age": {"type": "integer", "default": 0},
                "met": "datetime",
                "tags": {"type": "array", "of": "string"},
            },
        },
        "Tag": {"sources": "main", "attributes": {"label": {"type": "string", "required": True}}},
    },
}

TOML = """
[data_sources.main]
adapter = "memory"

[data_sources.cache]
adapter = "memory"

[models.Contact]
sources = ["main", "cache"]
collection = "contacts"

[models.Contact.attributes]
name = { type = "string", required = true }
phone = "string"
age = { type = "integer", default = 0 }
met = "datetime"
tags = { type = "array", of = "string" }

[models.Tag]
sources = "main"
attributes = { label = { type = "string", required = true } }
"""


def shape(orm: da.Diaspora) -> dict[str, Any]:
    return {
        name: (m.__meta__.source_names, m.__meta__.collection, sorted(m.__meta__.fields))
        for name, m in orm.models.items()
    }


def test_server_role_declares_sources_and_models() -> None:
    orm = da.Diaspora.from_config(CONFIG)
    assert {n: s.label for n, s in orm.data_sources.items()} == {
        "main": "memory",
        "cache": "memory",
    }
    assert shape(orm) == {
        "Contact": (("main", "cache"), "contacts", ["age", "met", "name", "phone", "tags"]),
        "Tag": (("main",), "Tag", ["label"]),
    }


def test_json_and_toml_files_give_the_same_registry(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text(json.dumps(CONFIG))
    (tmp_path / "app.toml").write_text(TOML)
    expected = shape(da.Diaspora.from_config(CONFIG))
    assert shape(da.Diaspora.from_config(tmp_path / "app.json")) == expected
    assert shape(da.Diaspora.from_config(str(tmp_path / "app.toml"))) == expected


def test_client_role_points_every_model_at_one_http_source() -> None:
    orm = da.Diaspora.from_config(CONFIG, role="client", server_url="http://127.0.0.1:9/api")
    assert {n: s.label for n, s in orm.data_sources.items()} == {"api": "http"}
    assert shape(orm) == {
        "Contact": (("api",), "contacts", ["age", "met", "name", "phone", "tags"]),
        "Tag": (("api",), "Tag", ["label"]),
    }


async def test_server_and_client_from_one_config_talk() -> None:
    server = da.Diaspora.from_config(CONFIG)
    app = create_app(server)
    client_cfg = {**CONFIG, "client": {"transport": httpx.ASGITransport(app=app), "timeout": 5}}
    client = da.Diaspora.from_config(client_cfg, role="client", server_url="http://srv")
    async with server, client:
        Contact = client.models["Contact"]
        ada = await Contact.insert({"name": "Ada", "met": "2020-02-02T10:00:00Z", "tags": ["x"]})
        assert ada.state_in("api") is da.EntityState.SYNC
        stored = await server.models["Contact"].find(ada.id)  # in the server's main source
        assert stored is not None and stored.name == "Ada" and stored.met == ada.met
        found = await Contact.find_many({"tags": {"$contains": "x"}})
        assert [c.to_dict() for c in found] == [ada.to_dict()]
        assert await server.models["Contact"].count(source="cache") == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"data_source": {}}, "unknown key(s) data_source"),
        ({"data_sources": []}, "'data_sources' must be a table"),
        ({"data_sources": {"main": "memory"}}, "data_sources.main must be a table"),
        ({"data_sources": {"main": {"path": "x"}}}, 'data_sources.main needs "adapter"'),
        ({"data_sources": {"main": {"adapter": "nope"}}}, "data_sources.main: unknown adapter"),
        ({"data_sources": {"main": {"adapter": "memory", "bogus": 1}}}, "unknown option"),
        ({"models": {"A": []}}, "models.A must be a table"),
        ({"models": {"A": {"sources": 3}}}, "models.A.sources must be"),
        ({"models": {"A": {"sources": ["main"]}}}, "uses data source 'main'"),
        ({"data_sources": {"main": {"adapter": "memory"}},
          "models": {"A": {"sources": ["main"], "attributes": {"x": "strin"}}}},
         "models.A: A.x: unknown type 'strin'"),
    ],
)  # fmt: skip
def test_bad_configs_raise_config_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(da.ConfigError) as info:
        da.Diaspora.from_config(config)
    assert message in str(info.value)


def test_unknown_source_is_the_unknown_data_source_error() -> None:
    with pytest.raises(da.UnknownDataSource):
        da.Diaspora.from_config({"models": {"A": {"sources": ["nope"]}}})


def test_bad_role_and_missing_server_url() -> None:
    with pytest.raises(da.ConfigError, match="role must be"):
        da.Diaspora.from_config(CONFIG, role="proxy")
    with pytest.raises(da.ConfigError, match="needs server_url"):
        da.Diaspora.from_config(CONFIG, role="client")
    with pytest.raises(da.ConfigError, match="base_url must be an http"):
        da.Diaspora.from_config(CONFIG, role="client", server_url="ftp://x")


def test_client_base_url_may_come_from_the_client_section() -> None:
    orm = da.Diaspora.from_config({**CONFIG, "client": {"base_url": "http://h/api"}}, role="client")
    assert orm.data_sources["api"].label == "http"


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(da.ConfigError, match=r"must end in \.json or \.toml"):
        da.Diaspora.from_config(tmp_path / "app.yaml")
    with pytest.raises(da.ConfigError, match="does not exist"):
        da.Diaspora.from_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(da.ConfigError, match="cannot be read"):
        da.Diaspora.from_config(tmp_path / "bad.json")
    (tmp_path / "bad.toml").write_text("[models\n")
    with pytest.raises(da.ConfigError, match="cannot be read"):
        da.Diaspora.from_config(tmp_path / "bad.toml")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(da.ConfigError, match="must hold an object"):
        da.Diaspora.from_config(tmp_path / "list.json")
    with pytest.raises(da.ConfigError, match="a configuration is a dict or a path"):
        da.Diaspora.from_config(42)  # type: ignore[arg-type]
