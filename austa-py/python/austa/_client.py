"""`Database`, `Scope` and `Actor`: opening the library and acting in an organization's name."""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Literal, Mapping, Optional, Union

from . import _native
from . import _wire as w
from ._enums import Role
from . import _repos
from ._models import IngestReport
from ._repository import Id, PathLike
from ._repos import DatabaseOperations, ScopeOperations
from .errors import ValidationError


@dataclass(frozen=True)
class Actor:
    """Who acts: a patient, a provider, an administrator or a named system integration.

    Build one with the class methods; the role decides what the scope may do.
    """

    role: Role
    id: Optional[uuid.UUID] = None
    name: Optional[str] = None

    @classmethod
    def patient(cls, id: Id) -> "Actor":
        """A patient acting on their own data."""
        return cls(Role.PATIENT, uuid.UUID(str(id)))

    @classmethod
    def provider(cls, id: Id) -> "Actor":
        """A provider of the organization."""
        return cls(Role.PROVIDER, uuid.UUID(str(id)))

    @classmethod
    def admin(cls, id: Optional[Id] = None) -> "Actor":
        """An administrator of the organization."""
        return cls(Role.ADMIN, None if id is None else uuid.UUID(str(id)))

    @classmethod
    def system(cls, name: str) -> "Actor":
        """A system integration, named in the audit trail (``"tasy-sync"``, ``"whatsapp-webhook"``, ``"ai-annotator"``; ``"platform"`` for operator tooling; other names have no rights)."""
        return cls(Role.SYSTEM, name=name)

    @classmethod
    def platform(cls) -> "Actor":
        """The platform itself (the system actor ``"platform"``)."""
        return cls.system("platform")

    def _wire(self) -> Dict[str, Any]:
        return {"role": self.role, "id": self.id, "name": self.name}


class Database(DatabaseOperations):
    """An open database: a connection pool and the key cache. Thread-safe; share one per process.

    Every argument is optional and falls back to the environment (`DATABASE_URL`, `AUSTA_MASTER_KEY` or
    `AUSTA_MASTER_KEY_FILE`, `AUSTA_KEYSTORE_URL`, `AUSTA_READ_AUDIT`). `read_audit="strict"` makes every
    read wait until its audit event is on disk; the default, `"relaxed"`, waits for the event's commit
    only (on PostgreSQL a server crash may lose the last ~600 ms of read events)::

        with austa.Database("sqlite://clinic.db", key_file="clinic.key", create_key_file=True) as db:
            db.migrate()
            scope = db.scope(org_id, austa.Actor.admin())

    Use it as a context manager, or call `close()`: the pool closes when the last scope is gone.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        master_key: Optional[str] = None,
        key_file: Optional[PathLike] = None,
        keystore_url: Optional[str] = None,
        create_key_file: bool = False,
        read_audit: Optional[Literal["relaxed", "strict"]] = None,
    ) -> None:
        options = {
            "url": url,
            "master_key": master_key,
            "key_file": None if key_file is None else os.fspath(key_file),
            "keystore_url": keystore_url,
            "create_key_file": create_key_file,
            "read_audit": read_audit,
        }
        self._native: Optional[_native.Database] = w.handle(_native.Database.open, options)
        self._attach_groups()

    def __repr__(self) -> str:
        state = "closed" if self._native is None else "open"
        return f"<austa.Database {state}>"

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.close()

    def close(self) -> None:
        """Releases this handle (pending audit events are flushed first). Further calls raise."""
        if self._native is not None:
            try:
                self.flush_audit()
            finally:
                self._native = None

    @property
    def _db(self) -> _native.Database:
        if self._native is None:
            raise ValidationError("the database is closed")
        return self._native

    def _call(self, op: str, args: Optional[w.Args] = None) -> Any:
        return w.call(self._db, op, args)

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgres"``."""
        return str(self._call("backend"))

    def scope(
        self,
        organization_id: Id,
        actor: Actor,
        *,
        purpose: Optional[str] = None,
        request_id: Optional[str] = None,
        ip_address: Optional[str] = None,
        user_agent: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> "Scope":
        """Acts in `organization_id`'s name as `actor`; the request metadata goes into the audit trail."""
        request = {
            "purpose": purpose,
            "request_id": request_id,
            "ip_address": ip_address,
            "user_agent": user_agent,
            "session_id": session_id,
        }
        args = {"organization_id": organization_id, "actor": actor._wire(), "request": request}
        return Scope(w.handle(self._db.scope, args), uuid.UUID(str(organization_id)), actor)

    def ingest_whatsapp(self, body: Union[str, bytes, bytearray, memoryview]) -> IngestReport:
        """Stores a WhatsApp Cloud API webhook body (messages and statuses), idempotently.

        Verify the webhook signature before calling this; the body is taken as received: bytes go to
        the core undecoded, so a body that is not UTF-8 raises `ValidationError` like any other
        malformed body."""
        if isinstance(body, str):
            # surrogatepass: a str holding lone surrogates becomes bytes the core refuses as not
            # UTF-8, instead of a UnicodeEncodeError here.
            data = body.encode("utf-8", "surrogatepass")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
        else:
            raise ValidationError("invalid body: must be str or bytes", field="body")
        native = self._db
        return IngestReport._from_row(w.native(lambda: native.ingest(data)))


class Scope(ScopeOperations):
    """An organization and an actor: every repository call runs as them, is authorized by the actor's
    role and lands in the organization's audit chain. Obtain one from `Database.scope`."""

    audit: "Audit"

    def __init__(self, native: _native.Scope, organization_id: uuid.UUID, actor: Actor) -> None:
        self._native = native
        #: The organization every call of this scope acts in.
        self.organization_id = organization_id
        #: Who acts.
        self.actor = actor
        self._attach_groups()
        self.audit = Audit(self._call)

    def __repr__(self) -> str:
        return f"<austa.Scope organization={self.organization_id} actor={self.actor.role.value}>"

    def _call(self, op: str, args: Optional[w.Args] = None) -> Any:
        return w.call(self._native, op, args)

    def emergency_access(self, patient_id: Id, reason: str, duration: datetime.timedelta) -> "Scope":
        """A provider's recorded, time-limited access to one patient's data ("break the glass")."""
        args = {"patient_id": patient_id, "reason": reason, "seconds": int(duration.total_seconds())}
        return Scope(w.handle(self._native.emergency, args), self.organization_id, self.actor)


class Audit(_repos.Audit):
    """The organization's audit chain: verification, reports, FHIR export, application events."""

    def record(self, action: str, **fields: Any) -> uuid.UUID:
        """Records an application event (``"LOGIN"``, ``"LOGOUT"``, ``"EXPORT"``,
        ``"PERMISSION_CHANGE"``) with its fields; returns the event id."""
        return w.to_uuid(self._call("audit.record", {"event": {"action": action, **fields}}))
