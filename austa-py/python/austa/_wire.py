"""The wire between the typed Python API and the native module: arguments to JSON text, results back,
failures to exceptions.

Arguments accept the Python types a pipeline has at hand: `uuid.UUID` or its string, timezone-aware
`datetime` (a naive one is refused: the library stores instants), `date`, the `str` enums, records
(as their fields), `Decimal`, sets and tuples (as lists). Anything else is a `ValidationError` that names
the type, never the value.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import uuid
from typing import Any, Callable, Dict, List, Optional, Type, TypeVar, Union

from . import _native
from ._record import Record
from .errors import AustaError, ValidationError, _from_native

R = TypeVar("R", bound=Record)

Args = Dict[str, Any]


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(
                "naive datetime: pass a timezone-aware datetime (e.g. datetime.now(timezone.utc))"
            )
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    # numpy and pandas scalars (from `DataFrame.to_dict("records")`): their plain Python value.
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__.split(".")[0] in ("numpy", "pandas"):
        return item()
    raise ValidationError(f"a value of type {type(value).__name__} cannot be passed to austa")


def encode(args: Any) -> str:
    """Arguments as JSON text."""
    try:
        return json.dumps(args, default=_default, separators=(",", ":"), allow_nan=False)
    except AustaError:
        raise
    except ValueError:
        raise ValidationError("NaN and infinite numbers are not valid values") from None
    except TypeError:
        raise ValidationError("mapping keys must be strings") from None


def call(target: Union[_native.Database, _native.Scope], op: str, args: Optional[Args] = None) -> Any:
    """Runs one operation and returns its decoded JSON result; raises the mapped exception."""
    text = encode(args) if args else "{}"
    return native(lambda: target.call(op, text))


def native(run: Callable[[], str]) -> Any:
    """Runs one native call returning JSON text (the webhook ingest) and decodes its result."""
    try:
        result = run()
    except _native.NativeError as failure:
        raise _from_native(str(failure.args[0])) from None
    return json.loads(result)


def handle(open_handle: Callable[[str], Any], args: Args) -> Any:
    """Runs a call that returns a native handle (open, scope, emergency access)."""
    text = encode(args)
    try:
        return open_handle(text)
    except _native.NativeError as failure:
        raise _from_native(str(failure.args[0])) from None


def record(cls: Type[R], value: Any) -> R:
    """A record from a decoded result."""
    return cls._from_row(value)


def records(cls: Type[R], values: List[Any]) -> List[R]:
    """Records from a decoded list."""
    build = cls._from_row
    return [build(v) for v in values]


def maybe(cls: Type[R], value: Any) -> Optional[R]:
    """A record, or None for a null result."""
    return None if value is None else cls._from_row(value)


def to_uuid(value: Any) -> uuid.UUID:
    """A UUID from its string form."""
    return uuid.UUID(str(value))
