"""Every exposed call, on SQLite and PostgreSQL: typed results, workflows, audit and keys."""

from __future__ import annotations

import base64
import datetime
import json
import os
import uuid
from pathlib import Path

import pytest

import austa
from conftest import MASTER_KEY, new_org, patient_row, phone

UTC = datetime.timezone.utc
NUMBER = "PNID-PY-1"


def test_database_lifecycle(db: austa.Database, tmp_path: Path) -> None:
    assert db.backend in ("sqlite", "postgres")
    if db.backend == "sqlite":
        db.migrate()  # idempotent
    else:
        # The tests run as the runtime role, which has no DDL rights: migrations are the owner's job.
        with pytest.raises(austa.MigrationError):
            db.migrate()
    report = db.seed()
    again = db.seed()
    assert report.hospital_id == again.hospital_id
    assert all(inserted == 0 for _, inserted, _ in again.entities), again.entities
    db.flush_audit()
    db.clear_key_cache()
    assert "open" in repr(db) and MASTER_KEY not in repr(db)
    other = austa.Database(f"sqlite://{tmp_path / 'x.db'}", master_key=MASTER_KEY)
    with other:
        other.migrate()
    with pytest.raises(austa.ValidationError):
        other.migrate()


def test_open_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(austa.ConfigError) as error:
        austa.Database(f"sqlite://{tmp_path / 'y.db'}", master_key="not base64!")
    assert error.value.code == "config"
    assert "not base64" not in str(error.value)
    # Plaintext to a host off this machine is refused before any connection, the password unquoted.
    with pytest.raises(austa.TransportError) as refused:
        austa.Database("postgres://app:s3cret@db.hospital.example/austa?sslmode=disable", master_key=MASTER_KEY)
    assert refused.value.code == "transport" and "sslmode=disable" in str(refused.value)
    assert "s3cret" not in str(refused.value)
    key_file = tmp_path / "k.key"
    with austa.Database(f"sqlite://{tmp_path / 'z.db'}", key_file=key_file, create_key_file=True) as db:
        db.migrate()
    assert key_file.exists()


def test_read_audit_modes(db: austa.Database, tmp_path: Path) -> None:
    # Both modes record every read; a bad mode is a configuration error naming the setting.
    org = new_org(db, "Clínica Durabilidade")
    scope = db.scope(org.id, austa.Actor.platform())
    ana = scope.patients.create(patient_row(first_name="Ana"))
    for mode in ("strict", "relaxed"):
        with austa.Database(_url_of(db, tmp_path), master_key=MASTER_KEY, read_audit=mode) as other:
            reader = other.scope(org.id, austa.Actor.platform())
            before = len(scope.audit_logs.for_entity(austa.EntityType.PATIENT, ana.id).items)
            assert reader.patients.get(ana.id).id == ana.id
            after = len(scope.audit_logs.for_entity(austa.EntityType.PATIENT, ana.id).items)
            assert after == before + 1, mode
    with pytest.raises(austa.ConfigError) as error:
        austa.Database(_url_of(db, tmp_path), master_key=MASTER_KEY, read_audit="eventually")  # type: ignore[arg-type]
    assert "AUSTA_READ_AUDIT" in str(error.value)


def test_organizations(db: austa.Database) -> None:
    org = db.organizations.create(
        {"name": "Hospital Py", "organization_type": "HOSPITAL"}, tax_id="11.222.333/0001-81"
    )
    assert isinstance(org.id, uuid.UUID)
    assert org.organization_type is austa.OrganizationType.HOSPITAL
    assert org.created_at.tzinfo is not None
    assert db.organizations.get(org.id) == org
    found = db.organizations.find_by_tax_id("11222333000181")
    assert found is not None and found.id == org.id
    assert db.organizations.update(org.id, name="Hospital Py 2").name == "Hospital Py 2"
    ids = {o.id for o in db.organizations.stream(page_size=1)}
    assert org.id in ids
    assert db.organizations.list(limit=1).next is not None or len(ids) == 1
    db.organizations.delete(org.id)
    with pytest.raises(austa.NotFound) as error:
        db.organizations.get(org.id)
    assert error.value.code == "not_found"


def test_patients(scope: austa.Scope) -> None:
    p = scope.patients.create(patient_row(cpf="529.982.247-25", email="ana@example.com"), first_name="Ana")
    assert p.first_name == "Ana" and isinstance(p.id, uuid.UUID)
    assert p.created_at.tzinfo is not None
    d = p.to_dict()
    assert d["first_name"] == "Ana" and d["id"] == p.id
    assert scope.patients.get(p.id) == p
    assert scope.patients.find_by_phone(p.phone or "") == p
    assert scope.patients.find_by_cpf("52998224725") == p
    assert scope.patients.find_by_email("ana@example.com") == p
    assert scope.patients.find_by_whatsapp_id("5511000000000") is None
    updated = scope.patients.update(p.id, {"last_name": "Souza"})
    assert updated.last_name == "Souza"
    page = scope.patients.list(limit=10)
    assert [x.id for x in page] == [p.id] and page.next is None and len(page) == 1
    scope.patients.delete(p.id)
    with pytest.raises(austa.NotFound):
        scope.patients.get(p.id)
    scope.patients.restore(p.id)
    assert scope.patients.get(p.id).last_name == "Souza"

    with pytest.raises(austa.Conflict) as conflict:
        scope.patients.create(patient_row(phone=p.phone))
    assert conflict.value.field == "phone"
    with pytest.raises(austa.ValidationError) as invalid:
        scope.patients.create(patient_row(cpf="111.222.333-44"))
    assert invalid.value.field == "cpf" and "111.222.333-44" not in str(invalid.value)
    with pytest.raises(austa.ValidationError) as unknown:
        scope.patients.create(patient_row(shoe_size=42))
    assert unknown.value.field == "shoe_size"
    with pytest.raises(austa.ValidationError) as naive:
        scope.patients.update(p.id, date_of_birth=datetime.datetime(1990, 1, 1))
    assert "naive" in str(naive.value)


def _provider(scope: austa.Scope) -> austa.Provider:
    return scope.providers.create(
        first_name="Carla",
        last_name="Médica",
        email=f"carla{uuid.uuid4().hex[:8]}@example.com",
        specialty=["cardiologia"],
        role=austa.ProviderRole.DOCTOR,
        license=f"CRM-SP-{uuid.uuid4().int % 1_000_000}",
    )


def test_providers(scope: austa.Scope) -> None:
    doc = _provider(scope)
    assert scope.providers.find_by_email(doc.email or "") == doc
    assert scope.providers.find_by_license(doc.license or "") == doc
    assert doc.id in [p.id for p in scope.providers.list_active()]
    assert scope.providers.update(doc.id, specialty=["clínica geral"]).specialty == ["clínica geral"]


def test_authorization_workflow(scope: austa.Scope) -> None:
    doc = _provider(scope)
    ana = scope.patients.create(patient_row())
    auth = scope.authorizations.create(
        authorization_type=austa.AuthorizationType.PROCEDURE,
        procedure_name="Ressonância magnética",
        patient_id=ana.id,
        requested_by_provider_id=doc.id,
    )
    assert auth.status is austa.AuthorizationStatus.PENDING
    document = scope.documents.register(
        {
            "patient_id": ana.id,
            "filename": "pedido.pdf",
            "original_name": "pedido.pdf",
            "mime_type": "application/pdf",
            "size_bytes": 1024,
            "storage_path": "s3://bucket/pedido.pdf",
            "document_type": "MEDICAL_RECORD",
            "category": "MEDICAL",
        },
        "ab" * 32,
    )
    scope.authorizations.attach_document(auth.id, document.id)
    assert scope.authorizations.attachments(auth.id) == [document.id]
    scope.authorizations.detach_document(auth.id, document.id)
    assert scope.authorizations.attachments(auth.id) == []
    review = scope.authorizations.start_review(auth.id, doc.id)
    assert review.status is austa.AuthorizationStatus.UNDER_REVIEW
    now = datetime.datetime.now(UTC)
    approved = scope.authorizations.approve(auth.id, doc.id, now - datetime.timedelta(days=2), now - datetime.timedelta(seconds=1))
    assert approved.status is austa.AuthorizationStatus.APPROVED
    assert scope.authorizations.expire_due() == 1
    history = scope.authorizations.history(auth.id)
    assert [t.to_status for t in history][-1] is austa.AuthorizationStatus.EXPIRED
    assert [a.id for a in scope.authorizations.for_patient(ana.id, austa.AuthorizationStatus.EXPIRED)] == [auth.id]
    with pytest.raises(austa.Conflict):
        scope.authorizations.cancel(auth.id, "paciente desistiu")

    other = scope.authorizations.create(
        authorization_type="DIAGNOSTIC", procedure_name="Hemograma", patient_id=ana.id, requested_by_provider_id=doc.id
    )
    scope.authorizations.start_review(other.id, doc.id)
    denied = scope.authorizations.deny(other.id, doc.id, "sem indicação")
    assert denied.status is austa.AuthorizationStatus.DENIED
    third = scope.authorizations.create(
        authorization_type="DIAGNOSTIC", procedure_name="Glicemia", patient_id=ana.id, requested_by_provider_id=doc.id
    )
    assert scope.authorizations.cancel(third.id, "duplicado").status is austa.AuthorizationStatus.CANCELLED


def test_documents(scope: austa.Scope) -> None:
    ana = scope.patients.create(patient_row())
    doc = scope.documents.register(
        {
            "patient_id": ana.id,
            "filename": "exame.png",
            "original_name": "exame.png",
            "mime_type": "image/png",
            "size_bytes": 2048,
            "storage_path": "s3://bucket/exame.png",
            "document_type": "LAB_RESULT",
            "category": "LABORATORY",
        },
        "cd" * 32,
    )
    ocr = scope.documents.record_ocr(doc.id, {"text": "Glicose 99 mg/dL", "confidence": 0.97})
    assert ocr.ocr_text == "Glicose 99 mg/dL" and "Glicose" not in repr(ocr)
    assert [d.id for d in scope.documents.for_patient(ana.id)] == [doc.id]


def _webhook(wa_id: str, wamid: str, text: str) -> str:
    ts = int(datetime.datetime.now(UTC).timestamp())
    message = {"from": wa_id, "id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": text}}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551130000000", "phone_number_id": NUMBER},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
        "messages": [message],
    }
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": value}]}]})


def test_whatsapp_conversations_and_messages(org_scope: tuple) -> None:
    db, scope = org_scope
    scope.register_whatsapp_number(NUMBER)
    assert db.organization_for_whatsapp(NUMBER) == scope.organization_id
    number = phone()
    ana = scope.patients.create(patient_row(phone=number, whatsapp_id=number.lstrip("+")))
    report = db.ingest_whatsapp(_webhook(number.lstrip("+"), "wamid.PY1", "Estou com dor de cabeça").encode())
    assert report.messages_stored == 1 and report.organization_id == scope.organization_id
    assert db.ingest_whatsapp(_webhook(number.lstrip("+"), "wamid.PY1", "Estou com dor de cabeça")).duplicates_skipped == 1

    conversation = scope.conversations.active_for_patient(ana.id).items[0]
    assert scope.conversations.list_for_patient(ana.id).items == [conversation]
    assert scope.conversations.open_for_chat(conversation.whatsapp_chat_id or "") == conversation
    message = scope.messages.find_by_whatsapp_message_id("wamid.PY1")
    assert message is not None and message.content == "Estou com dor de cabeça"
    assert "dor de cabeça" not in repr(message)
    assert [m.id for m in scope.messages.pending_for_ai(10)] == [message.id]
    claimed = scope.messages.claim_for_ai("worker-1", 10, 30.0)
    assert [m.id for m in claimed] == [message.id]
    analysed = scope.messages.record_ai_result(message.id, {"intent": "sintoma", "urgency": "MEDIUM", "confidence": 0.8})
    assert analysed.ai_intent == "sintoma" and analysed.ai_processed
    updated = scope.conversations.record_ai_result(conversation.id, {"summary": "Cefaleia relatada", "symptoms_reported": ["cefaleia"]})
    assert updated.summary == "Cefaleia relatada"
    reply = scope.messages.record_outbound(conversation_id=conversation.id, sender="BOT", message_type="TEXT", content="Vamos ajudar")
    assert reply.direction is austa.MessageDirection.OUTBOUND
    appended = scope.messages.append(
        conversation_id=conversation.id,
        direction="INBOUND",
        message_type="TEXT",
        sender_kind="PATIENT",
        content="Obrigada",
    )
    history = scope.messages.history(conversation.id, limit=2)
    assert [m.id for m in history] == [appended.id, reply.id] and history.next is not None
    assert scope.messages.get(appended.id) == appended
    assert scope.messages.update(appended.id, status="READ").status is austa.MessageStatus.READ
    scope.messages.delete(appended.id)
    scope.messages.restore(appended.id)
    assert len(list(scope.messages.stream(page_size=1))) == 3
    scope.unregister_whatsapp_number(NUMBER)
    assert db.organization_for_whatsapp(NUMBER) is None


def test_conversations_repository(scope: austa.Scope) -> None:
    ana = scope.patients.create(patient_row())
    c = scope.conversations.create(patient_id=ana.id, whatsapp_chat_id="chat-py-1", conversation_type="SUPPORT")
    assert scope.conversations.update(c.id, tags=["triagem"]).tags == ["triagem"]
    scope.conversations.delete(c.id)
    scope.conversations.restore(c.id)
    assert scope.conversations.get(c.id).id == c.id


def test_health_data(scope: austa.Scope) -> None:
    doc = _provider(scope)
    ana = scope.patients.create(patient_row())
    row = scope.health_data.create(
        patient_id=ana.id,
        data_type=austa.HealthDataType.LAB_RESULT,
        category=austa.HealthCategory.DIABETES,
        lab_results={"glucose": {"value": 99, "unit": "mg/dL"}},
        recorded_at=datetime.datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
    )
    assert row.lab_results == {"glucose": {"value": 99, "unit": "mg/dL"}}
    assert row.recorded_at == datetime.datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    assert scope.health_data.verify(row.id, doc.id).is_verified
    assert [h.id for h in scope.health_data.for_patient(ana.id, austa.HealthDataType.LAB_RESULT)] == [row.id]
    assert list(scope.health_data.stream_for_patient(ana.id)) == [scope.health_data.get(row.id)]
    assert scope.health_data.for_patient(ana.id, austa.HealthDataType.VITAL_SIGN).items == []


def test_missions_points_and_progress(scope: austa.Scope) -> None:
    ana = scope.patients.create(patient_row())
    first = scope.missions.create(
        title="Beber água",
        description="8 copos por dia",
        category="HEALTH_EDUCATION",
        points_reward=50,
        required_actions={"steps": [{"id": "manha"}, {"id": "tarde"}]},
    )
    second = scope.missions.create_with_prerequisites(
        title="Caminhar", description="30 minutos", category="LIFESTYLE",
        points_reward=30,
        prerequisites=[first.id],
        required_actions={},
    )
    assert scope.missions.prerequisites(second.id) == [first.id]
    third = scope.missions.create(title="Dormir", description="8 horas", category="ENGAGEMENT", points_reward=10, required_actions={})
    assert scope.missions.add_prerequisite(third.id, first.id) is True
    assert scope.missions.remove_prerequisite(third.id, first.id) is True
    assert first.id in [m.id for m in scope.missions.active()]

    account = scope.health_points.create(patient_id=ana.id)
    assert account.total_points == 0
    assert scope.health_points.update(account.id, badges=["boas-vindas"]).badges == ["boas-vindas"]
    started = scope.onboarding_progress.start(ana.id, first.id)
    assert started.status is austa.ProgressStatus.IN_PROGRESS
    assert scope.onboarding_progress.advance(ana.id, first.id, 1).current_step == 1
    with pytest.raises(austa.Conflict):
        scope.onboarding_progress.complete(ana.id, first.id)  # a step is left
    assert scope.onboarding_progress.advance(ana.id, first.id, 1).progress == 100.0
    found = scope.onboarding_progress.find(ana.id, first.id)
    assert found is not None and found.id == started.id
    completion = scope.onboarding_progress.complete(ana.id, first.id)
    assert completion.awarded and completion.transaction is not None
    assert completion.transaction.amount == 50
    assert [p.id for p in scope.onboarding_progress.for_patient(ana.id)] == [started.id]

    points = scope.health_points.for_patient(ana.id)
    assert points is not None and points.total_points == 50
    assert scope.health_points.record_activity(ana.id).daily_streak >= 1
    earned = scope.point_transactions.record(
        patient_id=ana.id, transaction_type="EARNED", amount=20, reason="bônus", source_type="BONUS"
    )
    assert earned.amount == 20
    spent = scope.point_transactions.spend(ana.id, 30, "desconto")
    assert spent.transaction_type is austa.TransactionType.SPENT
    balance = scope.point_transactions.ledger_balance(ana.id)
    assert (balance.total, balance.spent) == (70, 30)
    assert len(scope.point_transactions.for_patient(ana.id).items) == 3
    with pytest.raises(austa.ValidationError) as too_much:
        scope.point_transactions.spend(ana.id, 1000, "demais")
    assert too_much.value.field == "amount"


def test_tasy(scope: austa.Scope) -> None:
    integration = scope.tasy_integrations.create(
        tasy_instance_url="https://tasy.hospital.example", api_key="tasy-api-key-1234", field_mapping={"patient": "PF"}
    )
    assert "tasy-api-key-1234" not in repr(integration)
    assert [i.id for i in scope.tasy_integrations.list_active()] == [integration.id]
    assert [i.id for i in scope.tasy_integrations.due_for_sync()] == [integration.id]
    run = scope.tasy_sync_logs.start(integration.id, {"sync_type": "INCREMENTAL", "direction": "EXPORT", "record_type": "health_data"})
    done = scope.tasy_sync_logs.finish(
        run.id,
        {"records_attempted": 1, "records_succeeded": 1, "records_failed": 0, "records_skipped": 0, "status": "COMPLETED"},
    )
    assert done.status is austa.SyncStatus.COMPLETED
    assert [r.id for r in scope.tasy_sync_logs.for_integration(integration.id)] == [run.id]

    ana = scope.patients.create(patient_row())
    scope.health_data.create(patient_id=ana.id, data_type="VITAL_SIGN", category="CARDIOLOGY", vital_signs={"hr": 70})
    scope.health_data.create(patient_id=ana.id, data_type="VITAL_SIGN", category="CARDIOLOGY", vital_signs={"hr": 72})
    items = scope.tasy_outbox.claim("tasy-worker", 10, 60)
    assert len(items) == 2 and items[0].entity_type is austa.EntityType.HEALTH_DATA
    assert scope.tasy_outbox.complete(items[0].id).status is austa.OutboxStatus.DONE
    assert scope.tasy_outbox.fail(items[1].id, "http_503").status is austa.OutboxStatus.PENDING
    assert [i.id for i in scope.tasy_outbox.list(austa.OutboxStatus.DONE, 10)] == [items[0].id]


def test_audit(scope: austa.Scope, tmp_path: Path) -> None:
    start = datetime.datetime.now(UTC) - datetime.timedelta(minutes=1)
    ana = scope.patients.create(patient_row())
    scope.patients.get(ana.id)
    event = scope.audit.record("EXPORT", entity_type="PATIENT", patient_id=ana.id)
    assert isinstance(event, uuid.UUID)
    scope.audit.record("LOGIN")
    report = scope.audit.verify()
    assert report.broken is None and report.verified >= 3
    assert scope.audit.verify_range(1, 2).verified == 2
    end = datetime.datetime.now(UTC) + datetime.timedelta(minutes=1)
    accesses = scope.audit.access_report(ana.id, start, end)
    assert {e.action for e in accesses} >= {austa.AuditAction.CREATE, austa.AuditAction.READ}
    path = tmp_path / "audit.ndjson"
    assert scope.audit.export_fhir(path, start, end) >= 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(line["resourceType"] == "AuditEvent" for line in lines)
    assert ana.id in [e.record_ids[0] for e in scope.audit_logs.for_entity(austa.EntityType.PATIENT, ana.id)]
    assert len(scope.audit_logs.for_patient(ana.id).items) >= 2
    assert len(list(scope.audit_logs.stream(page_size=2))) >= 4


def test_audit_checkpoints_and_proofs(scope: austa.Scope, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUSTA_AUDIT_SIGNING_KEY", base64.b64encode(os.urandom(32)).decode())
    scope.audit.record("LOGIN")
    note = scope.audit.checkpoint()
    lines = note.splitlines()
    size = int(lines[1])
    assert lines[0] == f"austa-audit/{scope.organization_id}" and size >= 1
    assert scope.audit.verify_against(note).broken is None
    event = scope.audit.record("LOGOUT")
    proof = scope.audit.consistency_proof(size)
    assert (proof.old_size, proof.old_root) == (size, lines[2]) and proof.new_size > size
    inclusion = scope.audit.inclusion_proof(event)
    assert inclusion.event_id == event and inclusion.tree_size == proof.new_size
    with pytest.raises(austa.ValidationError):
        scope.audit.verify_against(note.replace(f"\n{size}\n", f"\n{size + 1}\n"))


def test_access_control_and_emergency(db: austa.Database) -> None:
    org = new_org(db)
    platform = db.scope(org.id, austa.Actor.platform())
    ana = platform.patients.create(patient_row())
    bia = platform.patients.create(patient_row())
    doc = _provider(platform)
    as_ana = db.scope(org.id, austa.Actor.patient(ana.id), purpose="app", request_id="r-1")
    assert as_ana.patients.get(ana.id).id == ana.id
    with pytest.raises((austa.PermissionDenied, austa.NotFound)) as refused:
        as_ana.patients.get(bia.id)
    assert refused.value.code in ("permission_denied", "not_found")
    as_doc = db.scope(org.id, austa.Actor.provider(doc.id))
    emergency = as_doc.emergency_access(bia.id, "paciente inconsciente no PS", datetime.timedelta(minutes=30))
    assert emergency.patients.get(bia.id).id == bia.id
    with pytest.raises(austa.ValidationError):
        db.scope(org.id, austa.Actor(austa.Role.PATIENT))
    admin = db.scope(org.id, austa.Actor.admin())
    assert admin.organization().id == org.id
    assert admin.update_organization(phone="+551130000000").phone == "+551130000000"


def test_keys(db: austa.Database, tmp_path: Path) -> None:
    scope = db.scope(new_org(db).id, austa.Actor.platform())
    ana = scope.patients.create(patient_row(cpf="529.982.247-25"))
    status = scope.keys.start_rotation()
    finished = scope.keys.run_rotation(status.id, batch_size=10)
    assert finished.completed and finished.completed_at is not None
    assert scope.keys.rotation_status(status.id).id == status.id
    assert scope.patients.get(ana.id).cpf == "52998224725"
    patient_rotation = scope.keys.start_rotation(ana.id)
    scope.keys.run_rotation(patient_rotation.id)
    receipt = scope.keys.shred_patient(ana.id, "pedido de eliminação LGPD")
    assert receipt.patient_id == ana.id
    erased = scope.patients.get(ana.id)
    assert erased.first_name is None and erased.cpf is None
    new_key = base64.b64encode(os.urandom(32)).decode()
    rotation = db.rotate_master_key(master_key=new_key)
    # This handle recorded the rotation in every organization's chain and now holds the new key: link
    # those events before the key is put back below, or its closing flush would find them unreadable.
    db.flush_audit()
    try:
        assert rotation.organization_keys >= 1
        db.clear_key_cache()
        with austa.Database(_url_of(db, tmp_path), master_key=new_key) as reopened:
            reopened.scope(scope.organization_id, austa.Actor.platform()).patients.list()
    finally:
        # Put the master key back for the other tests on the shared PostgreSQL database.
        with austa.Database(_url_of(db, tmp_path), master_key=new_key) as reopened:
            reopened.rotate_master_key(master_key=MASTER_KEY)


def _url_of(db: austa.Database, tmp_path: Path) -> str:
    # The fixture opened SQLite at tmp_path/test.db; PostgreSQL at the session URL.
    if db.backend == "sqlite":
        return f"sqlite://{tmp_path / 'test.db'}"
    return os.environ["AUSTA_PY_TEST_URL"]
