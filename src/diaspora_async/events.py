"""Lifecycle events: ordered hooks run around each source's part of an operation.

Hooks are methods of the model class named after an event, or callables added with
``Model.on(name, fn)``; each receives ``(entity, source_name)`` and may be async or plain.
They run in declaration order, class method first. A model with no hook for an event
pays one dict lookup for it, nothing more.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = ["EVENTS", "Hook", "run_hooks"]

EVENTS = (
    "before_persist",
    "before_validate",
    "after_validate",
    "before_persist_create",
    "before_persist_update",
    "after_persist_create",
    "after_persist_update",
    "after_persist",
    "before_fetch",
    "after_fetch",
    "before_destroy",
    "after_destroy",
)

Hook = Callable[[Any, str], Any]


def check_event(name: str) -> None:
    """Raise ``ConfigError`` for a name that is not a lifecycle event."""
    if name not in EVENTS:
        raise ConfigError(f"unknown lifecycle event {name!r} (events: {', '.join(EVENTS)})")


async def run_hooks(hooks: tuple[Hook, ...], entity: Any, source: str) -> None:
    """Call each hook in order, awaiting the ones that return an awaitable."""
    for hook in hooks:
        result = hook(entity, source)
        if inspect.isawaitable(result):
            await result
