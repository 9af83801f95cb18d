"""The version check the driver shims (``sql/_aiosqlite.py``, ``redis/_redispy.py``) share.

A shim reaches into a driver's private attributes for speed, so it only runs on the
range it was written against (pinned in ``pyproject.toml``'s extras); outside that range
importing the shim raises a ``ConfigError`` naming the supported range.
"""

from __future__ import annotations

import re

from ..errors import ConfigError

__all__ = ["require"]


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def require(dist: str, version: str, low: str, high: str, extra: str) -> None:
    """Raise ``ConfigError`` unless ``low <= version < high`` (release numbers only)."""
    if not _release(low) <= _release(version) < _release(high):
        raise ConfigError(
            f"{dist} {version} is not supported: the {extra!r} adapter uses its internals "
            f"and needs {dist}>={low},<{high} (pip install 'diaspora_async[{extra}]')"
        )
