"""The bulk import of the workload runner, from Python: `rows` vital signs readings of one patient
through ``health_data.create_many`` in batches, on a fresh database. Prints JSON with rows per second.

Run by ``cargo run -p austa-benches --bin workloads`` with the interpreter of ``target/py-venv``.
"""

import argparse
import base64
import json
import os
import time

import austa


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    args = parser.parse_args()

    key = base64.b64encode(os.urandom(32)).decode()
    with austa.Database(url=args.url, master_key=key) as db:
        db.migrate()
        org = db.organizations.create({"name": "Hospital Bench", "organization_type": "HOSPITAL"})
        scope = db.scope(org.id, austa.Actor.system("platform"))
        patient = scope.patients.create(
            {"first_name": "Paciente", "last_name": "Número 0", "phone": "+5511900000000"}
        )
        rows = (
            {
                "patient_id": patient.id,
                "data_type": "VITAL_SIGN",
                "category": "CARDIOLOGY",
                "vital_signs": {
                    "systolic": 110 + i % 40,
                    "diastolic": 70 + i % 20,
                    "heart_rate": 60 + i % 35,
                    "measured_at": "2026-11-20T08:00:00Z",
                    "device": "omron-hem-7122",
                },
            }
            for i in range(args.rows)
        )
        start = time.perf_counter()
        written = scope.health_data.import_rows(rows, batch_size=args.batch)
        elapsed = time.perf_counter() - start
    print(json.dumps({"rows": written, "seconds": elapsed, "rows_per_second": args.rows / elapsed}))


if __name__ == "__main__":
    main()
