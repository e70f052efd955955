"""The base class of the generated records (`_models.py`) and the converters they use.

Each generated record is a frozen dataclass deriving from `Record`, with three class attributes set by
the generator: `__table__` (the SQL table of stored models, else None), `__sensitive__` (the names of
the fields holding sensitive data) and `__converters__` (a tuple of `(field name, converter)` pairs in
field order, the converter turning the wire value into the typed one, or None when the wire value is
already right). `_from_row` walks that table: no per-row introspection.

The wire format is what austa-core's serde serialization gives as JSON-like Python values: UUIDs as
strings, timestamps as RFC 3339 strings, dates as `YYYY-MM-DD`, enums as their names, nested structs as
dicts, tuples as lists. An erased (crypto-shredded) sensitive value is None whatever its type.

Python 3.9 compatible.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Any, Callable, ClassVar, Dict, FrozenSet, List, Mapping, Optional, Tuple, Type, TypeVar

__all__ = ["Record", "parse_datetime"]

R = TypeVar("R", bound="Record")
E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")

Converter = Callable[[Any], Any]

_UTC = datetime.timezone.utc
_UUID = uuid.UUID
_DATETIME = datetime.datetime
_DATE = datetime.date


class Record:
    """A typed, immutable row. Sensitive fields never appear in `repr()` or `str()`: they print as
    `<redacted>` (or `None` when absent or erased, which reveals nothing)."""

    __table__: ClassVar[Optional[str]] = None
    __sensitive__: ClassVar[FrozenSet[str]] = frozenset()
    __converters__: ClassVar[Tuple[Tuple[str, Optional[Converter]], ...]] = ()

    @classmethod
    def _from_row(cls: Type[R], row: Mapping[str, Any]) -> R:
        """Builds a record from a wire row; raises TypeError on a missing or unknown key."""
        converters = cls.__converters__
        values: Dict[str, Any] = {}
        try:
            for name, convert in converters:
                value = row[name]
                values[name] = value if convert is None else convert(value)
        except KeyError:
            raise TypeError(_key_mismatch(cls, row)) from None
        if len(row) != len(converters):
            raise TypeError(_key_mismatch(cls, row))
        # A frozen dataclass's generated __init__ sets each field through object.__setattr__; filling
        # __dict__ at once is much faster and equivalent (the generated classes have no __post_init__).
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record

    def to_dict(self) -> Dict[str, Any]:
        """Every field, sensitive ones included, with typed values; nested records become dicts."""
        return {name: _plain(getattr(self, name)) for name, _ in self.__converters__}

    def __repr__(self) -> str:
        sensitive = self.__sensitive__
        parts = []
        for name, _ in self.__converters__:
            value = getattr(self, name)
            if name in sensitive and value is not None:
                parts.append(f"{name}=<redacted>")
            else:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    __str__ = __repr__


def _key_mismatch(cls: Type[Record], row: Mapping[str, Any]) -> str:
    expected = [name for name, _ in cls.__converters__]
    missing = [k for k in expected if k not in row]
    unknown = sorted(str(k) for k in row if k not in set(expected))
    problems = []
    if missing:
        problems.append("missing field(s) " + ", ".join(repr(k) for k in missing))
    if unknown:
        problems.append("unknown field(s) " + ", ".join(repr(k) for k in unknown))
    return f"{cls.__name__}: {'; '.join(problems)} (are the bindings out of date with austa-core?)"


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def parse_datetime(value: str) -> datetime.datetime:
    """Parses an RFC 3339 timestamp (`2026-11-25T20:40:20.123456Z`, 0 to 9 fractional digits, `Z` or a
    `±HH:MM` offset) into an aware UTC datetime. Digits past microseconds are truncated.

    `datetime.fromisoformat` on Python 3.9 and 3.10 rejects `Z` and fractions other than 3 or 6 digits,
    so the string is normalized first.
    """
    text = value
    if text[-1:] in ("Z", "z"):
        text, offset = text[:-1], "+00:00"
    elif len(text) > 6 and text[-6] in "+-" and text[-3] == ":":
        text, offset = text[:-6], text[-6:]
    else:
        raise ValueError("timestamp without a UTC offset")
    dot = text.find(".", 19)
    if dot != -1:
        fraction = text[dot + 1 :]
        if not (fraction.isascii() and fraction.isdigit()):
            raise ValueError("invalid timestamp")
        text = text[:dot] + "." + (fraction + "00000")[:6]
    parsed = _DATETIME.fromisoformat(text + offset)
    return parsed if offset == "+00:00" else parsed.astimezone(_UTC)


# Converters used by the generated converter tables.


def identity(value: T) -> T:
    """Returns the value as it is."""
    return value


def to_uuid(value: Any) -> uuid.UUID:
    """A UUID from its string form (a UUID passes through)."""
    return value if value.__class__ is _UUID else _UUID(value)


def to_datetime(value: Any) -> datetime.datetime:
    """An aware UTC datetime from an RFC 3339 string (an aware datetime passes through)."""
    if isinstance(value, _DATETIME):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value
    return parse_datetime(value)


def to_date(value: Any) -> datetime.date:
    """A date from `YYYY-MM-DD` (a date passes through)."""
    return value if value.__class__ is _DATE else _DATE.fromisoformat(value)


def to_float(value: Any) -> float:
    """A float from a JSON number."""
    return value if value.__class__ is float else float(value)


def optional(convert: Callable[[Any], T]) -> Callable[[Any], Optional[T]]:
    """Lets None through, converts anything else."""

    def convert_optional(value: Any) -> Optional[T]:
        return None if value is None else convert(value)

    return convert_optional


def list_of(convert: Callable[[Any], T]) -> Callable[[Any], List[T]]:
    """Converts each item of a list."""

    def convert_list(value: Any) -> List[T]:
        return [convert(v) for v in value]

    return convert_list


def tuple_of(*converts: Converter) -> Callable[[Any], Tuple[Any, ...]]:
    """Converts a list of fixed length into a tuple, item by item."""

    def convert_tuple(value: Any) -> Tuple[Any, ...]:
        if len(value) != len(converts):
            raise ValueError(f"expected {len(converts)} items, got {len(value)}")
        return tuple(c(v) for c, v in zip(converts, value))

    return convert_tuple


def enum_of(cls: Type[E]) -> Callable[[Any], E]:
    """The member of `cls` whose value is the serialized name."""
    members: Dict[Any, E] = {m.value: m for m in cls}

    def convert_enum(value: Any) -> E:
        try:
            return members[value]
        except (KeyError, TypeError):
            raise ValueError(f"not a {cls.__name__} value") from None

    return convert_enum
