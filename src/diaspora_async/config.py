"""One configuration for server and client: ``Diaspora.from_config`` lands here.

Sits beside the registry, before anything connects: it reads the configuration (a dict,
a ``.json`` or a ``.toml`` file), checks its shape, and declares data sources and models
on the registry with the ordinary ``create_data_source``/``declare_model`` calls. The
same file serves both ends of the REST protocol (``server/``): with ``role="server"``
the data sources are created as written; with ``role="client"`` they are not (the client
needs none of their drivers or secrets) and every model uses one ``http`` source named
``api`` that points at the server, keeping each model's collection so REST paths match.

The structure::

    {
      "data_sources": {"main": {"adapter": "sqlite", "path": "app.db"}},
      "models": {"Article": {"sources": ["main"], "attributes": {"title": "string"}}},
      "client": {"timeout": 10},     # optional: extra http-source options for clients
      "outbox": "main"               # optional: where write-ahead intents live (6.2)
    }

``"outbox"`` is a data source name, or a table ``{"source": "main", "collection":
"diaspora_outbox", "max_attempts": 10, "lease": 30.0, "backoff": [0.5, 60.0]}`` (every
key but ``source`` optional): the arguments of ``orm.use_outbox``. Only a server-role
registry gets one; a client has no data sources of its own to keep intents in.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .errors import ConfigError, UnknownDataSource


class Registry(Protocol):
    """What loading a configuration needs of a registry (``Diaspora`` is one)."""

    def create_data_source(self, name: str, adapter: str, /, **config: Any) -> object:
        """Declare a data source."""

    def declare_model(self, name: str, description: Mapping[str, Any]) -> object:
        """Declare a model from its dictionary description."""

    def use_outbox(
        self,
        source: str,
        collection: str = ...,
        *,
        max_attempts: int = ...,
        lease: float = ...,
        backoff: tuple[float, float] = ...,
    ) -> None:
        """Keep the write-ahead intents in ``source``."""


R = TypeVar("R", bound=Registry)

__all__ = ["CLIENT_SOURCE", "load_config", "read_config"]

CLIENT_SOURCE = "api"
"""The name of the one ``http`` data source a client-role registry gets."""

_TOP_KEYS = ("data_sources", "models", "client", "outbox")
_OUTBOX_KEYS = ("source", "collection", "max_attempts", "lease", "backoff")
_ROLES = ("server", "client")


def read_config(config: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """Return the configuration as a dict, reading a ``.json`` or ``.toml`` file if given.

    Raises:
        ConfigError: the file is missing, of another kind, or does not parse.
    """
    if isinstance(config, Mapping):
        return dict(config)
    if not isinstance(config, str | Path):
        raise ConfigError(
            "a configuration is a dict or a path to a .json/.toml file, "
            f"got {type(config).__name__}"
        )
    path = Path(config)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigError(f"configuration file {str(path)!r} must end in .json or .toml")
    try:
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {str(path)!r} does not exist") from None
    except (ValueError, OSError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError(f"configuration file {str(path)!r} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {str(path)!r} must hold an object at the top")
    return data


def _section(cfg: Mapping[str, Any], key: str) -> dict[str, Any]:
    section = cfg.get(key, {})
    if not isinstance(section, Mapping):
        raise ConfigError(f"configuration: {key!r} must be a table/object, got {section!r}")
    return dict(section)


def _model_sources(name: str, desc: Mapping[str, Any]) -> list[str]:
    sources = desc.get("sources")
    if sources is None:
        return []
    if isinstance(sources, str):
        return [sources]
    if isinstance(sources, list | tuple | Mapping):
        return [str(s) for s in sources]
    raise ConfigError(f"configuration: models.{name}.sources must be a name, a list or a table")


def load_config(
    orm: R,
    config: Mapping[str, Any] | str | Path,
    *,
    role: str = "server",
    server_url: str | None = None,
) -> R:
    """Declare the configuration's data sources and models on ``orm``.

    Args:
        orm: a new registry (``Diaspora.from_config`` passes one).
        config: the configuration dict, or a path to a ``.json``/``.toml`` file.
        role: ``"server"`` creates the data sources as configured; ``"client"`` creates
            one ``http`` source named ``api`` and points every model at it.
        server_url: the REST app's URL for ``role="client"`` (with its mount path, e.g.
            ``"http://127.0.0.1:8000/api"``); may instead be ``client.base_url``.

    Returns:
        ``orm``, not yet connected.

    Raises:
        ConfigError: the configuration is malformed (the message names the bad entry).
    """
    if role not in _ROLES:
        raise ConfigError(f"role must be 'server' or 'client', got {role!r}")
    cfg = read_config(config)
    unknown = sorted(set(cfg) - set(_TOP_KEYS))
    if unknown:
        raise ConfigError(
            f"configuration: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_TOP_KEYS)})"
        )
    sources = _section(cfg, "data_sources")
    models = _section(cfg, "models")
    client = _section(cfg, "client")
    outbox = _outbox_options(cfg.get("outbox"), sources)
    for name, desc in sources.items():
        if not isinstance(desc, Mapping):
            raise ConfigError(f"configuration: data_sources.{name} must be a table/object")
        if not isinstance(desc.get("adapter"), str):
            raise ConfigError(f'configuration: data_sources.{name} needs "adapter" (a label)')
    for name, desc in models.items():
        if not isinstance(desc, Mapping):
            raise ConfigError(f"configuration: models.{name} must be a table/object")
        for source in _model_sources(name, desc):
            if source not in sources:
                raise UnknownDataSource(
                    f"configuration: model {name} uses data source {source!r}, which is not "
                    f"in data_sources (declared: {', '.join(sources) or 'none'})"
                )

    if role == "server":
        for name, desc in sources.items():
            options = {k: v for k, v in desc.items() if k != "adapter"}
            _declare(
                f"data_sources.{name}", orm.create_data_source, name, desc["adapter"], **options
            )
        for name, desc in models.items():
            _declare(f"models.{name}", orm.declare_model, name, desc)
        if outbox is not None:
            source = outbox.pop("source")
            _declare("outbox", orm.use_outbox, source, **outbox)
        return orm

    url = server_url if server_url is not None else client.pop("base_url", None)
    if not isinstance(url, str) or not url:
        raise ConfigError("role='client' needs server_url= (the REST app's URL)")
    client.pop("base_url", None)
    _declare("client", orm.create_data_source, CLIENT_SOURCE, "http", base_url=url, **client)
    for name, desc in models.items():
        # Remaps belong to the server's stores: the REST API speaks logical names.
        _declare(f"models.{name}", orm.declare_model, name, {**desc, "sources": [CLIENT_SOURCE]})
    return orm


def _outbox_options(value: Any, sources: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``use_outbox`` keywords of the ``"outbox"`` entry (checked; None: no outbox).

    Checked for both roles, so a file that is wrong for its server is wrong everywhere.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = {"source": value}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"configuration: 'outbox' must be a data source name or a table, got {value!r}"
        )
    options = dict(value)
    unknown = sorted(set(options) - set(_OUTBOX_KEYS))
    if unknown:
        raise ConfigError(
            f"configuration: outbox: unknown key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(_OUTBOX_KEYS)})"
        )
    source = options.get("source")
    if not isinstance(source, str) or not source:
        raise ConfigError('configuration: outbox needs "source" (a data source name)')
    if source not in sources:
        raise UnknownDataSource(
            f"configuration: outbox uses data source {source!r}, which is not in "
            f"data_sources (declared: {', '.join(sources) or 'none'})"
        )
    collection = options.get("collection", "diaspora_outbox")
    if not isinstance(collection, str) or not collection:
        raise ConfigError("configuration: outbox.collection must be a non-empty string")
    for key in ("max_attempts", "lease"):
        # bool is an int to Python, never a count or a duration here
        if key in options and (
            isinstance(options[key], bool) or not isinstance(options[key], int | float)
        ):
            raise ConfigError(f"configuration: outbox.{key} must be a number")
    if "backoff" in options:
        backoff = options["backoff"]
        if (
            not isinstance(backoff, list | tuple)
            or len(backoff) != 2
            or any(isinstance(b, bool) or not isinstance(b, int | float) for b in backoff)
        ):
            raise ConfigError("configuration: outbox.backoff must be [first, longest] seconds")
        options["backoff"] = (float(backoff[0]), float(backoff[1]))
    if "lease" in options:
        options["lease"] = float(options["lease"])
    return options


def _declare(where: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except ConfigError as exc:
        raise type(exc)(f"configuration: {where}: {exc}") from exc
