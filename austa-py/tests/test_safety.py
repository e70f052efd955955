"""Sensitive values never appear in repr() or in error messages; errors are typed."""

from __future__ import annotations

import datetime
import pytest

import austa
from austa import errors
from conftest import MASTER_KEY, patient_row

SECRETS = ["Ana Secreta", "Souza Sigilo", "529.982.247-25", "52998224725", "ana.secreta@example.com", "Mãe Sigilosa"]


def test_records_redact_sensitive_fields(scope: austa.Scope) -> None:
    p = scope.patients.create(
        patient_row(
            first_name="Ana Secreta",
            last_name="Souza Sigilo",
            cpf="529.982.247-25",
            email="ana.secreta@example.com",
            emergency_contact={"name": "Mãe Sigilosa", "phone": "+5511912345678", "relationship": "mãe"},
        )
    )
    for text in (repr(p), str(p), repr([p]), repr(scope.patients.list())):
        for secret in SECRETS + [p.phone or ""]:
            assert secret not in text, secret
        assert "<redacted>" in text
    assert p.first_name == "Ana Secreta"  # the attribute itself is the decrypted value
    assert p.to_dict()["cpf"] == "52998224725"
    assert MASTER_KEY not in repr(scope) and "Ana" not in repr(scope)


def test_every_code_has_its_exception() -> None:
    codes = {
        "not_found": austa.NotFound,
        "validation": austa.ValidationError,
        "conflict": austa.Conflict,
        "permission_denied": austa.PermissionDenied,
        "crypto": austa.CryptoError,
        "erased": austa.Erased,
        "config": austa.ConfigError,
        "transport": austa.TransportError,
        "refused": austa.Refused,
        "migration": austa.MigrationError,
        "database": austa.DatabaseError,
        "corrupt_data": austa.CorruptData,
        "io": austa.IoError,
        "internal": austa.InternalError,
    }
    for code, cls in codes.items():
        error = errors._from_native(f'{{"code": "{code}", "message": "m", "field": "f", "rows": []}}')
        assert type(error) is cls and error.code == code and issubclass(cls, austa.AustaError)
        assert error.field == "f" and str(error) == "m"
    batch = errors._from_native(
        '{"code": "invalid_batch", "message": "m", "field": null, "rows": '
        '[{"row": 2, "code": "validation", "field": "cpf", "message": "invalid cpf"}]}',
        row_offset=10,
    )
    assert isinstance(batch, austa.BatchError)
    assert batch.errors == [austa.RowError(row=12, code="validation", field="cpf", message="invalid cpf")]
    assert isinstance(errors._from_native("not json"), austa.InternalError)


def test_errors_name_the_field_not_the_value(scope: austa.Scope) -> None:
    with pytest.raises(austa.ValidationError) as bad_email:
        scope.patients.create(patient_row(email="ana.secreta@@example"))
    assert bad_email.value.field == "email" and "ana.secreta" not in str(bad_email.value)
    with pytest.raises(austa.ValidationError) as wrong_type:
        scope.patients.create(patient_row(date_of_birth="Ana Secreta"))
    assert wrong_type.value.field == "date_of_birth" and "Ana Secreta" not in str(wrong_type.value)
    with pytest.raises(austa.ValidationError) as nested:
        scope.patients.create(patient_row(emergency_contact={"name": "Mãe Sigilosa", "phone": 1, "relationship": "mãe"}))
    assert nested.value.field == "emergency_contact.phone" and "Sigilosa" not in str(nested.value)
    with pytest.raises(austa.ValidationError) as unencodable:
        scope.patients.create(patient_row(first_name=object()))
    assert "object" in str(unencodable.value)
    with pytest.raises(austa.ValidationError):
        scope.patients.create(patient_row(first_name=float("nan")))
    with pytest.raises(austa.ValidationError) as unknown_op:
        austa._wire.call(scope._native, "patients.drop_table", {})
    assert unknown_op.value.field == "operation"


def test_a_closed_database_refuses_calls(tmp_path) -> None:
    db = austa.Database(f"sqlite://{tmp_path / 'c.db'}", master_key=MASTER_KEY)
    db.migrate()
    db.close()
    db.close()  # idempotent
    assert "closed" in repr(db)
    with pytest.raises(austa.ValidationError):
        db.seed()


def test_timestamps_are_aware_and_round_trip(scope: austa.Scope) -> None:
    brt = datetime.timezone(datetime.timedelta(hours=-3))
    ana = scope.patients.create(patient_row())
    at = datetime.datetime(2026, 11, 25, 9, 0, tzinfo=brt)
    row = scope.health_data.create(patient_id=ana.id, data_type="SYMPTOM", category="GENERAL", recorded_at=at, symptoms={"dor": "leve"})
    assert row.recorded_at == at and row.recorded_at.tzinfo == datetime.timezone.utc


def test_errors_pickle_with_their_fields() -> None:
    import pickle

    error = austa.ValidationError("invalid cpf: invalid check digits", field="cpf")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is austa.ValidationError and back.field == "cpf" and str(back) == str(error)
    batch = austa.BatchError("1 row(s) failed", errors=[austa.RowError(3, "validation", "cpf", "bad")], written=5)
    back_batch = pickle.loads(pickle.dumps(batch))
    assert back_batch.errors == batch.errors and back_batch.written == 5


def test_webhook_bytes_reach_the_core_undecoded(db: austa.Database) -> None:
    # Bytes that are not UTF-8, a str with a lone surrogate and a body of the wrong type are all
    # validation errors of the body, never UnicodeDecodeError or UnicodeEncodeError.
    for body in (b'{"object":"\xff"}', bytearray(b'{"object":"\xfe\xff"}'), '{"object":"\udcff"}'):
        with pytest.raises(austa.ValidationError) as bad:
            db.ingest_whatsapp(body)
        assert bad.value.field == "body" and "UTF-8" in str(bad.value)
    with pytest.raises(austa.ValidationError) as wrong_type:
        db.ingest_whatsapp(42)  # type: ignore[arg-type]
    assert wrong_type.value.field == "body"


def test_json_failures_say_what_is_wrong(scope: austa.Scope) -> None:
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    with pytest.raises(austa.ValidationError) as too_deep:
        scope.patients.create(patient_row(emergency_contact=deep))
    assert too_deep.value.field == "arguments" and "nested more than 128 levels" in str(too_deep.value)


def test_application_events_refuse_unknown_fields_for_every_action(scope: austa.Scope) -> None:
    for action, fields in [
        ("LOGIN", {}),
        ("LOGOUT", {}),
        ("EXPORT", {"entity_type": "PATIENT"}),
        ("PERMISSION_CHANGE", {}),
    ]:
        assert scope.audit.record(action, **fields)
        with pytest.raises(austa.ValidationError) as unknown:
            scope.audit.record(action, **fields, user="ana")
        assert unknown.value.field is not None and unknown.value.field.endswith("user"), (action, unknown.value.field)


def test_settings_the_library_reads_are_checked_when_written(scope: austa.Scope) -> None:
    for bad, field in [({"LAB_RESULT": "x"}, "settings.retention.LAB_RESULT"), ({"EXAME": 5}, "settings.retention.EXAME")]:
        with pytest.raises(austa.ValidationError) as refused:
            scope.update_organization(settings={"retention": bad})
        assert refused.value.field == field
    assert scope.organization().settings is None, "nothing written"
    scope.update_organization(settings={"retention": {"LAB_RESULT": 5}})
