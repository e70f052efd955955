"""`Database`, `Scope` and `Actor`: opening the library and acting in an organization's name."""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional, Union

from . import _native
from . import _wire as w
from ._enums import Role
from ._models import (
    AuditLog,
    ChainReport,
    IngestReport,
    MasterKeyRotation,
    Organization,
    RotationStatus,
    SeedReport,
    ShredReceipt,
)
from ._page import Page, page_of, stream
from ._repos import (
    AuditLogs,
    Authorizations,
    Conversations,
    Documents,
    HealthDataRepository,
    HealthPointsRepository,
    Messages,
    Missions,
    OnboardingProgressRepository,
    Patients,
    PointTransactions,
    Providers,
    TasyIntegrations,
    TasyOutbox,
    TasySyncLogs,
)
from .errors import ValidationError

Id = Union[uuid.UUID, str]
PathLike = Union[str, "os.PathLike[str]"]


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


class Database:
    """An open database: a connection pool and the key cache. Thread-safe; share one per process.

    Every argument is optional and falls back to the environment (`DATABASE_URL`, `AUSTA_MASTER_KEY` or
    `AUSTA_MASTER_KEY_FILE`, `AUSTA_KEYSTORE_URL`)::

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
    ) -> None:
        options = {
            "url": url,
            "master_key": master_key,
            "key_file": None if key_file is None else os.fspath(key_file),
            "keystore_url": keystore_url,
            "create_key_file": create_key_file,
        }
        self._native: Optional[_native.Database] = w.handle(_native.Database.open, options)

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

    def migrate(self) -> None:
        """Applies pending schema migrations (safe to run concurrently: one applies, others wait)."""
        self._call("migrate")

    def seed(self) -> SeedReport:
        """Loads the synthetic development seed (idempotent)."""
        return SeedReport._from_row(self._call("seed"))

    def flush_audit(self) -> None:
        """Waits until every audit event recorded so far is chained."""
        self._call("flush_audit")

    def clear_key_cache(self) -> None:
        """Forgets every unwrapped key held in memory."""
        self._call("clear_key_cache")

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

    def organization_for_whatsapp(self, phone_number_id: str) -> Optional[uuid.UUID]:
        """The organization that registered a WhatsApp phone number id, if any."""
        value = self._call("whatsapp.organization_for", {"phone_number_id": phone_number_id})
        return None if value is None else w.to_uuid(value)

    @property
    def organizations(self) -> "Organizations":
        """Organizations (platform operations)."""
        return Organizations(self)

    def rotate_master_key(
        self, *, master_key: Optional[str] = None, key_file: Optional[PathLike] = None
    ) -> MasterKeyRotation:
        """Re-wraps every organization key under a new master key (base64 or a key file); the old key
        must stay configured until this returns."""
        args = {"master_key": master_key, "key_file": None if key_file is None else os.fspath(key_file)}
        return MasterKeyRotation._from_row(self._call("keys.rotate_master", args))


class Organizations:
    """The organizations (tenants). Platform operations: no scope is needed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, data: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Organization:
        """Creates an organization (its key is created with it)."""
        merged = {**(data or {}), **fields}
        return Organization._from_row(self._db._call("organizations.create", {"data": merged}))

    def get(self, id: Id) -> Organization:
        """One organization; raises `NotFound`."""
        return Organization._from_row(self._db._call("organizations.get", {"id": id}))

    def find_by_tax_id(self, cnpj: str) -> Optional[Organization]:
        """The organization with that CNPJ, if any."""
        return w.maybe(Organization, self._db._call("organizations.find_by_tax_id", {"cnpj": cnpj}))

    def update(self, id: Id, patch: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Organization:
        """Changes an organization."""
        merged = {**(patch or {}), **fields}
        return Organization._from_row(self._db._call("organizations.update", {"id": id, "patch": merged}))

    def delete(self, id: Id) -> None:
        """Soft-deletes an organization."""
        self._db._call("organizations.delete", {"id": id})

    def list(self, *, limit: Optional[int] = None, after: Optional[str] = None) -> Page[Organization]:
        """One page of organizations."""
        return page_of(Organization, self._db._call("organizations.list", {"limit": limit, "after": after}))

    def stream(self, *, page_size: int = 500) -> Iterator[Organization]:
        """Every organization, a page at a time."""
        return stream(lambda after: self.list(limit=page_size, after=after))


class Scope:
    """An organization and an actor: every repository call runs as them, is authorized by the actor's
    role and lands in the organization's audit chain. Obtain one from `Database.scope`."""

    def __init__(self, native: _native.Scope, organization_id: uuid.UUID, actor: Actor) -> None:
        self._native = native
        #: The organization every call of this scope acts in.
        self.organization_id = organization_id
        #: Who acts.
        self.actor = actor
        self.patients = Patients(native)
        self.providers = Providers(native)
        self.conversations = Conversations(native)
        self.messages = Messages(native)
        self.health_data = HealthDataRepository(native)
        self.missions = Missions(native)
        self.onboarding_progress = OnboardingProgressRepository(native)
        self.health_points = HealthPointsRepository(native)
        self.point_transactions = PointTransactions(native)
        self.authorizations = Authorizations(native)
        self.documents = Documents(native)
        self.tasy_integrations = TasyIntegrations(native)
        self.tasy_sync_logs = TasySyncLogs(native)
        self.tasy_outbox = TasyOutbox(native)
        self.audit_logs = AuditLogs(native)
        self.audit = Audit(native)
        self.keys = Keys(native)

    def __repr__(self) -> str:
        return f"<austa.Scope organization={self.organization_id} actor={self.actor.role.value}>"

    def _call(self, op: str, args: Optional[w.Args] = None) -> Any:
        return w.call(self._native, op, args)

    def organization(self) -> Organization:
        """The scope's organization."""
        return Organization._from_row(self._call("organization.get"))

    def update_organization(self, patch: Optional[Mapping[str, Any]] = None, /, **fields: Any) -> Organization:
        """Changes the scope's organization (administrators)."""
        merged = {**(patch or {}), **fields}
        return Organization._from_row(self._call("organization.update", {"patch": merged}))

    def register_whatsapp_number(self, phone_number_id: str) -> None:
        """Routes webhooks for that WhatsApp phone number id to this organization."""
        self._call("whatsapp.register_number", {"phone_number_id": phone_number_id})

    def unregister_whatsapp_number(self, phone_number_id: str) -> None:
        """Stops routing that phone number id to this organization."""
        self._call("whatsapp.unregister_number", {"phone_number_id": phone_number_id})

    def emergency_access(self, patient_id: Id, reason: str, duration: datetime.timedelta) -> "Scope":
        """A provider's recorded, time-limited access to one patient's data ("break the glass")."""
        args = {"patient_id": patient_id, "reason": reason, "seconds": int(duration.total_seconds())}
        return Scope(w.handle(self._native.emergency, args), self.organization_id, self.actor)


class Audit:
    """The organization's audit chain: verification, reports, FHIR export, application events."""

    def __init__(self, native: _native.Scope) -> None:
        self._native = native

    def _call(self, method: str, args: Optional[w.Args] = None) -> Any:
        return w.call(self._native, f"audit.{method}", args)

    def verify(self) -> ChainReport:
        """Verifies the whole chain; `report.broken` is None when it is intact."""
        return ChainReport._from_row(self._call("verify"))

    def verify_range(self, from_seq: int, to_seq: int) -> ChainReport:
        """Verifies the events numbered `from_seq` to `to_seq`."""
        return ChainReport._from_row(self._call("verify_range", {"from_seq": from_seq, "to_seq": to_seq}))

    def access_report(
        self,
        patient_id: Id,
        start: datetime.datetime,
        end: datetime.datetime,
        *,
        limit: Optional[int] = None,
        after: Optional[str] = None,
    ) -> Page[AuditLog]:
        """Who accessed a patient's data between `start` and `end` (LGPD art. 18 reports)."""
        args = {"patient_id": patient_id, "from": start, "to": end, "limit": limit, "after": after}
        return page_of(AuditLog, self._call("access_report", args))

    def export_fhir(self, path: PathLike, start: datetime.datetime, end: datetime.datetime) -> int:
        """Writes the events between `start` and `end` to `path` as FHIR AuditEvent JSON lines; returns
        how many."""
        return int(self._call("export_fhir", {"path": os.fspath(path), "from": start, "to": end}))

    def record(self, action: str, **fields: Any) -> uuid.UUID:
        """Records an application event (``"LOGIN"``, ``"LOGOUT"``, ``"EXPORT"``,
        ``"PERMISSION_CHANGE"``) with its fields; returns the event id."""
        return w.to_uuid(self._call("record", {"event": {"action": action, **fields}}))


class Keys:
    """Key rotation and crypto-shredding for the scope's organization."""

    def __init__(self, native: _native.Scope) -> None:
        self._native = native

    def _call(self, method: str, args: w.Args) -> Any:
        return w.call(self._native, f"keys.{method}", args)

    def start_rotation(self, patient_id: Optional[Id] = None) -> RotationStatus:
        """Starts rotating the organization's key, or one patient's key."""
        return RotationStatus._from_row(self._call("start_rotation", {"patient_id": patient_id}))

    def rotation_status(self, id: Id) -> RotationStatus:
        """Where a rotation stands."""
        return RotationStatus._from_row(self._call("rotation_status", {"id": id}))

    def run_rotation(self, id: Id, *, batch_size: Optional[int] = None, max_batches: Optional[int] = None) -> RotationStatus:
        """Re-encrypts rows under the new key, resumably (run it again until `completed` is true)."""
        args = {"id": id, "batch_size": batch_size, "max_batches": max_batches}
        return RotationStatus._from_row(self._call("run_rotation", args))

    def shred_patient(self, patient_id: Id, reason: str) -> ShredReceipt:
        """Destroys a patient's key: their encrypted data becomes unreadable everywhere (LGPD erasure)."""
        return ShredReceipt._from_row(self._call("shred_patient", {"patient_id": patient_id, "reason": reason}))
