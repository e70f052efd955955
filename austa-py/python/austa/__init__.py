"""austa: the healthcare data layer of the Austa platform, for Python.

A thin layer over the Rust core (`austa-core`): the same typed models, field encryption, tenancy by
organization, access control and tamper-evident audit trail, with Python types on this side: records
with attributes and `to_dict()`, timezone-aware `datetime`, `uuid.UUID` ids, `str` enums, dicts and
lists for JSON, and an exception per error code.

    import austa

    with austa.Database("sqlite://clinic.db", key_file="clinic.key", create_key_file=True) as db:
        db.migrate()
        org = db.organizations.create(name="Clínica Exemplo", organization_type=austa.OrganizationType.CLINIC)
        scope = db.scope(org.id, austa.Actor.admin())
        ana = scope.patients.create(first_name="Ana", last_name="Souza", phone="+5511987654321")

Calls are synchronous and release the interpreter lock while the database works, so threads run in
parallel; `austa.aio` offers the same API with `await`. Bulk paths: `create_many`, `import_rows`,
`stream`, and `austa.export.to_pandas` / `to_arrow`.
"""

from __future__ import annotations

from . import _enums, _inputs, _models, aio, errors, export
from ._client import Actor, Audit, Database, Scope
from ._enums import *  # noqa: F401,F403 - the enums are part of the public API
from ._models import *  # noqa: F401,F403 - the records are part of the public API
from ._native import __version__
from ._page import Page
from ._record import Record
from ._inputs import *  # noqa: F401,F403 - the input types are part of the public API
from ._repos import OPERATIONS, Keys, Organizations
from ._repository import Batch
from .errors import (
    AustaError,
    BatchError,
    ConfigError,
    TransportError,
    Conflict,
    CorruptData,
    CryptoError,
    DatabaseError,
    Erased,
    InternalError,
    IoError,
    MigrationError,
    NotFound,
    PermissionDenied,
    Refused,
    RowError,
    ValidationError,
)

__all__ = [
    "__version__",
    "aio",
    "errors",
    "export",
    "Actor",
    "Audit",
    "Batch",
    "Database",
    "Keys",
    "OPERATIONS",
    "Organizations",
    "Page",
    "Record",
    "Scope",
    "AustaError",
    "BatchError",
    "ConfigError",
    "TransportError",
    "Conflict",
    "CorruptData",
    "CryptoError",
    "DatabaseError",
    "Erased",
    "InternalError",
    "IoError",
    "MigrationError",
    "NotFound",
    "PermissionDenied",
    "Refused",
    "RowError",
    "ValidationError",
]
__all__ += _enums.__all__
__all__ += _models.__all__
__all__ += _inputs.__all__
