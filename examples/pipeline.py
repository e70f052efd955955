"""A nightly lab-results pipeline: import a clinic's CSV, then export a cohort to pandas.

    pip install ./austa-py pandas
    python examples/pipeline.py                      # a fresh SQLite database in a temporary folder
    DATABASE_URL=postgres://... AUSTA_MASTER_KEY=... python examples/pipeline.py examples/data/lab_results.csv

1. Opens the database (`DATABASE_URL`, else a new SQLite file) and migrates it.
2. Finds or creates the clinic (by CNPJ); its administrator registers patients and its lab
   integration (the `tasy-sync` system actor) imports results, each with the purpose recorded.
3. Reads the CSV (one line per analyte), creates the patients it does not know yet (looked up by CPF
   through the blind index, never by decrypting), and bulk-imports one LAB_RESULT row per collection.
   A bad row stops its batch with every bad row listed (line, field, reason), and nothing of the
   batch is written.
4. Exports the cohort of patients with a fasting glucose of 126 mg/dL or more to a DataFrame.
5. Verifies the organization's audit chain: every step above is in it.
"""

from __future__ import annotations

import csv
import datetime
import os
import sys
import tempfile
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import austa

CLINIC_CNPJ = "11.222.333/0001-81"
DIABETES_GLUCOSE = 126.0
DEFAULT_CSV = Path(__file__).parent / "data" / "lab_results.csv"

Collection = Tuple[str, str]  # (cpf, collected_at)


def open_database(workdir: Path) -> austa.Database:
    """The configured database, or a fresh SQLite database with a new key in `workdir`."""
    url = os.environ.get("DATABASE_URL")
    if url is not None:
        # A real database needs its real master key (AUSTA_MASTER_KEY or AUSTA_MASTER_KEY_FILE): a
        # throwaway key would leave the rows written here unreadable.
        db = austa.Database(url)
    else:
        db = austa.Database(
            f"sqlite://{workdir / 'pipeline.db'}", key_file=workdir / "pipeline.key", create_key_file=True
        )
    db.migrate()
    return db


def clinic_scopes(db: austa.Database) -> Tuple[austa.Scope, austa.Scope]:
    """The clinic's administrator (registers patients, verifies the audit chain) and its lab
    integration (imports and reads results): each step runs with the least rights it needs."""
    clinic = db.organizations.find_by_tax_id(CLINIC_CNPJ)
    if clinic is None:
        clinic = db.organizations.create(
            name="Clínica Exemplo de Análises", organization_type=austa.OrganizationType.LABORATORY, tax_id=CLINIC_CNPJ
        )
    admin = db.scope(clinic.id, austa.Actor.admin(), purpose="nightly lab import")
    lab = db.scope(clinic.id, austa.Actor.system("tasy-sync"), purpose="nightly lab import")
    return admin, lab


def read_collections(path: Path) -> "OrderedDict[Collection, Dict[str, str]]":
    """Groups the CSV's analytes by collection; keeps the patient's columns of the first line."""
    collections: "OrderedDict[Collection, Dict[str, str]]" = OrderedDict()
    with path.open(newline="", encoding="utf-8") as f:
        for line in csv.DictReader(f):
            key = (line["cpf"], line["collected_at"])
            row = collections.setdefault(key, dict(line))
            row[f"result:{line['test']}"] = f"{line['value']}|{line['unit']}"
    return collections


def ensure_patients(scope: austa.Scope, collections: "OrderedDict[Collection, Dict[str, str]]") -> Dict[str, uuid.UUID]:
    """The patient id of every CPF in the file (as written there), creating the unknown patients in
    one batch."""
    ids: Dict[str, uuid.UUID] = {}
    new_rows: "OrderedDict[str, Dict[str, str]]" = OrderedDict()
    for (cpf, _), line in collections.items():
        if cpf in ids or cpf in new_rows:
            continue
        known = scope.patients.find_by_cpf(cpf)
        if known is not None:
            ids[cpf] = known.id
        else:
            new_rows[cpf] = {
                "cpf": cpf,
                "first_name": line["first_name"],
                "last_name": line["last_name"],
                "phone": line["phone"],
            }
    created = scope.patients.create_many(new_rows.values())
    ids.update(zip(new_rows.keys(), (patient.id for patient in created)))
    return ids


def lab_rows(
    collections: "OrderedDict[Collection, Dict[str, str]]", patients: Dict[str, uuid.UUID]
) -> Iterator[Dict[str, object]]:
    for (cpf, collected_at), line in collections.items():
        results: Dict[str, Dict[str, object]] = {}
        for column, cell in line.items():
            if column.startswith("result:"):
                value, unit = cell.split("|", 1)
                results[column[len("result:") :]] = {"value": float(value), "unit": unit}
        yield {
            "patient_id": patients[cpf],
            "data_type": austa.HealthDataType.LAB_RESULT,
            "category": austa.HealthCategory.DIABETES,
            "lab_results": results,
            "source": austa.DataSource.LAB_RESULT,
            "recorded_at": datetime.datetime.fromisoformat(collected_at),
        }


def glucose(row: austa.HealthData) -> Optional[float]:
    results = row.lab_results
    if not isinstance(results, dict) or not isinstance(results.get("glucose"), dict):
        return None
    value = results["glucose"].get("value")
    return float(value) if isinstance(value, (int, float)) else None


def main(argv: List[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_CSV
    with tempfile.TemporaryDirectory(prefix="austa-pipeline-") as tmp, open_database(Path(tmp)) as db:
        admin, lab = clinic_scopes(db)
        collections = read_collections(source)
        patients = ensure_patients(admin, collections)
        try:
            imported = lab.health_data.import_rows(lab_rows(collections, patients), batch_size=500)
        except austa.BatchError as error:
            for bad in error.errors:
                print(f"collection {bad.row + 1}: {bad.field or '-'}: {bad.message}", file=sys.stderr)
            print(f"import stopped: {error.written} rows were written by earlier batches", file=sys.stderr)
            return 1
        print(f"imported {imported} lab collections for {len(set(patients.values()))} patients from {source.name}")

        cohort = [row for row in lab.health_data.stream() if (glucose(row) or 0.0) >= DIABETES_GLUCOSE]
        frame = austa.export.to_pandas(cohort, columns=["patient_id", "recorded_at", "lab_results"])
        frame["glucose_mg_dl"] = [glucose(row) for row in cohort]
        frame = frame.drop(columns=["lab_results"])
        print(f"cohort: {frame['patient_id'].nunique()} patients with glucose >= {DIABETES_GLUCOSE:g} mg/dL")
        print(frame.groupby("patient_id")["glucose_mg_dl"].agg(["count", "max"]).to_string())

        report = admin.audit.verify()
        print(f"audit chain: {report.verified} events verified, {'intact' if report.broken is None else 'BROKEN'}")
        return 0 if report.broken is None else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
