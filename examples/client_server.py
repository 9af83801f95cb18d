"""One configuration, two roles: a REST server on SQLite and a client of it.

The same ``CONFIG`` is loaded twice. As the server (``role="server"``) it creates the
SQLite data source and the ``Task`` model, and ``create_app`` serves it over HTTP with a
real uvicorn on 127.0.0.1. As the client (``role="client"``) the data sources are not
created at all: ``Task`` uses one ``http`` source, ``api``, pointing at the server, and
the very same Model API (insert, queries, updates, errors) goes over the wire. Run it::

    python examples/client_server.py
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

import diaspora_async as da
from diaspora_async.server import create_app

CONFIG: dict[str, Any] = {
    "data_sources": {"main": {"adapter": "sqlite", "path": "tasks.db"}},
    "models": {
        "Task": {
            "sources": ["main"],
            "attributes": {
                "title": {"type": "string", "required": True},
                "priority": {"type": "integer", "default": 1},
                "done": {"type": "boolean", "default": False},
                "tags": {"type": "array", "of": "string"},
            },
        }
    },
}


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn in this event loop on a free loopback port."""
    # A TCP socket bound before uvicorn starts: no race for the port, and IPPROTO_TCP
    # lets asyncio turn Nagle off (TCP_NODELAY) on accepted connections.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():  # uvicorn gave up (e.g. the app failed to load): say why
                task.result()
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def main(workdir: Path) -> None:
    db = workdir / "tasks.db"
    config = {**CONFIG, "data_sources": {"main": {"adapter": "sqlite", "path": str(db)}}}

    server = da.Diaspora.from_config(config)  # role="server" is the default
    async with server, serve(create_app(server)) as url:
        print(f"server: Task stored in sqlite ({db.name}), served at {url}")

        client = da.Diaspora.from_config(config, role="client", server_url=url)
        print(
            f"client: data sources {[f'{n} ({s.label})' for n, s in client.data_sources.items()]}"
        )
        async with client:
            Task = client.models["Task"]
            tasks = await Task.insert_many(
                [
                    {"title": "write the docs", "priority": 3, "tags": ["docs"]},
                    {"title": "fix the bug", "priority": 5, "tags": ["code", "urgent"]},
                    {"title": "water the plants", "tags": ["home"]},
                ]
            )
            print(
                f"client inserted {len(tasks)} tasks in one request; states: {sorted({t.state.name for t in tasks})}"
            )
            print(f"server's SQLite holds {await server.models['Task'].count()} tasks")

            urgent = await Task.find_many({"priority": {">=": 3}}, sort="-priority")
            print(f"priority >= 3, highest first: {[t.title for t in urgent]}")

            fixed = await Task.update_many({"tags": {"$contains": "code"}}, {"done": True})
            print(f"marked done: {[t.title for t in fixed]}")

            task = tasks[2]
            task.priority = 2
            await task.persist()
            on_server = await server.models["Task"].find(task.id)
            assert on_server is not None
            print(
                f"persisted an edit: server sees priority={on_server.priority}, client state={task.state.name}"
            )

            try:
                await Task.insert({"title": 42})
            except da.ValidationError as exc:
                print(f"rejected on the client before any request: {exc.errors}")
            try:  # check=True: create only if the id is free (optimistic concurrency)
                await Task.spawn(id=task.id, title="same id").persist(check=True)
            except da.ConflictError as exc:
                print(f"the server refused the create and the client raised ConflictError: {exc}")
            try:
                await Task.find_many({"priority": {"$near": 3}})
            except da.QueryError as exc:
                print(f"bad query refused: {exc}")

            async with httpx.AsyncClient(base_url=url) as raw:
                r = await raw.get("/Task/count", params={"where": '{"done": false}'})
                print(
                    f'plain HTTP: GET /Task/count?where={{"done": false}} -> {r.status_code} {r.json()}'
                )

            gone = await Task.delete_many({"done": True})
            print(f"deleted {gone} done task(s); {await Task.count()} left")
    print("server stopped, done")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
