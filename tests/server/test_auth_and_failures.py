"""The ``auth`` hook (401/403 per action) and store failures (503/500 without secrets)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from starlette.requests import Request

import diaspora_async as da
from diaspora_async.adapters.base import CollectionSchema, Row
from diaspora_async.adapters.memory import MemoryAdapter
from diaspora_async.query.ast import Query
from diaspora_async.server import Forbidden, Unauthorized, create_app

SECRET_URL = "mysql://root:s3cret-pa55@db.internal:3306/prod"


class FailingMemory(MemoryAdapter):
    """A memory store whose reads fail the way a driver's would, echoing its URL."""

    failure: Exception = da.ConnectionLost("main", f"cannot reach {SECRET_URL}")

    async def find(self, schema: CollectionSchema, query: Query) -> list[Row]:
        raise self.failure

    async def write(
        self, schema: CollectionSchema, rows: Sequence[Row], expect: Any = None, **hints: Any
    ) -> list[str]:
        raise RuntimeError(f"driver bug while talking to {SECRET_URL}")


async def check_auth(request: Request, action: str, model: Any) -> None:
    token = request.headers.get("authorization")
    if token is None:
        raise Unauthorized("missing token")
    if token == "Bearer reader" and action != "read":
        raise Forbidden(f"readers cannot {action} {model.__name__}")
    if token not in ("Bearer reader", "Bearer writer"):
        raise Unauthorized("unknown token")


@pytest.fixture
async def orm() -> AsyncIterator[da.Diaspora]:
    orm = da.Diaspora()
    orm.create_data_source("main", "memory")

    class Note(orm.Model, sources=["main"]):
        text: str

    async with orm:
        await Note.insert({"id": "n1", "text": "hello"})
        yield orm


def client_for(app: Any, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                             headers=headers)  # fmt: skip


async def test_auth_refuses_with_401_and_403_per_action(orm: da.Diaspora) -> None:
    app = create_app(orm, auth=check_auth)
    async with client_for(app) as anonymous:
        r = await anonymous.get("/Note")
        assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthorized"
        assert r.json()["error"]["message"] == "missing token"
        assert r.headers["www-authenticate"] == "Bearer"
        assert (await anonymous.get("/openapi.json")).status_code == 401
    async with client_for(app, "forged") as forged:
        assert (await forged.get("/Note/n1")).status_code == 401
    async with client_for(app, "reader") as reader:
        assert (await reader.get("/Note/n1")).json()["text"] == "hello"
        assert (await reader.get("/Note/count")).json() == {"count": 1}
        r = await reader.delete("/Note/n1")
        assert r.status_code == 403 and r.json()["error"]["type"] == "Forbidden"
        assert r.json()["error"]["message"] == "readers cannot delete Note"
        assert (await reader.post("/Note", json={"text": "x"})).status_code == 403
        assert (await reader.patch("/Note/n1", json={"text": "x"})).status_code == 403
    async with client_for(app, "writer") as writer:
        assert (await writer.patch("/Note/n1", json={"text": "changed"})).status_code == 200
    assert (await orm.models["Note"].find("n1")).text == "changed"  # type: ignore[union-attr]
    assert await orm.models["Note"].count() == 1


async def test_sync_auth_returning_false_is_403(orm: da.Diaspora) -> None:
    seen: list[tuple[str, str | None]] = []

    def only_reads(request: Request, action: str, model: Any) -> bool:
        seen.append((action, model.__name__ if model else None))
        return action == "read"

    app = create_app(orm, auth=only_reads)
    async with client_for(app) as c:
        assert (await c.get("/Note")).status_code == 200
        r = await c.delete("/Note", params={"where": '{"text": "hello"}'})
        assert r.status_code == 403 and r.json()["error"]["type"] == "Forbidden"
        assert (await c.get("/openapi.json")).status_code == 200
    assert seen == [("read", "Note"), ("delete", "Note"), ("read", None)]
    assert await orm.models["Note"].count() == 1


@pytest.fixture
async def failing() -> AsyncIterator[da.Diaspora]:
    orm = da.Diaspora()
    orm.register_adapter("failing", FailingMemory)
    orm.create_data_source("main", "failing")

    class Note(orm.Model, sources=["main"]):
        text: str

    async with orm:
        yield orm


@pytest.mark.parametrize(
    "failure",
    [
        da.ConnectionLost("main", f"cannot reach {SECRET_URL}"),
        da.PoolTimeout("main", f"no connection to {SECRET_URL}"),
        da.DataSourceError("main", f"error from {SECRET_URL}"),
        da.ConfigError(f"data source main ({SECRET_URL}) is not connected"),
    ],
)
async def test_store_failures_are_503_without_the_message(
    failing: da.Diaspora, failure: Exception, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr(FailingMemory, "failure", failure)
    async with client_for(create_app(failing)) as c:
        r = await c.get("/Note")
    assert r.status_code == 503
    assert r.json() == {"error": {"type": "DataSourceError",
                                  "message": "a data source is unavailable", "details": None}}  # fmt: skip
    assert "s3cret" not in r.text
    assert "s3cret" in caplog.text  # the operator's log keeps the real reason


async def test_unexpected_errors_are_500_without_traceback(
    failing: da.Diaspora, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(create_app(failing)) as c:
        r = await c.post("/Note", json={"text": "x"})
    assert r.status_code == 500
    assert r.json()["error"] == {"type": "InternalError", "message": "internal server error",
                                 "details": None}  # fmt: skip
    assert "s3cret" not in r.text and "Traceback" not in r.text
    assert "RuntimeError" in caplog.text


def test_auth_errors_carry_status() -> None:
    assert Unauthorized().status == 401 and Unauthorized().message == "Unauthorized"
    assert Forbidden("no").status == 403 and str(Forbidden("no")) == "no"


def test_the_http_adapter_does_not_import_the_web_framework() -> None:
    # diaspora_async.wire is shared with the http adapter, which must work with only httpx installed.
    code = (
        "import sys, diaspora_async.adapters.http, diaspora_async.server; "
        "assert 'starlette' not in sys.modules, sorted(m for m in sys.modules if 'starl' in m)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
