"""The exceptions of `austa`: one class per stable error code of the core, rooted at `AustaError`.

Every exception carries `.code` (the core's stable code, e.g. ``"validation"``) and `.field` (the
offending field for validation and conflict errors, else None). Messages name the problem and never
quote a sensitive value. A `BatchError` lists its failed rows in `.errors`.

A Rust panic inside the library never crashes the interpreter: it is raised as `InternalError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Type

__all__ = [
    "AustaError",
    "NotFound",
    "ValidationError",
    "BatchError",
    "RowError",
    "Conflict",
    "PermissionDenied",
    "CryptoError",
    "Erased",
    "ConfigError",
    "TransportError",
    "Refused",
    "MigrationError",
    "DatabaseError",
    "CorruptData",
    "IoError",
    "InternalError",
]


class AustaError(Exception):
    """The root of every error raised by `austa`."""

    #: The core's stable error code.
    code: str = "internal"

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        #: The offending field (validation and conflict errors), else None.
        self.field = field

    def __reduce__(self) -> Any:
        # Pickled (multiprocessing pools) with the field, which is not among the exception's args.
        return (_rebuild, (type(self), self.message, self.__dict__))

    @property
    def message(self) -> str:
        """The error's message (the same as `str(error)`)."""
        return str(self.args[0]) if self.args else ""


class NotFound(AustaError):
    """No live row with that id in the scope's organization (or not visible to the actor)."""

    code = "not_found"


class ValidationError(AustaError):
    """Bad input; `.field` names it (a dotted path for nested input, e.g. ``"address.zip_code"``)."""

    code = "validation"


class Conflict(AustaError):
    """A unique value already taken (`.field` names it) or a state that forbids the change."""

    code = "conflict"


class PermissionDenied(AustaError):
    """The scope's actor may not do this; the refusal is recorded in the audit trail."""

    code = "permission_denied"


class CryptoError(AustaError):
    """A key is missing or wrong, or a ciphertext does not authenticate."""

    code = "crypto"


class Erased(AustaError):
    """The patient's data was crypto-shredded."""

    code = "erased"


class Refused(AustaError):
    """An operation refused to run because it would be unsafe here; nothing was changed."""

    code = "refused"


class ConfigError(AustaError):
    """The configuration (URL, key provider) is missing or invalid."""

    code = "config"


class TransportError(AustaError):
    """The database connection is not secure enough or its TLS failed: a URL asking for less than
    verified TLS to another machine, a server without TLS, a certificate from another CA or for
    another host name."""

    code = "transport"


class MigrationError(AustaError):
    """A schema migration failed or the schema is ahead of this library."""

    code = "migration"


class DatabaseError(AustaError):
    """The database failed (connection, timeout, constraint the library did not expect)."""

    code = "database"


class CorruptData(AustaError):
    """A stored value does not decode (tampering or a bug)."""

    code = "corrupt_data"


class IoError(AustaError):
    """A file could not be read or written."""

    code = "io"


class InternalError(AustaError):
    """A bug inside the library (a caught panic); the operation did not complete."""

    code = "internal"


@dataclass(frozen=True)
class RowError:
    """One failed row of a bulk insert."""

    #: Position of the row in the input (counted over the whole iterable, from 0).
    row: int
    #: The row's error code (``"validation"``, ``"conflict"``, ``"permission_denied"``, ...).
    code: str
    #: The offending field, when the error names one.
    field: Optional[str]
    #: What is wrong, never quoting the value.
    message: str


class BatchError(AustaError):
    """Rows of a bulk insert failed; `.errors` lists them. The failing batch wrote nothing;
    `.written` counts the rows that earlier batches (already committed) wrote."""

    code = "invalid_batch"

    def __init__(self, message: str, *, errors: List[RowError], written: int = 0) -> None:
        super().__init__(message)
        #: The failed rows, in input order.
        self.errors = errors
        #: Rows written by the batches committed before the failing one.
        self.written = written

    @classmethod
    def of_rows(cls, rows: List[RowError], written: int = 0) -> "BatchError":
        """The error for these failed rows, with a message naming the first five (row and message,
        never a value)."""
        summary = "; ".join(f"row {r.row}: {r.message}" for r in rows[:5])
        more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
        return cls(f"{len(rows)} row(s) failed: {summary}{more}", errors=rows, written=written)


def _rebuild(cls: Type[AustaError], message: str, state: Dict[str, Any]) -> AustaError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


_BY_CODE: Dict[str, Type[AustaError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        ValidationError,
        Conflict,
        PermissionDenied,
        CryptoError,
        Erased,
        ConfigError,
        TransportError,
        Refused,
        MigrationError,
        DatabaseError,
        CorruptData,
        IoError,
        InternalError,
    )
}


def _from_native(failure_json: str, row_offset: int = 0, written: int = 0) -> AustaError:
    """The exception for a failure reported by the native module (JSON text)."""
    try:
        failure: Dict[str, Any] = json.loads(failure_json)
    except ValueError:
        return InternalError("unreadable failure from the native module")
    code = str(failure.get("code", "internal"))
    message = str(failure.get("message", ""))
    field = failure.get("field")
    if code == BatchError.code:
        rows = [
            RowError(
                row=int(r["row"]) + row_offset,
                code=str(r["code"]),
                field=r.get("field"),
                message=str(r["message"]),
            )
            for r in failure.get("rows", [])
        ]
        return BatchError.of_rows(rows, written)
    return _BY_CODE.get(code, InternalError)(message, field=field)
