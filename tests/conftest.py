"""Shared fixtures: the conformance ``db`` fixture, parametrized over every target.

``db`` gives a connected registry with a data source ``main`` on the target adapter and
``aux`` on memory (for fan-out), plus the standard models of ``tests/models.py``. Every
collection the test touched is dropped after it (and, once per target and session, before
the first test: leftovers of an earlier, interrupted run).

``@pytest.mark.needs("unique_indexes", ...)`` on a test using ``db`` skips it, with the
reason, on targets whose adapter's ``Capabilities`` lack any of the named ones (a name
that is not a capability is an error, so a typo cannot silently skip a test).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

import diaspora_async as da
from diaspora_async.adapters import resolve
from diaspora_async.adapters.base import Capabilities
from tests import targets as targets_pkg
from tests.models import declare_standard_models
from tests.targets import Target


def _discover() -> list[Target]:
    found = []
    for info in sorted(pkgutil.iter_modules(targets_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tests.targets.{info.name}")
        target = getattr(module, "TARGET", None)
        if isinstance(target, Target):
            found.append(target)
    # memory first: it is the reference
    return sorted(found, key=lambda t: (t.id != "memory", t.id))


TARGETS = _discover()


def pytest_configure(config: pytest.Config) -> None:
    for t in TARGETS:
        config.addinivalue_line("markers", f"{t.id}: conformance target {t.id}")


class DB:
    """What a conformance test gets: the registry and its standard models."""

    def __init__(self, orm: da.Diaspora, target: Target, models: dict[str, Any]) -> None:
        self.orm = orm
        self.target = target
        self.models = models
        self.main = orm.data_sources["main"]
        self.capabilities = self.main.capabilities

    def __getattr__(self, name: str) -> Any:
        try:
            return self.models[name]
        except KeyError:
            raise AttributeError(name) from None


async def drop_all(orm: da.Diaspora, only: str | None = None) -> None:
    """Drop every model's collection in every (or one) source, forgetting ensured schemas."""
    for model in orm.models.values():
        meta = model.__meta__
        for source in meta.source_names:
            if only is not None and source != only:
                continue
            ds = orm.data_sources.get(source)
            if ds is not None and ds.connected:
                await ds.adapter.drop(meta.schema_for(source))
                ds.forget_schema(meta.name)


_swept: set[str] = set()  # targets whose leftovers of earlier runs were dropped
CAPABILITIES = frozenset(f.name for f in dataclasses.fields(Capabilities))


def skip_unless_capable(node: pytest.Item, target: Target) -> None:
    """Skip ``node`` when ``target``'s adapter lacks a capability its ``needs`` marks name."""
    needed = [name for mark in node.iter_markers("needs") for name in mark.args]
    unknown = sorted(set(needed) - CAPABILITIES)
    if unknown:
        pytest.fail(
            f"@pytest.mark.needs names unknown capabilities {unknown}; known: {sorted(CAPABILITIES)}",
            pytrace=False,
        )
    capabilities = resolve(target.label).capabilities
    missing = [name for name in needed if not getattr(capabilities, name)]
    if missing:
        pytest.skip(f"the {target.label} adapter lacks {', '.join(missing)}")


@pytest.fixture(
    params=[pytest.param(t, id=t.id, marks=getattr(pytest.mark, t.id)) for t in TARGETS]
)
async def db(request: pytest.FixtureRequest) -> AsyncIterator[DB]:
    target: Target = request.param
    skip_unless_capable(request.node, target)
    async with target.open() as config:
        orm = da.Diaspora()
        orm.create_data_source("main", target.label, **config)
        orm.create_data_source("aux", "memory")
        models = declare_standard_models(orm)
        await orm.connect()
        try:
            if target.id not in _swept:  # leftovers of an earlier, interrupted run: once per
                await drop_all(orm)  # target and session, as every test drops its own after it
                _swept.add(target.id)
            yield DB(orm, target, models)
        finally:
            try:
                await drop_all(orm)
            finally:
                await orm.close()
