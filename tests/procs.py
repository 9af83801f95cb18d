"""Running this checkout's code in child processes (the relay worker, crash workloads)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import diaspora_async

ROOT = Path(__file__).resolve().parents[1]
"""The repository: children import ``tests.*`` from here."""
SRC = Path(diaspora_async.__file__).resolve().parents[1]
"""The ``src`` directory the tests import the package from (not the installed copy)."""
PYTHON = sys.executable


def child_env() -> dict[str, str]:
    """The environment of a child process: the same package and ``tests`` as this one."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT)])}
