"""What users' type checkers see: ``mypy --strict`` checks ``spawn``'s keyword
arguments against the model's fields and ``source=`` against what it takes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SNIPPET = """
import diaspora_async as da

orm = da.Diaspora()


class Article(da.Model, registry=orm, sources=["mem"]):
    title: str
    views: int = 0
    tags: list[str] = da.field(default_factory=list)


ok: Article = Article.spawn(title="x", views=2)
also_ok: Article = Article.spawn({"title": "x"}, views=2)
Article.spawn(titel="x")  # line 15
Article.spawn(title=3)  # line 16


async def reads() -> None:
    await Article.find("some-id", source=["mem"])
    await ok.persist(da.ALL)
    await Article.find("some-id", source=5)  # line 22
"""


@pytest.mark.timeout(240)  # mypy checks the whole package behind the snippet: ~15 s idle
def test_mypy_strict_flags_misspelt_fields_and_bad_sources(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(textwrap.dedent(SNIPPET))
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "snippet.py"],
        cwd=tmp_path, env={"MYPYPATH": str(src), "PATH": ""}, capture_output=True, text=True,
        timeout=220, check=False,
    )  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    assert lines == [15, 16, 22], done.stdout
    assert any('"titel"' in e or "spawn" in e for e in errors if ":15:" in e)
