"""The REST server: ``create_app(orm)`` serves a registry's models over HTTP.

The protocol both this server and the ``http`` adapter speak lives in
``diaspora_async.wire``; it needs no web framework, so the adapter (``pip install
'diaspora_async[http]'``) imports it without this package or Starlette. It stays
importable as ``diaspora_async.server.wire`` (re-exported here). ``create_app`` is
imported on first use and needs the ``server`` extra.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .. import wire
from ..wire import Forbidden, HTTPError, Unauthorized

# The protocol module moved to ``diaspora_async.wire``; the old dotted path still imports.
sys.modules.setdefault(__name__ + ".wire", wire)

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
