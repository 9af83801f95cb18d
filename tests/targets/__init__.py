"""Conformance targets: one module per adapter, each defining ``TARGET``.

The conformance suite (``tests/conformance``) runs once per target. A new adapter plugs
in by adding a module here, nothing else; ``tests/conftest.py`` discovers them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest


@dataclass(frozen=True)
class Target:
    """How to open one adapter for a test.

    Attributes:
        id: the pytest parameter id and marker name (``pytest -m mysql``).
        label: the adapter label.
        open: an async context manager factory yielding the data-source config; it may
            start in-process servers and must clean up after itself.
    """

    id: str
    label: str
    open: Callable[[], AbstractAsyncContextManager[dict[str, Any]]]


def in_ci() -> bool:
    """True when running under CI (missing services fail instead of skipping)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_url(env: str, default: str) -> str:
    """The URL of a test service; skip (or, under CI, fail) when it does not answer.

    The reason names the environment variable to set, so a newcomer knows what to do.
    """
    url = os.environ.get(env, default)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port or 0), timeout=1.0):
            pass
    except OSError as exc:
        msg = f"no service at {url} ({exc}); start it or set {env} to its URL"
        if in_ci():
            pytest.fail(f"CI=true and {msg}", pytrace=False)
        pytest.skip(msg)
    return url
