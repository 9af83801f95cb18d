"""``python -m diaspora_async relay``: the relay as a worker process, over SQLite files."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import diaspora_async as da
from tests.procs import PYTHON, ROOT, child_env

pytestmark = pytest.mark.sqlite

N = 300


def config(tmp: Path, **extra: Any) -> dict[str, Any]:
    return {
        "data_sources": {
            "local": {"adapter": "sqlite", "path": str(tmp / "local.db")},
            "store": {"adapter": "sqlite", "path": str(tmp / "store.db")},
        },
        "models": {
            "Note": {
                "sources": ["local", "store"],
                "attributes": {"text": "string", "n": "integer"},
            }
        },
        "outbox": {"source": "local", "lease": 5},
        **extra,
    }


def write_config(tmp: Path, cfg: dict[str, Any]) -> Path:
    path = tmp / "app.json"
    path.write_text(json.dumps(cfg))
    return path


async def backlog(cfg: dict[str, Any]) -> dict[str, str]:
    """``N`` notes written to "local" only, "store" deferred to the relay; id -> revision."""
    orm = da.Diaspora.from_config(cfg)
    Note = orm.models["Note"]
    async with orm:
        notes = Note.spawn_many([{"text": f"t{i}", "n": i} for i in range(N)])
        await notes.persist(defer=["store"])
        assert len(await Note.pending(source="store")) == N
        return {e.id: e.revision for e in notes}


async def check_delivered(cfg: dict[str, Any], revisions: dict[str, str]) -> None:
    orm = da.Diaspora.from_config(cfg)
    Note = orm.models["Note"]
    async with orm:
        assert await Note.pending() == []
        stored = {e.id: e.revision for e in await Note.find_many(source="store")}
        assert stored == revisions


async def relay(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON, "-m", "diaspora_async", "relay", *args, cwd=ROOT, env=child_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_until_empty_delivers_the_backlog_and_exits(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    revisions = await backlog(cfg)
    path = write_config(tmp_path, cfg)
    code, out, err = await finish(
        await relay("--config", str(path), "--batch-size", "100", "--until-empty")
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"relay: delivered={N} failed=0 dead=0 passes=")
    assert len(out.splitlines()) == 1
    await check_delivered(cfg, revisions)
    # nothing left: a second worker exits at once, having delivered nothing
    code, out, _ = await finish(await relay("--config", str(path), "--until-empty"))
    assert code == 0 and out.startswith("relay: delivered=0 failed=0 dead=0 passes=1")


def outbox_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:  # a reader of the WAL file: never blocks the writer
        return int(conn.execute("SELECT count(*) FROM diaspora_outbox").fetchone()[0])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_worker_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    cfg = config(tmp_path)
    revisions = await backlog(cfg)
    proc = await relay("--config", str(write_config(tmp_path, cfg)), "--interval", "0.05")
    deadline = time.monotonic() + 20
    while outbox_rows(tmp_path / "local.db"):  # the worker is up and has done the work
        assert proc.returncode is None, await finish(proc)
        assert time.monotonic() < deadline, "the worker did not deliver the backlog"
        await asyncio.sleep(0.05)
    proc.send_signal(sig)
    code, out, err = await finish(proc)
    assert (code, err) == (0, "")
    assert out.startswith(f"relay: delivered={N} failed=0 dead=0 passes=")
    await check_delivered(cfg, revisions)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outbox": None}, "outbox"),  # no outbox: nothing to relay
        ({"outbox": "nowhere"}, "'nowhere'"),
        ({"outbox": {"source": "local", "lease": -1}}, "lease"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_configuration_is_one_line_and_exit_2(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    cfg = {k: v for k, v in {**config(tmp_path), **change}.items() if v is not None}
    code, out, err = await finish(await relay("--config", str(write_config(tmp_path, cfg))))
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


async def test_a_missing_file_and_bad_numbers_exit_2(tmp_path: Path) -> None:
    code, _, err = await finish(await relay("--config", str(tmp_path / "absent.toml")))
    assert code == 2 and len(err.splitlines()) == 1 and "does not exist" in err
    path = write_config(tmp_path, config(tmp_path))
    code, _, err = await finish(await relay("--config", str(path), "--batch-size", "0"))
    assert code == 2 and len(err.splitlines()) == 1 and "batch_size" in err
    code, _, err = await finish(await relay("--config", str(path), "--interval", "x"))
    assert code == 2 and "Traceback" not in err  # argparse's own usage error


def test_main_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same entry point, called as the console script calls it."""
    from diaspora_async.__main__ import main

    cfg = config(tmp_path)
    revisions = asyncio.run(backlog(cfg))
    path = write_config(tmp_path, cfg)
    assert main(["relay", "--config", str(path), "--until-empty"]) == 0
    assert capsys.readouterr().out.startswith(f"relay: delivered={N} failed=0 dead=0")
    asyncio.run(check_delivered(cfg, revisions))
    assert main(["relay", "--config", str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "does not exist" in err
