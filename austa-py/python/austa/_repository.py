"""The hand-written base of the generated repositories (`_repos.py`): how a group calls its
operations, and the bulk machinery of `create_many`, `import_rows` and `batch`."""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any, Callable, Dict, Generic, Iterable, Iterator, List, Mapping, Optional, Type, TypeVar, Union

from . import _wire as w
from ._record import Record
from .errors import BatchError

R = TypeVar("R", bound=Record)

#: An id: a `uuid.UUID` or its string form.
Id = Union[uuid.UUID, str]
#: A file path.
PathLike = Union[str, "os.PathLike[str]"]
#: Runs one operation by name with its arguments and returns the decoded JSON result.
Call = Callable[[str, Optional[Dict[str, Any]]], Any]

#: Rows per batch of `create_many` and `import_rows` unless told otherwise.
DEFAULT_BATCH_SIZE = 1000
#: Rows per page of the `stream` methods unless told otherwise.
DEFAULT_PAGE_SIZE = 500


def _merged(data: Optional[Mapping[str, Any]], fields: Dict[str, Any]) -> Dict[str, Any]:
    """A record given as a mapping and/or keyword fields (keywords win)."""
    merged: Dict[str, Any] = dict(data) if data is not None else {}
    merged.update(fields)
    return merged


class Operations:
    """A group of operations run through one call function (a scope's or the database's)."""

    def __init__(self, call: Call) -> None:
        self._call_fn = call

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def _call(self, op: str, args: Optional[Dict[str, Any]] = None) -> Any:
        return self._call_fn(op, args)


class Bulk(Operations, Generic[R]):
    """A table whose rows are also created in bulk: `create_many`, `import_rows`, `batch`."""

    _table: str
    _model: Type[R]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._table}>"

    def create_many(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = DEFAULT_BATCH_SIZE) -> List[R]:
        """Creates every row of `rows` in batches of `batch_size`, each batch one transaction with one
        audit event, and returns the created rows.

        When rows of a batch fail, nothing of that batch is written and `BatchError` lists every failed
        row (its position in `rows`, the field, the reason); batches before it stay committed and
        `BatchError.written` counts their rows. For very large inputs prefer `import_rows`, which does
        not keep the created rows."""
        created: List[R] = []
        for offset, chunk in _chunks(rows, batch_size):
            result = self._bulk(chunk, offset, len(created), count_only=False)
            created.extend(w.records(self._model, result))
        return created

    def import_rows(self, rows: Iterable[Mapping[str, Any]], *, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
        """Like `create_many`, but returns only the number of rows written: memory stays flat for any
        number of input rows (a generator over a file is read a batch at a time)."""
        written = 0
        for offset, chunk in _chunks(rows, batch_size):
            written += int(self._bulk(chunk, offset, written, count_only=True)["count"])
        return written

    def _bulk(self, chunk: List[Dict[str, Any]], offset: int, written: int, *, count_only: bool) -> Any:
        args = {"rows": chunk, "count_only": count_only}
        try:
            return self._call(f"{self._table}.create_many", args)
        except BatchError as error:
            raise _shifted(error, offset, written) from None

    def batch(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> "Batch[R]":
        """A context manager that collects rows with `add()` and writes them when the block ends
        without an exception; if the block raises, nothing is written. With at most `batch_size` rows,
        the whole batch is one transaction."""
        return Batch(self, batch_size)


class Batch(Generic[R]):
    """Rows collected for one bulk insert; see `Bulk.batch`."""

    def __init__(self, repository: Bulk[R], batch_size: int) -> None:
        self._repository = repository
        self._batch_size = batch_size
        self._rows: List[Dict[str, Any]] = []
        #: The created rows, once the block has ended.
        self.created: List[R] = []

    def add(self, data: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> None:
        """Adds one row (validated when the batch is written)."""
        self._rows.append(_merged(data, fields))

    def __len__(self) -> int:
        return len(self._rows)

    def __enter__(self) -> "Batch[R]":
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        rows, self._rows = self._rows, []
        if kind is None and rows:
            self.created = self._repository.create_many(rows, batch_size=self._batch_size)


def _chunks(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[tuple[int, List[Dict[str, Any]]]]:
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    iterator = iter(rows)
    offset = 0
    while True:
        chunk = [dict(row) for row in itertools.islice(iterator, size)]
        if not chunk:
            return
        yield offset, chunk
        offset += len(chunk)


def _shifted(error: BatchError, offset: int, written: int) -> BatchError:
    rows = [type(r)(row=r.row + offset, code=r.code, field=r.field, message=r.message) for r in error.errors]
    return BatchError.of_rows(rows, written)


__all__ = ["Operations", "Bulk", "Batch", "Id", "PathLike", "DEFAULT_BATCH_SIZE", "DEFAULT_PAGE_SIZE"]
