"""Exports of decrypted rows to pandas and Arrow (optional dependencies: ``pip install pandas`` or
``pip install pyarrow``).

Rows are read a page at a time (`Repository.stream`) and converted in chunks, so the Python objects
of at most one chunk are alive at once; the resulting DataFrame or Table holds every row, as asked.
Columns keep their types: timestamps as timezone-aware (UTC), ids as strings in Arrow (Arrow has no
UUID type in every version) and `uuid.UUID` objects in pandas, enums as their names, JSON as dicts.

Decrypted values leave the library's protection here: the caller is responsible for where the
DataFrame goes. Every read is authorized and audited like any other.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Sequence

from ._record import Record

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas
    import pyarrow  # type: ignore[import-untyped, unused-ignore]

__all__ = ["to_pandas", "to_arrow", "rows"]

#: Records converted per chunk.
CHUNK = 10_000


def rows(records: Iterable[Record], columns: Optional[Sequence[str]] = None) -> Iterator[Dict[str, Any]]:
    """The records as plain dicts (only `columns` when given), nested records as dicts."""
    for record in records:
        row = record.to_dict()
        yield row if columns is None else {c: row[c] for c in columns}


def _arrow_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):  # includes the str enums
        return str(value)
    if isinstance(value, list):
        return [_arrow_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _arrow_value(v) for k, v in value.items()}
    return value


def _chunks(records: Iterable[Record], columns: Optional[Sequence[str]]) -> Iterator[List[Dict[str, Any]]]:
    chunk: List[Dict[str, Any]] = []
    for row in rows(records, columns):
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def to_pandas(records: Iterable[Record], columns: Optional[Sequence[str]] = None) -> "pandas.DataFrame":
    """A DataFrame of the records (e.g. ``to_pandas(scope.health_data.stream())``); raises
    ImportError naming the package when pandas is not installed."""
    try:
        import pandas
    except ImportError:
        raise ImportError("austa.export.to_pandas needs pandas: pip install pandas") from None
    frames = [pandas.DataFrame.from_records(chunk) for chunk in _chunks(records, columns)]
    if not frames:
        return pandas.DataFrame(columns=list(columns) if columns is not None else None)
    return pandas.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def to_arrow(records: Iterable[Record], columns: Optional[Sequence[str]] = None) -> "pyarrow.Table":
    """An Arrow table of the records; raises ImportError naming the package when pyarrow is not
    installed."""
    try:
        import pyarrow
    except ImportError:
        raise ImportError("austa.export.to_arrow needs pyarrow: pip install pyarrow") from None
    tables = [
        pyarrow.Table.from_pylist([{k: _arrow_value(v) for k, v in row.items()} for row in chunk])
        for chunk in _chunks(records, columns)
    ]
    if not tables:
        return pyarrow.table({c: [] for c in columns or []})
    # A column that is all null in one chunk and typed in another is unified, not an error.
    return pyarrow.concat_tables(tables, promote_options="permissive")
