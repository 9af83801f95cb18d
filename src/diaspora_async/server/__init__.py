"""The REST server: ``create_app(orm)`` serves a registry's models over HTTP.

``wire.py`` holds the protocol both this server and the ``http`` adapter speak; it needs
no web framework, so the adapter (``pip install 'diaspora_async[http]'``) imports it
without Starlette. ``create_app`` is imported on first use and needs the ``server`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .wire import Forbidden, HTTPError, Unauthorized

if TYPE_CHECKING:
    from .app import Auth, create_app

__all__ = ["Auth", "Forbidden", "HTTPError", "Unauthorized", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "Auth"):
        try:
            from . import app
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("diaspora_async"):
                from ..errors import ConfigError

                raise ConfigError(
                    f"the REST server needs {exc.name!r}: pip install 'diaspora_async[server]'"
                ) from exc
            raise
        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
