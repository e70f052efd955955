"""The asyncio flavour: the same API, every database call awaited.

    db = await austa.aio.Database.open("postgres://...", key_file="clinic.key")
    scope = await db.scope(org_id, austa.Actor.admin())
    patient = await scope.patients.get(patient_id)
    async for row in scope.health_data.stream():
        ...

Each call runs the synchronous call in the event loop's default thread pool (`asyncio.to_thread`);
streams fetch a page per hop; `batch()` is not offered (use `create_many` or `import_rows`); a
cancelled `await` does not stop a write already under way (it commits or fails on its own);
the synchronous calls release the interpreter lock while the database works, so many awaited calls
progress in parallel and the event loop never blocks. Why not native coroutines: the core runs on its
own tokio runtime either way, and a thread hop costs microseconds against a database round trip of
hundreds, while this keeps one implementation of every operation (the synchronous one) and its errors.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Optional, TypeVar

from . import _client

T = TypeVar("T")

__all__ = ["Database", "Scope", "AsyncProxy"]

#: Items fetched per thread hop by async streams (a page of the underlying listing).
_CHUNK = 500


async def _aiter(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    iterator = await asyncio.to_thread(make)
    while True:
        chunk = await asyncio.to_thread(lambda: list(itertools.islice(iterator, _CHUNK)))
        if not chunk:
            return
        for item in chunk:
            yield item


class AsyncProxy:
    """Wraps a synchronous object (a repository, `scope.audit`, `scope.keys`): its methods become
    coroutine functions, `stream*` methods async iterators, attributes pass through."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __repr__(self) -> str:
        return f"<async {self._target!r}>"

    def __getattr__(self, name: str) -> Any:
        if name == "batch":
            raise AttributeError("batch() writes when its block ends, which would block the event loop: use "
                                 "`await repo.create_many(rows)` or `await repo.import_rows(rows)` instead")
        if isinstance(getattr(type(self._target), name, None), property):
            # A property that queries the database (`backend`) is awaited like a method.
            return asyncio.to_thread(getattr, self._target, name)
        value = getattr(self._target, name)
        if not callable(value) or isinstance(value, type):
            return value
        if name.startswith("stream"):

            @functools.wraps(value)
            def streaming(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                return _aiter(lambda: value(*args, **kwargs))

            return streaming

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return asyncio.to_thread(value, *args, **kwargs)

        return call


class Scope(AsyncProxy):
    """`austa.Scope` with awaited calls; repositories are `AsyncProxy`s (``await scope.patients.get(id)``)."""

    def __init__(self, scope: _client.Scope) -> None:
        super().__init__(scope)
        self.sync = scope
        self.organization_id = scope.organization_id
        self.actor = scope.actor

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if isinstance(value, (_client.Scope, int, str)) or value is None:
            return value
        if not callable(value):
            return AsyncProxy(value)
        if name == "emergency_access":

            async def emergency(*args: Any, **kwargs: Any) -> "Scope":
                return Scope(await asyncio.to_thread(value, *args, **kwargs))

            return emergency
        return super().__getattr__(name)


class Database(AsyncProxy):
    """`austa.Database` with awaited calls. Open with ``await austa.aio.Database.open(...)``; use as
    ``async with``."""

    def __init__(self, db: _client.Database) -> None:
        super().__init__(db)
        self.sync = db

    @classmethod
    async def open(cls, url: Optional[str] = None, **options: Any) -> "Database":
        """Opens the database off the event loop; options as for `austa.Database`."""
        return cls(await asyncio.to_thread(_client.Database, url, **options))

    async def scope(self, *args: Any, **kwargs: Any) -> Scope:
        """A `Scope` with awaited calls; arguments as for `austa.Database.scope`."""
        return Scope(await asyncio.to_thread(self.sync.scope, *args, **kwargs))

    @property
    def organizations(self) -> AsyncProxy:
        """Organizations, awaited."""
        return AsyncProxy(self.sync.organizations)

    async def close(self) -> None:
        """Closes the database."""
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> "Database":
        return self

    async def __aexit__(self, kind: Any, error: Any, traceback: Any) -> None:
        await self.close()
