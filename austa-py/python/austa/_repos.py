"""The repositories of a scope: one class per table, each a thin typed layer over the native calls.

Capabilities follow the core: every repository reads (`get`, `list`, `stream`); most create (`create`,
`create_many`, `import_rows`, `batch`); changeable ones `update`; soft-deletable ones `delete` and
`restore`. Domain operations (workflows, lookups) are methods of the repository they belong to.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from typing import Any, Dict, Generic, Iterable, Iterator, List, Mapping, Optional, Type, TypeVar, Union

from . import _native
from . import _wire as w
from ._enums import AuthorizationStatus, EntityType, HealthDataType, OutboxStatus
from ._models import (
    AuditLog,
    Authorization,
    AuthorizationTransition,
    Completion,
    Conversation,
    Document,
    HealthData,
    HealthPoints,
    Message,
    Mission,
    OnboardingProgress,
    OutboxItem,
    Patient,
    PointTransaction,
    Provider,
    TasyIntegration,
    TasySyncLog,
)
from ._page import Page, page_of, stream
from ._record import Record
from .errors import BatchError

R = TypeVar("R", bound=Record)

Id = Union[uuid.UUID, str]
Data = Mapping[str, Any]

#: Rows per batch of `create_many` and `import_rows` unless told otherwise.
DEFAULT_BATCH_SIZE = 1000
#: Rows per page of `stream` unless told otherwise.
DEFAULT_PAGE_SIZE = 500


def _data(data: Optional[Data], fields: Dict[str, Any]) -> Dict[str, Any]:
    merged: Dict[str, Any] = dict(data) if data is not None else {}
    merged.update(fields)
    return merged


class Repository(Generic[R]):
    """Reads of one table: `get`, `list`, `stream`."""

    _name: str
    _model: Type[R]

    def __init__(self, scope: _native.Scope) -> None:
        self._scope = scope

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name}>"

    def _call(self, method: str, args: Optional[w.Args] = None) -> Any:
        return w.call(self._scope, f"{self._name}.{method}", args)

    def _one(self, method: str, args: Optional[w.Args] = None) -> R:
        return self._model._from_row(self._call(method, args))

    def _maybe(self, method: str, args: w.Args) -> Optional[R]:
        return w.maybe(self._model, self._call(method, args))

    def _many(self, method: str, args: Optional[w.Args] = None) -> List[R]:
        return w.records(self._model, self._call(method, args))

    def _page(self, method: str, args: w.Args, limit: Optional[int], after: Optional[str]) -> Page[R]:
        return page_of(self._model, self._call(method, {**args, "limit": limit, "after": after}))

    def get(self, id: Id) -> R:
        """The live row with that id; raises `NotFound`."""
        return self._one("get", {"id": id})

    def list(self, *, limit: Optional[int] = None, after: Optional[str] = None) -> Page[R]:
        """One page of live rows, oldest first (`limit` defaults to 50, at most 500)."""
        return self._page("list", {}, limit, after)

    def stream(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[R]:
        """Every live row, fetched a page at a time: memory stays flat for any table size."""
        return stream(lambda after: self.list(limit=page_size, after=after))


class CreateRepository(Repository[R]):
    """A table whose rows are created through the generic path, one at a time or in bulk."""

    def create(self, data: Optional[Data] = None, /, **fields: Any) -> R:
        """Creates one row from a mapping and/or keyword fields (keywords win); the row, its audit
        event and any outbox entry are one transaction."""
        return self._one("create", {"data": _data(data, fields)})

    def create_many(self, rows: Iterable[Data], *, batch_size: int = DEFAULT_BATCH_SIZE) -> List[R]:
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

    def import_rows(self, rows: Iterable[Data], *, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
        """Like `create_many`, but returns only the number of rows written: memory stays flat for any
        number of input rows (a generator over a file is read a batch at a time)."""
        written = 0
        for offset, chunk in _chunks(rows, batch_size):
            written += int(self._bulk(chunk, offset, written, count_only=True)["count"])
        return written

    def _bulk(self, chunk: List[Dict[str, Any]], offset: int, written: int, *, count_only: bool) -> Any:
        args = {"rows": chunk, "count_only": count_only}
        try:
            return self._call("create_many", args)
        except BatchError as error:
            raise _shifted(error, offset, written) from None

    def batch(self, *, batch_size: int = DEFAULT_BATCH_SIZE) -> "Batch[R]":
        """A context manager that collects rows with `add()` and writes them when the block ends
        without an exception; if the block raises, nothing is written. With at most `batch_size` rows,
        the whole batch is one transaction."""
        return Batch(self, batch_size)


class ChangeRepository(CreateRepository[R]):
    """A table whose rows can be changed."""

    def update(self, id: Id, patch: Optional[Data] = None, /, **fields: Any) -> R:
        """Changes the named fields of one row (a field set to None is cleared where that is allowed);
        returns the row as stored."""
        return self._one("update", {"id": id, "patch": _data(patch, fields)})


class FullRepository(ChangeRepository[R]):
    """A table whose rows are soft-deleted and can be restored."""

    def delete(self, id: Id) -> None:
        """Soft-deletes one row (it disappears from reads; `restore` brings it back)."""
        self._call("delete", {"id": id})

    def restore(self, id: Id) -> None:
        """Restores a soft-deleted row."""
        self._call("restore", {"id": id})


class Batch(Generic[R]):
    """Rows collected for one bulk insert; see `CreateRepository.batch`."""

    def __init__(self, repository: CreateRepository[R], batch_size: int) -> None:
        self._repository = repository
        self._batch_size = batch_size
        self._rows: List[Dict[str, Any]] = []
        #: The created rows, once the block has ended.
        self.created: List[R] = []

    def add(self, data: Optional[Data] = None, /, **fields: Any) -> None:
        """Adds one row (validated when the batch is written)."""
        self._rows.append(_data(data, fields))

    def __len__(self) -> int:
        return len(self._rows)

    def __enter__(self) -> "Batch[R]":
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        rows, self._rows = self._rows, []
        if kind is None and rows:
            self.created = self._repository.create_many(rows, batch_size=self._batch_size)


def _chunks(rows: Iterable[Data], size: int) -> Iterator[tuple[int, List[Dict[str, Any]]]]:
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


# The repositories, table by table.


class Patients(FullRepository[Patient]):
    """Patients; lookups by the blind indexes of their identifiers."""

    _name = "patients"
    _model = Patient

    def find_by_phone(self, phone: str) -> Optional[Patient]:
        """The patient with that phone (E.164 or a Brazilian number), if any."""
        return self._maybe("find_by_phone", {"value": phone})

    def find_by_cpf(self, cpf: str) -> Optional[Patient]:
        """The patient with that CPF (with or without punctuation), if any."""
        return self._maybe("find_by_cpf", {"value": cpf})

    def find_by_email(self, email: str) -> Optional[Patient]:
        """The patient with that e-mail address, if any."""
        return self._maybe("find_by_email", {"value": email})

    def find_by_whatsapp_id(self, whatsapp_id: str) -> Optional[Patient]:
        """The patient with that WhatsApp id, if any."""
        return self._maybe("find_by_whatsapp_id", {"value": whatsapp_id})


class Providers(FullRepository[Provider]):
    """Providers (doctors, nurses, ...)."""

    _name = "providers"
    _model = Provider

    def find_by_email(self, email: str) -> Optional[Provider]:
        """The provider with that e-mail address, if any."""
        return self._maybe("find_by_email", {"value": email})

    def find_by_license(self, license_number: str) -> Optional[Provider]:
        """The provider with that license number, if any."""
        return self._maybe("find_by_license", {"value": license_number})

    def list_active(self, *, limit: Optional[int] = None, after: Optional[str] = None) -> Page[Provider]:
        """Active providers, a page at a time."""
        return self._page("list_active", {}, limit, after)


class Conversations(FullRepository[Conversation]):
    """WhatsApp conversations."""

    _name = "conversations"
    _model = Conversation

    def active_for_patient(
        self, patient_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[Conversation]:
        """The patient's active conversations."""
        return self._page("active_for_patient", {"patient_id": patient_id}, limit, after)

    def list_for_patient(
        self, patient_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[Conversation]:
        """All the patient's conversations."""
        return self._page("list_for_patient", {"patient_id": patient_id}, limit, after)

    def open_for_chat(self, chat_id: str) -> Optional[Conversation]:
        """The open conversation of a WhatsApp chat, if any."""
        return self._maybe("open_for_chat", {"chat_id": chat_id})

    def record_ai_result(self, id: Id, analysis: Data) -> Conversation:
        """Stores the AI's analysis of a conversation (summary, sentiment, risk, ...)."""
        return self._one("record_ai_result", {"id": id, "analysis": dict(analysis)})


class Messages(Repository[Message]):
    """Messages; appended (never created out of order), read as a conversation's history."""

    _name = "messages"
    _model = Message

    def append(self, data: Optional[Data] = None, /, **fields: Any) -> Message:
        """Appends a message to its conversation (updates the conversation's counters atomically)."""
        return self._one("append", {"data": _data(data, fields)})

    def record_outbound(self, data: Optional[Data] = None, /, **fields: Any) -> Message:
        """Records a message sent by the bot or a provider."""
        return self._one("record_outbound", {"data": _data(data, fields)})

    def history(
        self, conversation_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[Message]:
        """A conversation's messages, latest first, decrypted."""
        return self._page("history", {"conversation_id": conversation_id}, limit, after)

    def find_by_whatsapp_message_id(self, wamid: str) -> Optional[Message]:
        """The message with that WhatsApp message id, if any."""
        return self._maybe("find_by_whatsapp_message_id", {"value": wamid})

    def pending_for_ai(self, limit: int) -> List[Message]:
        """Inbound messages not yet analysed, oldest first."""
        return self._many("pending_for_ai", {"limit": limit})

    def claim_for_ai(self, worker: str, limit: int, lease: float) -> List[Message]:
        """Claims up to `limit` messages for analysis by `worker` for `lease` seconds."""
        return self._many("claim_for_ai", {"worker": worker, "limit": limit, "lease_seconds": lease})

    def record_ai_result(self, id: Id, analysis: Data) -> Message:
        """Stores the AI's analysis of one message."""
        return self._one("record_ai_result", {"id": id, "analysis": dict(analysis)})

    def update(self, id: Id, patch: Optional[Data] = None, /, **fields: Any) -> Message:
        """Changes a message's delivery status or metadata."""
        return self._one("update", {"id": id, "patch": _data(patch, fields)})

    def delete(self, id: Id) -> None:
        """Soft-deletes a message."""
        self._call("delete", {"id": id})

    def restore(self, id: Id) -> None:
        """Restores a soft-deleted message."""
        self._call("restore", {"id": id})


class HealthDataRepository(FullRepository[HealthData]):
    """Health data (vitals, lab results, ...)."""

    _name = "health_data"
    _model = HealthData

    def for_patient(
        self,
        patient_id: Id,
        data_type: Optional[HealthDataType] = None,
        *,
        limit: Optional[int] = None,
        after: Optional[str] = None,
    ) -> Page[HealthData]:
        """The patient's health data, optionally of one type."""
        return self._page("for_patient", {"patient_id": patient_id, "data_type": data_type}, limit, after)

    def stream_for_patient(
        self, patient_id: Id, data_type: Optional[HealthDataType] = None, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> Iterator[HealthData]:
        """Every health data row of the patient, a page at a time."""
        return stream(lambda after: self.for_patient(patient_id, data_type, limit=page_size, after=after))

    def verify(self, id: Id, provider_id: Id) -> HealthData:
        """Marks a row verified by a provider."""
        return self._one("verify", {"id": id, "provider_id": provider_id})


class Missions(FullRepository[Mission]):
    """Missions of the gamification programme."""

    _name = "missions"
    _model = Mission

    def create_with_prerequisites(self, data: Optional[Data] = None, /, **fields: Any) -> Mission:
        """Creates a mission together with its prerequisites (cycles are refused)."""
        return self._one("create_with_prerequisites", {"data": _data(data, fields)})

    def prerequisites(self, mission_id: Id) -> List[uuid.UUID]:
        """The ids of a mission's prerequisites."""
        return [w.to_uuid(v) for v in self._call("prerequisites", {"mission_id": mission_id})]

    def add_prerequisite(self, mission_id: Id, prerequisite_id: Id) -> bool:
        """Adds a prerequisite; False when it was already there. A cycle is a `Conflict`."""
        return bool(self._call("add_prerequisite", {"mission_id": mission_id, "prerequisite_id": prerequisite_id}))

    def remove_prerequisite(self, mission_id: Id, prerequisite_id: Id) -> bool:
        """Removes a prerequisite; False when it was not there."""
        args = {"mission_id": mission_id, "prerequisite_id": prerequisite_id}
        return bool(self._call("remove_prerequisite", args))

    def active(
        self, at: Optional[datetime.datetime] = None, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[Mission]:
        """Missions active now (or at `at`)."""
        return self._page("active", {"at": at}, limit, after)


class OnboardingProgressRepository(ChangeRepository[OnboardingProgress]):
    """Patients' progress through missions."""

    _name = "onboarding_progress"
    _model = OnboardingProgress

    def for_patient(
        self, patient_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[OnboardingProgress]:
        """The patient's progress rows."""
        return self._page("for_patient", {"patient_id": patient_id}, limit, after)

    def find(self, patient_id: Id, mission_id: Id) -> Optional[OnboardingProgress]:
        """The patient's progress on one mission, if started."""
        return self._maybe("find", {"patient_id": patient_id, "mission_id": mission_id})

    def start(self, patient_id: Id, mission_id: Id) -> OnboardingProgress:
        """Starts a mission (its prerequisites must be completed)."""
        return self._one("start", {"patient_id": patient_id, "mission_id": mission_id})

    def advance(self, patient_id: Id, mission_id: Id, steps: int) -> OnboardingProgress:
        """Advances a started mission by `steps`."""
        return self._one("advance", {"patient_id": patient_id, "mission_id": mission_id, "steps": steps})

    def complete(self, patient_id: Id, mission_id: Id) -> Completion:
        """Completes a mission and awards its points, once."""
        result = self._call("complete", {"patient_id": patient_id, "mission_id": mission_id})
        return Completion._from_row(result)


class HealthPointsRepository(ChangeRepository[HealthPoints]):
    """Patients' points totals, levels and streaks."""

    _name = "health_points"
    _model = HealthPoints

    def for_patient(self, patient_id: Id) -> Optional[HealthPoints]:
        """The patient's points row, if any."""
        return self._maybe("for_patient", {"patient_id": patient_id})

    def record_activity(self, patient_id: Id, at: Optional[datetime.datetime] = None) -> HealthPoints:
        """Records a day of activity (streaks)."""
        return self._one("record_activity", {"patient_id": patient_id, "at": at})


class PointTransactions(Repository[PointTransaction]):
    """The points ledger (append-only)."""

    _name = "point_transactions"
    _model = PointTransaction

    def record(self, data: Optional[Data] = None, /, **fields: Any) -> PointTransaction:
        """Records an earning or adjustment, updating the patient's totals in the same transaction."""
        return self._one("record", {"data": _data(data, fields)})

    def spend(self, patient_id: Id, amount: int, reason: str) -> PointTransaction:
        """Spends points; more than the available points is a `ValidationError` on `amount`."""
        return self._one("spend", {"patient_id": patient_id, "amount": amount, "reason": reason})

    def for_patient(
        self, patient_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[PointTransaction]:
        """The patient's ledger."""
        return self._page("for_patient", {"patient_id": patient_id}, limit, after)

    def ledger_balance(self, patient_id: Id) -> Dict[str, int]:
        """The ledger's sums: `{"total": earned, "spent": spent}` (available is their difference)."""
        result = self._call("ledger_balance", {"patient_id": patient_id})
        return {"total": int(result["total"]), "spent": int(result["spent"])}


class Authorizations(FullRepository[Authorization]):
    """Procedure authorizations and their review workflow."""

    _name = "authorizations"
    _model = Authorization

    def for_patient(
        self,
        patient_id: Id,
        status: Optional[AuthorizationStatus] = None,
        *,
        limit: Optional[int] = None,
        after: Optional[str] = None,
    ) -> Page[Authorization]:
        """The patient's authorizations, optionally in one status."""
        return self._page("for_patient", {"patient_id": patient_id, "status": status}, limit, after)

    def attach_document(self, authorization_id: Id, document_id: Id) -> None:
        """Attaches a document of the same patient."""
        self._call("attach_document", {"authorization_id": authorization_id, "document_id": document_id})

    def detach_document(self, authorization_id: Id, document_id: Id) -> None:
        """Detaches a document."""
        self._call("detach_document", {"authorization_id": authorization_id, "document_id": document_id})

    def attachments(self, authorization_id: Id) -> List[uuid.UUID]:
        """The ids of the attached documents."""
        return [w.to_uuid(v) for v in self._call("attachments", {"authorization_id": authorization_id})]

    def start_review(self, id: Id, reviewer_provider_id: Id) -> Authorization:
        """PENDING to UNDER_REVIEW."""
        return self._one("start_review", {"id": id, "reviewer_provider_id": reviewer_provider_id})

    def approve(
        self, id: Id, approver_provider_id: Id, valid_from: datetime.datetime, valid_until: datetime.datetime
    ) -> Authorization:
        """Approves for a validity window."""
        args = {
            "id": id,
            "approver_provider_id": approver_provider_id,
            "valid_from": valid_from,
            "valid_until": valid_until,
        }
        return self._one("approve", args)

    def deny(self, id: Id, reviewer_provider_id: Id, reason: str) -> Authorization:
        """Denies with a reason (stored encrypted)."""
        return self._one("deny", {"id": id, "reviewer_provider_id": reviewer_provider_id, "reason": reason})

    def cancel(self, id: Id, reason: str) -> Authorization:
        """Cancels with a reason."""
        return self._one("cancel", {"id": id, "reason": reason})

    def expire_due(self, now: Optional[datetime.datetime] = None) -> int:
        """Expires approved authorizations past their validity; returns how many."""
        return int(self._call("expire_due", {"now": now}))

    def history(self, authorization_id: Id) -> List[AuthorizationTransition]:
        """Every status transition, oldest first."""
        return w.records(AuthorizationTransition, self._call("history", {"authorization_id": authorization_id}))


class Documents(FullRepository[Document]):
    """Documents and their OCR results."""

    _name = "documents"
    _model = Document

    def register(self, data: Data, checksum: str) -> Document:
        """Registers an uploaded document with its SHA-256 checksum (hex)."""
        return self._one("register", {"data": dict(data), "checksum": checksum})

    def record_ocr(self, id: Id, ocr: Data) -> Document:
        """Stores an OCR result (text stored encrypted)."""
        return self._one("record_ocr", {"id": id, "ocr": dict(ocr)})

    def for_patient(
        self, patient_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[Document]:
        """The patient's documents."""
        return self._page("for_patient", {"patient_id": patient_id}, limit, after)


class TasyIntegrations(FullRepository[TasyIntegration]):
    """Tasy ERP integrations."""

    _name = "tasy_integrations"
    _model = TasyIntegration

    def list_active(self, *, limit: Optional[int] = None, after: Optional[str] = None) -> Page[TasyIntegration]:
        """Active integrations."""
        return self._page("list_active", {}, limit, after)

    def due_for_sync(
        self, now: Optional[datetime.datetime] = None, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[TasyIntegration]:
        """Integrations whose next run is due."""
        return self._page("due_for_sync", {"now": now}, limit, after)


class TasySyncLogs(Repository[TasySyncLog]):
    """Runs of the Tasy synchronization."""

    _name = "tasy_sync_logs"
    _model = TasySyncLog

    def start(self, integration_id: Id, sync: Data) -> TasySyncLog:
        """Starts a run (`{sync_type, direction, record_type}`)."""
        return self._one("start", {"integration_id": integration_id, "sync": dict(sync)})

    def finish(self, id: Id, outcome: Data) -> TasySyncLog:
        """Finishes a run with its outcome (counts, error)."""
        return self._one("finish", {"id": id, "outcome": dict(outcome)})

    def for_integration(
        self, integration_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[TasySyncLog]:
        """An integration's runs."""
        return self._page("for_integration", {"integration_id": integration_id}, limit, after)


class TasyOutbox:
    """The transactional outbox towards Tasy: claimed, completed or failed by the sync worker."""

    def __init__(self, scope: _native.Scope) -> None:
        self._scope = scope

    def _call(self, method: str, args: w.Args) -> Any:
        return w.call(self._scope, f"tasy_outbox.{method}", args)

    def claim(self, worker: str, limit: int, lease: float) -> List[OutboxItem]:
        """Claims up to `limit` due rows for `lease` seconds."""
        return w.records(OutboxItem, self._call("claim", {"worker": worker, "limit": limit, "lease_seconds": lease}))

    def complete(self, id: Id) -> OutboxItem:
        """Marks a claimed row delivered."""
        return OutboxItem._from_row(self._call("complete", {"id": id}))

    def fail(self, id: Id, error: str) -> OutboxItem:
        """Records a failed delivery (error code only); retried with backoff, dead after the limit."""
        return OutboxItem._from_row(self._call("fail", {"id": id, "error": error}))

    def list(self, status: OutboxStatus, limit: int) -> List[OutboxItem]:
        """Rows in one status, oldest first."""
        return w.records(OutboxItem, self._call("list", {"status": status, "limit": limit}))


class AuditLogs(Repository[AuditLog]):
    """The audit trail, read as rows."""

    _name = "audit_logs"
    _model = AuditLog

    def for_entity(
        self, entity_type: EntityType, entity_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[AuditLog]:
        """Events about one record (`entity_type` is an `EntityType`, e.g. ``EntityType.PATIENT``)."""
        return self._page("for_entity", {"entity_type": entity_type, "entity_id": entity_id}, limit, after)

    def for_patient(
        self, patient_id: Id, *, limit: Optional[int] = None, after: Optional[str] = None
    ) -> Page[AuditLog]:
        """Events that touched one patient's data."""
        return self._page("for_patient", {"patient_id": patient_id}, limit, after)


__all__ = [
    "Repository",
    "CreateRepository",
    "ChangeRepository",
    "FullRepository",
    "Batch",
    "Patients",
    "Providers",
    "Conversations",
    "Messages",
    "HealthDataRepository",
    "Missions",
    "OnboardingProgressRepository",
    "HealthPointsRepository",
    "PointTransactions",
    "Authorizations",
    "Documents",
    "TasyIntegrations",
    "TasySyncLogs",
    "TasyOutbox",
    "AuditLogs",
]
