"""The errors a user meets in the first hour say what to do (issue 14)."""

from __future__ import annotations

import sys

import pytest

import diaspora_async as da


@pytest.mark.parametrize(("driver", "extra"), [("aiomysql", "mysql"), ("asyncmy", "asyncmy")])
def test_a_missing_mysql_driver_is_a_config_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, driver: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, driver, None)  # what an absent package looks like
    orm = da.Diaspora()
    with pytest.raises(da.ConfigError, match=rf"pip install 'diaspora_async\[{extra}\]'"):
        orm.create_data_source("main", "mysql", url="mysql://root@127.0.0.1/test", driver=driver)


def test_http_source_given_url_names_base_url() -> None:
    orm = da.Diaspora()
    with pytest.raises(da.ConfigError, match="give the server as base_url=, not url="):
        orm.create_data_source("api", "http", url="http://127.0.0.1:8000/api")


@pytest.mark.parametrize(
    ("query", "hint"),
    [({"views": {"$gt": 1}}, "did you mean '>' / '$greater'?"),
     ({"views": {"$lte": 1}}, "did you mean '<=' / '$lessEqual'?"),
     ({"views": {"$containz": 1}}, "did you mean '$contains'?"),
     ({"$nor": [{"views": 1}]}, "did you mean '||' / '$or'?")],
)  # fmt: skip
def test_an_unknown_operator_suggests_and_lists_the_valid_ones(
    query: dict[str, object], hint: str
) -> None:
    orm = da.Diaspora()

    class Article(orm.Model):
        views: int = 0

    with pytest.raises(da.QueryError) as info:
        Article.__meta__.where(query)
    message = str(info.value)
    assert hint in message and "; valid: " in message and "$or" in message
