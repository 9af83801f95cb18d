"""Every example in examples/ runs as a script and prints what it promises.

Web examples (FastAPI, aiohttp, client/server) are exercised in test_examples_web.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_01_quickstart() -> None:
    out = run_example("01_quickstart.py")
    assert "persisted to main+cache: main=SYNC cache=SYNC" in out
    assert "main=DIRTY cache=SYNC changed in main: ['published', 'views']" in out
    assert "saved to main too: overall state=SYNC" in out
    assert "top 3 with views > 10: [('Hello, diaspora', 42), ('Post 5', 35), ('Post 4', 28)]" in out
    assert "live posts: 5" in out
    assert "read back from cache" in out
    assert "rejected before any write" in out and "views:" in out and "status:" in out
    assert "destroyed everywhere: state=ORPHAN; 5 articles left in main" in out


def test_03_typed_models() -> None:
    out = run_example("03_typed_models.py")
    assert out.splitlines() == [
        "best: CHECKED (9 views)",
        "- CHECKED (9 views)",
        "- TYPED (3 views)",
    ]


def test_02_fanout_errors() -> None:
    out = run_example("02_fanout_errors.py")
    assert "FanOutError: succeeded=['main'] failed=['search']" in out
    assert "states: main=SYNC search=ORPHAN" in out
    assert "compensated: ['main']" in out
    assert "queued: ['search']" in out
    assert "replayed: {'replayed': 1, 'failed': 0, 'dead': 0}" in out
    assert "search has it now: True" in out


def test_readme_quickstart_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "asyncio.run(main())" in code
    (tmp_path / "quickstart.py").write_text(code)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "quickstart.py"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "app.db").exists()  # the SQLite source really stored it


def test_readme_field_types_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Field types, pydantic and web frameworks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "field_types.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "'total': '19.99', 'status': 'draft', 'due': '2026-01-31'" in lines[0]
    assert (
        '"total":"19.99","status":"draft","due":"2026-01-31","ship_to":{"city":"Lyon"}' in lines[1]
    )
    assert lines[2] == "['due', 'id', 'ship_to', 'status', 'total']"
