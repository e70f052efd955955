"""Bulk paths: batches, per-row errors with nothing written, streams and exports."""

from __future__ import annotations

import datetime
import tracemalloc
from typing import Any, Dict, Iterator

import pytest

import austa
from conftest import patient_row

UTC = datetime.timezone.utc


def lab_rows(patient_ids: list, n: int) -> Iterator[Dict[str, Any]]:
    for i in range(n):
        yield {
            "patient_id": patient_ids[i % len(patient_ids)],
            "data_type": "LAB_RESULT",
            "category": "DIABETES",
            "lab_results": {"glucose": {"value": 80 + i % 60, "unit": "mg/dL"}},
            "recorded_at": datetime.datetime(2026, 1, 1, tzinfo=UTC) + datetime.timedelta(minutes=i),
        }


def count(scope: austa.Scope, repository: Any) -> int:
    return sum(1 for _ in repository.stream(page_size=500))


def test_create_many_in_batches(scope: austa.Scope) -> None:
    patients = scope.patients.create_many((patient_row(first_name=f"P{i}") for i in range(30)), batch_size=7)
    assert [p.first_name for p in patients] == [f"P{i}" for i in range(30)]
    ids = [p.id for p in patients]
    assert scope.health_data.import_rows(lab_rows(ids, 1200), batch_size=500) == 1200
    assert count(scope, scope.health_data) == 1200
    # One audit event per batch: 5 patient batches + 3 health data batches, plus the organization's.
    creates = [e for e in scope.audit_logs.stream() if e.action is austa.AuditAction.CREATE]
    assert sorted(e.record_count for e in creates if e.entity_type is austa.EntityType.HEALTH_DATA) == [200, 500, 500]
    assert scope.audit.verify().broken is None


def test_bad_rows_are_reported_and_their_batch_is_not_written(scope: austa.Scope) -> None:
    good = patient_row()
    rows = [
        patient_row(),
        patient_row(cpf="123.456.789-00"),  # bad check digits
        patient_row(),
        {"first_name": "Sem telefone", "last_name": "X", "phone": "abc"},
        patient_row(favourite_colour="azul"),  # unknown field
        good,
    ]
    with pytest.raises(austa.BatchError) as error:
        scope.patients.create_many(rows)
    failed = [(e.row, e.field, e.code) for e in error.value.errors]
    assert failed == [(1, "cpf", "validation"), (3, "phone", "validation"), (4, "favourite_colour", "validation")]
    assert error.value.written == 0 and error.value.code == "invalid_batch"
    assert "123.456.789-00" not in str(error.value)
    assert scope.patients.list().items == []
    assert scope.patients.find_by_phone(good["phone"]) is None


def test_a_failing_later_batch_keeps_earlier_batches_and_counts_rows_globally(scope: austa.Scope) -> None:
    rows = [patient_row() for _ in range(10)]
    rows[7]["phone"] = rows[2]["phone"]  # duplicate of a row of the first batch
    with pytest.raises(austa.BatchError) as error:
        scope.patients.import_rows(rows, batch_size=5)
    assert [(e.row, e.field, e.code) for e in error.value.errors] == [(7, "phone", "conflict")]
    assert error.value.written == 5
    assert count(scope, scope.patients) == 5


def test_batch_context_manager(scope: austa.Scope) -> None:
    with scope.patients.batch() as batch:
        batch.add(patient_row())
        batch.add(patient_row(first_name="Bia"))
        assert len(batch) == 2
    assert [p.first_name for p in batch.created] == ["Paciente", "Bia"]
    with pytest.raises(RuntimeError):
        with scope.patients.batch() as failing:
            failing.add(patient_row(first_name="Nunca"))
            raise RuntimeError("the pipeline failed midway")
    assert "Nunca" not in [p.first_name for p in scope.patients.stream()]


def test_stream_keeps_memory_flat(scope: austa.Scope) -> None:
    ana = scope.patients.create(patient_row())
    scope.health_data.import_rows(lab_rows([ana.id], 3000), batch_size=1000)
    tracemalloc.start()
    try:
        seen = 0
        for row in scope.health_data.stream(page_size=100):
            seen += 1
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        everything = list(scope.health_data.stream(page_size=100))
        _, listed_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == len(everything) == 3000
    # A stream holds one page; the list holds all thirty.
    assert streamed_peak * 5 < listed_peak, (streamed_peak, listed_peak)


def test_export_to_pandas_and_arrow(scope: austa.Scope) -> None:
    pandas = pytest.importorskip("pandas")
    pyarrow = pytest.importorskip("pyarrow")
    ana = scope.patients.create(patient_row())
    scope.health_data.import_rows(lab_rows([ana.id], 25))
    frame = austa.export.to_pandas(scope.health_data.stream(), columns=["id", "patient_id", "recorded_at", "lab_results"])
    assert list(frame.columns) == ["id", "patient_id", "recorded_at", "lab_results"]
    assert len(frame) == 25
    assert str(frame["recorded_at"].dt.tz) == "UTC"
    assert frame["lab_results"][0]["glucose"]["unit"] == "mg/dL"
    assert isinstance(frame, pandas.DataFrame)
    table = austa.export.to_arrow(scope.health_data.stream())
    assert table.num_rows == 25
    assert pyarrow.types.is_timestamp(table.schema.field("recorded_at").type)
    assert table.column("data_type")[0].as_py() == "LAB_RESULT"
    empty = austa.export.to_pandas(scope.providers.stream(), columns=["id"])
    assert list(empty.columns) == ["id"] and len(empty) == 0


def test_rows_from_a_dataframe(scope: austa.Scope) -> None:
    pandas = pytest.importorskip("pandas")
    ana = scope.patients.create(patient_row())
    frame = pandas.DataFrame({"patient_id": [str(ana.id)] * 3, "data_type": "VITAL_SIGN", "category": "CARDIOLOGY"})
    numpy = pytest.importorskip("numpy")
    frame["vital_signs"] = [{"heart_rate": numpy.int64(v), "spo2": numpy.float64(0.97)} for v in (61, 72, 83)]
    frame["is_verified"] = numpy.array([False, False, False])  # numpy.bool_ values
    rows = frame.to_dict("records")
    assert scope.health_data.import_rows(rows) == 3
    assert sorted(h.vital_signs["heart_rate"] for h in scope.health_data.stream()) == [61, 72, 83]
